"""
``/healthz``, ``/readyz`` and ``/metrics``: what an operator and a load balancer can ask.

The resources take a narrow ``report`` callable returning a :class:`StatusReport` snapshot (the
app layer builds it from the service), never the service itself. Liveness (``/healthz``) only
says the process runs. Readiness (``/readyz``) says it can serve: every configured listener is
listening, the service is not shutting down, the provider's circuit breaker is not open (while it
is, every reply would be a fallback; another replica may do better), and no component reports a
problem. 200 when ready, 503 when not; the JSON body says why either way. Nothing here calls the
provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.web.resource import Resource


@dataclass(frozen=True)
class StatusReport:
    """One look at the service. ``listeners`` maps a listener's name to whether it listens;
    ``provider`` is "online", "offline" or "upstream" (gateway); ``breaker`` the circuit
    breaker's state or "none"; ``problems`` short reasons that make it not ready (storage
    degraded, provider rejecting the key...)."""

    running: bool
    closing: bool
    listeners: Mapping[str, bool]
    provider: str
    breaker: str
    connections: int
    uptime_seconds: float
    mode: str = "core"
    problems: tuple[str, ...] = field(default=())


Report = Callable[[], StatusReport]


def readiness(report: StatusReport) -> tuple[bool, dict]:
    reasons = [f"listener {name} is not listening"
               for name, up in report.listeners.items() if not up]
    if not report.running:
        reasons.append("service is not running")
    if report.closing:
        reasons.append("shutting down")
    if report.breaker == "open":
        reasons.append("provider circuit breaker is open")
    reasons.extend(report.problems)
    body = {
        "status": "not_ready" if reasons else "ready",
        "reasons": reasons,
        "listeners": {name: "up" if up else "down" for name, up in report.listeners.items()},
        "breaker": report.breaker,
        "provider": report.provider,
    }
    return not reasons, body


def json_body(request, body: dict) -> bytes:
    """``body`` as the JSON answer of ``request`` (content type set, never cached)."""
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    return json.dumps(body).encode("utf-8")


class ReadyResource(Resource):
    isLeaf = True

    def __init__(self, report: Report) -> None:
        super().__init__()
        self.report = report

    def render_GET(self, request) -> bytes:
        ready, body = readiness(self.report())
        request.setResponseCode(200 if ready else 503)
        return json_body(request, body)


class HealthResource(Resource):
    """Liveness: answers while the reactor runs."""

    isLeaf = True

    def __init__(self, report: Report) -> None:
        super().__init__()
        self.report = report

    def render_GET(self, request) -> bytes:
        report = self.report()
        body = {
            "status": "ok",
            "uptime_seconds": round(report.uptime_seconds, 1),
            "connections": report.connections,
            "provider": report.provider,
        }
        if report.mode != "core":
            body["mode"] = report.mode
        return json_body(request, body)


class MetricsResource(Resource):
    """``GET /metrics``: the Prometheus text format of one registry (no thread pool needed)."""

    isLeaf = True

    def __init__(self, registry: Optional[CollectorRegistry]) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        if self.registry is None:
            return b""
        return generate_latest(self.registry)
