"""
A circuit breaker in front of the provider client, so an outage costs users nothing but a
fallback reply.

Without it, every message during an outage holds a semaphore slot through all its retries
(seconds each), the queue fills, and users wait only to get the fallback anyway. The breaker
counts consecutive failed *calls* (one call = one ``complete`` or ``stream``, retries
included; a stream cut after some text was shown is a failed call). After
``breaker_failure_threshold`` of them it opens: calls fail at once with
``ProviderError("breaker_open")`` and the provider is not contacted. After the cooldown
(``breaker_cooldown_seconds``, or longer when the provider's ``Retry-After`` asked for more,
capped at ``breaker_cooldown_max_seconds``) it is half open: exactly one probe call goes through;
its success closes the breaker, its failure opens it again for another cooldown.

Failures that say nothing about the provider's health (a 4xx caused by this one request, like
400 or 413) count as "the provider answered", as do successes, and so does a concurrency refusal
that outlasted its short queue (psicoia.provider.concurrency: the gateway is up, only busy). A
cancelled call (the user left) counts as nothing.

Mistakes only the operator can fix (psicoia.provider.diagnosis: a rejected key, a model not
served, no chat API at ``llm.base_url``) count as failures whatever their status (LiteLLM says
400 for both a wrong key and an unknown model). An ``auth`` rejection opens the breaker at once:
every call would fail the same way, and sets :attr:`problem` (a short reason that ``/readyz``
shows and a metric counts) at once; a model or endpoint mistake sets it the second time in a
row. It stays until a call succeeds again.

Several instances (``storage.backend: redis``) share what their breakers find through
``shared`` (:class:`~psicoia.chat.ports.ISharedHealth`, kind ``"breaker"``): an instance whose
breaker opens reports until when; the others read that (a dictionary lookup, before each call)
and open too, until the same moment, without having to fail their own calls first. After it,
the first instance to get a call claims the one probe of the service (a short claim in Redis,
taken only while half open; an instance that lost it asks again after :data:`RECLAIM_SECONDS`);
the others answer with the fallback meanwhile. The probe's success clears the report and closes
every breaker that was open or half open because of it; its failure reports a new cooldown. A
failed call whose provider asked for a ``Retry-After`` reports it as kind ``"pacing"``: the
pacers of every instance hold their calls until then. Without ``shared`` (memory and sqlite
storage) nothing of this happens.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from psicoia.ops.instruments import Instruments
from psicoia.chat.ports import IProvider, ISharedHealth, ProviderError
from psicoia.provider.diagnosis import (
    AUTH, CONCURRENCY, ENDPOINT, HINTS, MODEL, PERSISTENT, ProviderRejected,
)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# HTTP statuses that mean the provider (or our account with it) is unwell, not this request.
UNHEALTHY_4XX = frozenset({401, 403, 408, 409, 429})

# Half open, an instance that lost the service's probe to another asks again after this long
# (seconds): meanwhile its calls get the fallback without a round trip to Redis.
RECLAIM_SECONDS = 1.0

# The same operator mistake this many calls in a row is a readiness problem. A rejected key
# opens the breaker at the first call, so it is one at once too.
PROBLEM_AFTER = {AUTH: 1, MODEL: 2, ENDPOINT: 2}


def _kind(error: ProviderError) -> str | None:
    return error.diagnosis.kind if isinstance(error, ProviderRejected) else None


def counts_as_failure(error: ProviderError) -> bool:
    kind = _kind(error)
    if kind == CONCURRENCY:
        return False
    if kind in PERSISTENT:
        return True
    if error.status is None:
        return error.reason != "offline"
    return error.status >= 500 or error.status in UNHEALTHY_4XX


class _SlowWatch:
    """The slow-call timer of one call: ``fired`` once it counted the call as a failure."""

    __slots__ = ("call", "fired", "disarmed")

    def __init__(self) -> None:
        self.call: Any = None
        self.fired = False
        self.disarmed = False  # the call ended, or its first text came: it is not slow

    def disarm(self) -> None:
        self.disarmed = True
        if self.call is not None and self.call.active():
            self.call.cancel()


@implementer(IProvider)
class CircuitBreaker:
    """Same interface as :class:`psicoia.provider.client.ChatProvider` (``online``,
    ``complete``, ``stream``)."""

    log = Logger()

    def __init__(
        self,
        provider: Any,
        clock: IReactorTime,
        failure_threshold: int,
        cooldown_seconds: float,
        cooldown_max_seconds: Optional[float] = None,
        instruments: Optional[Instruments] = None,
        slow_call_seconds: float = 0.0,
        shared: Optional[ISharedHealth] = None,
    ) -> None:
        self.provider = provider
        self._clock = clock
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self.cooldown_max_seconds = max(cooldown_max_seconds or cooldown_seconds,
                                        cooldown_seconds)
        self._instruments = instruments or Instruments()
        self.slow_call_seconds = slow_call_seconds  # 0: slowness alone never counts
        self.state = CLOSED
        self.failures = 0
        self._probing = False
        self._timer: Any = None
        self.problem: Optional[str] = None  # e.g. "provider rejects the API key (...)"
        self._streak: tuple[Optional[str], int] = (None, 0)  # (persistent kind, calls in a row)
        self._shared = shared  # what the other instances found (None: this process alone)
        self._shared_open = False  # open because another instance's breaker opened
        self._reclaim_at = 0.0  # half open: when to ask for the probe again after losing it

    @property
    def online(self) -> bool:
        return self.provider.online

    def check_model(self) -> Deferred:
        """The provider's start-up model check (ChatProvider.check_model), passed through."""
        return self.provider.check_model()

    def complete(self, messages: Sequence[dict], trace_id: str, model: Optional[str] = None,
                 max_tokens: Optional[int] = None) -> Deferred:
        """The provider's ``complete``, or ``ProviderError("breaker_open")`` at once."""
        def whole(watch: "_SlowWatch") -> Deferred:
            if model is None and max_tokens is None:
                return self.provider.complete(messages, trace_id)
            return self.provider.complete(messages, trace_id, model=model,
                                          max_tokens=max_tokens)
        return self._call(trace_id, whole)

    def stream(self, messages: Sequence[dict], trace_id: str,
               on_delta: Callable[[str], Any]) -> Deferred:
        """The provider's ``stream``, counted like :meth:`complete`; it is slow only if its
        first text comes after ``slow_call_seconds`` (a long reply being shown is not)."""
        def first_text(watch: _SlowWatch) -> Deferred:
            def delta(text: str) -> Any:
                if not watch.disarmed:  # the first piece only: the rest come by the dozen
                    watch.disarm()
                return on_delta(text)
            return self.provider.stream(messages, trace_id, delta)
        return self._call(trace_id, first_text)

    def _call(self, trace_id: str, call: Callable[["_SlowWatch"], Deferred]) -> Deferred:
        if self._shared is not None:
            self._follow(self._shared.blocked_until("breaker"))
        if self.state == OPEN or (self.state == HALF_OPEN and (
                self._probing or self._reclaim_at > self._clock.seconds())):
            self.log.info("[{trace_id}] breaker {state}: fallback without calling the provider",
                          trace_id=trace_id, state=self.state)
            return fail(ProviderError("breaker_open"))
        probe = self.state == HALF_OPEN
        if probe:
            self._probing = True
            if self._shared is not None:
                claimed = self._shared.claim_probe("breaker", self.cooldown_seconds)
                return claimed.addCallbacks(self._claimed, self._claim_lost,
                                            callbackArgs=(trace_id, call))
            self.log.info("[{trace_id}] breaker half_open: probe call", trace_id=trace_id)
        return self._start(trace_id, call, probe)

    def _claimed(self, won: bool, trace_id: str,
                 call: Callable[["_SlowWatch"], Deferred]) -> Deferred:
        """The answer to our claim of the service's one probe call."""
        if self.state == CLOSED:  # another instance's probe succeeded meanwhile
            self._probing = False
            return self._start(trace_id, call, False)
        if not won or self.state != HALF_OPEN:
            self._probing = False
            self._reclaim_at = self._clock.seconds() + RECLAIM_SECONDS
            self.log.info("[{trace_id}] breaker {state}: another instance probes; fallback",
                          trace_id=trace_id, state=self.state)
            return fail(ProviderError("breaker_open"))
        self.log.info("[{trace_id}] breaker half_open: probe call", trace_id=trace_id)
        return self._start(trace_id, call, True)

    def _claim_lost(self, failure):
        """The caller left while we claimed the probe: no probe from us this time."""
        self._probing = False
        return failure

    def _start(self, trace_id: str, call: Callable[["_SlowWatch"], Deferred],
               probe: bool) -> Deferred:
        slow = _SlowWatch()
        result = call(slow)
        self._watch(slow, result, trace_id)
        result.addCallbacks(self._succeeded, self._failed, callbackArgs=(probe, slow),
                            errbackArgs=(probe, slow))
        return result

    def _follow(self, until: float) -> None:
        """Take in what the other instances found: open until ``until`` if it is ahead (not
        while our own probe is out); close if the report we followed was cleared (another
        instance's probe succeeded)."""
        if self.state != CLOSED and until == 0.0 and (self._shared_open or
                                                      self.state == HALF_OPEN):
            if not self._probing:
                self._stop_timer()
                self.log.info("breaker closed: another instance's probe call succeeded")
                self._move(CLOSED)
            return
        if self.state == OPEN:
            return
        if not until:
            return  # the usual case: nothing reported
        now = self._clock.seconds()
        if until > now and not self._probing:
            self._stop_timer()
            self._timer = self._clock.callLater(until - now, self._half_open)
            self._shared_open = True
            self.log.warn("breaker open: another instance found the provider failing "
                          "cooldown_s={cooldown}", cooldown=round(until - now, 3))
            self._move(OPEN)

    def _watch(self, slow: _SlowWatch, result: Deferred, trace_id: str) -> None:
        """A call still running after ``slow_call_seconds`` counts as a failure now, so a
        provider that hangs opens the breaker in seconds, not after every slot has timed out
        (the call itself goes on; its outcome is not counted again)."""
        if self.slow_call_seconds and not result.called and not slow.disarmed:
            slow.call = self._clock.callLater(self.slow_call_seconds, self._slow, slow, trace_id)

    def _slow(self, slow: _SlowWatch, trace_id: str) -> None:
        slow.fired = True
        self.log.info("[{trace_id}] provider call slower than {seconds}s: counted as a failure",
                      trace_id=trace_id, seconds=self.slow_call_seconds)
        if self.state == CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._open(None)

    def stop(self) -> None:
        """Cancel the pending half-open timer and the provider's own pending work (service
        shutdown, tests on a real reactor)."""
        self._stop_timer()
        stop_provider = getattr(self.provider, "stop", None)  # stand-ins in tests have none
        if stop_provider is not None:
            stop_provider()

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # --- outcomes -------------------------------------------------------------------------

    @staticmethod
    def _settled(slow: _SlowWatch) -> bool:
        """Stop the slow-call timer; True when it had already counted this call."""
        slow.disarm()
        return slow.fired

    def _succeeded(self, reply: str, probe: bool, slow: Any) -> str:
        self._settled(slow)
        self._healthy(probe)
        self._note(None)
        return reply

    def _failed(self, failure, probe: bool, slow: Any):
        if self._settled(slow) and not probe:
            return failure  # counted already, when it became slow
        if failure.check(CancelledError):
            if probe:
                self._probing = False
            return failure
        error = failure.check(ProviderError) and failure.value
        if error and not counts_as_failure(error):
            self._healthy(probe)
            return failure
        kind = _kind(error) if error else None
        if self._shared is not None and error and error.retry_after and kind != CONCURRENCY:
            # The provider said when to come back: every instance's pacer waits until then.
            wait = min(error.retry_after, self.cooldown_max_seconds)
            self._shared.report("pacing", self._clock.seconds() + wait)
        if kind in PERSISTENT:
            self._note(kind)
        if kind == AUTH and self.state == CLOSED:
            self.failures += 1
            self._open(None)
            return failure
        if probe:
            self._probing = False
            if self.state == HALF_OPEN:
                self._open(error.retry_after if error else None)
            return failure
        if self.state == CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._open(error.retry_after if error else None)
        return failure

    def _healthy(self, probe: bool) -> None:
        if probe:
            self._probing = False
        if self.state == HALF_OPEN and probe:
            self._move(CLOSED)
            if self._shared is not None and self._shared.blocked_until("breaker"):
                self._shared.clear("breaker")  # the other instances close too
        if self.state == CLOSED:
            self.failures = 0

    def _note(self, kind: Optional[str]) -> None:
        """Count persistent rejections in a row; set or clear :attr:`problem`."""
        last, count = self._streak
        count = count + 1 if kind is not None and kind == last else (1 if kind else 0)
        self._streak = (kind, count)
        problem = HINTS[kind] if kind is not None and count >= PROBLEM_AFTER[kind] else None
        if kind is not None and problem is None and self.problem is not None:
            return  # a different mistake once: keep the known one until it is confirmed
        if problem == self.problem:
            return
        self.problem = problem
        if problem is None:
            self.log.info("provider problem cleared")
        else:
            self.log.error("provider problem kind={kind}: {reason}", kind=kind, reason=problem)
        self._instruments.provider_problem(kind if problem else None)

    # --- states ---------------------------------------------------------------------------

    def _open(self, retry_after: Optional[float]) -> None:
        cooldown = self.cooldown_seconds
        if retry_after is not None and retry_after > cooldown:
            cooldown = min(retry_after, self.cooldown_max_seconds)
        self._stop_timer()
        self._timer = self._clock.callLater(cooldown, self._half_open)
        self._shared_open = False
        if self._shared is not None:
            self._shared.report("breaker", self._clock.seconds() + cooldown)
        self.log.warn("breaker open failures={failures} cooldown_s={cooldown}",
                      failures=self.failures, cooldown=round(cooldown, 3))
        self._move(OPEN)

    def _half_open(self) -> None:
        self._timer = None
        self._probing = False
        self._reclaim_at = 0.0
        self._shared_open = False
        self._move(HALF_OPEN)

    def _move(self, state: str) -> None:
        if state == CLOSED:
            self.failures = 0
        if state == self.state:
            return
        self.state = state
        if state != OPEN:  # _open logged it already, with the failures and the cooldown
            self.log.info("breaker {state}", state=state)
        self._instruments.breaker_changed(state)
