"""A real ``redis-server`` for tests: started on a free 127.0.0.1 port, stopped after.

Skips loudly when ``redis-server`` is missing, but fails under ``CI=true`` (``.ci/run``
installs it). ``RedisServer.stop()``/``start()`` restart it on the same port (outage tests).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Optional

import pytest

from twisted.internet import reactor
from twisted.internet.task import deferLater


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server process without persistence, on ``port``."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def command(self, *args: str) -> bytes:
        """One command over a plain socket (for checks outside the code under test)."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(b"".join(parts))
            return conn.recv(65536)


@pytest.fixture
def redis_server(tmp_path):
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing under CI (.ci/run installs it)")
        warnings.warn("redis-server is not installed: the Redis tests are SKIPPED")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pause(seconds: float):
    """A Deferred firing after ``seconds`` of real time (real-socket tests only)."""
    return deferLater(reactor, seconds, lambda: None)


async def eventually(check, timeout: float = 5.0, step: float = 0.02):
    """Wait (real time, bounded) until ``check()`` is true; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        await pause(step)
