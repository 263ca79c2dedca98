"""
Assemble the running service: listeners, the session manager, the provider client.

``build_service`` is what ``twistd`` and the end-to-end tests both use; the reactor is a
parameter so tests can bind to ``tcp:0:interface=127.0.0.1`` and read the ports back.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, Logger

from .config import Config
from .connections import ConnectionRegistry
from .instruments import Instruments
from .breaker import CircuitBreaker
from .llm import ChatProvider, make_http_client
from .logsetup import LevelLogger
from .metrics import Metrics
from .pacing import Pacer
from .protocols.tcp import ChatLineFactory
from .protocols.websocket import ChatWebSocketFactory
from .session import SessionManager


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


class PsicoiaService(MultiService):
    """The whole server. Stopping it is the graceful shutdown of the contract."""

    log = Logger()

    def __init__(self, config: Config, reactor: Any, manager: SessionManager,
                 registry: ConnectionRegistry, pool: Any = None) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.manager = manager
        self.registry = registry
        self.pool = pool
        self.log_observer: Optional[ILogObserver] = None
        self.started_at: Optional[float] = None
        self.instruments: Optional[Instruments] = None  # /metrics reads its registry
        self.breaker: Any = None  # /readyz reads its state

    def setServiceParent(self, parent) -> None:
        # twistd's Application is componentized: our observer becomes its ILogObserver.
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.log_observer)
            # Events below the configured level are then not even built (docs/benchmarks.md).
            LevelLogger.drop_below(self.config.log.level)
        super().setServiceParent(parent)

    def listener(self, name: str) -> Listener:
        return self.getServiceNamed(name)

    def startService(self) -> None:
        self.started_at = self.reactor.seconds()
        super().startService()
        if not self.manager.provider.online:
            self.log.warn(
                "no API key in {env}: running in offline mode (fallback replies only)",
                env=self.config.llm.api_key_env,
            )

    def stopService(self) -> Deferred:
        """Stop listening, tell everyone, let in-flight replies finish (bounded), hang up."""
        stopped = super().stopService()
        stopped.addCallback(lambda _: self._drain())
        stopped.addCallback(self._exit_cleanly)
        return stopped

    def _exit_cleanly(self, result):
        """twistd re-raises the SIGTERM/SIGINT that stopped the reactor when it exits (status
        143/130). Our stop is graceful, and the contract says exit 0: forget that signal."""
        if getattr(self.reactor, "_exitSignal", None) is not None:
            self.reactor._exitSignal = None
        return result

    def _drain(self) -> Deferred:
        connections = self.registry.connections()
        self.log.info("shutting down connections={count}", count=len(connections))
        for connection in connections:
            connection.notify_shutdown()
        grace = self.config.server.shutdown_grace_seconds
        drained = self.manager.drain()
        drained.addTimeout(grace, self.reactor)
        drained.addErrback(self._grace_over)
        # One reactor turn later: drain() fires as the last reply is produced, and the
        # transport writes it in a callback that runs right after; hang up once it has.
        drained.addCallback(lambda _: deferLater(self.reactor, 0, self._hang_up))
        return drained

    def _grace_over(self, failure) -> None:
        failure.trap(TimeoutError)
        self.log.warn("grace period over; closing with replies pending")

    def _hang_up(self) -> Deferred:
        if self.breaker is not None:
            self.breaker.stop()
        for connection in self.registry.connections():
            connection.disconnect()
        # Let the last lines (the shutdown notice, late replies) reach the users: the reactor
        # drops unsent data when it stops. Bounded, for clients that never read.
        closed = self.registry.when_empty()
        closed.addTimeout(2, self.reactor)
        closed.addErrback(lambda failure: failure.trap(TimeoutError))
        if self.pool is not None:
            closed.addCallback(lambda _: self.pool.closeCachedConnections())
        return closed


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
    pool = None
    if http is None and config.api_key:
        http, pool = make_http_client(reactor, config.llm.max_in_flight)
    pacer = None
    if config.llm.pacing:
        pacer = Pacer(clock, config.llm.retry_after_max_seconds, instruments)
    provider = ChatProvider(config.llm, config.api_key, clock, http, instruments, pacer=pacer)
    breaker = CircuitBreaker(provider, clock, config.llm.breaker_failure_threshold,
                             config.llm.breaker_cooldown_seconds,
                             config.llm.breaker_cooldown_max_seconds, instruments)
    provider = breaker
    manager = SessionManager(config, provider, clock, instruments=instruments)
    registry = ConnectionRegistry(
        config.server.max_connections, config.server.max_connections_per_ip, instruments
    )
    service = PsicoiaService(config, reactor, manager, registry, pool)
    service.instruments, service.breaker = instruments, breaker
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
    from .protocols.websocket import OriginPolicy
    from .web import build_site

    allowed = config.server.allowed_origins
    if config.server.websocket:
        origins = OriginPolicy(allowed, lambda: listening_ports(service, "http"))
        Listener("websocket", config.server.websocket, reactor,
                 make_socket_factory(origins)).setServiceParent(service)
    if config.server.http:
        site = build_site(service, make_socket_factory(OriginPolicy(allowed)))
        Listener("http", config.server.http, reactor, site).setServiceParent(service)
