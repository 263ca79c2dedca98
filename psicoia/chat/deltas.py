"""
The pieces of one streamed reply on their way to the user, a few at a time.

A provider streams a reply in many small chunks (often one or two words each, tens of them a
second). Writing each one to the user costs a transport write, a system call and, on the
WebSocket, a frame, per chunk: with reading each chunk, most of what a streamed reply costs the
server (bench/analysis.md, "(t)"). :class:`DeltaRelay` shows the first visible text at once,
and any piece that comes after a pause of at least :data:`INTERVAL_SECONDS`; pieces that come
closer together are held and shown together :data:`INTERVAL_SECONDS` after the previous write.
So a fast stream reaches the user in ten writes a second, a slow one (a large model, one token
every so often) piece by piece with no delay, and the first words never wait. The provider
client reads a stream at the same cadence (:mod:`psicoia.provider.streaming`), so the pieces
usually come grouped already and the relay's timer is rarely needed.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IReactorTime

from psicoia.chat.vocabulary import LineFolder

# The longest a piece of a streamed reply is held before it is shown (10 writes a second).
INTERVAL_SECONDS = 0.1


class DeltaRelay:
    """``DeltaRelay(clock, show)``: :meth:`feed` each piece of text as the provider streams it;
    ``show(text)`` is called with what can be shown on the reply's one line (line breaks
    folded, :class:`~psicoia.chat.vocabulary.LineFolder`), pieces joined. :meth:`finish` (once,
    when the reply is settled, whatever its outcome) shows what is held and stops the timer;
    after it nothing more is shown. :meth:`lead` shows a text that must come before the
    model's words (an acute message's emergency line) at once; :attr:`said` is the model's
    text shown so far (without the lead)."""

    __slots__ = ("_clock", "_show", "_folder", "_held", "_timer", "_last", "_done", "said")

    def __init__(self, clock: IReactorTime, show: Callable[[str], Any]) -> None:
        self._clock = clock
        self._show = show
        self._folder = LineFolder()
        self._held: list[str] = []
        self._timer: Any = None
        self._last: Optional[float] = None  # when text was last shown (clock seconds)
        self._done = False
        self.said = ""

    def lead(self, text: Optional[str]) -> None:
        """Show ``text`` and a space now, before anything the model says (None: nothing).
        The crisis layer puts the same text first in the final reply (crisis.py)."""
        if text and not self._done:
            self._show(f"{text} ")

    def feed(self, piece: str) -> None:
        if self._done:
            return
        text = self._folder.feed(piece)
        if not text:
            return
        if self._timer is not None:  # a write is due soon: this piece goes with it
            self._held.append(text)
            return
        now = self._clock.seconds()
        # ``now >= last + interval``, as the clock compares a call's time: a read resumed
        # INTERVAL_SECONDS after the last write is shown at once (streaming.py).
        if self._last is None or now >= self._last + INTERVAL_SECONDS:
            self._last = now
            self.said += text
            self._show(text)
            return
        self._held.append(text)
        self._timer = self._clock.callLater(self._last + INTERVAL_SECONDS - now, self._flush)

    def finish(self) -> None:
        """The reply is settled: show what is held (it belongs before the line's end)."""
        if self._done:
            return
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        self._flush()
        self._done = True

    def _flush(self) -> None:
        self._timer = None
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self._last = self._clock.seconds()
            self.said += text
            self._show(text)
