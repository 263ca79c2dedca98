"""
A fake OpenAI-compatible provider: a twisted.web resource driven by a script of responses.

Tests queue responses (status, headers, body, delay) and read back what was requested, how many
requests were in flight at once, and which headers came. Serve it on 127.0.0.1 with
:func:`serve` or in memory with ``treq.testing.StubTreq``.

It can also answer as the gateways and providers do when something is wrong, with the exact
status, headers and body shapes seen in the field (issue 15): :func:`error_body` builds the
OpenAI-style error body; the ``LITELLM_*``, ``OPENAI_*`` and ``GROQ_*`` constants are the answers
themselves; ``max_parallel`` makes it refuse requests beyond a parallel limit as LiteLLM's
per-key ``max_parallel_requests`` does; ``models`` is what ``GET /v1/models`` lists.

Streaming: a :class:`Streamed` step answers with server-sent events written over time (one
write per frame every ``interval`` seconds, or the bytes cut every ``split`` bytes so events
and lines break anywhere), and can stall, drop the connection, or end without ``[DONE]``;
:func:`stream_frames`, :func:`sse_event` and :func:`chunk` build the frames. Unscripted
requests that ask for ``"stream": true`` get the default reply streamed word by word.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from twisted.internet import reactor as default_reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site


def completion(text: str, id: str = "x") -> bytes:
    return json.dumps(
        {"id": id, "object": "chat.completion",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": "stop"}]}
    ).encode("utf-8")


def error_body(message: str, type: Any = None, code: Any = None, param: Any = None) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}``, the OpenAI error shape."""
    return json.dumps({"error": {"message": message, "type": type, "param": param,
                                 "code": code}}).encode("utf-8")


