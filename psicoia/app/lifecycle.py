"""
The life of a PsicoIA process under twistd, shared by the core and the gateway.

Both are a ``MultiService`` of named listeners that twistd starts, logs for and stops. Stopping is
the graceful shutdown of the contract: listeners close, every connected user is told, the replies
already on their way get ``server.shutdown_grace_seconds`` to arrive, then everyone is hung up and
twistd exits 0. What "replies on their way" means is the one thing that differs: the core asks
its session manager, the gateway its upstream bridges (:meth:`ChatService.pending_replies`).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, Logger

from psicoia.app.listeners import Listener
from psicoia.config import Config
from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.instruments import Instruments
from psicoia.ops.internals import forget_exit_signal
from psicoia.ops.logsetup import LevelLogger
from psicoia.transports.status import StatusReport

# After hanging up, how long the last lines may take to leave before the reactor stops (the
# reactor drops unsent data when it stops); bounded for clients that never read.
FLUSH_SECONDS = 2.0


class ChatService(MultiService):
    """Listeners, the twistd log observer, and the graceful stop."""

    log = Logger()
    mode = "core"  # what /healthz says this process is

    def __init__(self, config: Config, reactor: Any, registry: ConnectionRegistry,
                 instruments: Optional[Instruments] = None, grace_clock: Any = None) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.registry = registry
        self.instruments = instruments  # /metrics reads its registry
        self.grace_clock = grace_clock or reactor
        self.log_observer: Optional[ILogObserver] = None
        self.started_at: Optional[float] = None

    def setServiceParent(self, parent) -> None:
        # twistd's Application is componentized: our observer becomes its ILogObserver.
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.log_observer)
            # Events below the configured level are then not even built (docs/benchmarks.md).
            LevelLogger.drop_below(self.config.log.level)
        super().setServiceParent(parent)

    def listener(self, name: str):
        return self.getServiceNamed(name)

    def report(self) -> StatusReport:
        """What /healthz and /readyz show (psicoia.transports.status); subclasses add theirs."""
        listeners = {child.name: child.port is not None and child.running
                     for child in self if isinstance(child, Listener)}
        return StatusReport(
            running=bool(self.running), closing=False, listeners=listeners,
            provider="upstream", breaker="none", connections=len(self.registry),
            uptime_seconds=self.reactor.seconds() - (self.started_at or 0), mode=self.mode)

    def startService(self) -> None:
        self.started_at = self.reactor.seconds()
        super().startService()

    # --- graceful stop ----------------------------------------------------------------------

    def pending_replies(self) -> Deferred:
        """Fires when every reply already asked for has been produced."""
        return succeed(None)

    def release_resources(self) -> Any:
        """After everyone is hung up: close what the service holds (may return a Deferred)."""
        return None

    def stopService(self) -> Deferred:
        """Stop listening, tell everyone, let in-flight replies finish (bounded), hang up."""
        stopped = super().stopService()
        stopped.addCallback(lambda _: self._drain())
        stopped.addCallback(self._exit_cleanly)
        return stopped

    def _exit_cleanly(self, result):
        """twistd re-raises the SIGTERM/SIGINT that stopped the reactor when it exits (status
        143/130). Our stop is graceful, and the contract says exit 0: forget that signal."""
        forget_exit_signal(self.reactor)
        return result

    def _drain(self) -> Deferred:
        connections = self.registry.connections()
        self.log.info("shutting down connections={count}", count=len(connections))
        for connection in connections:
            connection.notify_shutdown()
        # A Deferred of our own for the timeout: cancelling it leaves the waiters alone.
        answered: Deferred = Deferred()
        self.pending_replies().addCallback(
            lambda _: None if answered.called else answered.callback(None))
        answered.addTimeout(self.config.server.shutdown_grace_seconds, self.grace_clock)
        answered.addErrback(self._grace_over)
        # One reactor turn later: the last reply is written by a callback that runs right
        # after it is produced; hang up once it has.
        answered.addCallback(lambda _: deferLater(self.reactor, 0, self._hang_up))
        return answered

    def abandon_pending(self) -> None:
        """The grace is over: give every reply still owed its final notice now."""

    def _grace_over(self, failure) -> None:
        failure.trap(TimeoutError)
        self.log.warn("grace period over; closing with replies pending")
        self.abandon_pending()

    def _hang_up(self) -> Deferred:
        for connection in self.registry.connections():
            connection.disconnect()
        closed = self.registry.when_empty()
        closed.addTimeout(FLUSH_SECONDS, self.reactor)
        closed.addErrback(lambda failure: failure.trap(TimeoutError))
        closed.addCallback(lambda _: self.release_resources())
        return closed
