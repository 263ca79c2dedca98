"""
psicoia/transports/lineout.write_now on real 127.0.0.1 sockets: a reply's bytes go out with one
``send`` when nothing waits, after whatever Twisted still holds, and what the socket does not
take is left to Twisted's own write (its buffer, its producer's backpressure).
"""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport

from psicoia.transports.lineout import write_now


@asynccontextmanager
async def connected():
    """(a Twisted client's TCP transport, the plain socket at the other end), non-blocking."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = await connectProtocol(
        TCP4ClientEndpoint(reactor, "127.0.0.1", listener.getsockname()[1], timeout=5),
        Protocol())
    peer, _ = listener.accept()
    peer.setblocking(False)
    try:
        yield client.transport, peer
    finally:
        client.transport.loseConnection()
        peer.close()
        listener.close()


@pytest_twisted.ensureDeferred
async def test_a_replys_words_leave_the_socket_before_the_reactor_polls_again():
    """A piece of a reply goes out in the reactor turn that wrote it (on an idle server the
    next poll may first handle other reads); what Twisted still holds goes first, so the
    bytes keep their order; Twisted's plain write would still have them in its buffer."""
    async with connected() as (transport, peer):
        transport.write(b"Hola")
        with pytest.raises(BlockingIOError):  # else the test would prove nothing
            peer.recv(16)
        write_now(transport, b", che")  # something waits: queued after it, not before
        with pytest.raises(BlockingIOError):
            peer.recv(16)
        await deferLater(reactor, 0.05, lambda: None)
        assert peer.recv(16) == b"Hola, che"
        write_now(transport, b"!")  # nothing waits: sent now, no poll needed
        assert peer.recv(16) == b"!"
        assert not transport.dataBuffer and not transport._tempDataBuffer


def test_write_now_leaves_other_transports_to_their_own_write():
    """A transport that is not a plain TCP socket (TLS, a PROXY-protocol wrapper, a test's
    StringTransport) gets the bytes through its own ``write``."""
    transport = StringTransport()
    write_now(transport, b"Hola")
    assert transport.value() == b"Hola"


@pytest_twisted.ensureDeferred
async def test_write_now_hands_what_the_socket_does_not_take_to_twisted():
    """A client that does not read: the socket's buffer fills, the rest waits in Twisted's
    buffer (where the producer's backpressure sees it) and arrives whole and in order."""
    async with connected() as (transport, peer):
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = bytes(range(256)) * 4096  # 1 MiB: more than both socket buffers hold
        write_now(transport, data)
        assert transport.dataBuffer or transport._tempDataBuffer
        received = bytearray()
        for _ in range(2000):
            try:
                received += peer.recv(1 << 16)
            except BlockingIOError:
                await deferLater(reactor, 0.001, lambda: None)
                continue
            if len(received) == len(data):
                break
        assert bytes(received) == data
