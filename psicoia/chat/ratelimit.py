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
    """At most ``max_events`` per ``window`` seconds per key; refused events are not counted.

    A key whose events have all left the window is dropped by a sweep that runs at most once
    per window, from :meth:`check` (no timer): idle users keep no window of their own, and
    the table is rebuilt at its live size (a dict keeps its table when keys are deleted).
    """

    def __init__(self, clock: IReactorTime, max_events: int, window: float) -> None:
        self._clock = clock
        self._max = max_events
        self._window = window
        # Lists, not deques: an empty deque costs 760 bytes, and there is one per user.
        self._events: dict[str, list[float]] = {}
        self._next_sweep = clock.seconds() + window

    def check(self, key: str) -> float:
        now = self._clock.seconds()
        horizon = now - self._window
        if now >= self._next_sweep:
            self._sweep(now, horizon)
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = []
        expired = bisect_right(events, horizon)  # events are in time order
        if expired:
            del events[:expired]
        if len(events) >= self._max:
            return events[0] + self._window - now
        events.append(now)
        return 0.0

    def _sweep(self, now: float, horizon: float) -> None:
        """Drop every key whose newest event has left the window (O(keys), once a window)."""
        self._next_sweep = now + self._window
        self._events = {key: events for key, events in self._events.items()
                        if events and events[-1] > horizon}

    def forget(self, key: str) -> None:
        self._events.pop(key, None)

    def __len__(self) -> int:
        """Keys with a window kept (some may have expired since the last sweep)."""
        return len(self._events)
