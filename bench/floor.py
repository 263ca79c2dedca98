"""
The floor: the least a Twisted line server can do to put a model between two people.

A bare ``LineReceiver`` that forwards each line to the provider through one persistent treq
``HTTPConnectionPool`` (sized like PsicoIA's) and writes the reply back as one line. It sends
the provider the same work as PsicoIA: the shipped system prompt, the newest turns of the
connection's history chosen by the same rule and defaults (``history.max_messages`` 10, a
1,000-token budget at 3 characters a token, :func:`psicoia.chat.history.build_prompt`, a pure
function) and the line, so the request body has the same size and shape; it parses the reply
the same way. It does nothing else: no greeting beyond the one line clients wait for, no rate
limit, no semaphore, no crisis layer, no logging, no metrics. PsicoIA's numbers are reported as
ratios to this server's, measured in the same run.

``--stream``: ask for ``"stream": true`` and write each content delta of the server-sent events
to the client as it arrives, then the line end (what PsicoIA does on TCP with ``llm.stream``).

``--classify``: for each line also send, at once and alongside the reply's request, the
classification call PsicoIA's second opinion sends (``safety.classifier: auto``, issue 11): the
same body shape and size (the classifier prompt, the connection's latest user messages
numbered, ``max_tokens`` 8, not streamed), its reply read and parsed, its answer unused. PsicoIA
skips it only for messages its rules already put at risk, which the benchmark never sends.

    python -m bench.floor --port 0 --provider http://127.0.0.1:PORT/v1 --pool 200 [--stream]
        [--classify]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import treq
from treq.client import HTTPClient
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.web.client import Agent, HTTPConnectionPool

from psicoia.chat.history import build_prompt
from psicoia.chat.second_opinion import MAX_CHARS, MAX_TOKENS, load_prompt

from .common import raise_file_limit

SYSTEM_PROMPT = (Path(__file__).resolve().parent.parent / "psicoia" / "chat" / "prompts"
                 / "system.txt").read_text("utf-8").strip()
HISTORY_MAX_MESSAGES = 10  # psicoia.config.HistoryConfig's defaults
TOKEN_BUDGET = 1000
CHARS_PER_TOKEN = 3.0
CLASSIFIER_PROMPT = load_prompt()
CLASSIFIER_TURNS = 3  # psicoia.config.SafetyConfig's default
GREETING = "Floor server: escribi salir para irte.\r\n".encode("utf-8")
HEADERS = {
    b"Authorization": [b"Bearer floor"],
    b"Content-Type": [b"application/json"],
    b"Accept": [b"application/json"],
}


class FloorProtocol(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.history: list[dict] = []
        self.transport.write(GREETING)

    def lineReceived(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if not text.strip():
            return
        messages = build_prompt(SYSTEM_PROMPT, self.history, text, HISTORY_MAX_MESSAGES,
                                TOKEN_BUDGET, CHARS_PER_TOKEN)
        self.history.append({"role": "user", "content": text})
        if self.factory.classify:
            recent = [turn["content"][:MAX_CHARS] for turn in self.history
                      if turn["role"] == "user"][-CLASSIFIER_TURNS:]
            self.factory.classify_call(recent)
        self.factory.ask(messages, self._piece).addCallbacks(self._reply, self._failed)

    def _piece(self, text: str) -> None:
        self.transport.write(text.encode("utf-8"))

    def _reply(self, text: str) -> None:
        self.history.append({"role": "assistant", "content": text})
        del self.history[:-HISTORY_MAX_MESSAGES]
        if self.factory.stream:
            self.transport.write(b"\r\n")
        else:
            self.transport.write(text.encode("utf-8") + b"\r\n")

    def _failed(self, failure) -> None:
        self.transport.write(b"error\r\n")


class FloorFactory(Factory):
    protocol = FloorProtocol
    noisy = False

    def __init__(self, reactor, url: str, pool_size: int, stream: bool = False,
                 classify: bool = False) -> None:
        self.stream = stream
        self.classify = classify
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = pool_size
        pool.retryAutomatically = False
        self.http = HTTPClient(Agent(reactor, pool=pool))
        self.url = url.rstrip("/") + "/chat/completions"

    async def _ask(self, messages: list[dict], on_piece) -> str:
        body = json.dumps({
            "model": "bench",
            "messages": messages,
            "temperature": 0.5,
            "max_tokens": 200,
            "stream": self.stream,
        }).encode("utf-8")
        response = await self.http.post(self.url, data=body, headers=HEADERS)
        if not self.stream:
            payload = await treq.content(response)
            return json.loads(payload)["choices"][0]["message"]["content"].strip()
        events = SSEText(on_piece)
        await treq.collect(response, events.feed)
        return "".join(events.pieces)

    def classify_call(self, recent: list[str]):
        numbered = "\n".join(f"{i}. {text}" for i, text in enumerate(recent, start=1))
        body = json.dumps({
            "model": "bench",
            "messages": [{"role": "system", "content": CLASSIFIER_PROMPT},
                         {"role": "user", "content": numbered}],
            "temperature": 0.5,
            "max_tokens": MAX_TOKENS,
            "stream": False,
        }).encode("utf-8")
        answer = self.http.post(self.url, data=body, headers=HEADERS).addCallback(treq.content)
        answer.addCallback(lambda payload: json.loads(payload)["choices"][0]["message"]["content"])
        return answer.addErrback(lambda _: None)

    def ask(self, messages: list[dict], on_piece):
        from twisted.internet.defer import ensureDeferred

        return ensureDeferred(self._ask(messages, on_piece))


class SSEText:
    """The plainest reading of an OpenAI stream: ``data:`` lines, each a JSON delta."""

    def __init__(self, on_piece) -> None:
        self.on_piece = on_piece
        self.pieces: list[str] = []
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                self.pieces.append(delta)
                self.on_piece(delta)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--provider", required=True, help="base URL of the fake provider")
    parser.add_argument("--pool", type=int, default=20, help="maxPersistentPerHost")
    parser.add_argument("--stream", action="store_true", help="ask for and relay SSE")
    parser.add_argument("--classify", action="store_true",
                        help="also send the second opinion's classification call per line")
    parser.add_argument("--duration", type=float, default=3600.0,
                        help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    if not args.provider.startswith("http://127.0.0.1:"):
        parser.error("--provider must be on 127.0.0.1")

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    raise_file_limit()
    factory = FloorFactory(reactor, args.provider, args.pool, args.stream, args.classify)
    port = reactor.listenTCP(args.port, factory, backlog=1024, interface="127.0.0.1")
    sys.stdout.write(f"listening {port.getHost().port}\n")
    sys.stdout.flush()
    reactor.callLater(args.duration, reactor.stop)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
