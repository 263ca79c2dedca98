"""
The HTTP site: the chat page at ``/``, WebSocket at ``/ws``, ``/healthz``, ``/readyz``,
``/metrics``.

Request logging is off (:class:`PrivacySite`): paths carry nothing private today, but a chat
service should not keep a per-visitor access log by default. Every response carries
``X-Content-Type-Options``, ``Referrer-Policy`` and a Content-Security-Policy that lets the page
load only its own files and open a WebSocket only to its own host, and ``Server: PsicoIA`` (no
version).

Limits (issue 16; docs/operations.md, "Limits and abuse"):

* every HTTP connection, and ``/ws`` until its upgrade, counts against
  ``server.max_connections`` and ``server.max_connections_per_ip`` (refused: ``503``, closed);
* the request line, headers and body must all arrive within
  ``server.http_header_timeout_seconds`` from the connection (or the end of the previous
  response), however slowly they trickle (Twisted's own timeout restarts at every byte);
* a body over ``server.http_max_body_bytes`` gets ``413`` before any of it is read
  (``Content-Length``) or as soon as it passes the limit (chunked); bodies are kept in memory,
  never spooled to a temporary file;
* a path with a NUL or another control character (raw or percent-encoded) is a ``400``, a
  method other than ``GET``/``HEAD`` a ``405``;
* ``/metrics``, and the details of ``/readyz`` and ``/healthz``, answer only addresses in
  ``server.metrics_allowed`` (loopback by default; :mod:`psicoia.transports.access`).
"""

from __future__ import annotations

import re
import sys
import sysconfig
from io import BytesIO
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote_to_bytes

from autobahn.twisted.resource import WebSocketResource
from prometheus_client import CollectorRegistry
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from psicoia import texts
from psicoia.config import ServerConfig
from psicoia.ops.connections import REFUSALS, ConnectionRegistry
from psicoia.transports.access import (
    AddressPolicy,
    ByAddress,
    Forbidden,
    PublicHealth,
    PublicReady,
    people_only,
)
from psicoia.transports.static import PageRoot, load_page
from psicoia.transports.status import HealthResource, MetricsResource, ReadyResource, Report
from psicoia.transports.tcp import peer_address

SOURCE_WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
# Where `pip install .` puts the page (setup.cfg [options.data_files]).
DATA_SUBDIR = Path("share") / "psicoia" / "web"

SERVER_NAME = b"PsicoIA"
# The site only serves (the WebSocket upgrade is a GET too).
ALLOWED_METHODS = (b"GET", b"HEAD")
# After a refusal (408, 413, 503) the connection closes once the answer is sent; a client that
# does not read it is cut off after this long.
ABORT_SECONDS = 5.0

# Host header values we are willing to echo into the CSP (host, IPv4, [IPv6], optional port).
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
# Control bytes (and DEL) have no business in a path, raw or percent-encoded.
_BAD_PATH_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


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


def _security_headers(request) -> None:
    host = request.getHeader(b"host")
    request.setHeader(b"Server", SERVER_NAME)
    request.setHeader(b"Content-Security-Policy",
                      content_security_policy(host.decode("latin-1") if host else None))
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Referrer-Policy", b"no-referrer")
    request.setHeader(b"X-Frame-Options", b"DENY")


