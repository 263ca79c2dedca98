"""A listener that cannot bind: one line naming it, the address and the reason; exit 2.

Real ``twistd`` processes, as in tests/test_launch.py; the port in use is held by this test.
"""

from __future__ import annotations

import socket
import subprocess

from tests.test_launch import TWISTD, child_env


def test_port_in_use_gives_one_line_and_exit_2_with_nothing_left_running(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        busy = holder.getsockname()[1]
        config = tmp_path / "config.yaml"
        # tcp binds first (a free port), then http fails: nothing may stay up half-started.
        config.write_text(
            "server:\n"
            "  tcp: \"tcp:0:interface=127.0.0.1\"\n"
            "  websocket: null\n"
            f"  http: \"tcp:{busy}:interface=127.0.0.1\"\n", encoding="utf-8")
        pidfile = tmp_path / "twistd.pid"
        result = subprocess.run(
            [TWISTD, "-n", f"--pidfile={pidfile}", "psicoia", "--config", str(config)],
            cwd=tmp_path, env=child_env(), capture_output=True, timeout=60)
    assert result.returncode == 2, result.stderr.decode()
    errors = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert errors == [f"psicoia: cannot listen: http on tcp:{busy}:interface=127.0.0.1: "
                      "Address already in use"]
    assert "Traceback" not in result.stdout.decode()
    assert not pidfile.exists(), "twistd cleaned up its pid file"


def test_gateway_listener_that_cannot_bind_exits_2_too(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        busy = holder.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text(
            "server:\n"
            f"  websocket: \"tcp:{busy}:interface=127.0.0.1\"\n"
            "  http: null\n", encoding="utf-8")
        result = subprocess.run(
            [TWISTD, "-n", "--pidfile=", "psicoia-gateway", "--config", str(config),
             "--upstream", "tcp:127.0.0.1:1"],
            cwd=tmp_path, env=child_env(), capture_output=True, timeout=60)
    assert result.returncode == 2, result.stderr.decode()
    assert result.stderr.decode().strip() == (
        f"psicoia: cannot listen: websocket on tcp:{busy}:interface=127.0.0.1: "
        "Address already in use")
