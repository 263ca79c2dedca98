"""psicoia.ops.hotmetrics: the per-message counters and histograms expose exactly what
prometheus_client's own Counter and Histogram would, after the same updates."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from psicoia.ops.hotmetrics import HotCounter, HotHistogram
from psicoia.ops.metrics import Metrics


def exposition(counter, histogram) -> str:
    registry = CollectorRegistry(auto_describe=True)
    messages = counter("t_messages", "Messages.", ["transport", "outcome"], registry=registry)
    plain = counter("t_plain", "Plain.", registry=registry)
    seconds = histogram("t_seconds", "Seconds.", ["result"], buckets=(0.05, 0.1, 1.0),
                        registry=registry)
    wait = histogram("t_wait", "Wait.", buckets=(0.001, 0.5), registry=registry)
    untouched = histogram("t_untouched", "Never observed.", registry=registry)
    messages.labels("tcp", "answered").inc()
    messages.labels("tcp", "answered").inc(2)
    messages.labels("websocket", "busy").inc()
    plain.inc(3)
    for value in (0.0, 0.05, 0.07, 0.5, 3.0):  # on a bound counts in that bucket (le)
        seconds.labels("ok").observe(value)
    seconds.labels("error").observe(0.2)
    wait.observe(0.0005)
    assert untouched is not None
    return generate_latest(registry).decode()


def test_hot_metrics_expose_what_prometheus_client_would():
    assert exposition(HotCounter, HotHistogram) == exposition(Counter, Histogram)


def test_a_counter_refuses_to_go_down_and_labels_must_match():
    counter = HotCounter("t_c", "C.", ["a"])
    with pytest.raises(ValueError):
        counter.labels("x").inc(-1)
    with pytest.raises(ValueError):
        counter.labels("x", "y")


def test_the_per_message_series_of_the_service_are_exposed():
    metrics = Metrics()
    metrics.message_handled("tcp", "answered")
    metrics.provider_attempt("200", 0.3)
    metrics.reply_ready("tcp", 0.4)
    metrics.provider_stream(12, 0.5)
    text = generate_latest(metrics.registry).decode()
    assert 'psicoia_messages_total{outcome="answered",transport="tcp"} 1.0' in text
    assert 'psicoia_provider_attempts_total{status="200"} 1.0' in text
    assert 'psicoia_provider_request_duration_seconds_bucket{le="0.5",result="ok"} 1.0' in text
    assert 'psicoia_reply_seconds_count{transport="tcp"} 1.0' in text
    assert "psicoia_provider_stream_chunks_total 12.0" in text
    assert 'psicoia_semaphore_wait_seconds_bucket{le="+Inf"} 0.0' in text
