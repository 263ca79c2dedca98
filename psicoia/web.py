"""
The HTTP site: the chat page at ``/``, WebSocket at ``/ws``, ``/healthz``, ``/metrics``.

Request logging is off (``PrivacySite``): paths carry nothing private today, but a chat
service should not keep a per-visitor access log by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.web.resource import NoResource, Resource
from twisted.web.server import Site
from twisted.web.static import File

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


class PrivacySite(Site):
    noisy = False

    def log(self, request) -> None:
        pass


class StaticFiles(File):
    """Static files with no directory listings."""

    def directoryListing(self):
        return NoResource()


class HealthResource(Resource):
    """Liveness: answers while the reactor runs; never calls the provider."""

    isLeaf = True

    def __init__(self, service: Any) -> None:
        super().__init__()
        self.service = service

    def render_GET(self, request) -> bytes:
        service = self.service
        body = {
            "status": "ok",
            "uptime_seconds": round(service.reactor.seconds() - (service.started_at or 0), 1),
            "connections": len(service.registry),
            "provider": "online" if service.manager.provider.online else "offline",
        }
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(body).encode("utf-8")


def web_root() -> Path:
    """The page's files: ``web/`` next to the package (source tree), or installed beside it."""
    installed = Path(__file__).resolve().parent / "web"
    return installed if installed.is_dir() else WEB_ROOT


def build_site(service: Any) -> Site:
    root = StaticFiles(str(web_root()))
    root.indexNames = ["index.html"]
    root.putChild(b"healthz", HealthResource(service))
    from .health import ReadyResource
    from .metrics import metrics_resource
    root.putChild(b"readyz", ReadyResource(service))
    root.putChild(b"metrics", metrics_resource(service))
    return PrivacySite(root)
