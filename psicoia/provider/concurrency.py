"""
How many requests go to the provider at once, adapted to what it accepts (AIMD).

The session manager's semaphore (``llm.max_in_flight``) caps the calls we *want* to make at once.
A gateway in front of the provider may accept fewer: the LiteLLM proxy's per-key
``max_parallel_requests`` answers the excess with 429 and a ``Retry-After`` that is its window
(60 s), not the time until a slot frees. Obeying it, or counting it as an outage, turns a
one-second queue into a minute of fallbacks.

:class:`AdaptiveLimit` sits inside the provider client, below that semaphore: each attempt
takes one of its slots. Its limit starts at ``maximum`` (``llm.max_in_flight``) and moves:

- **multiplicative decrease**: a refusal halves it (never below 1). Only a refusal of a
  request sent under the current limit counts; the rest of a burst sent under the old, higher
  limit says nothing new, so one burst halves it once.
- **additive increase**: after ``increase_after_seconds`` (10 s) with no refusal, and at least
  ``limit`` successes since the last change, it grows by one, up to ``maximum``; so it probes
  back up slowly and a lasting gateway limit costs one refused request every ~10 s.

A refused attempt gives its slot back and queues again for one (a short wait, in order), instead
of waiting for the gateway's window. Callers waiting for a slot are served first come, first
served; cancelling a waiting Deferred leaves the queue.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from psicoia.ops.instruments import Instruments

INCREASE_AFTER_SECONDS = 10.0
DECREASE_FACTOR = 0.5


class AdaptiveLimit:
    """A semaphore whose limit moves between 1 and ``maximum`` (see the module docstring).

    ``acquire()`` -> Deferred firing with a *ticket* (an int: the limit's generation when the
    slot was taken; hand it back to :meth:`refused`) once a slot is free. ``release()`` gives a
    slot back, exactly once per fired acquire. Times are from ``clock`` (seconds).
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, maximum: int,
                 increase_after_seconds: float = INCREASE_AFTER_SECONDS,
                 instruments: Optional[Instruments] = None) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, got {maximum}")
        self._clock = clock
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.increase_after_seconds = increase_after_seconds
        self._instruments = instruments or Instruments()
        self._waiting: deque[Deferred] = deque()
        self._generation = 0
        self._changed_at = clock.seconds()
        self._successes = 0
        self._instruments.provider_concurrency(maximum)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def acquire(self) -> Deferred:
        if self.in_flight < self.limit and not self._waiting:
            self.in_flight += 1
            return succeed(self._generation)

        def leave(waiter: Deferred) -> None:
            try:
                self._waiting.remove(waiter)
            except ValueError:
                pass

        waiter: Deferred = Deferred(leave)
        self._waiting.append(waiter)
        return waiter

    def release(self) -> None:
        if self.in_flight <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self.in_flight -= 1
        self._wake()

    def succeeded(self) -> None:
        """An attempt got an answer that was not a refusal: maybe grow by one."""
        self._successes += 1
        if (self.limit < self.maximum and self._successes >= self.limit
                and self._clock.seconds() - self._changed_at >= self.increase_after_seconds):
            self._set(self.limit + 1, "increase")

    def refused(self, ticket: int) -> bool:
        """The attempt that took ``ticket`` was refused for concurrency: halve the limit unless
        a refusal already did since that attempt started. True when the limit went down."""
        if ticket != self._generation or self.limit == 1:
            self._successes = 0
            self._changed_at = self._clock.seconds()
            return False
        self._set(max(1, int(self.limit * DECREASE_FACTOR)), "decrease")
        return True

    def _set(self, limit: int, why: str) -> None:
        old, self.limit = self.limit, limit
        self._generation += 1
        self._successes = 0
        self._changed_at = self._clock.seconds()
        level = self.log.warn if why == "decrease" else self.log.info
        level("provider concurrency {reason} limit={limit} (was {count})",
              reason=why, limit=limit, count=old)
        self._instruments.provider_concurrency(limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.in_flight < self.limit:
            self.in_flight += 1
            self._waiting.popleft().callback(self._generation)
