"""
Python objects per idle TCP connection, in process, with ``tracemalloc``: what the server keeps
for each user who is connected and silent (greeted only, or after one message).

    .venv/bin/python bench/idle_objects.py [--connections N] [--say 0|1] [--top 15]

The real protocol (``ChatLineProtocol``) and session, wired by ``build_core`` with the memory
store, on ``StringTransport``s (no sockets), a provider stand-in that answers at once, and a
``task.Clock``. It counts Python allocations only: the RSS figure of ``bench/run`` scenario (d)
adds Twisted's socket transport, allocator slack and garbage waiting for the collector. Compare
two checkouts by running it with ``PYTHONPATH`` set to each. No timing, no network.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogBeginner

from psicoia import config as config_module
from psicoia.app.core import build_core
from psicoia.ops.connections import ConnectionRegistry
from psicoia.transports.tcp import ChatLineFactory

REPLY = "Te escucho. Contame un poco mas de eso, estoy aca con vos."


class InstantProvider:
    """Answers every call at once with :data:`REPLY`."""

    online = True

    def complete(self, messages, trace_id, model=None, max_tokens=None):
        return succeed(REPLY)

    def stream(self, messages, trace_id, on_delta):
        on_delta(REPLY)
        return succeed(REPLY)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--say", type=int, choices=(0, 1), default=1,
                        help="1: each connection sends one message first")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    # As twistd does before the service starts: else Twisted's start-up buffer keeps every
    # log event (two per message), which the server never does.
    globalLogBeginner.beginLoggingTo([lambda event: None], discardBuffer=True,
                                     redirectStandardIO=False)
    base = config_module.load(environ={}, cwd=Path(tempfile.mkdtemp(prefix="psicoia-idle-")))
    config = dataclasses.replace(config_module.replace(
        base, storage={"backend": "memory"}, safety={"classifier": "off"},
        limits={"rate_max_messages": 10 ** 6, "rate_window_seconds": 1}), api_key="bench")
    clock = Clock()
    manager = build_core(config, clock, clock, provider=InstantProvider()).manager
    factory = ChatLineFactory(manager, ConnectionRegistry(10 ** 6, 10 ** 6), clock)
    kept = []

    def connect(number: int) -> None:
        protocol = factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", number))
        protocol.makeConnection(transport)
        if args.say:
            protocol.dataReceived(b"hola, como va\r\n")
        transport.clear()
        kept.append((protocol, transport))

    for number in range(200):  # warm: caches, interned strings, first-use allocations
        connect(number)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for number in range(args.connections):
        connect(1000 + number)
    gc.collect()
    stats = tracemalloc.take_snapshot().compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    n = args.connections
    print(f"{total / n:,.0f} bytes of Python objects per connection "
          f"({'one message each' if args.say else 'greeted only'}; {n} connections; includes "
          f"the StringTransport, about 300 bytes)")
    for stat in stats[:args.top]:
        print(f"{stat.size_diff / n:7.0f} B {stat.count_diff / n:5.2f} objects  "
              f"{stat.traceback[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
