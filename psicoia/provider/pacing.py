"""
Pacing from the provider's rate-limit headers: stop sending before the provider says 429.

OpenAI-compatible providers (Groq, OpenAI) report the quota left on every response:
``x-ratelimit-remaining-requests`` / ``-tokens`` and the time until it is refilled,
``x-ratelimit-reset-requests`` / ``-tokens`` (Go-style durations: ``1s``, ``6m0s``, ``250ms``,
``2m59.56s``). The rule, exactly (also in docs/operations.md):

1. Each response that carries a remaining/reset pair sets that budget (requests or tokens):
   ``remaining`` units until ``now + reset``. The newest response wins.
2. Every attempt we start (first try or retry) spends one request, and an estimate of tokens:
   request body bytes / 4 + ``llm.max_tokens``, from each known budget.
3. Before an attempt starts, if a budget is spent (``remaining`` would go below zero for this
   attempt) and its reset time is still ahead, the attempt waits until that reset time; then the
   budget is forgotten (unknown means "go") until the next response reports it again.
4. If that wait would be longer than ``llm.retry_after_max_seconds`` the call fails at once with
   ``ProviderError("paced_too_long")`` (the user gets the fallback; the error's ``retry_after``
   tells the circuit breaker how long the quota is gone), instead of holding a user for minutes.

Waiting happens inside the semaphore slot, so a held provider also slows the queue behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from psicoia.ops.instruments import Instruments

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
KINDS = ("requests", "tokens")


def parse_duration(text: Optional[str]) -> Optional[float]:
    """Seconds in a Go-style duration (``6m0s``, ``250ms``, ``2m59.56s``; a bare number is
    seconds), or None when it cannot be read."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total, position = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def _int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(float(text.strip()))
    except ValueError:
        return None


@dataclass
class Budget:
    remaining: float
    reset_at: float


class PacingTooLong(Exception):
    """The quota comes back later than we are willing to hold a user."""

    def __init__(self, kind: str, seconds: float) -> None:
        super().__init__(kind, seconds)
        self.kind = kind
        self.seconds = seconds


class Pacer:
    """Consulted by the provider client before each attempt; fed every response's headers."""

    log = Logger()

    def __init__(self, clock: IReactorTime, max_wait_seconds: float,
                 instruments: Optional[Instruments] = None) -> None:
        self._clock = clock
        self.max_wait_seconds = max_wait_seconds
        self._instruments = instruments or Instruments()
        self.budgets: dict[str, Budget] = {}

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the budgets a response reports (lower-case header names)."""
        now = self._clock.seconds()
        for kind in KINDS:
            remaining = _int(headers.get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining is None:
                continue
            self._instruments.provider_quota(kind, remaining)
            if reset is None:
                continue
            self.budgets[kind] = Budget(float(remaining), now + reset)

    def delay(self, tokens: float) -> tuple[float, Optional[str]]:
        """Seconds the next attempt (costing one request and ``tokens``) must wait, and why."""
        now = self._clock.seconds()
        longest, why = 0.0, None
        for kind, budget in list(self.budgets.items()):
            if budget.reset_at <= now:
                del self.budgets[kind]
                continue
            cost = 1 if kind == "requests" else tokens
            if budget.remaining - cost < 0 and budget.reset_at - now > longest:
                longest, why = budget.reset_at - now, kind
        return longest, why

    def spend_now(self, tokens: float) -> bool:
        """Spend an attempt's share and say True if it may start at once (the usual case);
        False, spending nothing, if it must wait: then :meth:`ready`. Saves the two coroutines
        of ``ready`` on every attempt that does not wait (docs/benchmarks.md)."""
        if self.delay(tokens)[0] > 0:
            return False
        self._spend(tokens)
        return True

    def _spend(self, tokens: float) -> None:
        for kind, budget in self.budgets.items():
            budget.remaining -= 1 if kind == "requests" else tokens

    async def ready(self, tokens: float, trace_id: str) -> None:
        """Fire when an attempt may start, and spend its share; PacingTooLong if never soon."""
        waited = 0.0
        while True:
            seconds, kind = self.delay(tokens)
            if seconds <= 0:
                break
            if seconds > self.max_wait_seconds:
                self.log.warn("[{trace_id}] paced too long kind={kind} wait_ms={wait_ms}",
                              trace_id=trace_id, kind=kind, wait_ms=int(seconds * 1000))
                raise PacingTooLong(kind, seconds)
            self.log.info("[{trace_id}] paced kind={kind} wait_ms={wait_ms}",
                          trace_id=trace_id, kind=kind, wait_ms=int(seconds * 1000))
            await deferLater(self._clock, seconds, lambda: None)
            waited += seconds
        if waited:
            self._instruments.provider_paced(waited)
        self._spend(tokens)