def raw_response(code: int, reason: str, text: str) -> bytes:
    """A whole ``Connection: close`` response with a short plain-text body, for answers
    given outside a request (refused connection, deadline, body too large)."""
    body = (text + "\n").encode("utf-8")
    head = (
        f"HTTP/1.1 {code} {reason}\r\nServer: PsicoIA\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def bad_path(path: bytes) -> bool:
    """True when the request path holds a control byte, as sent or once percent-decoded."""
    return bool(_BAD_PATH_BYTES.search(path) or _BAD_PATH_BYTES.search(unquote_to_bytes(path)))


class PsicoiaRequest(Request):
    """A request whose path is checked before any resource sees it, whose body is capped."""

    _body_bytes = 0

    def process(self) -> None:
        if bad_path(self.path):
            self._answer(400, texts.HTTP_BAD_REQUEST)
        elif self.method not in ALLOWED_METHODS:
            self.setHeader(b"Allow", b", ".join(ALLOWED_METHODS))
            self._answer(405, texts.HTTP_METHOD_NOT_ALLOWED)
        else:
            super().process()

    def _answer(self, code: int, text: str) -> None:
        """A short plain-text answer, before any resource is looked up."""
        self.site = self.channel.site
        _security_headers(self)
        body = (text + "\n").encode("utf-8")
        self.setResponseCode(code)
        self.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        self.setHeader(b"Content-Length", b"%d" % len(body))
        if self.method != b"HEAD":
            self.write(body)
        self.finish()

    def handleContentChunk(self, data: bytes) -> None:
        """Chunked bodies have no length up front: stop as soon as one passes the limit."""
        self._body_bytes += len(data)
        if self._body_bytes > self.channel.site.max_body_bytes:
            self.channel.body_too_large()
            return
        super().handleContentChunk(data)


class PsicoiaChannel(HTTPChannel):
    """One HTTP connection: counted by the registry, with a whole-request deadline.

    Implements the ``Connection`` of :mod:`psicoia.ops.connections`. After a refusal the
    channel reads nothing more (Twisted keeps parsing what is already buffered; every entry
    point below checks ``_refused``).
    """

    transport_name = "http"
    log = Logger()

    def __init__(self) -> None:
        super().__init__()
        self._admitted = False
        self._refused = False
        self._deadline: Any = None
        self._abort: Any = None

    # --- the registry's Connection --------------------------------------------------------

    def notify_shutdown(self) -> None:
        """Nothing to tell: an HTTP client is not in a conversation."""

    def disconnect(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    # --- life -----------------------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        refusal = self.site.registry.admit(self, peer_address(self.transport))
        if refusal:
            self._refuse(503, "Service Unavailable", REFUSALS[refusal])
            return
        self._admitted = True
        self._start_deadline()

    def connectionLost(self, reason) -> None:
        self._cancel_timers()
        self._release()
        super().connectionLost(reason)

    def hand_over(self) -> None:
        """The WebSocket protocol takes this connection over (``/ws``): it counts itself from
        now on, and this channel never hears of the connection again."""
        self._cancel_timers()
        self._release()

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.site.registry.release(self)

    # --- the whole-request deadline -------------------------------------------------------

    def _start_deadline(self) -> None:
        self._cancel_timers()
        self._deadline = self.callLater(self.site.header_timeout, self._deadline_passed)

    def _cancel_timers(self) -> None:
        for call in (self._deadline, self._abort):
            if call is not None and call.active():
                call.cancel()
        self._deadline = self._abort = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        self.log.debug("http request timed out peer={address}",
                       address=peer_address(self.transport))
        self._refuse(408, "Request Timeout", texts.HTTP_TIMEOUT)

    def allContentReceived(self) -> None:
        if self._refused:
            return
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        super().allContentReceived()

    def requestDone(self, request) -> None:
        super().requestDone(request)
        # Keep-alive: the next request gets the same whole-request deadline.
        if self.persistent and not self._refused and self.transport is not None:
            self._start_deadline()

    # --- bodies ---------------------------------------------------------------------------

    def allHeadersReceived(self) -> None:
        if self._refused:
            return
        if self.length is not None and self.length > self.site.max_body_bytes:
            self.body_too_large()  # before gotLength: nothing is allocated for it
            return
        super().allHeadersReceived()

    def body_too_large(self) -> None:
        if not self._refused:
            self._refuse(413, "Content Too Large",
                         texts.HTTP_BODY_TOO_LARGE.format(limit=self.site.max_body_bytes))

    # --- after a refusal, read nothing ----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if not self._refused:
            super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)

    def _refuse(self, code: int, reason: str, text: str) -> None:
        self._refused = True
        self._cancel_timers()
        self.transport.write(raw_response(code, reason, text))
        self.loseConnection()
        self._abort = self.callLater(ABORT_SECONDS, self.transport.abortConnection)


class PrivacySite(Site):
    """No access log; security headers on every response; the limits of :class:`PsicoiaChannel`.

    ``clock`` runs the deadlines; ``header_timeout`` is in seconds, ``max_body_bytes`` in bytes.
    """

    noisy = False
    protocol = PsicoiaChannel
    requestFactory = PsicoiaRequest

    def __init__(self, resource: Resource, registry: ConnectionRegistry, clock: IReactorTime,
                 header_timeout: float, max_body_bytes: int) -> None:
        # timeout=None: Twisted's idle timeout restarts at every byte; ours does not.
        super().__init__(resource, timeout=None, reactor=clock)
        self.registry = registry
        self.header_timeout = header_timeout
        self.max_body_bytes = max_body_bytes

    def log(self, request) -> None:
        pass

    def getContentFile(self, length: Optional[int]) -> BytesIO:
        """Bodies stay in memory (at most ``max_body_bytes``): never a temporary file."""
        return BytesIO()

    def getResourceFor(self, request):
        _security_headers(request)
        return super().getResourceFor(request)


class UpgradeResource(WebSocketResource):
    """``/ws``: Autobahn's resource, handing the connection's place in the registry over to
    the WebSocket protocol (which counts itself when the socket opens)."""

    def render(self, request):
        channel = request.channel
        if channel.transport is not None and isinstance(channel, PsicoiaChannel):
            channel.hand_over()
        return super().render(request)


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
               websocket_factory: Any = None, *, connections: ConnectionRegistry,
               clock: IReactorTime, server: ServerConfig = ServerConfig()) -> Site:
    """The site: the page, ``/ws`` (when a factory is given), health, readiness, metrics.

    ``report`` gives the status snapshot the health resources show; ``registry`` is what
    ``/metrics`` exports (None: an empty page); ``connections`` counts every HTTP connection
    against the caps (the service's registry, shared with the other transports); ``clock``
    runs the deadlines; ``server`` gives the HTTP limits and ``server.metrics_allowed``.
    """
    policy = AddressPolicy(server.metrics_allowed)
    report = people_only(report, connections, PsicoiaChannel.transport_name)
    root = PageRoot(load_page(web_root()))
    root.putChild(b"healthz", ByAddress(HealthResource(report), PublicHealth(), policy))
    root.putChild(b"readyz", ByAddress(ReadyResource(report), PublicReady(report), policy))
    root.putChild(b"metrics", ByAddress(MetricsResource(registry), Forbidden(), policy))
    if websocket_factory is not None:
        root.putChild(b"ws", UpgradeResource(websocket_factory))
    return PrivacySite(root, connections, clock, server.http_header_timeout_seconds,
                       server.http_max_body_bytes)
