"""
``Waiters``: Deferreds waiting for one thing to happen ("the port is listening", "every
connection is gone", "every reply is out"), fired together when it does.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred


class Waiters:
    """A list of Deferreds to fire at once. ``wait()`` after ``fire()`` waits for the next."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[Deferred] = []

    def wait(self) -> Deferred:
        waiter: Deferred = Deferred()
        self._waiting.append(waiter)
        return waiter

    def fire(self, result: Any = None) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(result)
