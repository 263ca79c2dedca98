"""
The floor: the least a Twisted line server can do to put a model between two people.

A bare ``LineReceiver`` that forwards each line to the provider through one persistent treq
``HTTPConnectionPool`` (sized like PsicoIA's) and writes the reply back as one line. It builds
the same kind of chat-completions body (the shipped system prompt plus the line) and parses the
reply the same way, and does nothing else: no greeting beyond the one line clients wait for, no
rate limit, no semaphore, no history, no logging, no metrics. PsicoIA's numbers are reported
as ratios to this server's, measured in the same run.

    python -m bench.floor --port 0 --provider http://127.0.0.1:PORT/v1 --pool 200
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

SYSTEM_PROMPT = (Path(__file__).resolve().parent.parent / "psicoia" / "chat" / "prompts"
                 / "system.txt").read_text("utf-8").strip()
GREETING = "Floor server: escribi salir para irte.\r\n".encode("utf-8")
HEADERS = {
    b"Authorization": [b"Bearer floor"],
    b"Content-Type": [b"application/json"],
    b"Accept": [b"application/json"],
}


class FloorProtocol(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.transport.write(GREETING)

    def lineReceived(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if not text.strip():
            return
        self.factory.ask(text).addCallbacks(self._reply, self._failed)

    def _reply(self, text: str) -> None:
        self.transport.write(text.encode("utf-8") + b"\r\n")

    def _failed(self, failure) -> None:
        self.transport.write(b"error\r\n")


class FloorFactory(Factory):
    protocol = FloorProtocol
    noisy = False

    def __init__(self, reactor, url: str, pool_size: int) -> None:
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = pool_size
        pool.retryAutomatically = False
        self.http = HTTPClient(Agent(reactor, pool=pool))
        self.url = url.rstrip("/") + "/chat/completions"

    async def _ask(self, text: str) -> str:
        body = json.dumps({
            "model": "bench",
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": text}],
            "temperature": 0.5,
            "max_tokens": 200,
        }).encode("utf-8")
        response = await self.http.post(self.url, data=body, headers=HEADERS)
        payload = await treq.content(response)
        return json.loads(payload)["choices"][0]["message"]["content"].strip()

    def ask(self, text: str):
        from twisted.internet.defer import ensureDeferred

        return ensureDeferred(self._ask(text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--provider", required=True, help="base URL of the fake provider")
    parser.add_argument("--pool", type=int, default=20, help="maxPersistentPerHost")
    parser.add_argument("--duration", type=float, default=3600.0,
                        help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    if not args.provider.startswith("http://127.0.0.1:"):
        parser.error("--provider must be on 127.0.0.1")

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    from psicoia.app.tap import raise_file_limit

    raise_file_limit()
    factory = FloorFactory(reactor, args.provider, args.pool)
    port = reactor.listenTCP(args.port, factory, backlog=1024, interface="127.0.0.1")
    sys.stdout.write(f"listening {port.getHost().port}\n")
    sys.stdout.flush()
    reactor.callLater(args.duration, reactor.stop)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
