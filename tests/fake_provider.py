"""
A fake OpenAI-compatible provider: a twisted.web resource driven by a script of responses.

Tests queue responses (status, headers, body, delay) and read back what was requested, how many
requests were in flight at once, and which headers came. Serve it on 127.0.0.1 with
:func:`serve` or in memory with ``treq.testing.StubTreq``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import reactor as default_reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site


def completion(text: str) -> bytes:
    return json.dumps(
        {"id": "x", "object": "chat.completion",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": "stop"}]}
    ).encode("utf-8")


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0      # seconds before answering (on the resource's clock)
    hang: bool = False      # never answer


class FakeProvider(Resource):
    isLeaf = True

    def __init__(self, clock: Any = None, default_reply: str = "Te escucho. ¿Qué sentís?") -> None:
        super().__init__()
        self.clock = clock or default_reactor
        self.default_reply = default_reply
        self.script: list[Scripted] = []
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hanging: list[Any] = []

    def push(self, *responses: Scripted) -> None:
        self.script.extend(responses)

    def render_POST(self, request):
        body = json.loads(request.content.read() or b"{}")
        self.requests.append({
            "path": request.path,
            "headers": {k.decode().lower(): v[0].decode()
                        for k, v in request.requestHeaders.getAllRawHeaders()},
            "json": body,
        })
        step = self.script.pop(0) if self.script else Scripted(body=completion(self.reply_for(body)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        finished = request.notifyFinish()
        finished.addBoth(self._done)
        if step.hang:
            self.hanging.append(request)
            return NOT_DONE_YET
        if step.delay:
            self.clock.callLater(step.delay, self._answer, request, step)
        else:
            self._answer(request, step)
        return NOT_DONE_YET

    def reply_for(self, body: dict) -> str:
        """Default reply: echo the last user message length, so tests can match replies."""
        last = body.get("messages", [{}])[-1].get("content", "")
        return f"{self.default_reply} ({len(last)})"

    def _answer(self, request, step: Scripted) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(step.status)
        for name, value in step.headers.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(step.body or b"")
        request.finish()

    def _done(self, _):
        self.in_flight -= 1


async def serve(provider: FakeProvider, reactor: Any = default_reactor):
    """Listen on an ephemeral 127.0.0.1 port; return (port, base_url)."""
    site = Site(provider)
    site.noisy = False
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    return port, f"http://127.0.0.1:{port.getHost().port}/v1"
