"""
Pacing from the provider's rate-limit headers: stop sending before the provider says 429.

OpenAI-compatible providers (Groq, OpenAI) report the quota left on every response:
``x-ratelimit-remaining-requests`` / ``-tokens`` and the time until it is refilled,
``x-ratelimit-reset-requests`` / ``-tokens`` (Go-style durations: ``1s``, ``6m0s``, ``250ms``,
``2m59.56s``; other servers send plain seconds, Unix timestamps or HTTP dates, and the LiteLLM
proxy relays them all with an ``llm_provider-`` prefix: psicoia.provider.headers reads every
form). The rule, exactly (also in docs/operations.md):

1. Each response that carries a remaining/reset pair sets that budget (requests or tokens):
   ``remaining`` units until ``now + reset``. The newest response wins. A reset further ahead
   than ``max_reset_seconds`` (``llm.breaker_cooldown_max_seconds``) is read as that: a
   misread or absurd header never holds calls for longer.
2. Every attempt we start (first try or retry) spends one request, and an estimate of tokens:
   request body bytes / 4 + ``llm.max_tokens``, from each known budget.
3. Before an attempt starts, if a budget is spent (``remaining`` would go below zero for this
   attempt) and its reset time is still ahead, the attempt waits until that reset time; then the
   budget is forgotten (unknown means "go", a refill) until the next response reports it again,
   whether or not any response came meanwhile.
4. If that wait would be longer than ``llm.retry_after_max_seconds`` the call fails at once with
   ``ProviderError("paced_too_long")`` (the user gets the fallback; the error's ``retry_after``
   tells the circuit breaker how long the quota is gone), instead of holding a user for minutes.

Waiting happens inside the semaphore slot, so a held provider also slows the queue behind it.

With several instances on Redis, ``shared`` (:class:`~psicoia.chat.ports.ISharedHealth`, kind
``"pacing"``) carries what one instance learnt to the others: a response that says a budget is
spent (``remaining`` below 1) reports its reset time, and a call failed by the provider's
``Retry-After`` reports its end (the circuit breaker does that). Rule 3 then also waits for
the latest such time any instance reported, and rule 4 applies to that wait too. The report is
written once per spent budget (the shared health writes only what moves its time later), and
read as a dictionary lookup before each attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from psicoia.chat.ports import ISharedHealth
from psicoia.ops.instruments import Instruments
from psicoia.provider.headers import parse_duration, ratelimit

__all__ = ["Budget", "KINDS", "Pacer", "PacingTooLong", "parse_duration"]

KINDS = ("requests", "tokens")
DEFAULT_MAX_RESET_SECONDS = 300.0


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
                 instruments: Optional[Instruments] = None,
                 max_reset_seconds: float = DEFAULT_MAX_RESET_SECONDS,
                 shared: Optional[ISharedHealth] = None) -> None:
        self._clock = clock
        self.max_wait_seconds = max_wait_seconds
        self.max_reset_seconds = max_reset_seconds
        self._capped: set[str] = set()
        self._instruments = instruments or Instruments()
        self.budgets: dict[str, Budget] = {}
        self._shared = shared  # the other instances' spent budgets (None: this process alone)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the budgets a response reports (lower-case header names)."""
        now = self._clock.seconds()
        for kind in KINDS:
            remaining, reset = ratelimit(headers, kind, now)
            if remaining is None:
                continue
            self._instruments.provider_quota(kind, remaining)
            if reset is None:
                continue
            if reset > self.max_reset_seconds:
                if kind not in self._capped:  # once: the same header comes on every answer
                    self._capped.add(kind)
                    self.log.warn("rate-limit reset capped kind={kind} wait_ms={wait_ms}",
                                  kind=kind, wait_ms=int(self.max_reset_seconds * 1000))
                reset = self.max_reset_seconds
            self.budgets[kind] = Budget(float(remaining), now + reset)
            if self._shared is not None and remaining < 1 and reset > 0:
                self._shared.report("pacing", now + reset)

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
        if self._shared is not None:
            until = self._shared.blocked_until("pacing")
            if until - now > longest:
                longest, why = until - now, "shared"
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
