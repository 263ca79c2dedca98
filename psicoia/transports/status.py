"""
``GET /readyz``: should a load balancer send people here now?

Liveness (``/healthz``, in web.py) only says the process runs. Readiness says it can serve:
every configured listener is listening, the service is not shutting down, and the provider's
circuit breaker is not open (while it is, every reply would be a fallback; another replica may do
better). 200 when ready, 503 when not; the JSON body says why either way. It never calls the
provider.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource


def readiness(service: Any) -> tuple[bool, dict]:
    from psicoia.app.service import Listener

    reasons = []
    listeners = {}
    for child in service:
        if isinstance(child, Listener):
            up = child.port is not None and child.running
            listeners[child.name] = "up" if up else "down"
            if not up:
                reasons.append(f"listener {child.name} is not listening")
    if not service.running:
        reasons.append("service is not running")
    manager = getattr(service, "manager", None)  # a gateway has listeners but no manager
    if manager is not None and manager.closing:
        reasons.append("shutting down")
    breaker = getattr(service, "breaker", None)
    state = breaker.state if breaker is not None else "none"
    if state == "open":
        reasons.append("provider circuit breaker is open")
    body = {
        "status": "not_ready" if reasons else "ready",
        "reasons": reasons,
        "listeners": listeners,
        "breaker": state,
    }
    if manager is not None:
        body["provider"] = "online" if manager.provider.online else "offline"
    return not reasons, body


class ReadyResource(Resource):
    isLeaf = True

    def __init__(self, service: Any) -> None:
        super().__init__()
        self.service = service

    def render_GET(self, request) -> bytes:
        ready, body = readiness(self.service)
        request.setResponseCode(200 if ready else 503)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(body).encode("utf-8")
