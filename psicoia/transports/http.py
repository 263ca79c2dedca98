"""
The HTTP site: the chat page at ``/``, WebSocket at ``/ws``, ``/healthz``, ``/readyz``,
``/metrics``.

Request logging is off (``PrivacySite``): paths carry nothing private today, but a chat
service should not keep a per-visitor access log by default. Every response carries
``X-Content-Type-Options``, ``Referrer-Policy`` and a Content-Security-Policy that lets the page
load only its own files and open a WebSocket only to its own host.
"""

from __future__ import annotations

import json
import re
import sys
import sysconfig
from pathlib import Path
from typing import Any, Optional

from twisted.web import pages
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

SOURCE_WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
# Where `pip install .` puts the page (setup.cfg [options.data_files]).
DATA_SUBDIR = Path("share") / "psicoia" / "web"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}

# Host header values we are willing to echo into the CSP (host, IPv4, [IPv6], optional port).
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def content_security_policy(host: Optional[str]) -> str:
    connect = "'self'"
    if host and _HOST.match(host):
        # 'self' covers ws(s) of the same host in CSP3 browsers; older ones need it spelled out.
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class PrivacySite(Site):
    """No access log; security headers on every response."""

    noisy = False

    def log(self, request) -> None:
        pass

    def getResourceFor(self, request):
        host = request.getHeader(b"host")
        request.setHeader(b"Content-Security-Policy",
                          content_security_policy(host.decode("latin-1") if host else None))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        request.setHeader(b"X-Frame-Options", b"DENY")
        return super().getResourceFor(request)


class StaticFiles(File):
    """The page's files: explicit content types, no directory listings, plain 404s."""

    contentTypes = CONTENT_TYPES
    childNotFound = pages.notFound()
    forbidden = pages.forbidden()
    indexNames = ["index.html"]

    def directoryListing(self):
        return pages.notFound()

    def render_GET(self, request):
        request.setHeader(b"Cache-Control", b"no-cache")
        return super().render_GET(request)


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
        }
        manager = getattr(service, "manager", None)  # a gateway has none
        if manager is not None:
            body["provider"] = "online" if manager.provider.online else "offline"
        else:
            body["provider"] = "upstream"
            body["mode"] = "gateway"
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(body).encode("utf-8")


def web_root() -> Path:
    """The page's files: ``web/`` in the source tree (also the Docker image), else installed."""
    candidates = [
        SOURCE_WEB_ROOT,
        Path(sysconfig.get_path("data")) / DATA_SUBDIR,
        Path(sys.prefix) / DATA_SUBDIR,
    ]
    for candidate in candidates:
        if (candidate / "index.html").is_file():
            return candidate
    return SOURCE_WEB_ROOT


def build_site(service: Any, websocket_factory: Any = None) -> Site:
    from autobahn.twisted.resource import WebSocketResource

    from psicoia.transports.status import ReadyResource
    from psicoia.ops.metrics import metrics_resource

    root = StaticFiles(str(web_root()), defaultType="application/octet-stream")
    root.putChild(b"healthz", HealthResource(service))
    root.putChild(b"readyz", ReadyResource(service))
    root.putChild(b"metrics", metrics_resource(service))
    if websocket_factory is not None:
        root.putChild(b"ws", WebSocketResource(websocket_factory))
    return PrivacySite(root)
