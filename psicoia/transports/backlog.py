"""
Backpressure shared by the transports: stop reading from a client that is far ahead of its
replies.

A user's messages are answered one at a time, in order. Without a bound, a client that pastes a
file (or floods frames) while a reply is pending makes the server queue every message. Past
``limit`` unanswered messages the connection stops reading, and TCP flow control holds the client
back; it reads again once half of them are answered.

The other bounds of a transport live here too (used by :mod:`psicoia.transports.tcp` and, for
the WebSocket, :mod:`psicoia.transports.inflow`): lines (messages) handled per reactor turn,
lines held before reading stops, bytes split or parsed at a time, and how long a closed TCP
connection may take to drain. The output side is bounded by Twisted itself: the protocol is
its transport's streaming producer (``registerProducer``) and stops answering while the
transport's write buffer is over its high-water mark.
"""

from __future__ import annotations

from typing import Callable

UNANSWERED_LIMIT = 16
# A connection hands at most this many lines to the session per reactor turn, the rest on the
# next turn: a flood of lines answered at once (rate-limit notices, the offline companion)
# cannot hold the reactor while other users wait (issue 16; bench scenario (h)).
LINES_PER_TURN = 32
# A read bigger than this reaches the line editor this many bytes at a time, as the lines
# before it are handed on (the editor splits 64 KiB of ``a\n`` in ~200 ms, one whole turn).
FEED_BYTES = 1024
# Finished lines a connection holds before it stops reading its socket (one 64 KiB read of a
# flood is 32,768 lines: it reads again once they are handed on).
LINES_HELD = 64
# A connection we closed whose client does not take its last lines (a flooder that never
# reads) is cut off after this long, instead of holding its buffer until the idle timeout.
CLOSE_GRACE_SECONDS = 10.0


class ReplyBacklog:
    """Counts one connection's unanswered messages and pauses / resumes its reading."""

    __slots__ = ("_pause", "_resume", "limit", "count", "paused")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None],
                 limit: int = UNANSWERED_LIMIT) -> None:
        self._pause = pause
        self._resume = resume
        self.limit = limit
        self.count = 0
        self.paused = False

    def added(self) -> None:
        self.count += 1
        if self.count >= self.limit and not self.paused:
            self.paused = True
            self._pause()

    def answered(self, closing: bool = False) -> None:
        self.count -= 1
        if self.paused and self.count <= self.limit // 2 and not closing:
            self.paused = False
            self._resume()
