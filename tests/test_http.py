"""The HTTP section of CONTRACT.md with treq against the real site on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import pytest_twisted
import treq

from psicoia.transports.http import content_security_policy, web_root
from tests.helpers import LOCAL, connect_line_client, make_config, port_of, start_service
from tests.wsclient import GREETING_LINES, connect_ws

WEB = Path(__file__).resolve().parent.parent / "web"


class Site:
    def __init__(self, service, port: int) -> None:
        self.service = service
        self.base = f"http://127.0.0.1:{port}"

    async def get(self, path: str, **kwargs):
        response = await treq.get(self.base + path, persistent=False, **kwargs)
        body = await response.content()
        return response, body


async def start_site(api_key="test-key") -> Site:
    service = await start_service(make_config(api_key=api_key, server={"http": LOCAL}))
    return Site(service, await port_of(service, "http"))


def header(response, name: str) -> str:
    return (response.headers.getRawHeaders(name) or [""])[0]


@pytest.mark.parametrize("path, content_type, marker", [
    ("/", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/index.html", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/app.js", "text/javascript; charset=utf-8", b"psicoia.v1"),
    ("/style.css", "text/css; charset=utf-8", b"prefers-color-scheme"),
    ("/icon.svg", "image/svg+xml", b"<svg"),
])
@pytest_twisted.ensureDeferred
async def test_page_files_are_served_with_their_content_types(path, content_type, marker):
    site = await start_site()
    try:
        response, body = await site.get(path)
        assert response.code == 200
        assert header(response, "content-type") == content_type
        assert marker in body
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_page_has_security_headers_allowing_only_self_and_its_websocket():
    site = await start_site()
    try:
        response, _ = await site.get("/")
        csp = header(response, "content-security-policy")
        host = site.base.removeprefix("http://")
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["connect-src"] == f"'self' ws://{host} wss://{host}"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert header(response, "x-content-type-options") == "nosniff"
        assert header(response, "referrer-policy") == "no-referrer"
    finally:
        await site.service.stopService()


def test_csp_never_echoes_a_strange_host_header():
    assert "ws://" not in content_security_policy("evil.example; script-src *")
    assert "ws://" not in content_security_policy(None)
    assert "ws://[::1]:8000 " in content_security_policy("[::1]:8000")


def test_the_page_uses_no_inline_code_no_external_urls_and_no_innerhtml():
    html = (WEB / "index.html").read_text(encoding="utf-8")
    script = (WEB / "app.js").read_text(encoding="utf-8")
    css = (WEB / "style.css").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline scripts (CSP)
    assert " style=" not in html and "on" + "click=" not in html
    for text in (html, script, css):
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text)  # no CDN
        assert "@import" not in text and "url(http" not in text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script
    assert "textContent" in script


@pytest.mark.parametrize("path", ["/nope", "/nope.html", "/web/", "/../setup.cfg", "/%2e%2e/"])
@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404(path):
    site = await start_site()
    try:
        response, body = await site.get(path)
        assert response.code == 404
        assert b"setup.cfg" not in body and b"[metadata]" not in body
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_only_the_allowlisted_page_files_are_reachable(tmp_path, monkeypatch):
    """Dotfiles, backups, subdirectories and symlinks that land in web/ are never served."""
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "secret.txt").write_text("secret", encoding="utf-8")
    (tmp_path / ".env").write_text("GROQ_API_KEY=secret", encoding="utf-8")
    (tmp_path / "app.js~").write_text("secret", encoding="utf-8")
    (tmp_path / "index.html.bak").write_text("secret", encoding="utf-8")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.css"
    outside.write_text("secret", encoding="utf-8")
    (tmp_path / "style.css").symlink_to(outside)  # an allowlisted name, but a symlink
    from psicoia.transports import http as web

    monkeypatch.setattr(web, "web_root", lambda: tmp_path)
    site = await start_site()
    try:
        response, body = await site.get("/")
        assert response.code == 200 and body.startswith(b"<!doctype html>")
        for path in ("/sub/", "/sub/secret.txt", "/.env", "/app.js~", "/index.html.bak",
                     "/style.css", "/index.html/", "/index.html/x"):
            response, body = await site.get(path)
            assert response.code == 404, path
            assert b"secret" not in body and b"secret.txt" not in body
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_healthz_reports_uptime_connections_and_provider_mode():
    site = await start_site()
    try:
        client = await connect_line_client(await port_of(site.service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        socket = await connect_ws(int(site.base.rsplit(":", 1)[1]), "/ws")
        await socket.wait_frames(GREETING_LINES)
        response, body = await site.get("/healthz")
        assert response.code == 200
        assert header(response, "content-type") == "application/json"
        health = json.loads(body)
        assert health["status"] == "ok"
        assert health["connections"] == 2
        assert health["provider"] == "online"
        assert isinstance(health["uptime_seconds"], float) and health["uptime_seconds"] >= 0
        client.transport.loseConnection()
        await socket.hang_up()
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_healthz_says_offline_without_an_api_key():
    site = await start_site(api_key=None)
    try:
        response, body = await site.get("/healthz")
        assert response.code == 200 and json.loads(body)["provider"] == "offline"
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_metrics_are_prometheus_text():
    site = await start_site()
    try:
        response, body = await site.get("/metrics")
        assert response.code == 200
        assert header(response, "content-type").startswith("text/plain")
        assert b"psicoia_connections_open" in body
    finally:
        await site.service.stopService()


@pytest_twisted.ensureDeferred
async def test_plain_get_on_ws_is_not_an_upgrade_and_does_not_crash():
    site = await start_site()
    try:
        response, _ = await site.get("/ws")
        assert response.code in (400, 426)
        response, _ = await site.get("/healthz")
        assert response.code == 200
    finally:
        await site.service.stopService()


def test_web_root_finds_the_page():
    assert (web_root() / "index.html").is_file()


def test_every_page_file_is_packaged_for_non_editable_installs():
    import configparser

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    listed = set(setup["options.data_files"]["share/psicoia/web"].split())
    assert listed == {f"web/{path.name}" for path in WEB.iterdir() if path.is_file()}
