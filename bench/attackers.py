"""
The HTTP attackers of issue 16, for the hostile scenario (h) of ``bench/run``.

* ``--slow-headers N``: N connections that send a request line and then one header byte every
  ``--trickle-ms`` (the slow-loris shape). A connection the server drops is counted and opened
  again a little later, so the pressure stays at N.
* ``--range-workers C``: C loops, each sending ``GET /app.js`` with six overlapping ranges on a
  new connection and reading the answer to the end, as fast as the server answers.

Runs until SIGTERM/SIGINT or ``--seconds``, then prints one JSON line: connections opened and
dropped, range requests answered and bytes read. Talks to 127.0.0.1 only.

    python -m bench.attackers --port 8000 --slow-headers 200 --range-workers 4 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall, deferLater

from psicoia.ops.process import raise_file_limit

from .common import LOCAL

RANGES = "0-5,1-9,2-20,3-40,4-50,5-60"
RECONNECT_SECONDS = 0.1


class Slow(Protocol):
    def __init__(self, attack: "Attack") -> None:
        self.attack = attack

    def connectionMade(self) -> None:
        self.attack.slow_open.add(self)
        self.transport.write(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: ")

    def trickle(self) -> None:
        self.transport.write(b"a")

    def connectionLost(self, reason=None) -> None:
        self.attack.slow_open.discard(self)
        if self.attack.running:  # not our own shutdown
            self.attack.counts["slow_dropped"] += 1
            self.attack.later(self.attack.open_slow)


class RangeGet(Protocol):
    def __init__(self) -> None:
        self.size = 0
        self.done: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(f"GET /app.js HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
                             f"Range: bytes={RANGES}\r\n\r\n".encode())

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)

    def connectionLost(self, reason=None) -> None:
        self.done.callback(self.size)


class Attack:
    def __init__(self, reactor, port: int, trickle_ms: float) -> None:
        self.reactor = reactor
        self.endpoint = TCP4ClientEndpoint(reactor, LOCAL, port, timeout=5)
        self.trickle_ms = trickle_ms
        self.slow_open: set[Slow] = set()
        self.running = True
        self.counts = {"slow_opened": 0, "slow_dropped": 0, "slow_failed": 0,
                       "range_requests": 0, "range_bytes": 0, "range_failed": 0}

    def later(self, action) -> None:
        if self.running:
            self.reactor.callLater(RECONNECT_SECONDS, action)

    def open_slow(self) -> None:
        if not self.running:
            return
        self.counts["slow_opened"] += 1
        opened = connectProtocol(self.endpoint, Slow(self))
        opened.addErrback(self._slow_failed)

    def _slow_failed(self, failure) -> None:
        self.counts["slow_failed"] += 1
        self.later(self.open_slow)

    def trickle(self) -> None:
        for connection in list(self.slow_open):
            connection.trickle()

    async def range_worker(self) -> None:
        while self.running:
            try:
                protocol = await connectProtocol(self.endpoint, RangeGet())
                size = await protocol.done
            except Exception:  # noqa: BLE001 - counted; an attacker does not care why
                self.counts["range_failed"] += 1
                await deferLater(self.reactor, RECONNECT_SECONDS, lambda: None)
                continue
            self.counts["range_requests"] += 1
            self.counts["range_bytes"] += size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the HTTP listener")
    parser.add_argument("--slow-headers", type=int, default=200)
    parser.add_argument("--trickle-ms", type=float, default=500.0)
    parser.add_argument("--range-workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop by itself after this")
    args = parser.parse_args(argv)

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    raise_file_limit()
    attack = Attack(reactor, args.port, args.trickle_ms)
    for _ in range(args.slow_headers):
        attack.open_slow()
    LoopingCall(attack.trickle).start(args.trickle_ms / 1000.0, now=False)
    for _ in range(args.range_workers):
        ensureDeferred(attack.range_worker())

    def stop() -> None:
        attack.running = False

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.callLater(args.seconds, reactor.stop)
    reactor.run()
    attack.counts["slow_open_at_end"] = len(attack.slow_open)
    print(json.dumps(attack.counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
