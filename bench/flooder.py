"""
The chat flooder of issue 16 item 2, for the hostile scenario (h) of ``bench/run``.

One TCP connection that reads the greeting and then writes ``a\\n`` as fast as the socket
takes it (a streaming producer: it stops when Twisted's write buffer is full and goes on when
it drains). It reads whatever the server answers. A connection the server closes (the sanction
for sustained abuse) is counted and opened again after ``--reconnect-ms``, so the pressure
stays on for the whole run (``--max-bytes`` caps it, for toy runs).

Runs until SIGTERM/SIGINT or ``--seconds``, then prints one JSON line: bytes and lines sent,
bytes read, connections opened and closed by the server. Talks to 127.0.0.1 only.

    python -m bench.flooder --port 5001 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from .common import LOCAL

BURST = b"a\n" * 2048  # 4 KiB per write


@implementer(IPushProducer)
class Flood(Protocol):
    def __init__(self, run: "FloodRun") -> None:
        self.run = run
        self.greeted = False
        self.paused = False
        self.stopped = False

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)

    def dataReceived(self, data: bytes) -> None:
        self.run.counts["bytes_read"] += len(data)
        if not self.greeted and b"salir" in data:
            self.greeted = True
            self.run.reactor.callLater(0, self.resumeProducing)

    def resumeProducing(self) -> None:
        self.paused = False
        # Write until Twisted's buffer asks us to pause (or a bounded number of bursts, so the
        # reactor also reads what the server answers).
        for _ in range(16):
            if self.paused or self.stopped or not self.greeted or not self.run.running:
                return
            if self.run.max_bytes and self.run.counts["bytes_sent"] >= self.run.max_bytes:
                return  # a toy-sized flood (bench/run --smoke): the connection stays open
            self.transport.write(BURST)
            self.run.counts["bytes_sent"] += len(BURST)
        self.run.reactor.callLater(0, self.resumeProducing)

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.stopped = True

    def connectionLost(self, reason=None) -> None:
        self.stopped = True
        if self.run.running:
            self.run.counts["closed_by_server"] += 1
            self.run.reactor.callLater(self.run.reconnect_s, self.run.open)


class FloodRun:
    def __init__(self, reactor, port: int, reconnect_ms: float, max_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.reactor = reactor
        self.endpoint = TCP4ClientEndpoint(reactor, LOCAL, port, timeout=5)
        self.reconnect_s = reconnect_ms / 1000.0
        self.running = True
        self.counts = {"opened": 0, "failed": 0, "closed_by_server": 0, "bytes_sent": 0,
                       "bytes_read": 0}

    def open(self) -> None:
        if not self.running:
            return
        self.counts["opened"] += 1
        connectProtocol(self.endpoint, Flood(self)).addErrback(self._failed)

    def _failed(self, failure) -> None:
        self.counts["failed"] += 1
        self.reactor.callLater(self.reconnect_s, self.open)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the TCP chat listener")
    parser.add_argument("--reconnect-ms", type=float, default=100.0)
    parser.add_argument("--max-bytes", type=int, default=0,
                        help="stop writing after this many bytes (0: never)")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop by itself after this")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    run = FloodRun(reactor, args.port, args.reconnect_ms, args.max_bytes)
    run.open()

    def stop() -> None:
        run.running = False

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.callLater(args.seconds, reactor.stop)
    reactor.run()
    run.counts["lines_sent"] = run.counts["bytes_sent"] // 2
    print(json.dumps(run.counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
