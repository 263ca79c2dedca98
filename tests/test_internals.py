"""The private internals psicoia.ops.internals relies on still exist in the installed versions."""

from __future__ import annotations

from pathlib import Path

import autobahn.websocket.protocol as autobahn_protocol
import pytest

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.application.internet import StreamServerEndpointService
from twisted.conch.telnet import Telnet
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


def test_conch_telnet_parser_still_has_what_we_use():
    telnet = Telnet()
    assert internals.telnet_parser_idle(telnet)
    telnet.makeConnection(None)
    telnet.dataReceived(b"\r")  # Conch holds the CR to see what follows it
    assert not internals.telnet_parser_idle(telnet)
    assert internals.telnet_take_held_cr(telnet) and internals.telnet_parser_idle(telnet)
    with pytest.raises(ValueError):
        telnet.dataReceived(b"\xff\x41")  # IAC and an unknown command
    internals.telnet_reset_parser(telnet)
    assert internals.telnet_parser_idle(telnet)


def test_twisted_proxy_header_parsers_still_read_both_versions():
    info, rest = internals.proxy_header_parser(b"PROXY ").feed(
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 5001\r\nhola")
    assert (info.source.host, info.source.port, rest) == ("192.0.2.1", 1234, b"hola")
    body = bytes([198, 51, 100, 4, 127, 0, 0, 1]) + (5555).to_bytes(2, "big") \
        + (5001).to_bytes(2, "big")
    header = internals.PROXY_V2_SIGNATURE + b"\x21\x11" + len(body).to_bytes(2, "big") + body
    info, rest = internals.proxy_header_parser(header).feed(header)
    assert info.source.host == "198.51.100.4" and rest == b""
    assert internals.proxy_header_parser(b"GET / HTTP/1.1") is None
    with pytest.raises(internals.ProxyHeaderError):
        internals.proxy_header_parser(b"PROXY ").feed(b"PROXY nonsense\r\n")
