"""Issue 16, HTTP side: each attack of the probe as a test (127.0.0.1, bounded in count and time).

In memory where the point is timing (the whole-request deadline on a ``task.Clock``), on real
sockets where the point is what a client sees, and one real process for the range flood (its
memory and file descriptors are measured from ``/proc``).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher

from psicoia import texts
from psicoia.config import LogConfig
from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.logsetup import make_observer
from psicoia.transports.http import PrivacySite, bad_path
from psicoia.transports.static import PAGE_FILES, PageRoot, load_page
from tests.helpers import LOCAL, captured_logs, make_config, port_of, start_service

WEB = Path(__file__).resolve().parent.parent / "web"
APP_JS = (WEB / "app.js").read_bytes()


# --- a raw client -----------------------------------------------------------------------------


class Raw(Protocol):
    """Bytes in, all of them kept; ``closed`` fires when the server hangs up."""

    def __init__(self) -> None:
        self.data = b""
        self.closed: Deferred = Deferred()
        self._waiters: list[tuple[bytes, Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for item in list(self._waiters):
            if item[0] in self.data:
                self._waiters.remove(item)
                item[1].callback(self.data)

    def wait_for(self, marker: bytes, timeout: float = 5) -> Deferred:
        waiter: Deferred = Deferred()
        self._waiters.append((marker, waiter))
        self.dataReceived(b"")
        return waiter.addTimeout(timeout, reactor)

    def connectionLost(self, reason=None) -> None:
        self.closed.callback(self.data)

    def wait_closed(self, timeout: float = 5) -> Deferred:
        return self.closed.addTimeout(timeout, reactor)


async def raw_client(port: int) -> Raw:
    return await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5), Raw())


async def exchange(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send ``request`` (with ``Connection: close``) and return everything until the close."""
    client = await raw_client(port)
    client.transport.write(request)
    return await client.wait_closed(timeout)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def head_and_body(response: bytes) -> tuple[dict[bytes, bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


async def start_site(**server):
    settings = {"http": LOCAL}
    settings.update(server)
    service = await start_service(make_config(server=settings))
    return service, await port_of(service, "http")


# --- 1. ranges: ignored, never amplified, never leaked -------------------------------------


@pytest_twisted.ensureDeferred
async def test_range_requests_get_the_whole_file_once_never_multipart():
    service, port = await start_site()
    try:
        many = ",".join(["0-"] * 500)
        request = (f"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   f"Range: bytes={many}\r\n\r\n").encode()
        response = await exchange(port, request)
        headers, body = head_and_body(response)
        assert status_of(response) == 200
        assert body == APP_JS  # one copy: 500 ranges do not make 500 copies
        assert len(response) < len(APP_JS) + 2048
        assert headers[b"accept-ranges"] == b"none"
        assert b"multipart" not in headers[b"content-type"]
    finally:
        await service.stopService()


SERVE = """
import dataclasses, sys, tempfile
from pathlib import Path
from twisted.internet import reactor
from psicoia import config as config_module
from psicoia.app.service import build_service

base = config_module.load(environ={}, cwd=Path(tempfile.mkdtemp()))
config = config_module.replace(base, server={"tcp": None, "websocket": None,
                                             "http": "tcp:0:interface=127.0.0.1"})
service = build_service(dataclasses.replace(config, api_key=None), reactor)
service.startService()
service.listener("http").when_listening().addCallback(
    lambda port: print(port.getHost().port, flush=True))
reactor.run()
"""

RANGE_LAYOUTS = [
    "0-5,1-9,2-20,3-40,4-50,5-60",
    "0-,0-,0-,0-,0-,0-",
    "10-20,0-5000,3000-9000,1-2,100-11000,5-6",
    "-1,-100,0-0,50-,-5000,7-7",
    ",".join(["0-"] * 500),
]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _get(port: int, spec: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     f"Range: bytes={spec}\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_range_flood_leaves_memory_and_file_descriptors_where_they_were():
    """4,000 range requests of five layouts (one with 500 ``0-`` ranges) against a real
    process: its RSS stays within a few MiB and its descriptors where they were."""
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(root)))
    try:
        port = int(server.stdout.readline())
        for spec in RANGE_LAYOUTS:  # warm up: every code path has run once
            _get(port, spec)
        rss_before, fds_before = _rss_kib(server.pid), _fds(server.pid)
        started = time.monotonic()
        for index in range(4000):
            response = _get(port, RANGE_LAYOUTS[index % len(RANGE_LAYOUTS)])
            assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        assert time.monotonic() - started < 60
        time.sleep(0.2)  # let the last connections close on the server's side
        growth_mib = (_rss_kib(server.pid) - rss_before) / 1024
        assert growth_mib < 8, f"RSS grew {growth_mib:.1f} MiB"
        assert _fds(server.pid) <= fds_before + 2
        assert server.poll() is None
    finally:
        server.kill()
        _, errors = server.communicate(timeout=10)
    assert b"Traceback" not in errors


# --- the page: allowlist, ETag, Spanish 404 -------------------------------------------------


def test_only_allowlisted_regular_files_are_loaded(tmp_path):
    (tmp_path / "index.html").write_text("x", encoding="utf-8")
    (tmp_path / "app.js").mkdir()  # a directory by an allowlisted name
    (tmp_path / ".htpasswd").write_text("secret", encoding="utf-8")
    files = load_page(tmp_path)
    assert set(files) == {b"index.html"}
    assert set(load_page(WEB)) == {name.encode() for name in PAGE_FILES}
    # A file added to web/ must be added to the allowlist (and setup.cfg) to be served.
    assert {path.name for path in WEB.iterdir() if path.is_file()} == set(PAGE_FILES)


@pytest_twisted.ensureDeferred
async def test_page_files_have_an_etag_and_revalidate_with_304():
    service, port = await start_site()
    try:
        first = await exchange(port, b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        headers, body = head_and_body(first)
        assert status_of(first) == 200 and body == APP_JS
        etag = headers[b"etag"]
        assert etag.startswith(b'"') and headers[b"cache-control"] == b"no-cache"
        again = await exchange(port, b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     b"If-None-Match: " + etag + b"\r\n\r\n")
        assert status_of(again) == 304
        assert head_and_body(again)[1] == b""
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_unknown_paths_get_the_spanish_404_page():
    service, port = await start_site()
    try:
        response = await exchange(port, b"GET /nada HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        headers, body = head_and_body(response)
        assert status_of(response) == 404
        assert headers[b"content-type"] == b"text/html; charset=utf-8"
        assert texts.PAGE_NOT_FOUND_TITLE.encode() in body
        assert b'lang="es"' in body and b"No Such Resource" not in body
    finally:
        await service.stopService()


# --- 3. connection cap and the whole-request deadline ---------------------------------------


def in_memory_site(registry: ConnectionRegistry, clock: Clock, timeout=10.0, max_body=1024):
    return PrivacySite(PageRoot(load_page(WEB)), registry, clock, timeout, max_body)


def connect(site, host: str = "127.0.0.1"):
    channel = site.buildProtocol(IPv4Address("TCP", host, 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    channel.makeConnection(transport)
    return channel, transport


def test_trickled_headers_are_cut_at_the_deadline_however_slowly_they_come():
    clock = Clock()
    registry = ConnectionRegistry(100, 100)
    site = in_memory_site(registry, clock, timeout=10.0)
    channel, transport = connect(site)
    assert len(registry) == 1  # counted from the first byte on
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    for byte in request[:19]:  # one byte every half second: 9.5 s, still inside
        channel.dataReceived(bytes([byte]))
        clock.advance(0.5)
    assert not transport.disconnecting
    for byte in request[19:]:  # every byte would reset Twisted's own timer
        channel.dataReceived(bytes([byte]))
        clock.advance(0.5)
    assert transport.disconnecting
    assert transport.value().startswith(b"HTTP/1.1 408 ")
    channel.connectionLost(None)
    assert len(registry) == 0


def test_a_client_that_does_not_read_the_408_is_cut_off():
    clock = Clock()
    site = in_memory_site(ConnectionRegistry(100, 100), clock, timeout=1.0)
    channel, transport = connect(site)
    clock.advance(1.0)
    assert transport.disconnecting and not transport.disconnected
    clock.advance(10)
    assert transport.disconnected  # StringTransport's abortConnection


def test_keep_alive_requests_each_get_the_deadline_and_an_idle_one_is_closed():
    clock = Clock()
    site = in_memory_site(ConnectionRegistry(100, 100), clock, timeout=5.0)
    channel, transport = connect(site)
    for _ in range(3):
        clock.advance(4)
        channel.dataReceived(b"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not transport.disconnecting
    assert transport.value().count(b"HTTP/1.1 200 ") == 3
    clock.advance(5)
    assert transport.disconnecting


def test_http_connections_over_the_per_address_cap_get_503_and_are_closed():
    clock = Clock()
    registry = ConnectionRegistry(100, 2)
    site = in_memory_site(registry, clock)
    first, _ = connect(site)
    second, _ = connect(site)
    third, transport = connect(site)
    assert transport.value().startswith(b"HTTP/1.1 503 ")
    assert texts.TOO_MANY_FROM_ADDRESS.encode() in transport.value()
    assert transport.disconnecting and len(registry) == 2
    third.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # read nothing more
    assert transport.value().count(b"HTTP/1.1") == 1
    other, other_transport = connect(site, "127.0.0.2")
    assert not other_transport.disconnecting and len(registry) == 3


@pytest_twisted.ensureDeferred
async def test_trickling_connections_count_against_the_cap_and_are_dropped_at_the_deadline():
    service, port = await start_site(max_connections_per_ip=3, http_header_timeout_seconds=0.5)
    try:
        trickling = [await raw_client(port) for _ in range(3)]
        for client in trickling:
            client.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        refused = await raw_client(port)
        assert status_of(await refused.wait_closed()) == 503
        started = reactor.seconds()
        while reactor.seconds() - started < 0.8:  # a header byte every 50 ms
            for client in trickling:
                if client.transport.connected:
                    client.transport.write(b"X")
            await deferLater(reactor, 0.05, lambda: None)
        for client in trickling:
            assert status_of(await client.wait_closed()) == 408
        assert len(service.registry) == 0
        response = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(response) == 200
    finally:
        await service.stopService()


# --- 4. bodies: 413 before reading, nothing on disk -----------------------------------------


@pytest.fixture
def no_temp_files(monkeypatch):
    """Fail if Twisted (or anyone) opens a temporary file for a request body."""
    import tempfile

    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise AssertionError("a request body was spooled to a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    return opened


@pytest_twisted.ensureDeferred
async def test_a_huge_content_length_gets_413_before_the_body_is_sent(no_temp_files):
    service, port = await start_site()
    try:
        client = await raw_client(port)
        client.transport.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        response = await client.wait_closed(timeout=3)  # no byte of the body was sent
        assert status_of(response) == 413
        assert texts.HTTP_BODY_TOO_LARGE.format(limit=1024).encode() in response
        assert no_temp_files == []
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_chunked_body_is_cut_at_the_limit_and_never_spooled(no_temp_files):
    service, port = await start_site(http_max_body_bytes=100_000)
    try:
        client = await raw_client(port)
        client.transport.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (16384, b"a" * 16384)
        for _ in range(8):  # 128 KiB, past the 100,000-byte limit
            if not client.transport.connected:
                break
            client.transport.write(chunk)
            await deferLater(reactor, 0.01, lambda: None)
        response = await client.wait_closed(timeout=3)
        assert status_of(response) == 413
        assert no_temp_files == []
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_small_body_is_still_answered_normally():
    service, port = await start_site()
    try:
        response = await exchange(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                        b"Content-Length: 5\r\n\r\nhello")
        assert status_of(response) == 405  # the site takes no POST, but read it and said so
        assert texts.HTTP_METHOD_NOT_ALLOWED.encode() in response
        assert head_and_body(response)[0][b"allow"] == b"GET, HEAD"
    finally:
        await service.stopService()


# --- 9. bad paths, Server header, HEAD -------------------------------------------------------


@pytest.mark.parametrize("path", [b"/%00", b"/app.js%00", b"/%00/../x", b"/a%0d%0aSet-Cookie:x",
                                  b"/\x01", b"/%1b[2J", b"/healthz%7f"])
@pytest_twisted.ensureDeferred
async def test_control_bytes_in_the_path_get_400_and_no_critical_log(path):
    service, port = await start_site()
    try:
        with captured_logs() as output:
            response = await exchange(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                                             b"Connection: close\r\n\r\n")
        assert status_of(response) == 400
        if b"%" in path:  # a raw control byte is refused by Twisted's request-line parser
            assert texts.HTTP_BAD_REQUEST.encode() in response
        levels = [json.loads(line)["level"] for line in output.getvalue().splitlines()]
        assert "critical" not in levels and "error" not in levels
    finally:
        await service.stopService()


def test_bad_path_spots_control_bytes_raw_and_encoded():
    assert bad_path(b"/%00") and bad_path(b"/\x00") and bad_path(b"/%7F")
    assert not bad_path(b"/app.js") and not bad_path(b"/%C3%B1") and not bad_path(b"/a%20b")


@pytest.mark.parametrize("path", ["/", "/app.js", "/healthz", "/readyz", "/metrics", "/nada"])
@pytest_twisted.ensureDeferred
async def test_the_server_header_names_no_version(path):
    service, port = await start_site()
    try:
        response = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                        "Connection: close\r\n\r\n".encode())
        headers, _ = head_and_body(response)
        assert headers[b"server"] == b"PsicoIA"
        assert b"Twisted" not in response
    finally:
        await service.stopService()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/app.js", "/nada"])
@pytest_twisted.ensureDeferred
async def test_head_answers_headers_only_without_twisted_warning(path):
    service, port = await start_site()
    try:
        with captured_logs() as output:
            response = await exchange(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n"
                                            "Connection: close\r\n\r\n".encode())
        headers, body = head_and_body(response)
        assert body == b"" and int(headers[b"content-length"]) > 0
        assert "eat it" not in output.getvalue()
    finally:
        await service.stopService()


# --- 8. operators' endpoints by address -------------------------------------------------------


async def get(port: int, path: str) -> tuple[int, bytes]:
    response = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n\r\n".encode())
    return status_of(response), head_and_body(response)[1]


@pytest_twisted.ensureDeferred
async def test_metrics_and_details_only_for_allowed_addresses():
    # 127.0.0.1 is the only address a test may use: make it a stranger.
    service, port = await start_site(metrics_allowed=("10.0.0.0/8",))
    try:
        code, body = await get(port, "/metrics")
        assert code == 403 and b"psicoia_" not in body
        assert texts.HTTP_FORBIDDEN.encode() in body
        code, body = await get(port, "/readyz")
        assert code == 200 and json.loads(body) == {"status": "ready"}
        code, body = await get(port, "/healthz")
        assert code == 200 and json.loads(body) == {"status": "ok"}
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_loopback_sees_metrics_and_details_by_default():
    service, port = await start_site()
    try:
        code, body = await get(port, "/metrics")
        assert code == 200 and b"psicoia_connections_open" in body
        code, body = await get(port, "/readyz")
        assert code == 200 and "listeners" in json.loads(body)
        code, body = await get(port, "/healthz")
        health = json.loads(body)
        assert code == 200 and health["connections"] == 0  # the health check itself is not one
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_metrics_expose_no_created_timestamps():
    service, port = await start_site()
    try:
        service.instruments.crisis_detected("tcp")
        code, body = await get(port, "/metrics")
        assert code == 200 and b"psicoia_crisis_detections_total" in body
        assert b"_created" not in body
    finally:
        await service.stopService()


# --- 7. escape sequences never reach the text log raw -----------------------------------------


@pytest_twisted.ensureDeferred
async def test_escape_sequences_in_a_rejected_handshake_never_reach_the_text_log_raw():
    output = io.StringIO()
    observer = make_observer(LogConfig(format="text", level="debug"), output)
    globalLogPublisher.addObserver(observer)
    service, port = await start_site()
    try:
        evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"
        for headers in [f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13{evil}",
                        f"Upgrade: websocket{evil}\r\nConnection: Upgrade",
                        f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        f"Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example{evil}",
                        f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {evil}\r\nSec-WebSocket-Version: 13"]:
            await exchange(port, (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
                                  "\r\n").encode("latin-1"))
        await exchange(port, f"GET /x{evil} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       .encode("latin-1"))
    finally:
        await service.stopService()
        globalLogPublisher.removeObserver(observer)
    text = output.getvalue()
    assert "\\x1b" in text  # something was logged, escaped
    assert "\x1b" not in text and "\x07" not in text
