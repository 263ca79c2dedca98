"""Retry policy: which statuses are retried, the backoff schedule, reading Retry-After."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from psicoia.provider.retry import backoff_delay, is_retryable_status, retry_after_seconds

NOW = 1_700_000_000.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retryable(status):
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 413, 422])
def test_other_statuses_are_not_retryable(status):
    assert not is_retryable_status(status)


def test_backoff_doubles_from_initial_and_stops_at_maximum():
    fixed = [backoff_delay(n, 0.5, 5, lambda: 1.0) for n in range(1, 8)]
    assert fixed == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("retry_number", range(1, 8))
@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 0.999])
def test_backoff_jitter_stays_between_half_and_the_full_step(retry_number, jitter):
    step = min(5, 0.5 * 2 ** (retry_number - 1))
    delay = backoff_delay(retry_number, 0.5, 5, lambda: jitter)
    assert step / 2 <= delay <= step
    assert delay == pytest.approx(step / 2 + jitter * step / 2)


def test_retry_after_ms_wins_over_retry_after():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}, NOW) == 1.5


def test_retry_after_in_seconds():
    assert retry_after_seconds({"retry-after": " 3 "}, NOW) == 3.0
    assert retry_after_seconds({"retry-after": "0.5"}, NOW) == 0.5


def test_retry_after_as_http_date_counts_from_the_clock():
    assert retry_after_seconds({"retry-after": formatdate(NOW + 7, usegmt=True)}, NOW) == 7.0


def test_retry_after_in_the_past_or_negative_means_now():
    assert retry_after_seconds({"retry-after": formatdate(NOW - 60, usegmt=True)}, NOW) == 0.0
    assert retry_after_seconds({"retry-after": "-4"}, NOW) == 0.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": "soon"}, {"retry-after": ""},
                                     {"retry-after-ms": "x"}])
def test_absent_or_unreadable_retry_after_is_none(headers):
    assert retry_after_seconds(headers, NOW) is None


def test_unreadable_retry_after_ms_falls_back_to_retry_after():
    assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "2"}, NOW) == 2.0


# --- behind a gateway (issue 15): LiteLLM relays the upstream's headers with a prefix ---------

def test_a_gateway_prefixed_retry_after_is_read_when_the_plain_one_is_absent():
    assert retry_after_seconds({"llm_provider-retry-after": "2"}, NOW) == 2.0
    assert retry_after_seconds({"llm_provider-retry-after-ms": "1250"}, NOW) == 1.25
    when = formatdate(NOW + 4, usegmt=True)
    assert retry_after_seconds({"llm_provider-retry-after": when}, NOW) == 4.0


def test_the_plain_retry_after_wins_over_the_prefixed_one():
    headers = {"retry-after": "60", "llm_provider-retry-after": "2"}
    assert retry_after_seconds(headers, NOW) == 60.0
    headers = {"llm_provider-retry-after-ms": "500", "retry-after": "3"}
    assert retry_after_seconds(headers, NOW) == 0.5, "retry-after-ms, in either form, is finer"


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_non_finite_retry_after_is_not_obeyed(value):
    assert retry_after_seconds({"retry-after": value}, NOW) is None
    assert retry_after_seconds({"retry-after-ms": value}, NOW) is None
