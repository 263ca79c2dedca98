"""
Launch, per CONTRACT.md: real ``twistd`` processes (the venv's), each bounded by a timeout.

Listeners bind ``tcp:0:interface=127.0.0.1``; the port is read from the log line
"listening tcp on ...". The WebSocket and HTTP listeners are disabled (null) unless a test
needs them. The provider, when one is needed, is tests/fake_provider.py in this process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater

from psicoia import texts
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import connect_line_client

TWISTD = str(Path(sys.executable).parent / "twistd")
REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"listening tcp on .*?port=(\d+)")
SECRET = "mi-secreto-benteveo"

# Variables that would change the configuration: never inherited by the child.
_CONFIG_VARS = {"GROQ_API_KEY", "MODEL_NAME", "LLM_URL", "APP_PORT", "MAX_IN_FLIGHT",
                "RATE_MAX_MESSAGES", "RATE_WINDOW_SECONDS", "LLM_TEMPERATURE", "LLM_MAX_TOKENS",
                "LLM_TIMEOUT_SECONDS", "LLM_MAX_RETRIES", "LLM_BACKOFF_INITIAL",
                "LLM_BACKOFF_MAX", "LLM_HISTORY_MAX_MESSAGES", "LLM_INPUT_TOKEN_BUDGET",
                "LLM_CHARS_PER_TOKEN"}


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in _CONFIG_VARS and not k.startswith("PSICOIA_")}
    env.update(extra)
    return env


def local_config(tmp_path: Path, extra: str = "", name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(
        "server:\n"
        "  tcp: \"tcp:0:interface=127.0.0.1\"\n"
        "  websocket: null\n"
        "  http: null\n"
        "  shutdown_grace_seconds: 5\n"
        # The model's second opinion would take the fake provider's scripted answers.
        "safety:\n"
        "  classifier: \"off\"\n" + extra,
        encoding="utf-8",
    )
    return str(path)


def run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([TWISTD, *args], cwd=cwd, env=child_env(), capture_output=True,
                          timeout=timeout)


class Twistd(ProcessProtocol):
    """A running ``twistd -n psicoia``: its output so far, its port, its exit code."""

    def __init__(self) -> None:
        self.output = b""
        self.exited: Deferred = Deferred()
        self._port: Deferred = Deferred()

    @classmethod
    def start(cls, args: list[str], cwd: Path, env: dict) -> "Twistd":
        process = cls()
        argv = [TWISTD, "-n", "--pidfile=", "psicoia", *args]
        process.transport = reactor.spawnProcess(process, TWISTD, argv, env=env, path=str(cwd))
        return process

    def outReceived(self, data: bytes) -> None:
        self.output += data
        match = LISTENING.search(self.output)
        if match and not self._port.called:
            self._port.callback(int(match.group(1)))

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        if not self._port.called:
            self._port.errback(AssertionError(f"twistd ended before listening:\n{self.text}"))
        self.exited.callback(reason.value.exitCode)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def port(self, timeout: float = 30) -> Deferred:
        return self._port.addTimeout(timeout, reactor)

    def signal(self, name: str) -> None:
        self.transport.signalProcess(name)

    async def exit_code(self, timeout: float = 30) -> int:
        return await self.exited.addTimeout(timeout, reactor)

    def kill(self) -> None:
        if not self.exited.called:
            self.transport.signalProcess("KILL")


async def greeted_client(port: int):
    client = await connect_line_client(port)
    lines = await client.wait_lines(1)
    assert lines[0].startswith("Usuario-")
    count = 1
    while "salir" not in client.lines[count - 1]:
        count += 1
        await client.wait_lines(count)
    return client, count


# --- discovery and bad configs ----------------------------------------------------------------

def test_twistd_help_lists_psicoia(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    assert re.search(rb"^\s+psicoia\s", result.stdout, re.MULTILINE), result.stdout


def test_twistd_psicoia_help_shows_the_config_option(tmp_path):
    result = run(["psicoia", "--help"], tmp_path)
    assert result.returncode == 0
    assert b"--config" in result.stdout


@pytest.mark.parametrize("content, names", [
    ("server:\n  tcp: \"tcp:0:interface=127.0.0.1\"\n  max_conections: 5\n",
     "server.max_conections: unknown key"),
    ("server:\n  tcp: \"tcp:0:interface=127.0.0.1\"\nlimits:\n  rate_max_messages: -2\n",
     "limits.rate_max_messages:"),
    ("server:\n  tcp: \"tcp:oops\"\n", "server.tcp:"),
    ("llm:\n  max_in_flight: many\n", "llm.max_in_flight:"),
    (None, "not found"),
])
def test_bad_config_exits_non_zero_before_listening_with_one_line(tmp_path, content, names):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run(["-n", "--pidfile=", "psicoia", "--config", str(path)], tmp_path)
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0]
    if content is None:
        assert str(path) in lines[0]
    assert b"listening" not in result.stdout


# --- running ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_without_a_key_it_starts_warns_once_and_answers_over_tcp(tmp_path):
    process = Twistd.start(["--config", local_config(tmp_path)], tmp_path, child_env())
    try:
        port = await process.port()
        client, greeting = await greeted_client(port)
        assert client.lines[0] == "Usuario-1 conectado."
        client.say(SECRET)
        lines = await client.wait_lines(greeting + 1)
        assert lines[-1].strip()
        client.say("salir")
        lines = await client.wait_lines(greeting + 2)
        assert lines[-1] == texts.GOODBYE
        await client.closed
        process.signal("TERM")
        assert await process.exit_code() == 0
        assert process.text.count("offline mode") == 1
        assert SECRET not in process.text
    finally:
        process.kill()


@pytest.mark.parametrize("signal_name", ["TERM", "INT"])
@pytest_twisted.ensureDeferred
async def test_a_signal_tells_connected_users_the_service_is_closing_and_exits_zero(
        tmp_path, signal_name):
    process = Twistd.start(["--config", local_config(tmp_path)], tmp_path, child_env())
    try:
        client, greeting = await greeted_client(await process.port())
        process.signal(signal_name)
        lines = await client.wait_lines(greeting + 1)
        assert lines[-1] == texts.SHUTTING_DOWN
        await client.closed.addTimeout(10, reactor)
        assert await process.exit_code() == 0
    finally:
        process.kill()


@pytest_twisted.ensureDeferred
async def test_sigterm_lets_an_in_flight_reply_finish_within_the_grace_period(tmp_path):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    provider.push(Scripted(body=completion("respuesta-en-vuelo"), delay=1.0))
    config = local_config(tmp_path, f"llm:\n  base_url: \"{url}\"\n")
    process = Twistd.start(["--config", config], tmp_path, child_env(GROQ_API_KEY="sk-launch"))
    try:
        client, greeting = await greeted_client(await process.port())
        client.say(SECRET)
        for _ in range(500):  # until the provider holds the request (bounded: 10 s)
            if provider.in_flight:
                break
            await deferLater(reactor, 0.02, lambda: None)
        assert provider.in_flight == 1
        process.signal("TERM")
        try:
            lines = await client.wait_lines(greeting + 2)
        except Exception:
            raise AssertionError(f"{client.lines}\n{process.text}") from None
        assert lines[greeting:] == [texts.SHUTTING_DOWN, "respuesta-en-vuelo"]
        await client.closed.addTimeout(10, reactor)
        assert await process.exit_code() == 0
        assert "sk-launch" not in process.text and SECRET not in process.text
        assert "respuesta-en-vuelo" not in process.text
        assert "offline mode" not in process.text
    finally:
        process.kill()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_without_config_flag_it_reads_config_yaml_from_the_working_directory(tmp_path):
    local_config(tmp_path, "limits:\n  max_line_bytes: 77\n")
    process = Twistd.start([], tmp_path, child_env())
    try:
        client, greeting = await greeted_client(await process.port())
        client.say("x" * 100)
        lines = await client.wait_lines(greeting + 1)
        assert lines[-1] == texts.TOO_LONG.format(limit=77)
        client.say("salir")
        await client.closed.addTimeout(10, reactor)
        process.signal("TERM")
        assert await process.exit_code() == 0
    finally:
        process.kill()


# --- packaging --------------------------------------------------------------------------------

def test_a_non_editable_install_registers_the_twistd_plugin(tmp_path):
    """``pip install .`` (not -e) must make ``psicoia`` appear in ``twistd --help``.

    The wheel is installed with --no-deps into a fresh venv that sees this venv's dependencies
    through a .pth line, but not the source tree (no editable path), so only the installed
    twisted/plugins/psicoia_plugin.py can make the plugin visible.
    """
    target = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True,
                   timeout=60)
    site = next(target.glob("lib/python*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    # Build from a copy: pip builds in the source tree (build/, *.egg-info), and other test
    # runs may share this checkout.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "tests", "bench", "docs",
        "node_modules", "dropin.cache"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(source)],
        capture_output=True, timeout=120, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert (site / "twisted" / "plugins" / "psicoia_plugin.py").exists()
    assert not (site / "twisted" / "__init__.py").exists(), "must not shadow Twisted itself"
    assert not (site / "twisted" / "plugins" / "__init__.py").exists()
    python = str(target / "bin" / "python")
    code = ("import sys; sys.argv = ['twistd', '--help']; "
            "import psicoia, twisted.plugins; "
            "assert %r in psicoia.__file__, psicoia.__file__; "
            "from twisted.scripts.twistd import run; run()") % str(site)
    env = child_env()
    env.pop("PYTHONPATH", None)
    result = subprocess.run([python, "-c", code], capture_output=True, timeout=60, cwd=tmp_path,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(rb"^\s+psicoia\s", result.stdout, re.MULTILINE), result.stdout
