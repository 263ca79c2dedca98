"""
Assemble the running service: listeners, the session manager, the provider client.

``build_service`` is what ``twistd`` and the end-to-end tests both use; the reactor is a
parameter so tests can bind to ``tcp:0:interface=127.0.0.1`` and read the ports back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from twisted.internet.defer import Deferred, DeferredList

from psicoia.config import Config
from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.instruments import Instruments
from psicoia.app.core import build_core
from psicoia.app.lifecycle import ChatService
from psicoia.app.listeners import Listener, add_browser_listeners
from psicoia.ops.metrics import Metrics
from psicoia.transports.status import StatusReport
from psicoia.transports.tcp import ChatLineFactory
from psicoia.transports.chat_socket import chat_socket_factory
from psicoia.chat.manager import SessionManager
from psicoia.storage import open_store
from psicoia.storage.retention import RetentionService


class PsicoiaService(ChatService):
    """The whole server. Stopping it is the graceful shutdown of the contract."""

    def __init__(self, config: Config, reactor: Any, manager: SessionManager,
                 registry: ConnectionRegistry, pool: Any = None) -> None:
        super().__init__(config, reactor, registry)
        self.manager = manager
        self.pool = pool
        self.breaker: Any = None  # /readyz reads its state
        self.redis: Any = None  # storage.backend: redis (its slots and bus), closed at the end

    def startService(self) -> None:
        super().startService()
        if self.instruments is not None:
            self.instruments.provider_configured(self.manager.provider.online)
        if not self.manager.provider.online:
            self.log.warn(
                "no API key in {env}: running in offline mode (fallback replies only)",
                env=self.config.llm.api_key_env,
            )
        elif self.breaker is not None and self.config.llm.check_model:
            self.breaker.check_model()  # in the background; it logs what it finds

    def pending_replies(self) -> Deferred:
        return self.manager.drain()

    def abandon_pending(self) -> None:
        self.manager.abandon()

    def report(self) -> StatusReport:
        base = super().report()
        breaker = self.breaker.state if self.breaker is not None else "none"
        problems = list(base.problems)
        if self.breaker is not None and self.breaker.problem:
            problems.append(self.breaker.problem)
        store = self.manager.store
        if store.health != "ok":
            reason = getattr(store, "reason", None)
            problems.append(f"storage {store.health}" + (f" ({reason})" if reason else ""))
        return replace(base, closing=self.manager.closing, breaker=breaker,
                       provider="online" if self.manager.provider.online else "offline",
                       problems=tuple(problems))

    def release_resources(self) -> Any:
        """After the drain: stop the breaker, close the provider pool and the store."""
        if self.breaker is not None:
            self.breaker.stop()
        closing = [self.manager.store.close()]
        if self.redis is not None:
            closing.append(self.redis.close())
        if self.pool is not None:
            closing.append(self.pool.closeCachedConnections())
        return DeferredList(closing, consumeErrors=True)


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
    store = None  # redis: build_core makes the store with its shared slots
    if config.storage.backend != "redis":
        store = open_store(config, clock, reactor, instruments)  # ConfigError: exit 2 (tap.py)
    core = build_core(config, reactor, clock, instruments, http=http, store=store)
    manager = core.manager
    registry = ConnectionRegistry(
        config.server.max_connections, config.server.max_connections_per_ip, instruments
    )
    service = PsicoiaService(config, reactor, manager, registry, core.pool)
    service.instruments, service.breaker, service.redis = instruments, core.breaker, core.redis
    RetentionService(manager.store, clock, config.storage.retention_hours,
                     config.storage.purge_interval_seconds).setServiceParent(service)
    lines = ChatLineFactory(manager, registry, clock)
    if config.server.tcp:
        Listener("tcp", config.server.tcp, reactor, lines).setServiceParent(service)
    if config.server.tcp_proxied:
        Listener("tcp_proxied", config.server.tcp_proxied, reactor,
                 lines).setServiceParent(service)
    add_browser_listeners(service, config, reactor, lambda origins: chat_socket_factory(
        manager, registry, clock, origins, reactor=reactor), service.report,
        getattr(instruments, "registry", None))
    return service
