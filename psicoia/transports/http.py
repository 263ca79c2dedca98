"""
The HTTP site: the chat page at ``/``, WebSocket at ``/ws``, ``/healthz``, ``/readyz``,
``/metrics``.

Request logging is off (``PrivacySite``): paths carry nothing private today, but a chat
service should not keep a per-visitor access log by default. Every response carries
``X-Content-Type-Options``, ``Referrer-Policy`` and a Content-Security-Policy that lets the page
load only its own files and open a WebSocket only to its own host.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path
from typing import Any, Optional

from autobahn.twisted.resource import WebSocketResource
from prometheus_client import CollectorRegistry
from twisted.web import pages
from twisted.web.server import Site
from twisted.web.static import File

from psicoia.transports.status import HealthResource, MetricsResource, ReadyResource, Report

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


def build_site(report: Report, registry: Optional[CollectorRegistry] = None,
               websocket_factory: Any = None) -> Site:
    """The site: the page, ``/ws`` (when a factory is given), health, readiness, metrics.

    ``report`` gives the status snapshot the health resources show; ``registry`` is what
    ``/metrics`` exports (None: an empty page)."""
    root = StaticFiles(str(web_root()), defaultType="application/octet-stream")
    root.putChild(b"healthz", HealthResource(report))
    root.putChild(b"readyz", ReadyResource(report))
    root.putChild(b"metrics", MetricsResource(registry))
    if websocket_factory is not None:
        root.putChild(b"ws", WebSocketResource(websocket_factory))
    return PrivacySite(root)
