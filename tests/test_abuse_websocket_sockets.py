"""
Issue 16 item 2 for the WebSocket over real sockets on 127.0.0.1: one socket flooding one-byte
frames must not take the reactor (a polite user's round trips stay short), and one whose client
never reads must not take the server's memory (and gets every reply once it reads). The
in-memory versions are in tests/test_abuse_websocket.py, the TCP ones in
tests/test_abuse_flood.py.

Each test is bounded in time and bytes; the flooders are clients on this test's own reactor.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from psicoia.ops.internals import unsent_bytes
from psicoia.transports.websocket import ChatSocket
from tests.fake_provider import FakeProvider, serve
from tests.helpers import LOCAL, make_config, port_of, start_service
from tests.test_abuse_flood import polite_round_trips, slowly, small_send_buffer
from tests.test_abuse_websocket import client_frame, server_frames
from tests.wsclient import GREETING_LINES

# 64 KiB of one-byte frames a write. Blank: they get no reply and count toward no rate limit,
# so nothing but the per-turn bounds holds the flooder back (one 64 KiB read is 9,362 frames,
# which Autobahn alone parses and hands on in one reactor turn).
TINY_FLOOD = client_frame(b" ") * (64 * 1024 // 7)


def handshake(port: int, path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode("ascii")


def frame_flood(port: int, stop: threading.Event, seconds: float = 10.0,
                connections: int = 40) -> int:
    """A flooder in threads of its own (blocking sockets, so it keeps going while the reactor
    is busy): opens a socket, waits for the greeting, writes one-byte frames (and reads what
    comes back, in a second thread) until the server closes it or ``stop`` is set, then opens
    another (at most ``connections``, for at most ``seconds``). Returns the bytes it wrote."""
    deadline = time.monotonic() + seconds
    opened = sent = 0
    while not stop.is_set() and opened < connections and time.monotonic() < deadline:
        opened += 1
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(handshake(port, "/"))
            greeting = b""
            while b"salir" not in greeting:
                greeting += sock.recv(65536)
            drain = threading.Thread(target=_drain, args=(sock,), daemon=True)
            drain.start()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    sock.sendall(TINY_FLOOD)
                    sent += len(TINY_FLOOD)
            except OSError:  # closed by the server, or not read for 2 s
                pass
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            drain.join(5)
    return sent


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


@pytest_twisted.ensureDeferred
async def test_a_polite_users_round_trip_stays_under_half_a_second_while_a_websocket_floods():
    provider = FakeProvider()
    slowly(provider, 0.02)
    provider_port, url = await serve(provider)
    # The shipped rate limits; the flooder's blank frames meet none.
    service = await start_service(make_config(llm={"base_url": url},
                                              server={"websocket": LOCAL}))
    flood, stop = None, threading.Event()
    try:
        flood = threads.deferToThread(frame_flood, await port_of(service, "websocket"), stop)
        await deferLater(reactor, 0.3, lambda: None)  # the flood is on
        port = await port_of(service, "tcp")
        users = [threads.deferToThread(polite_round_trips, port, 6, 0.2 + 0.05 * n)
                 for n in range(3)]
        round_trips = [t for user in await gatherResults(users) for t in user]
        stop.set()
        sent, flood = await flood, None
        assert sent >= 1 << 20, "the flood was on: it wrote at least 1 MiB"
        assert max(round_trips) < 0.5, sorted(round(t, 3) for t in round_trips)[-5:]
    finally:
        if flood is not None:
            stop.set()
            await flood
        await service.stopService()
        await provider_port.stopListening()


class DeafSocket(Protocol):
    """A WebSocket client (raw frames) that never reads until told to; writes ``messages``
    short frames when :meth:`flood` is called."""

    def __init__(self, port: int, path: str, messages: int) -> None:
        self.port = port
        self.path = path
        self.messages = messages
        self.data = b""
        self.all_read: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()  # stop reading the socket
        self.transport.write(handshake(self.port, self.path))

    def flood(self) -> None:
        self.transport.write(client_frame(b"hola") * self.messages)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if (b"\r\n\r\n" in self.data and not self.all_read.called
                and len(server_frames(self.data)) >= GREETING_LINES + self.messages):
            self.all_read.callback(server_frames(self.data))


@pytest_twisted.ensureDeferred
async def test_a_websocket_that_never_reads_holds_a_bounded_output_buffer_and_is_answered_later():
    # Offline (no key): every message gets the companion's reply at once, and no rate limit
    # closes the socket, so only the output bound can hold it. Through the HTTP site's /ws.
    service = await start_service(make_config(
        api_key=None, server={"http": LOCAL},
        limits={"rate_max_messages": 1_000_000, "rate_window_seconds": 1}))
    deaf = None
    try:
        port = await port_of(service, "http")
        messages = 6_000  # 60 KB in; about 600 KB of replies if nothing held them back
        deaf = DeafSocket(port, "/ws", messages)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5), deaf)
        for _ in range(200):
            if _sockets(service):
                break
            await deferLater(reactor, 0.01, lambda: None)
        server_side = _sockets(service)[0]
        small_send_buffer(server_side.transport)
        deaf.flood()
        peak = 0
        for _ in range(30):  # 1.5 s: longer than answering every message takes
            await deferLater(reactor, 0.05, lambda: None)
            peak = max(peak, unsent_bytes(server_side.transport))
        handled = service.instruments.registry.get_sample_value(
            "psicoia_reply_seconds_count", {"transport": "websocket"})
        assert peak <= 256 * 1024, peak
        assert handled < messages // 2, handled
        # Answer later, never drop: once it reads, every message is answered, once.
        deaf.transport.resumeProducing()
        frames = await deaf.all_read.addTimeout(60, reactor)
        replies = [payload for opcode, payload in frames[GREETING_LINES:] if opcode == 0x1]
        assert len(replies) == messages
    finally:
        if deaf is not None and deaf.transport is not None:
            deaf.transport.abortConnection()
        await service.stopService()


def _sockets(service) -> list:
    return [c for c in service.registry.connections() if isinstance(c, ChatSocket)]
