"""
Purge expired conversations: a conversation is deleted ``retention_hours`` after its last
message (CONTRACT.md, "Conversations that survive").
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from psicoia.chat.ports import IConversationStore, StorageUnavailable


class RetentionService(Service):
    """Calls ``store.purge(now - retention)`` every ``interval_seconds`` (and once at start).

    A purge that fails because the storage is down is skipped (the store already logged the
    fault); the next tick tries again. Logs how many conversations were purged, never which.
    """

    log = Logger()

    def __init__(self, store: IConversationStore, clock: IReactorTime,
                 retention_hours: float, interval_seconds: float = 600.0) -> None:
        self.store = store
        self.clock = clock
        self.retention_seconds = retention_hours * 3600.0
        self.interval_seconds = interval_seconds
        self._loop: Optional[LoopingCall] = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.purge_once)
        self._loop.clock = self.clock
        self._loop.start(self.interval_seconds, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def purge_once(self) -> Deferred:
        """One purge; Deferred[int] (how many were deleted; 0 when the storage is down)."""
        d = self.store.purge(self.clock.seconds() - self.retention_seconds)

        def purged(count: int) -> int:
            if count:
                self.log.info("storage purged {count} expired conversations", count=count)
            return count

        def down(failure: Failure) -> int:
            failure.trap(StorageUnavailable)
            return 0

        return d.addCallbacks(purged, down)
