"""
Backpressure shared by the transports: stop reading from a client that is far ahead of its
replies.

A user's messages are answered one at a time, in order. Without a bound, a client that pastes a
file (or floods frames) while a reply is pending makes the server queue every message. Past
``limit`` unanswered messages the connection stops reading, and TCP flow control holds the client
back; it reads again once half of them are answered.
"""

from __future__ import annotations

from typing import Callable

UNANSWERED_LIMIT = 16


class ReplyBacklog:
    """Counts one connection's unanswered messages and pauses / resumes its reading."""

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
