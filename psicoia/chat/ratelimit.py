"""
Per-user sliding-window rate limiting on an injected clock.

``RateLimiter`` is the small interface the session manager depends on, so a shared store
(Redis, say) can replace :class:`SlidingWindowLimiter` without touching the callers.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Protocol

from twisted.internet.interfaces import IReactorTime


class RateLimiter(Protocol):
    def check(self, key: str) -> float:
        """Record one event for ``key``; return 0 if allowed, else seconds until it would be."""

    def forget(self, key: str) -> None:
        """Drop all state for ``key`` (the user left)."""


class SlidingWindowLimiter:
    """At most ``max_events`` per ``window`` seconds per key; refused events are not counted."""

    def __init__(self, clock: IReactorTime, max_events: int, window: float) -> None:
        self._clock = clock
        self._max = max_events
        self._window = window
        # Lists, not deques: an empty deque costs 760 bytes, and there is one per user.
        self._events: dict[str, list[float]] = {}

    def check(self, key: str) -> float:
        now = self._clock.seconds()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = []
        horizon = now - self._window
        expired = bisect_right(events, horizon)  # events are in time order
        if expired:
            del events[:expired]
        if len(events) >= self._max:
            return events[0] + self._window - now
        events.append(now)
        return 0.0

    def forget(self, key: str) -> None:
        self._events.pop(key, None)
