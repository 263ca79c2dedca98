"""The private internals psicoia.ops.internals relies on still exist in the installed versions."""

from __future__ import annotations

from pathlib import Path

import autobahn.websocket.protocol as autobahn_protocol

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor as real_reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from psicoia.ops import internals


def test_twisted_still_has_what_we_use():
    reactor = MemoryReactor()
    service = StreamServerEndpointService(serverFromString(reactor, "tcp:0"), Factory())
    assert hasattr(service, "_raiseSynchronously")
    internals.listen_synchronously(service)
    service.privilegedStartService()
    assert isinstance(internals.port_waiter(service), Deferred)
    assert hasattr(real_reactor, "_exitSignal")


def test_autobahn_still_has_what_we_use():
    factory = WebSocketServerFactory()
    assert hasattr(factory, "_batched_timer")
    protocol = WebSocketServerProtocol()
    protocol.frame_data, protocol.message_data = [b"x"], [b"y"]
    internals.drop_buffered_message(protocol)
    assert protocol.frame_data == [] and protocol.message_data == []
    # Autobahn fills these per frame; a rename would leave a too-long message in memory.
    source = Path(autobahn_protocol.__file__).read_text(encoding="utf-8")
    assert "self.frame_data" in source and "self.message_data" in source


def test_the_provider_pool_starts_its_factories_quietly():
    from twisted.web.client import HTTPConnectionPool

    pool = internals.quiet_pool(HTTPConnectionPool(MemoryReactor()))
    assert pool._factory.noisy is False
    assert issubclass(pool._factory, HTTPConnectionPool._factory), "still Twisted's factory"
