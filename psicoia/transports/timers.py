"""
Autobahn's protocol timers on an injected clock (:class:`ClockTimers`, given to a WebSocket
factory with :func:`psicoia.ops.internals.use_timers`).
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class ClockTimers:
    """Autobahn's protocol timers (handshakes, keepalive pings) on a clock we choose.

    Autobahn's default batches them into whole-second buckets on the global reactor, which
    makes sub-second settings meaningless and keepalive untestable with ``task.Clock``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def call_later(self, delay: float, func, *args, **kwargs) -> "TimerCall":
        return TimerCall(self.clock.callLater(delay, func, *args, **kwargs))


class TimerCall:
    """One call of :class:`ClockTimers`: cancelling it twice, or after it ran, is harmless."""

    def __init__(self, call) -> None:
        self._call = call

    def cancel(self) -> None:
        if self._call.active():
            self._call.cancel()
