"""Pacing from x-ratelimit-* headers, on task.Clock."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from treq.testing import StubTreq

from psicoia.provider.client import ChatProvider, ProviderError
from psicoia.ops.metrics import Metrics
from psicoia.provider.headers import seconds_until
from psicoia.provider.pacing import Pacer, PacingTooLong, parse_duration
from tests.fake_provider import FakeProvider, Scripted, completion
from psicoia import texts
from tests.fake_provider import serve
from tests.helpers import connect_line_client, make_config, port_of, start_service

GREETING_LINES = 3 + len(texts.GREETING_BODY)

PROMPT = [{"role": "user", "content": "hola"}]


@pytest.mark.parametrize("text, seconds", [
    ("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("2m59.56s", 179.56), ("7.66s", 7.66),
    ("1h2m3s", 3723.0), ("2", 2.0), ("0.5", 0.5), ("10us", 1e-5),
])
def test_parse_duration_reads_go_style_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5x", "1s junk", "m5"])
def test_parse_duration_returns_none_for_unreadable_values(text):
    assert parse_duration(text) is None


def fired(deferred) -> bool:
    box: list = []
    deferred.addBoth(box.append)
    return bool(box)


def test_remaining_requests_zero_holds_new_calls_until_the_reset():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    waiting = ensureDeferred(pacer.ready(100, "Usuario-1:m1"))
    clock.advance(1.9)
    assert not fired(waiting)
    clock.advance(0.1)
    assert fired(waiting)


def test_calls_started_after_the_report_spend_the_remaining_budget():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "6s"})
    first = ensureDeferred(pacer.ready(1, "Usuario-1:m1"))
    second = ensureDeferred(pacer.ready(1, "Usuario-2:m1"))
    third = ensureDeferred(pacer.ready(1, "Usuario-3:m1"))
    assert fired(first) and fired(second)
    assert not fired(third)
    clock.advance(6)
    assert fired(third)


def test_token_budget_below_the_call_estimate_holds_until_the_token_reset():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({
        "x-ratelimit-remaining-requests": "100", "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-remaining-tokens": "150", "x-ratelimit-reset-tokens": "750ms",
    })
    cheap = ensureDeferred(pacer.ready(100, "Usuario-1:m1"))
    assert fired(cheap)
    costly = ensureDeferred(pacer.ready(100, "Usuario-2:m1"))
    clock.advance(0.7)
    assert not fired(costly)
    clock.advance(0.05)
    assert fired(costly)


def test_hold_longer_than_the_maximum_fails_at_once():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10, max_reset_seconds=3600)
    pacer.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"})
    errors: list = []
    ensureDeferred(pacer.ready(1, "Usuario-1:m1")).addErrback(errors.append)
    assert errors and errors[0].check(PacingTooLong)
    assert errors[0].value.seconds == pytest.approx(360)


def test_responses_without_hints_never_delay():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({"content-type": "application/json"})
    assert fired(ensureDeferred(pacer.ready(10_000, "Usuario-1:m1")))


def make_provider(clock, fake, instruments=None, **llm):
    settings = {"pacing": True}
    settings.update(llm)
    config = make_config(llm=settings)
    stub = StubTreq(fake)
    pacer = Pacer(clock, config.llm.retry_after_max_seconds, instruments)
    return ChatProvider(config.llm, "test-key", clock, stub, instruments, pacer=pacer), stub


def test_provider_holds_the_next_call_until_the_reported_reset_instead_of_getting_429():
    clock = Clock()
    metrics = Metrics()
    fake = FakeProvider(clock=clock)
    provider, stub = make_provider(clock, fake, metrics)
    fake.push(Scripted(body=completion("uno"), headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "3s",
        "x-ratelimit-remaining-tokens": "5000", "x-ratelimit-reset-tokens": "1s",
    }))
    first = provider.complete(PROMPT, "Usuario-1:m1")
    stub.flush()
    assert fired(first)
    second = provider.complete(PROMPT, "Usuario-1:m2")
    stub.flush()
    clock.advance(2.9)
    stub.flush()
    assert len(fake.requests) == 1 and not fired(second)
    clock.advance(0.1)
    stub.flush()
    assert len(fake.requests) == 2 and fired(second)
    assert metrics.registry.get_sample_value("psicoia_provider_paced_total") == 1
    assert metrics.registry.get_sample_value("psicoia_provider_paced_seconds_total") == \
        pytest.approx(3)
    assert metrics.registry.get_sample_value(
        "psicoia_provider_ratelimit_remaining", {"kind": "requests"}) == 0


def test_provider_fails_fast_with_paced_too_long_when_the_quota_is_gone_for_minutes():
    clock = Clock()
    fake = FakeProvider(clock=clock)
    provider, stub = make_provider(clock, fake)
    fake.push(Scripted(body=completion("uno"), headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2m59.56s",
    }))
    provider.complete(PROMPT, "Usuario-1:m1")
    stub.flush()
    errors: list = []
    provider.complete(PROMPT, "Usuario-1:m2").addErrback(errors.append)
    stub.flush()
    assert errors and errors[0].check(ProviderError)
    assert errors[0].value.reason == "paced_too_long"
    assert errors[0].value.retry_after == pytest.approx(179.56)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("pacing, held", [(True, 1), (False, 0)])
@pytest_twisted.ensureDeferred
async def test_service_paces_from_real_response_headers_only_when_enabled(pacing, held):
    """The real service over TCP: the first reply says no requests remain for 50 ms; with
    pacing on, the second message's provider call is held (counted), with it off it is not."""
    provider = FakeProvider(default_reply="dale")
    provider_port, url = await serve(provider)
    provider.push(Scripted(body=completion("uno"), headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "50ms"}))
    service = await start_service(make_config(llm={"base_url": url, "pacing": pacing}))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.say("hola")
        await client.wait_lines(GREETING_LINES + 1)
        client.say("sigo")
        lines = await client.wait_lines(GREETING_LINES + 2)
        assert lines[-1].startswith("dale")
        registry = service.instruments.registry
        assert registry.get_sample_value("psicoia_provider_paced_total") == held
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