def chunk(content: Optional[str] = None, reasoning: Optional[str] = None,
          reasoning_field: str = "reasoning_content", finish: Optional[str] = None) -> dict:
    """One ``chat.completion.chunk``: a delta with ``content`` and/or a reasoning field."""
    delta: dict = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_field] = reasoning
    return {"id": "x", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse_event(payload: Union[dict, str], line_end: str = "\n") -> bytes:
    """``data: <payload>`` and the blank line that dispatches it (a dict is sent as JSON)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {text}{line_end}{line_end}".encode("utf-8")


def stream_frames(pieces: Sequence[str], *, reasoning: Sequence[str] = (),
                  reasoning_field: str = "reasoning_content", finish: Optional[str] = "stop",
                  usage: bool = False, done: bool = True, line_end: str = "\n",
                  comment: bool = False) -> list[bytes]:
    """The frames of a typical stream: a role chunk, the ``reasoning`` pieces (in
    ``reasoning_field``), the content ``pieces``, a chunk with ``finish`` (None: no such
    chunk), a usage chunk with empty choices, ``[DONE]``; ``comment`` adds a keep-alive."""
    frames = [sse_event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}]}, line_end)]
    if comment:
        frames.append(f": keep-alive{line_end}{line_end}".encode())
    frames += [sse_event(chunk(reasoning=r, reasoning_field=reasoning_field), line_end)
               for r in reasoning]
    frames += [sse_event(chunk(content=p), line_end) for p in pieces]
    if finish is not None:
        frames.append(sse_event(chunk(finish=finish), line_end))
    if usage:
        frames.append(sse_event({"id": "x", "choices": [],
                                 "usage": {"prompt_tokens": 9, "completion_tokens": 5}}, line_end))
    if done:
        frames.append(sse_event("[DONE]", line_end))
    return frames


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0      # seconds before answering (on the resource's clock)
    hang: bool = False      # never answer


@dataclass
class Streamed(Scripted):
    """An event-stream answer: ``frames`` written one per ``interval`` seconds (the first after
    ``delay``), or their bytes cut into writes of ``split`` bytes. After ``stall_after``
    writes it stops writing and keeps the response open; ``drop`` closes the connection after
    the last write instead of ending the response."""

    frames: list = field(default_factory=list)
    interval: float = 0.0
    split: int = 0
    stall_after: Optional[int] = None
    drop: bool = False
    content_type: bytes = b"text/event-stream"

    def writes(self) -> list[bytes]:
        if not self.split:
            return list(self.frames)
        data = b"".join(self.frames)
        return [data[i:i + self.split] for i in range(0, len(data), self.split)]


class FakeProvider(Resource):
    isLeaf = True

    def __init__(self, clock: Any = None, default_reply: str = "Te escucho. ¿Qué sentís?",
                 stream_interval: float = 0.0) -> None:
        super().__init__()
        self.stream_interval = stream_interval  # seconds between default streamed words
        self.clock = clock or default_reactor
        self.default_reply = default_reply
        self.script: list[Scripted] = []
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hanging: list[Any] = []

    def push(self, *responses: Scripted) -> None:
        self.script.extend(responses)

    # Set by tests: the gateway's parallel limit (None: no limit) and the refusal it answers.
    max_parallel: Any = None
    refused = 0
    models: Any = None  # GET /v1/models: a list of ids (None: 404), or a Scripted answer

    def parallel_refusal(self) -> "Scripted":
        return LITELLM_PARALLEL_REFUSAL

    def render_GET(self, request):
        self.requests.append({
            "method": "GET", "path": request.path,
            "headers": {k.decode().lower(): v[0].decode()
                        for k, v in request.requestHeaders.getAllRawHeaders()},
        })
        if isinstance(self.models, Scripted):
            step = self.models
        elif self.models is None:
            step = Scripted(status=404, body=error_body("Not Found"))
        else:
            step = Scripted(body=json.dumps({"object": "list", "data": [
                {"id": model, "object": "model", "owned_by": "test"} for model in self.models
            ]}).encode("utf-8"))
        if step.hang:
            self.hanging.append(request)
            return NOT_DONE_YET
        self._answer(request, step)
        return NOT_DONE_YET

    def render_POST(self, request):
        body = json.loads(request.content.read() or b"{}")
        self.requests.append({
            "path": request.path,
            "headers": {k.decode().lower(): v[0].decode()
                        for k, v in request.requestHeaders.getAllRawHeaders()},
            "json": body,
        })
        if self.max_parallel is not None and self.in_flight >= self.max_parallel:
            self.refused += 1
            step = self.parallel_refusal()
            self._answer(request, step)
            return NOT_DONE_YET
        if self.script:
            step = self.script.pop(0)
        elif body.get("stream") is True:
            words = self.reply_for(body).split(" ")
            step = Streamed(frames=stream_frames([w + " " for w in words[:-1]] + words[-1:]),
                            interval=self.stream_interval)
        else:
            step = Scripted(body=completion(self.reply_for(body)))
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
        if isinstance(step, Streamed):
            request.setResponseCode(step.status)
            for name, value in step.headers.items():
                request.setHeader(name, value)
            request.setHeader(b"Content-Type", step.content_type)
            request.setHeader(b"Cache-Control", b"no-cache")
            self._write(request, step, step.writes(), 0)
            return
        request.setResponseCode(step.status)
        for name, value in step.headers.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(step.body or b"")
        request.finish()

    def _write(self, request, step: "Streamed", writes: list, index: int) -> None:
        """Write ``writes[index:]``, one per ``step.interval``, then end as the step says."""
        while True:
            if request.finished or getattr(request, "_disconnected", False):
                return
            if step.stall_after is not None and index >= step.stall_after:
                self.hanging.append(request)
                return
            if index >= len(writes):
                if step.drop:
                    request.transport.abortConnection()
                else:
                    request.finish()
                return
            request.write(writes[index])
            index += 1
            if step.interval and index < len(writes):
                self.clock.callLater(step.interval, self._write, request, step, writes, index)
                return

    def _done(self, _):
        self.in_flight -= 1


async def serve(provider: FakeProvider, reactor: Any = default_reactor):
    """Listen on an ephemeral 127.0.0.1 port; return (port, base_url)."""
    site = Site(provider)
    site.noisy = False
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    return port, f"http://127.0.0.1:{port.getHost().port}/v1"


# --- answers as seen in the field (issue 15) ---------------------------------------------------

# LiteLLM proxy 1.108.7 without a database, as it answered on 127.0.0.1: a wrong key.
LITELLM_WRONG_KEY = Scripted(status=400, body=(
    b'{"error":{"message":"No connected db.","type":"no_db_connection","param":null,'
    b'"code":"400"}}'))
# LiteLLM proxy with a database: a wrong key.
LITELLM_AUTH_ERROR = Scripted(status=401, body=error_body(
    "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...x",
    type="auth_error", code="401", param="None"))
# LiteLLM proxy 1.108.7, as it answered on 127.0.0.1: a model it does not route.
LITELLM_UNKNOWN_MODEL = Scripted(status=400, headers={
    "x-litellm-call-id": "81551b5e-9a7f-4609-ba8e-10a62e11a78d",
}, body=(
    b'{"error":{"message":"/chat/completions: Invalid model name passed in '
    b'model=llama-3.1-8b-instant. Call `/v1/models` to view available models for your key.",'
    b'"type":"invalid_request_error","param":null,"code":"400","provider_specific_fields":'
    b'{"error":"/chat/completions: Invalid model name passed in model=llama-3.1-8b-instant. '
    b'Call `/v1/models` to view available models for your key."}}}'))
# LiteLLM's per-key max_parallel_requests (parallel_request_limiter_v3): 429 with its window as
# Retry-After, the limit type in a header, the detail in the message.
LITELLM_PARALLEL_REFUSAL = Scripted(status=429, headers={
    "retry-after": "60", "rate_limit_type": "max_parallel_requests",
    "reset_at": "2026-11-30 04:31:55 UTC", "x-litellm-call-id": "5b1c2f0e-9d7a-4e0b-8f7e-1a2b3c4d5e6f",
}, body=error_body(
    "Rate limit exceeded for api_key: 88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539"
    "800c9f1243fe6b4b. Limit type: max_parallel_requests. Current limit: 1, Remaining: 0. "
    "Limit resets at: 2026-11-30 04:31:55 UTC",
    type="None", code="429", param="None"))
# A Groq-like upstream behind LiteLLM 1.108.7, as the proxy relayed its 429 on 127.0.0.1: the
# reset and Retry-After only with the prefix, some plain rate-limit headers, the upstream's id.
GROQ_VIA_LITELLM_429 = Scripted(status=429, headers={
    "llm_provider-retry-after": "2",
    "llm_provider-x-ratelimit-limit-requests": "30",
    "llm_provider-x-ratelimit-remaining-requests": "0",
    "llm_provider-x-ratelimit-reset-requests": "2s",
    "llm_provider-x-request-id": "req_groqlike_429",
    "x-ratelimit-limit-requests": "30",
    "x-ratelimit-remaining-requests": "0",
    "request-id": "req_groqlike_429",
    "x-litellm-call-id": "a4a4fa64-93cc-41e6-9fc8-b8ef162a773e",
}, body=error_body(
    "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for model "
    "`llama-3.1-8b-instant` on requests per minute (RPM): Limit 30, Used 30, Requested 1. "
    "Please try again in 2s.\n\nLiteLLM: model group 'groq-like' failed with the error above. "
    "No fallback was attempted.", type="throttling_error", code="429"))
# LiteLLM 1.108.7's own per-deployment rpm limit (router), as it answered on 127.0.0.1.
LITELLM_RPM_REFUSAL = Scripted(status=429, headers={"llm_provider-retry-after": "60"}, body=(
    b'{"error":{"message":"litellm.RateLimitError: No deployments available for selected model. '
    b"Passed model=mock-llama. Deployments={'1c1a2a15': {'current_tpm': 30, 'tpm_limit': inf, "
    b"'current_rpm': 1, 'rpm_limit': 2}}\n\nLiteLLM: model group 'mock-llama' failed with the "
    b'error above. No fallback was attempted.","type":"throttling_error","param":null,'
    b'"code":"429"}}'))
# OpenAI and Groq themselves.
OPENAI_WRONG_KEY = Scripted(status=401, headers={"x-request-id": "req_7c1e0a9b3d"}, body=error_body(
    "Incorrect API key provided: gsk_abc***xyz. You can find your API key at https://...",
    type="invalid_request_error", code="invalid_api_key"))
OPENAI_UNKNOWN_MODEL = Scripted(status=404, headers={"x-request-id": "req_5f2d8e1c4b"},
                                body=error_body(
    "The model `llama-9` does not exist or you do not have access to it.",
    type="invalid_request_error", code="model_not_found"))
