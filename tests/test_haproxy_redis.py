"""A real HAProxy (Debian's) in front of two instances on one redis-server: TCP with the PROXY
protocol and WebSocket through it are answered, and each instance's per-IP cap sees the
clients' own addresses (127.0.0.2, 127.0.0.3), not HAProxy's. Also: the shipped deploy files
(deploy/) parse and agree."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import pytest_twisted
import yaml
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from psicoia import config as config_module
from psicoia import texts
from psicoia.ops.connections import REFUSALS
from tests.fake_provider import FakeProvider, serve
from tests.helpers import LineClient, make_config, port_of, start_service
from tests.redis_support import eventually, redis_server  # noqa: F401 (fixture)
from tests.wsclient import GREETING_LINES, connect_ws

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROXIED = "haproxy:tcp:0:interface=127.0.0.1"
LOCAL = "tcp:0:interface=127.0.0.1"


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is missing under CI (.ci/run installs it)")
        warnings.warn("haproxy is not installed: the HAProxy tests are SKIPPED")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_deploy_files_parse_and_agree():
    compose = yaml.safe_load((DEPLOY / "compose.redis.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["volumes"][0].startswith("redis-data:")
    assert services["psicoia"]["deploy"]["replicas"] >= 2
    assert set(services["haproxy"]["ports"]) == {"5001:5001", "8000:8000"}
    loaded = config_module.load(path=str(DEPLOY / "config.redis.yaml"), environ={}, cwd=DEPLOY)
    assert loaded.storage.backend == "redis" and loaded.server.tcp.startswith("haproxy:")
    check = subprocess.run([haproxy_binary(), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    cfg = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    assert "psicoia:5001 send-proxy" in cfg and "bind :8000" in cfg


class HAProxy:
    def __init__(self, binary: str, workdir: Path, tcp_backends, http_backends) -> None:
        self.tcp_port, self.http_port = free_port(), free_port()
        tcp = "\n".join(f"    server a{n} 127.0.0.1:{port} send-proxy"
                        for n, port in enumerate(tcp_backends))
        http = "\n".join(f"    server h{n} 127.0.0.1:{port}"
                         for n, port in enumerate(http_backends))
        path = workdir / "haproxy.cfg"
        path.write_text(f"""
global
    maxconn 200
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
frontend tcp_in
    mode tcp
    bind 127.0.0.1:{self.tcp_port}
    default_backend tcp_out
backend tcp_out
    mode tcp
    balance source
{tcp}
frontend http_in
    mode http
    bind 127.0.0.1:{self.http_port}
    option forwardfor
    default_backend http_out
backend http_out
    mode http
    balance roundrobin
{http}
""", encoding="utf-8")
        self.process = subprocess.Popen([binary, "-db", "-f", str(path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("haproxy did not listen within 10 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def line_client_from(source: str, port: int) -> LineClient:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5,
                                  bindAddress=(source, 0))
    return await connectProtocol(endpoint, LineClient())


class Fleet:
    """Two instances on one Redis behind a real HAProxy (TCP with send-proxy, HTTP)."""

    @classmethod
    async def start(cls, tmp_path, redis_url: str, **server) -> "Fleet":
        fleet = cls()
        fleet.provider = FakeProvider()
        fleet.provider_port, url = await serve(fleet.provider)
        config = make_config(llm={"base_url": url},
                             server={"tcp": PROXIED, "http": LOCAL, **server},
                             storage={"backend": "redis", "redis_url": redis_url})
        fleet.services = [await start_service(config) for _ in range(2)]
        tcp_ports = [await port_of(s, "tcp") for s in fleet.services]
        http_ports = [await port_of(s, "http") for s in fleet.services]
        fleet.proxy = HAProxy(haproxy_binary(), tmp_path, tcp_ports, http_ports)
        fleet.clients = []
        return fleet

    async def client(self, source: str) -> LineClient:
        client = await line_client_from(source, self.proxy.tcp_port)
        self.clients.append(client)
        return client

    async def stop(self) -> None:
        for client in self.clients:
            client.transport.loseConnection()
        self.proxy.stop()
        for service in self.services:
            await service.stopService()
        await self.provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_tcp_and_websocket_through_haproxy_are_answered(tmp_path, redis_server):
    fleet = await Fleet.start(tmp_path, redis_server.url)
    try:
        greeting_lines = 3 + len(texts.GREETING_BODY)
        clients = [await fleet.client(source) for source in ("127.0.0.2", "127.0.0.3")]
        users = set()
        for client in clients:
            greeting = await client.wait_lines(greeting_lines)
            users.add(greeting[0].split()[0])
            client.say("hola")
            lines = await client.wait_lines(greeting_lines + 1)
            assert lines[-1].startswith("Te escucho."), lines
        assert len(users) == 2
        for _ in range(2):  # round robin: one WebSocket on each instance
            ws = await connect_ws(fleet.proxy.http_port, "/ws")
            frames = await ws.wait_frames(GREETING_LINES)
            assert frames[0].startswith("Usuario-") and frames[0].split()[0] not in users
            users.add(frames[0].split()[0])
            ws.say("hola desde el navegador")
            frames = await ws.wait_frames(GREETING_LINES + 1)
            assert frames[-1].startswith("Te escucho."), frames[-1]
            await ws.hang_up()
        assert all(len(service.registry) == 1 for service in fleet.services)
    finally:
        await fleet.stop()


@pytest_twisted.ensureDeferred
async def test_the_per_ip_cap_sees_the_clients_own_addresses_through_haproxy(
        tmp_path, redis_server):
    fleet = await Fleet.start(tmp_path, redis_server.url, max_connections_per_ip=1)
    try:
        greeting_lines = 3 + len(texts.GREETING_BODY)
        for source in ("127.0.0.2", "127.0.0.3"):
            client = await fleet.client(source)
            await client.wait_lines(greeting_lines, timeout=5)
        seen = set()
        for service in fleet.services:
            seen.update(service_registry(service))
        assert seen == {"127.0.0.2", "127.0.0.3"}  # never HAProxy's 127.0.0.1
        # The cap (1 per address) counts 127.0.0.2's own connections: a second one is refused.
        second = await fleet.client("127.0.0.2")
        refused = await second.wait_lines(1, timeout=5)
        assert refused[0] == REFUSALS["per_address"]
    finally:
        await fleet.stop()


def service_registry(service) -> set:
    """The client addresses an instance's connection registry counts (the per-IP cap)."""
    return set(service.registry._per_address)
