"""The provider circuit breaker, on task.Clock: opens, fails fast, probes, closes."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from treq.testing import StubTreq

from psicoia.provider.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from psicoia.provider.client import ChatProvider, ProviderError
from psicoia.ops.metrics import Metrics
from psicoia.chat.vocabulary import Kind

from tests.fake_provider import FakeProvider, Scripted, completion
from tests.helpers import fired, make_manager  # noqa: F401
from tests.helpers import make_config

PROMPT = [{"role": "user", "content": "hola"}]


class ScriptedProvider:
    """Stands in for ChatProvider: each call returns the next Deferred a test controls."""

    online = True

    def __init__(self) -> None:
        self.calls: list[Deferred] = []

    def complete(self, messages, trace_id) -> Deferred:
        result: Deferred = Deferred()
        self.calls.append(result)
        return result


def outcome(deferred: Deferred):
    box: list = []
    deferred.addBoth(box.append)
    assert box, "the Deferred has not fired"
    value = box[0]
    if hasattr(value, "trap"):
        value.trap(ProviderError)
        return value.value
    return value


def make_breaker(threshold=3, cooldown=30.0, cooldown_max=300.0, instruments=None):
    clock = Clock()
    provider = ScriptedProvider()
    breaker = CircuitBreaker(provider, clock, threshold, cooldown, cooldown_max, instruments)
    return clock, provider, breaker


def fail_calls(breaker, provider, count, error_factory=lambda: ProviderError("timeout")):
    for _ in range(count):
        result = breaker.complete(PROMPT, "Usuario-1:m1")
        provider.calls[-1].errback(error_factory())
        outcome(result)


def test_opens_after_threshold_consecutive_failures():
    clock, provider, breaker = make_breaker(threshold=3)
    fail_calls(breaker, provider, 2)
    assert breaker.state == CLOSED
    fail_calls(breaker, provider, 1)
    assert breaker.state == OPEN


def test_a_success_resets_the_consecutive_failure_count():
    clock, provider, breaker = make_breaker(threshold=3)
    fail_calls(breaker, provider, 2)
    result = breaker.complete(PROMPT, "Usuario-1:m3")
    provider.calls[-1].callback("bien")
    assert outcome(result) == "bien"
    fail_calls(breaker, provider, 2)
    assert breaker.state == CLOSED


def test_open_breaker_fails_fast_without_calling_the_provider():
    clock, provider, breaker = make_breaker(threshold=1)
    fail_calls(breaker, provider, 1)
    calls_before = len(provider.calls)
    error = outcome(breaker.complete(PROMPT, "Usuario-2:m1"))
    assert error.reason == "breaker_open"
    assert len(provider.calls) == calls_before


def test_half_open_after_cooldown_allows_exactly_one_probe():
    clock, provider, breaker = make_breaker(threshold=1, cooldown=30)
    fail_calls(breaker, provider, 1)
    clock.advance(29.9)
    assert breaker.state == OPEN
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN
    probe = breaker.complete(PROMPT, "Usuario-1:m2")
    assert len(provider.calls) == 2
    second = breaker.complete(PROMPT, "Usuario-2:m1")
    assert outcome(second).reason == "breaker_open"
    assert len(provider.calls) == 2
    provider.calls[-1].callback("ok")
    assert outcome(probe) == "ok"


def test_probe_success_closes_the_breaker():
    clock, provider, breaker = make_breaker(threshold=1, cooldown=5)
    fail_calls(breaker, provider, 1)
    clock.advance(5)
    result = breaker.complete(PROMPT, "Usuario-1:m2")
    provider.calls[-1].callback("ok")
    outcome(result)
    assert breaker.state == CLOSED
    again = breaker.complete(PROMPT, "Usuario-1:m3")
    provider.calls[-1].callback("ok")
    assert outcome(again) == "ok"


def test_probe_failure_opens_again_for_another_cooldown():
    clock, provider, breaker = make_breaker(threshold=2, cooldown=5)
    fail_calls(breaker, provider, 2)
    clock.advance(5)
    fail_calls(breaker, provider, 1)
    assert breaker.state == OPEN
    clock.advance(4.9)
    assert breaker.state == OPEN
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN


def test_provider_retry_after_longer_than_cooldown_extends_it_up_to_the_cap():
    def rate_limited(seconds):
        def make():
            error = ProviderError("retry_after_too_long", 429)
            error.retry_after = seconds
            return error
        return make

    clock, provider, breaker = make_breaker(threshold=1, cooldown=30, cooldown_max=300)
    fail_calls(breaker, provider, 1, rate_limited(120))
    clock.advance(119)
    assert breaker.state == OPEN
    clock.advance(1)
    assert breaker.state == HALF_OPEN

    fail_calls(breaker, provider, 1, rate_limited(3600))
    clock.advance(300)
    assert breaker.state == HALF_OPEN


def test_request_specific_client_errors_do_not_open_the_breaker():
    clock, provider, breaker = make_breaker(threshold=1)
    fail_calls(breaker, provider, 3, lambda: ProviderError("status", 400))
    assert breaker.state == CLOSED


def test_cancelled_probe_lets_the_next_call_probe():
    clock, provider, breaker = make_breaker(threshold=1, cooldown=1)
    fail_calls(breaker, provider, 1)
    clock.advance(1)
    probe = breaker.complete(PROMPT, "Usuario-1:m2")
    probe.addErrback(lambda f: None)
    probe.cancel()
    assert breaker.state == HALF_OPEN
    breaker.complete(PROMPT, "Usuario-3:m1")
    assert len(provider.calls) == 3


def test_breaker_state_changes_reach_the_metrics():
    metrics = Metrics()
    clock, provider, breaker = make_breaker(threshold=1, cooldown=1, instruments=metrics)

    def state_values():
        return {s: metrics.registry.get_sample_value("psicoia_breaker_state", {"state": s})
                for s in ("closed", "open", "half_open")}

    assert state_values() == {"closed": 1, "open": 0, "half_open": 0}
    fail_calls(breaker, provider, 1)
    assert state_values() == {"closed": 0, "open": 1, "half_open": 0}
    clock.advance(1)
    assert state_values() == {"closed": 0, "open": 0, "half_open": 1}
    assert metrics.registry.get_sample_value(
        "psicoia_breaker_transitions_total", {"state": "open"}) == 1


def test_users_get_the_fallback_at_once_while_the_breaker_is_open():
    """Real provider client on a fake provider that answers 500: after the breaker opens, the
    next message is answered with the fallback with no provider request and no clock advance."""
    clock = Clock()
    fake = FakeProvider(clock=clock)
    stub = StubTreq(fake)
    config = make_config(llm={"max_retries": 1, "backoff_initial_seconds": 0.5,
                              "backoff_max_seconds": 0.5, "breaker_failure_threshold": 2,
                              "pacing": False})
    provider = ChatProvider(config.llm, "test-key", clock, stub, random=lambda: 0.0)
    breaker = CircuitBreaker(provider, clock, 2, 30, 300)
    manager = make_manager(config, breaker, clock, system_prompt="sistema")
    session = fired(manager.open("tcp", "127.0.0.1"))
    for _ in range(4):
        fake.push(Scripted(status=500, body=b"{}"))
    for number in range(2):
        reply = session.submit(f"mensaje {number}").reply
        stub.flush()
        clock.advance(0.5)
        stub.flush()
        assert outcome(reply).outcome == Kind.FALLBACK
    assert breaker.state == OPEN
    requests_so_far = len(fake.requests)
    reply = outcome(session.submit("otro").reply)
    # The offline companion answers (issue 5); it said its limited-mode notice already.
    assert reply.outcome == Kind.FALLBACK and reply.text.endswith("?")
    assert len(fake.requests) == requests_so_far

    clock.advance(30)
    fake.push(Scripted(body=completion("volví")))
    reply = session.submit("¿estás?").reply
    stub.flush()
    assert outcome(reply).text == "volví"
    assert breaker.state == CLOSED


def test_breaker_is_online_exactly_when_the_wrapped_provider_is():
    clock, provider, breaker = make_breaker()
    provider.online = False
    assert breaker.online is False
    provider.online = True
    assert breaker.online is True


# --- slow calls (a hanging provider is noticed in seconds) -----------------------------------

def test_calls_still_running_past_the_slow_threshold_open_the_breaker():
    clock = Clock()
    provider = ScriptedProvider()
    breaker = CircuitBreaker(provider, clock, 3, 30.0, 300.0, slow_call_seconds=5.0)
    hanging = [breaker.complete(PROMPT, f"Usuario-{n}:m1") for n in range(3)]
    clock.advance(4.9)
    assert breaker.state == CLOSED
    clock.advance(0.2)
    assert breaker.state == OPEN, "three calls hanging past 5 s count as three failures"
    assert outcome(breaker.complete(PROMPT, "Usuario-9:m1")).reason == "breaker_open"
    assert len(provider.calls) == 3
    # When the hung calls finally fail they are not counted a second time.
    for call in provider.calls:
        call.errback(ProviderError("timeout"))
    for result in hanging:
        outcome(result)
    assert breaker.failures == 3


def test_a_slow_call_that_then_succeeds_resets_the_count():
    clock = Clock()
    provider = ScriptedProvider()
    breaker = CircuitBreaker(provider, clock, 3, 30.0, 300.0, slow_call_seconds=5.0)
    result = breaker.complete(PROMPT, "Usuario-1:m1")
    clock.advance(6)
    assert breaker.failures == 1
    provider.calls[0].callback("al fin")
    assert outcome(result) == "al fin" and breaker.failures == 0


def test_fast_calls_leave_no_timer_behind():
    clock = Clock()
    provider = ScriptedProvider()
    breaker = CircuitBreaker(provider, clock, 3, 30.0, 300.0, slow_call_seconds=5.0)
    result = breaker.complete(PROMPT, "Usuario-1:m1")
    provider.calls[0].callback("rápido")
    outcome(result)
    assert clock.getDelayedCalls() == []
