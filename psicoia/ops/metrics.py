"""
Prometheus metrics: the :class:`Instruments` hooks, counted on the service's own registry.

Each service gets its own ``CollectorRegistry`` (never the process-global one), so two services
in one process (tests, the gateway) never collide, and ``/metrics`` shows only PsicoIA's series.
Labels are bounded sets (transport, outcome, status, reason, state); never user content or ids.
Every metric is described in docs/operations.md.
"""

from __future__ import annotations

from typing import Any, Optional

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

import psicoia
from psicoia.ops.instruments import Instruments

# Each counter's ``_created`` series doubles the series count and, per event, says when it
# first happened (a crisis detection, say): off for every registry in the process.
disable_created_metrics()

PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REPLY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)
# WebSocket close codes, as bounded label values (RFC 6455).
CLOSE_REASONS = {1000: "normal", 1001: "going_away", 1002: "protocol_error",
                 1006: "abnormal", 1008: "policy", 1009: "too_big", 1011: "server_error",
                 1013: "try_again"}
RATE_BUCKETS = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
BREAKER_STATES = ("closed", "half_open", "open")
PROBLEM_KINDS = ("auth", "model", "endpoint")
REJECTION_KINDS = PROBLEM_KINDS + ("concurrency",)


class Metrics(Instruments):
    """Instruments that feed Prometheus metrics named ``psicoia_*``."""

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections_open = Gauge(
            "psicoia_connections_open", "Connections open now, by transport.",
            ["transport"], registry=r)
        self.connections_accepted = Counter(
            "psicoia_connections_accepted", "Connections admitted, by transport.",
            ["transport"], registry=r)
        self.connections_refused = Counter(
            "psicoia_connections_refused", "Connections refused, by transport and reason.",
            ["transport", "reason"], registry=r)
        self.messages = Counter(
            "psicoia_messages", "Messages handled, by transport and outcome.",
            ["transport", "outcome"], registry=r)
        self.provider_duration = Histogram(
            "psicoia_provider_request_duration_seconds",
            "Duration of each provider attempt (HTTP request), by ok or error.",
            ["result"], buckets=PROVIDER_BUCKETS, registry=r)
        self.semaphore_wait = Histogram(
            "psicoia_semaphore_wait_seconds",
            "Time a message waited for a provider slot (the max_in_flight semaphore).",
            buckets=WAIT_BUCKETS, registry=r)
        self.provider_attempts = Counter(
            "psicoia_provider_attempts", "Provider attempts, by HTTP status or error name.",
            ["status"], registry=r)
        self.provider_retries = Counter(
            "psicoia_provider_retries", "Provider attempts that were retried.", registry=r)
        self.in_flight = Gauge(
            "psicoia_semaphore_in_flight", "Provider calls holding a semaphore slot now.",
            registry=r)
        self.waiting = Gauge(
            "psicoia_semaphore_waiting", "Messages queued for a semaphore slot now.",
            registry=r)
        # Hot path (docs/benchmarks.md): the semaphore changes four times per message, so
        # its gauges are read when scraped instead of being set (and locked) each time.
        self._semaphore_now = (0, 0)
        self.in_flight.set_function(lambda: self._semaphore_now[0])
        self.waiting.set_function(lambda: self._semaphore_now[1])
        self._children: dict = {}  # (metric, labels) -> child: skips labels() per message
        self.breaker_state = Gauge(
            "psicoia_breaker_state", "Circuit breaker state: 1 for the current state, else 0.",
            ["state"], registry=r)
        self.breaker_transitions = Counter(
            "psicoia_breaker_transitions", "Circuit breaker state changes, by new state.",
            ["state"], registry=r)
        self.crisis = Counter(
            "psicoia_crisis_detections", "Messages given crisis resources (tier acute, risk or third_party), by transport.",
            ["transport"], registry=r)
        self.paced = Counter(
            "psicoia_provider_paced", "Provider calls held by pacing (rate-limit headers).",
            registry=r)
        self.paced_seconds = Counter(
            "psicoia_provider_paced_seconds", "Total seconds provider calls were held by pacing.",
            registry=r)
        self.quota_remaining = Gauge(
            "psicoia_provider_ratelimit_remaining",
            "Last x-ratelimit-remaining-{requests,tokens} reported by the provider.",
            ["kind"], registry=r)
        self.rejections = Counter(
            "psicoia_provider_rejections",
            "Provider answers refusing a call for a known reason (auth, model, endpoint, "
            "concurrency).", ["kind"], registry=r)
        self.problem = Gauge(
            "psicoia_provider_problem",
            "1 while the provider keeps rejecting calls for this operator mistake, else 0.",
            ["kind"], registry=r)
        self.concurrency_limit = Gauge(
            "psicoia_provider_concurrency_limit",
            "Requests sent to the provider at once at most (adapted to its refusals).",
            registry=r)
        self.reply_time = Histogram(
            "psicoia_reply_seconds",
            "Time from a message's arrival to its reply (model, fallback or notice), as the "
            "user sees it, by transport.", ["transport"], buckets=REPLY_BUCKETS, registry=r)
        self.provider_online = Gauge(
            "psicoia_provider_online",
            "1 when an API key is configured (model replies), 0 in offline mode.", registry=r)
        self.idle_timeouts = Counter(
            "psicoia_idle_timeouts", "Connections closed after limits.idle_timeout_seconds, "
            "by transport.", ["transport"], registry=r)
        self.websocket_closes = Counter(
            "psicoia_websocket_closes", "WebSocket connections closed, by close code name.",
            ["reason"], registry=r)
        Info("psicoia_build", "PsicoIA and Python versions.", registry=r).info(
            {"version": psicoia.__version__, "python": platform.python_version()})
        ProcessCollector(registry=r)   # memory, CPU seconds, open file descriptors
        PlatformCollector(registry=r)  # the Python implementation
        self.first_token = Histogram(
            "psicoia_provider_first_token_seconds",
            "Time from the start of a streamed provider call to its first visible text.",
            buckets=PROVIDER_BUCKETS, registry=r)
        self.stream_chunks = Counter(
            "psicoia_provider_stream_chunks", "Data events (chunks) read from streamed replies.",
            registry=r)
        self.stream_rate = Histogram(
            "psicoia_provider_stream_chunks_per_second",
            "Chunks per second of each streamed attempt, from its first token to its last chunk.",
            buckets=RATE_BUCKETS, registry=r)
        for state in BREAKER_STATES:
            self.breaker_state.labels(state).set(1 if state == "closed" else 0)
        for kind in REJECTION_KINDS:
            self.rejections.labels(kind)
        for kind in PROBLEM_KINDS:
            self.problem.labels(kind).set(0)
        self.storage_degraded = Gauge(
            "psicoia_storage_degraded",
            "1 while the conversation store is failing (the core answers from memory), else 0.",
            registry=r)
        self.storage_faults = Counter(
            "psicoia_storage_faults", "Times the conversation store became degraded, by reason.",
            ["reason"], registry=r)

    def connection_opened(self, transport: str) -> None:
        self._child(self.connections_accepted, transport).inc()
        self._child(self.connections_open, transport).inc()

    def connection_closed(self, transport: str) -> None:
        self._child(self.connections_open, transport).dec()

    def connection_refused(self, transport: str, reason: str) -> None:
        self.connections_refused.labels(transport, reason).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def message_handled(self, transport: str, outcome: str) -> None:
        self._child(self.messages, transport, outcome).inc()

    def queue_wait(self, seconds: float) -> None:
        self.semaphore_wait.observe(max(0.0, seconds))

    def reply_ready(self, transport: str, seconds: float) -> None:
        self._child(self.reply_time, transport).observe(max(0.0, seconds))

    def provider_configured(self, online: bool) -> None:
        self.provider_online.set(1 if online else 0)

    def idle_timeout(self, transport: str) -> None:
        self.idle_timeouts.labels(transport).inc()

    def websocket_closed(self, code: "int | None") -> None:
        self.websocket_closes.labels(CLOSE_REASONS.get(code or 1006, "other")).inc()

    def semaphore_changed(self, in_flight: int, waiting: int) -> None:
        self._semaphore_now = (in_flight, waiting)

    def provider_attempt(self, result: str, seconds: float) -> None:
        self._child(self.provider_attempts, result).inc()
        self._child(self.provider_duration, "ok" if result == "200" else "error").observe(
            max(0.0, seconds))

    def provider_retry(self) -> None:
        self.provider_retries.inc()

    def crisis_detected(self, transport: str) -> None:
        self.crisis.labels(transport).inc()

    def breaker_changed(self, state: str) -> None:
        for known in BREAKER_STATES:
            self.breaker_state.labels(known).set(1 if known == state else 0)
        self.breaker_transitions.labels(state).inc()

    def provider_paced(self, seconds: float) -> None:
        self.paced.inc()
        self.paced_seconds.inc(seconds)

    def provider_quota(self, kind: str, remaining: int) -> None:
        self.quota_remaining.labels(kind).set(remaining)

    def provider_rejected(self, kind: str) -> None:
        self.rejections.labels(kind).inc()

    def provider_first_token(self, seconds: float) -> None:
        self.first_token.observe(max(0.0, seconds))

    def provider_stream(self, chunks: int, seconds: float) -> None:
        self.stream_chunks.inc(chunks)
        if chunks > 1 and seconds > 0:
            self.stream_rate.observe((chunks - 1) / seconds)

    def provider_problem(self, kind: "str | None") -> None:
        for known in PROBLEM_KINDS:
            self.problem.labels(known).set(1 if known == kind else 0)

    def provider_concurrency(self, limit: int) -> None:
        self.concurrency_limit.set(limit)

    def storage_changed(self, state: str, reason: str) -> None:
        self.storage_degraded.set(0 if state == "ok" else 1)
        if state != "ok":
            self.storage_faults.labels(reason).inc()
