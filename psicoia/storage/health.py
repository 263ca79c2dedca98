"""
Provider health shared by the instances of one service: the in-process implementation.

:class:`LocalHealth` is what one process shares with itself (``memory`` and ``sqlite``
backends, and the cache behind :class:`~psicoia.storage.redis_health.RedisHealth`).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from psicoia.chat.ports import ISharedHealth

KINDS = ("breaker", "pacing")


@implementer(ISharedHealth)
class LocalHealth:
    """The latest ``until`` per kind, in this process. With a ``clock``, a probe claim is
    exclusive until it lapses (tests stand two breakers on one LocalHealth for two instances);
    without one, every claim is granted (one process has one breaker)."""

    def __init__(self, clock: Optional[Any] = None) -> None:
        self.until = {kind: 0.0 for kind in KINDS}
        self._clock = clock
        self._probe_until = 0.0

    def report(self, kind: str, until: float) -> None:
        if kind not in self.until:
            raise ValueError(f"unknown health kind {kind!r}; one of {KINDS}")
        self.until[kind] = max(self.until[kind], float(until))

    def clear(self, kind: str) -> None:
        if kind not in self.until:
            raise ValueError(f"unknown health kind {kind!r}; one of {KINDS}")
        self.until[kind] = 0.0
        self._probe_until = 0.0

    def claim_probe(self, kind: str, seconds: float) -> Deferred:
        if self._clock is None:
            return succeed(True)
        now = self._clock.seconds()
        if self._probe_until > now:
            return succeed(False)
        self._probe_until = now + seconds
        return succeed(True)

    def blocked_until(self, kind: str) -> float:
        return self.until.get(kind, 0.0)
