"""
Issue 16 item 2 over real sockets on 127.0.0.1: one connection that floods must not take the
reactor (other users' round trips stay short) nor, when it never reads, the server's memory.

Each test is bounded in time and bytes; the flooders are clients on this test's own reactor.
"""

from __future__ import annotations

import socket
import time

import pytest_twisted
from twisted.internet import reactor
from twisted.internet import threads
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from psicoia import texts
from psicoia.ops.internals import unsent_bytes
from psicoia.transports.tcp import ChatLineProtocol
from tests.fake_provider import FakeProvider, serve
from tests.helpers import make_config, port_of, start_service

GREETING_LINES = 3 + len(texts.GREETING_BODY)
FLOOD = b"a\n" * (512 * 1024)  # 1 MiB a connection: one 64 KiB read is 32,768 lines


class Flood(Protocol):
    """Writes FLOOD once greeted; reads (and drops) what the server answers."""

    def __init__(self, run: "FloodRun") -> None:
        self.run = run
        self.greeted = False

    def dataReceived(self, data: bytes) -> None:
        if not self.greeted and b"salir" in data:
            self.greeted = True
            self.transport.write(FLOOD)

    def connectionLost(self, reason=None) -> None:
        self.run.lost()


class FloodRun:
    """One flooding connection at a time, opened again when the server closes it (at most
    ``limit`` connections), as bench/flooder.py does."""

    def __init__(self, port: int, limit: int = 40) -> None:
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
        self.limit = limit
        self.opened = 0
        self.running = True
        self.current = None

    def open(self) -> None:
        if self.running and self.opened < self.limit:
            self.opened += 1
            connectProtocol(self.endpoint, Flood(self)).addCallback(self._connected)

    def _connected(self, protocol: Flood) -> None:
        self.current = protocol

    def lost(self) -> None:
        self.current = None
        reactor.callLater(0.01, self.open)

    def stop(self) -> None:
        self.running = False
        if self.current is not None:
            self.current.transport.abortConnection()


def slowly(provider: FakeProvider, seconds: float) -> None:
    """Every provider answer comes ``seconds`` later (so flood lines wait for earlier ones)."""
    original = provider._answer
    provider._answer = lambda request, step: reactor.callLater(seconds, original, request, step)


def polite_round_trips(port: int, messages: int, pause: float) -> list[float]:
    """A user in a thread of its own, with a blocking socket, so that its clock keeps running
    while the reactor is busy: the seconds from writing each line to reading its reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        while b"salir" not in reader.readline():
            pass
        round_trips = []
        for number in range(messages):
            started = time.monotonic()
            sock.sendall(f"hola {number}\n".encode())
            reply = reader.readline()
            round_trips.append(time.monotonic() - started)
            assert reply.startswith("Te escucho.".encode()), reply
            time.sleep(pause)  # the user's think time (a client thread, not the server)
        return round_trips


@pytest_twisted.ensureDeferred
async def test_a_polite_clients_round_trip_stays_under_half_a_second_while_one_connection_floods():
    provider = FakeProvider()
    slowly(provider, 0.02)
    provider_port, url = await serve(provider)
    # The shipped rate limits: the flooder meets them, the polite users stay under them.
    service = await start_service(make_config(llm={"base_url": url}))
    flood = None
    try:
        port = await port_of(service, "tcp")
        flood = FloodRun(port)
        flood.open()
        await deferLater(reactor, 0.3, lambda: None)  # the flood is on
        users = [threads.deferToThread(polite_round_trips, port, 6, 0.2 + 0.05 * n)
                 for n in range(3)]
        round_trips = [t for user in await gatherResults(users) for t in user]
        assert flood.opened >= 2, "the flooder was closed and came back during the test"
        assert max(round_trips) < 0.5, sorted(round(t, 3) for t in round_trips)[-5:]
    finally:
        if flood is not None:
            flood.stop()
        await service.stopService()
        await provider_port.stopListening()


class Deaf(Protocol):
    """Never reads (until told to); writes ``lines`` short lines when :meth:`flood` is called
    (at once: Twisted sends them as the socket takes them)."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.received = 0  # line ends read, once it reads
        self.all_read: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()  # stop reading the socket

    def flood(self) -> None:
        self.transport.write(b"hola\n" * self.lines)

    def dataReceived(self, data: bytes) -> None:
        self.received += data.count(b"\n")
        if self.received == GREETING_LINES + self.lines:
            self.all_read.callback(None)


def small_send_buffer(transport, size: int = 4096) -> None:
    """A kernel send buffer of a few KiB for the server's side of the connection, so what the
    server holds shows up in its own write buffer within a second instead of in the kernel's
    autotuned megabytes."""
    transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


@pytest_twisted.ensureDeferred
async def test_a_flooder_that_never_reads_holds_a_bounded_output_buffer_and_is_answered_later():
    # Offline (no key): every line gets the companion's reply at once, and no rate limit
    # closes the flooder, so only the output bound can hold it.
    service = await start_service(make_config(
        api_key=None, limits={"rate_max_messages": 1_000_000, "rate_window_seconds": 1}))
    deaf = None
    try:
        port = await port_of(service, "tcp")
        lines = 6_000  # 30 KB in; about 600 KB of replies if nothing held them back
        deaf = Deaf(lines)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5), deaf)
        while not _chat_protocols(service):
            await deferLater(reactor, 0.01, lambda: None)
        server_side = _chat_protocols(service)[0]
        small_send_buffer(server_side.transport)
        deaf.flood()
        peak = 0
        for _ in range(30):  # 1.5 s: longer than answering every line takes
            await deferLater(reactor, 0.05, lambda: None)
            peak = max(peak, unsent_bytes(server_side.transport))
        handled = service.instruments.registry.get_sample_value(
            "psicoia_reply_seconds_count", {"transport": "tcp"})
        assert peak <= 256 * 1024, peak
        assert handled < lines // 2, handled
        # Answer later, never drop: once it reads, every line is answered.
        deaf.transport.resumeProducing()
        await deaf.all_read.addTimeout(60, reactor)
    finally:
        if deaf is not None and deaf.transport is not None:
            deaf.transport.abortConnection()
        await service.stopService()


def _chat_protocols(service) -> list:
    return [c for c in service.registry.connections() if isinstance(c, ChatLineProtocol)]
