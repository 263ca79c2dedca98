"""
Listeners: a named ``StreamServerEndpointService`` per endpoint string, and the browser-facing
ones (the standalone WebSocket and the HTTP site) that the core and the gateway share.
"""

from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from psicoia.config import Config
from psicoia.ops.internals import listen_synchronously, port_waiter
from psicoia.ops.observers import Waiters
from psicoia.transports.http import build_site
from psicoia.transports.status import Report
from psicoia.transports.websocket import OriginPolicy


class Listener(StreamServerEndpointService):
    """A named listener that remembers its port, and fails twistd when it cannot listen."""

    log = Logger()

    def __init__(self, name: str, description: str, reactor: Any, factory: Any) -> None:
        super().__init__(serverFromString(reactor, description), factory)
        self.setName(name)
        self.description = description
        self.port = None
        listen_synchronously(self)
        self._port_waiters = Waiters()

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        port_waiter(self).addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        self.log.info("listening {name} on {address}", name=self.name,
                      address=str(port.getHost()))
        self._port_waiters.fire(port)
        return port

    def when_listening(self) -> Deferred:
        if self.port is not None:
            return succeed(self.port)
        return self._port_waiters.wait()


def listening_ports(service: MultiService, name: str) -> tuple[int, ...]:
    """The port the named listener got (none while it is not listening)."""
    try:
        listener = service.getServiceNamed(name)
    except KeyError:
        return ()
    return (listener.port.getHost().port,) if listener.port is not None else ()


def add_browser_listeners(service: MultiService, config: Config, reactor: Any,
                          make_socket_factory: Callable[[OriginPolicy], Any],
                          report: Report, registry: CollectorRegistry = None) -> None:
    """``server.websocket`` and ``server.http`` (page, ``/ws``), each with its own factory.

    ``make_socket_factory(origins)`` builds the WebSocket factory (chat or gateway). The
    standalone listener also accepts the page's origin, which is on the HTTP listener's port.
    """
    allowed = config.server.allowed_origins
    if config.server.websocket:
        origins = OriginPolicy(allowed, lambda: listening_ports(service, "http"))
        Listener("websocket", config.server.websocket, reactor,
                 make_socket_factory(origins)).setServiceParent(service)
    if config.server.http:
        site = build_site(report, registry, make_socket_factory(OriginPolicy(allowed)),
                          connections=service.registry, clock=reactor, server=config.server)
        Listener("http", config.server.http, reactor, site).setServiceParent(service)
