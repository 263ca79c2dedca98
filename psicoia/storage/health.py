"""
Provider health shared by the instances of one service: the in-process implementation.

:class:`LocalHealth` is what one process shares with itself (``memory`` and ``sqlite``
backends, and the cache behind :class:`~psicoia.storage.redis_health.RedisHealth`).
"""

from __future__ import annotations

from zope.interface import implementer

from psicoia.chat.ports import ISharedHealth

KINDS = ("breaker", "pacing")


@implementer(ISharedHealth)
class LocalHealth:
    """The latest ``until`` per kind, in this process."""

    def __init__(self) -> None:
        self.until = {kind: 0.0 for kind in KINDS}

    def report(self, kind: str, until: float) -> None:
        if kind not in self.until:
            raise ValueError(f"unknown health kind {kind!r}; one of {KINDS}")
        self.until[kind] = max(self.until[kind], float(until))

    def clear(self, kind: str) -> None:
        if kind not in self.until:
            raise ValueError(f"unknown health kind {kind!r}; one of {KINDS}")
        self.until[kind] = 0.0

    def blocked_until(self, kind: str) -> float:
        return self.until.get(kind, 0.0)
