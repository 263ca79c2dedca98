"""
One timer for every paused stream: streamed replies resume reading together.

A stream whose text flows stops reading between batches (psicoia/provider/streaming.py). With a
timer per stream, a hundred streams meant a hundred reactor wake-ups every ``interval``, each
to read one socket. Here a stream that pauses joins the next tick: the first pause schedules
it ``interval`` seconds away, later ones wait for the same tick, and on it every waiting stream
resumes in one reactor turn, so their reads come from one poll (bench/analysis.md, "(t)"). A
stream is paused for at most ``interval`` seconds, less when it joins a tick already due.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger


class ReadTicks:
    """Paused streams of one clock, each resumed by its callable on the next tick."""

    log = Logger()

    def __init__(self, clock: IReactorTime, interval: float) -> None:
        self.clock = clock
        self.interval = interval  # seconds
        self._waiting: dict[Hashable, Callable[[], Any]] = {}
        self._call: Optional[Any] = None

    def pause(self, key: Hashable, resume: Callable[[], Any]) -> None:
        """Call ``resume()`` on the next tick (one due within ``interval`` seconds)."""
        self._waiting[key] = resume
        if self._call is None:
            self._call = self.clock.callLater(self.interval, self._tick)

    def cancel(self, key: Hashable) -> bool:
        """Forget ``key``'s pause; True if it was waiting (its ``resume`` is not called)."""
        found = self._waiting.pop(key, None) is not None
        if not self._waiting and self._call is not None:
            self._call.cancel()
            self._call = None
        return found

    def __len__(self) -> int:
        return len(self._waiting)

    def _tick(self) -> None:
        self._call = None
        waiting, self._waiting = self._waiting, {}
        for resume in waiting.values():  # a stream that pauses again joins the next tick
            try:
                resume()
            except Exception:  # noqa: BLE001 - one stream's error must not stall the others
                self.log.failure("resuming a paused stream failed")