# --- every form of reset, behind a gateway (issue 15) -------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize("text, seconds", [
    ("1m2.5s", 62.5), ("250ms", 0.25), ("7.66s", 7.66), ("2", 2.0), ("0.5", 0.5),
    (str(int(NOW) + 5), 5.0),                 # Unix time in seconds
    (str(int(NOW * 1000) + 2500), 2.5),       # Unix time in milliseconds
    (str(NOW + 1.5), 1.5),                    # Unix time with a fraction
    ("Tue, 14 Nov 2023 22:13:27 GMT", 7.0),   # HTTP date (NOW is 22:13:20)
    ("2023-11-14T22:13:30Z", 10.0),           # ISO 8601
    (str(int(NOW) - 30), 0.0),                # already past
])
def test_reset_in_every_form_is_read_as_seconds_from_now(text, seconds):
    assert seconds_until(text, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "-5", "inf", "nan", "5x"])
def test_unreadable_resets_are_none(text):
    assert seconds_until(text, NOW) is None


def test_a_unix_timestamp_reset_holds_for_its_seconds_not_56_years():
    clock = Clock()
    clock.advance(NOW)
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({"x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-reset-requests": str(int(NOW) + 3)})
    waiting = ensureDeferred(pacer.ready(1, "Usuario-1:m1"))
    clock.advance(2.9)
    assert not fired(waiting)
    clock.advance(0.1)
    assert fired(waiting)


def test_litellm_prefixed_ratelimit_headers_pace_like_plain_ones():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10)
    pacer.observe({"llm_provider-x-ratelimit-remaining-requests": "0",
                   "llm_provider-x-ratelimit-reset-requests": "2s"})
    assert pacer.delay(1) == (2.0, "requests")


def test_an_absurd_reset_is_capped_and_the_budget_refills_then_without_new_headers():
    clock = Clock()
    pacer = Pacer(clock, max_wait_seconds=10, max_reset_seconds=300)
    pacer.observe({"x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-reset-requests": "1770000000000000000s"})
    errors: list = []
    ensureDeferred(pacer.ready(1, "Usuario-1:m1")).addErrback(errors.append)
    assert errors and errors[0].value.seconds == pytest.approx(300)
    clock.advance(300)
    assert fired(ensureDeferred(pacer.ready(1, "Usuario-1:m2")))


def test_a_spent_budget_refills_at_its_reset_time_with_no_new_headers():
    """The field report: a Unix-time reset, then no more rate-limit headers at all. The held
    call goes at the reset; the one after it goes at once."""
    clock = Clock()
    clock.advance(NOW)
    fake = FakeProvider(clock=clock)
    provider, stub = make_provider(clock, fake)
    fake.push(Scripted(body=completion("uno"), headers={
        "llm_provider-x-ratelimit-remaining-requests": "0",
        "llm_provider-x-ratelimit-reset-requests": str(int(NOW) + 2)}))
    first = provider.complete(PROMPT, "Usuario-1:m1")
    stub.flush()
    assert fired(first)
    second = provider.complete(PROMPT, "Usuario-1:m2")
    stub.flush()
    assert len(fake.requests) == 1
    clock.advance(2)
    stub.flush()
    assert len(fake.requests) == 2 and fired(second)
    third = provider.complete(PROMPT, "Usuario-1:m3")
    stub.flush()
    assert len(fake.requests) == 3 and fired(third)
