"""
Assemble the running service: listeners, the session manager, the provider client.

``build_service`` is what ``twistd`` and the end-to-end tests both use; the reactor is a
parameter so tests can bind to ``tcp:0:interface=127.0.0.1`` and read the ports back.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from psicoia.config import Config
from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.instruments import Instruments
from psicoia.app.core import build_core
from psicoia.app.lifecycle import ChatService
from psicoia.ops.metrics import Metrics
from psicoia.transports.tcp import ChatLineFactory
from psicoia.transports.websocket import ChatWebSocketFactory
from psicoia.chat.session import SessionManager


class Listener(StreamServerEndpointService):
    """A named listener that remembers its port, and fails twistd when it cannot listen."""

    log = Logger()

    def __init__(self, name: str, description: str, reactor: Any, factory: Any) -> None:
        super().__init__(serverFromString(reactor, description), factory)
        self.setName(name)
        self.description = description
        self.port = None
        self._raiseSynchronously = True
        self._port_waiters: list[Deferred] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        self.log.info("listening {name} on {address}", name=self.name,
                      address=str(port.getHost()))
        waiters, self._port_waiters = self._port_waiters, []
        for waiter in waiters:
            waiter.callback(port)
        return port

    def when_listening(self) -> Deferred:
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred = Deferred()
        self._port_waiters.append(waiter)
        return waiter


class PsicoiaService(ChatService):
    """The whole server. Stopping it is the graceful shutdown of the contract."""

    def __init__(self, config: Config, reactor: Any, manager: SessionManager,
                 registry: ConnectionRegistry, pool: Any = None) -> None:
        super().__init__(config, reactor, registry)
        self.manager = manager
        self.pool = pool
        self.breaker: Any = None  # /readyz reads its state

    def startService(self) -> None:
        super().startService()
        if not self.manager.provider.online:
            self.log.warn(
                "no API key in {env}: running in offline mode (fallback replies only)",
                env=self.config.llm.api_key_env,
            )

    def pending_replies(self) -> Deferred:
        return self.manager.drain()

    def release_resources(self) -> Any:
        if self.breaker is not None:
            self.breaker.stop()
        if self.pool is not None:
            return self.pool.closeCachedConnections()
        return None


def build_service(
    config: Config,
    reactor: Any,
    clock: Any = None,
    http: Any = None,
    instruments: Optional[Instruments] = None,
) -> PsicoiaService:
    """Wire the service from ``config``. ``http`` replaces the treq client (tests)."""
    clock = clock or reactor
    instruments = instruments or Metrics()
    core = build_core(config, reactor, clock, instruments, http=http)
    manager = core.manager
    registry = ConnectionRegistry(
        config.server.max_connections, config.server.max_connections_per_ip, instruments
    )
    service = PsicoiaService(config, reactor, manager, registry, core.pool)
    service.instruments, service.breaker = instruments, core.breaker
    if config.server.tcp:
        Listener("tcp", config.server.tcp, reactor,
                 ChatLineFactory(manager, registry, clock)).setServiceParent(service)
    add_browser_listeners(service, config, reactor, lambda origins: ChatWebSocketFactory(
        manager, registry, clock, origins, reactor=reactor))
    return service


def listening_ports(service: MultiService, name: str) -> tuple[int, ...]:
    """The port the named listener got (none while it is not listening)."""
    try:
        listener = service.getServiceNamed(name)
    except KeyError:
        return ()
    return (listener.port.getHost().port,) if listener.port is not None else ()


def add_browser_listeners(service: MultiService, config: Config, reactor: Any,
                          make_socket_factory) -> None:
    """``server.websocket`` and ``server.http`` (page, ``/ws``), each with its own factory.

    ``make_socket_factory(origins)`` builds the WebSocket factory (chat or gateway). The
    standalone listener also accepts the page's origin, which is on the HTTP listener's port.
    """
    from psicoia.transports.websocket import OriginPolicy
    from psicoia.transports.http import build_site

    allowed = config.server.allowed_origins
    if config.server.websocket:
        origins = OriginPolicy(allowed, lambda: listening_ports(service, "http"))
        Listener("websocket", config.server.websocket, reactor,
                 make_socket_factory(origins)).setServiceParent(service)
    if config.server.http:
        site = build_site(service, make_socket_factory(OriginPolicy(allowed)))
        Listener("http", config.server.http, reactor, site).setServiceParent(service)
