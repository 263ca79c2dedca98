"""
Idle deadlines of many connections on one timer (limits.idle_timeout_seconds).

``TimeoutMixin`` gives every connection its own ``DelayedCall`` (about 570 bytes with its
arguments and bound method, bench/analysis.md), reset on every line. Every connection of a
listener has the same timeout, so their deadlines fall in the order of their last activity:
one insertion-ordered ``dict`` (connection -> deadline, oldest first) and one ``DelayedCall``
for the oldest deadline serve them all, at the same instants as per-connection timers.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime

# A deadline this close (seconds) to the clock counts as reached: the clock may compute the
# call's time a rounding error short of the deadline it was scheduled for.
SLACK = 0.001


class IdleWatch:
    """Calls ``timeoutConnection()`` on each watched connection ``seconds`` after its last
    :meth:`start` or :meth:`touch`, unless :meth:`forget` came first.

    ``clock`` is the injected reactor (``IReactorTime``); ``seconds`` > 0. At most one
    ``DelayedCall`` is pending, and none while nothing is watched.
    """

    __slots__ = ("_clock", "_seconds", "_deadlines", "_call")

    def __init__(self, clock: IReactorTime, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._deadlines: dict = {}  # connection -> deadline (clock seconds), oldest first
        self._call: Optional[IDelayedCall] = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def start(self, connection) -> None:
        """Watch ``connection`` (again) from now."""
        deadlines = self._deadlines
        deadlines.pop(connection, None)
        deadlines[connection] = self._clock.seconds() + self._seconds
        if self._call is None:
            self._schedule()

    def touch(self, connection) -> None:
        """Activity: restart ``connection``'s deadline if it is watched (else nothing)."""
        deadlines = self._deadlines
        if deadlines.pop(connection, None) is not None:
            deadlines[connection] = self._clock.seconds() + self._seconds

    def forget(self, connection) -> None:
        """Stop watching ``connection`` (idempotent); the timer goes once nothing is left."""
        deadlines = self._deadlines
        if deadlines.pop(connection, None) is not None and not deadlines:
            if self._call is not None:
                self._call.cancel()
                self._call = None

    def _schedule(self) -> None:
        first = next(iter(self._deadlines.values()))
        delay = max(0.0, first - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        """Time out every connection whose deadline is reached, oldest first, then wait for
        the next one (a connection touched since the timer was set just moved back)."""
        self._call = None
        deadlines = self._deadlines
        now = self._clock.seconds() + SLACK
        due = []
        for connection, deadline in deadlines.items():  # one pass: no rescan per deletion
            if deadline > now:
                break
            due.append(connection)
        try:
            for connection in due:
                if deadlines.pop(connection, None) is not None:
                    connection.timeoutConnection()
        finally:
            if deadlines and self._call is None:
                self._schedule()
