"""
What ``bench/run`` does: start the processes, run the standard scenarios, write the report.

Scenarios (docs/benchmarks.md explains each):

(a) overhead    provider 200 ms, 100 TCP clients x 10 messages: latency minus 200 ms
(b) throughput  provider 0 ms, 50 TCP clients x 40 messages: messages/s, CPU ms per message
(c) websocket   (a) over WebSocket, against the same server in the same rounds
(d) idle        10,000 idle TCP connections: RSS per connection, time to accept them all
(e) saturation  max_in_flight 20, 500 users, open loop above capacity: queue wait, busy notices
(f) floor       the floor server under (a) and (b), in the same rounds, as ratios
(l) loaded      provider 200 ms, 100 TCP clients x 5 messages, no think time (~500 messages/s
                offered), then 2x and 4x that in open loop; PsicoIA as configured by default
                (sqlite storage and streaming, once they exist) against a floor that sends the
                provider the same work; CPU per message from /proc as the primary ratio
(s) storage     (b) with storage.backend sqlite against memory: CPU per message
(t) streaming   provider streams 40 chunks over 400 ms, 100 TCP clients x 3 messages: CPU with
                and without streaming, throughput against a streaming floor; time to first
                byte added over the provider's first chunk (stamped by the provider in that
                chunk), judged on the wire (bench/wire_times.py: the kernel's packet times on
                lo, the chunk leaving the provider to its text leaving the server) at 5
                independent clients x 12 messages (think time 0-600 ms); also read back by
                the load generator, at 100 clients (the 2-core box saturated: reported, not
                judged), against a bare relay (bench/wake_floor.py), and end to end against
                the provider asked directly (bench/direct.py)
(h) hostile     polite p99 alone and while a chat flooder, slow-header connections and a
                multi-range flood run, in interleaved rounds (medians)
(r) redis       storage.backend redis against memory (CPU per message)
(m) many        two instances on one Redis behind HAProxy against one, and a model of how it
                scales with cores (bench/scale.py)

Rounds of (a)/(c)/(f) and (b)/(f) are interleaved (PsicoIA, floor, PsicoIA over WebSocket, ...)
so a noisy neighbour on the shared machine hits both sides alike; medians are reported.
A scenario whose feature is not in this version of PsicoIA (no ``storage.backend``, no
``llm.stream``, no Redis backend) is skipped with a line in the report saying so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

from .common import LOCAL, free_port, log, wait_until_quiet
from .report import render, targets
from .report_features import extra_targets, extra_tables
from .scenarios import OPEN_LIMITS, FeatureScenarios, feature, sqlite_written
from .scale import scenario_scale
from .fake_provider import REPLY

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
PLOT_NAME = "benchmarks-latency.png"
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
KEY_ENV = "BENCH_PROVIDER_KEY"

FULL = {
    "overhead": {"latency_ms": 200, "clients": 100, "messages": 10, "think_ms": 500, "rounds": 3},
    "throughput": {"latency_ms": 0, "clients": 50, "messages": 40, "rounds": 3},
    "idle": {"connections": 10000, "connect_concurrency": 200},
    "saturation": {"latency_ms": 200, "users": 500, "messages": 4, "rate": 200,
                   "max_in_flight": 20, "max_waiting": 200},
    "warmup": {"clients": 20, "messages": 3},
    "hostile": {"latency_ms": 50, "clients": 20, "messages": 5, "think_ms": 2000,
                "slow_headers": 200, "trickle_ms": 500, "range_workers": 4, "flooders": 1,
                "rounds": 3},
    "loaded": {"latency_ms": 200, "clients": 100, "messages": 5, "rounds": 3,
               "open_clients": 500, "open_messages": 4, "open_spacing_s": 0.5,
               "open_factors": [2, 4]},
    "storage": {"latency_ms": 0, "clients": 50, "messages": 40, "rounds": 3},
    "streaming": {"latency_ms": 200, "chunks": 40, "stream_ms": 400, "clients": 100,
                  "messages": 3, "rounds": 3, "light_clients": 5, "light_messages": 12,
                  "light_think_ms": 300},
    "redis": {"latency_ms": 0, "clients": 50, "messages": 40, "rounds": 3},
}
SMOKE = {
    "overhead": {"latency_ms": 20, "clients": 4, "messages": 3, "think_ms": 10, "rounds": 1},
    "throughput": {"latency_ms": 0, "clients": 4, "messages": 5, "rounds": 1},
    "idle": {"connections": 100, "connect_concurrency": 50},
    "saturation": {"latency_ms": 50, "users": 20, "messages": 2, "rate": 100,
                   "max_in_flight": 2, "max_waiting": 4},
    "warmup": {"clients": 2, "messages": 1},
    "hostile": {"latency_ms": 10, "clients": 3, "messages": 3, "think_ms": 10,
                "slow_headers": 10, "trickle_ms": 100, "range_workers": 1, "flooders": 1,
                "flood_bytes": 65536, "rounds": 1},
    "loaded": {"latency_ms": 20, "clients": 4, "messages": 2, "rounds": 1,
               "open_clients": 8, "open_messages": 2, "open_spacing_s": 0.02,
               "open_factors": [2]},
    "storage": {"latency_ms": 0, "clients": 4, "messages": 5, "rounds": 1},
    "streaming": {"latency_ms": 20, "chunks": 5, "stream_ms": 40, "clients": 3, "messages": 2,
                  "rounds": 1, "light_clients": 2, "light_messages": 2, "light_think_ms": 20},
    "redis": {"latency_ms": 0, "clients": 4, "messages": 5, "rounds": 1},
}
RAISED_RATE_LIMITS = {"rate_max_messages": 1000000, "rate_window_seconds": 1}
# Every scenario, in the order a full run takes them.
ALL_SCENARIOS = ["l", "a", "b", "s", "t", "r", "m", "h", "d", "e"]


# Every name the server's configuration reads from the environment: cleared for the server.
LEGACY_ENV = ("GROQ_API_KEY", "MODEL_NAME", "LLM_URL", "APP_PORT", "MAX_IN_FLIGHT",
              "RATE_MAX_MESSAGES", "RATE_WINDOW_SECONDS", "LLM_TEMPERATURE", "LLM_MAX_TOKENS",
              "LLM_TIMEOUT_SECONDS", "LLM_MAX_RETRIES", "LLM_BACKOFF_INITIAL", "LLM_BACKOFF_MAX",
              "LLM_HISTORY_MAX_MESSAGES", "LLM_INPUT_TOKEN_BUDGET", "LLM_CHARS_PER_TOKEN")


def shown(command: list[str]) -> str:
    """A command as a person would type it from the repository root."""
    parts = []
    for part in command:
        part = str(part)
        if part == sys.executable:
            part = "python"
        elif part.startswith(str(REPO) + "/"):
            part = os.path.relpath(part, REPO)
        parts.append(part)
    return shlex.join(parts)


class Processes:
    """Every process bench/run starts; :meth:`stop_all` ends them by pid, in reverse order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[subprocess.Popen] = []
        self.commands: list[str] = []

    def start(self, name: str, command: list[str], env: Optional[dict] = None,
              listening_line: bool = False) -> tuple[subprocess.Popen, Optional[int]]:
        self.commands.append(shown(command))
        stderr = open(self.workdir / f"{name}.err", "ab")
        stdout = subprocess.PIPE if listening_line else open(self.workdir / f"{name}.out", "ab")
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env,
                                cwd=self.workdir, stdin=subprocess.DEVNULL)
        self.running.append(proc)
        port = None
        if listening_line:
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            line = proc.stdout.readline().decode() if ready else ""
            if not line.startswith("listening "):
                raise RuntimeError(f"{name} did not start: {line!r}; see {stderr.name}")
            port = int(line.split()[1])
        return proc, port

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> None:
        started = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if time.monotonic() - started > 2:
            log(f"stopping {shown(proc.args)[:60]} took {time.monotonic() - started:.1f} s")
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)


class Bench(FeatureScenarios):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.params = json.loads(json.dumps(SMOKE if args.smoke else FULL))
        if args.rounds:
            for name in ("overhead", "throughput", "loaded", "storage", "streaming", "redis"):
                self.params[name]["rounds"] = args.rounds
        self.workdir = Path(tempfile.mkdtemp(prefix="psicoia-bench-"))
        self.procs = Processes(self.workdir)
        self.python = sys.executable
        self.results: dict[str, Any] = {}
        self.latencies: dict[str, list[float]] = {}
        self.loadgen_commands: list[str] = []
        self.problems: list[str] = []  # errors: bench/run exits non-zero
        self.notes: list[str] = []  # worth saying in the report, not a failure
        self.websocket_available: Optional[bool] = None
        self.argv: list[str] = []
        self.skipped: dict[str, str] = {}  # scenario -> why it did not run (a report line)
        self.default_limits: set[str] = set()  # servers that keep the shipped rate limits

    # --- processes ----------------------------------------------------------------------------

    def provider(self, latency_ms: float) -> tuple[subprocess.Popen, str]:
        command = [self.python, "-m", "bench.fake_provider", "--latency-ms", str(latency_ms),
                   "--duration", str(self.args.max_process_seconds)]
        proc, port = self.procs.start(f"provider-{latency_ms}", command, env=self._bench_env(),
                                      listening_line=True)
        return proc, f"http://{LOCAL}:{port}/v1"

    def floor(self, provider_url: str, pool: int, stream: bool = False,
              classify: Optional[bool] = None) -> tuple[subprocess.Popen, int]:
        """The floor server; ``classify`` (default: when this version has the second opinion,
        on in every scenario since the servers have a key) sends its classification call too,
        so the floor does the same provider-side work as PsicoIA."""
        command = [self.python, "-m", "bench.floor", "--provider", provider_url,
                   "--pool", str(pool), "--duration", str(self.args.max_process_seconds)]
        if stream:
            command.append("--stream")
        if classify is None:
            classify = feature("safety", "classifier")
        if classify:
            command.append("--classify")
        return self.procs.start("floor", command, env=self._bench_env(), listening_line=True)

    def stream_provider(self, latency_ms: float, chunks: int,
                        stream_ms: float) -> tuple[subprocess.Popen, str]:
        """The timed-stream fake provider; its first chunks carry their write time (``--stamp``,
        read back by the load generator as ``after_chunk``)."""
        command = [self.python, "-m", "bench.fake_provider", "--latency-ms", str(latency_ms),
                   "--stream-chunks", str(chunks), "--stream-ms", str(stream_ms), "--stamp",
                   "--duration", str(self.args.max_process_seconds)]
        proc, port = self.procs.start(f"provider-stream-{latency_ms}", command,
                                      env=self._bench_env(), listening_line=True)
        return proc, f"http://{LOCAL}:{port}/v1"

    def sqlite(self, name: str) -> Optional[dict]:
        """``storage`` settings for a sqlite store in the run's temp folder (None: no storage
        in this version, the server keeps conversations in memory)."""
        if not feature("storage", "backend"):
            return None
        return {"backend": "sqlite", "sqlite_path": str(self.workdir / f"{name}.db")}

    def shipped(self, name: str) -> Optional[dict]:
        """The storage of the default config (sqlite), in the temp folder."""
        return self.sqlite(name)

    def _bench_env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def server(self, name: str, provider_url: str, llm: dict, profile: Optional[Path] = None,
               websocket: bool = True, storage: Optional[dict] = None,
               extra: Optional[dict] = None, code: Optional[Path] = None,
               drop: tuple[str, ...] = ()) -> dict:
        """Start ``twistd -n psicoia`` with a generated config; return its pid and ports.

        ``extra``: more config sections (e.g. ``{"safety": {"classifier": "off"}}``); ``code``:
        another checkout whose ``psicoia`` the server imports (bench/ab.py's A/B runs);
        ``drop``: config sections left out (an older checkout rejects sections it lacks)."""
        ports = {"tcp": free_port(), "http": free_port()}
        if websocket:
            ports["websocket"] = free_port()
        listen = "tcp:{}:interface=127.0.0.1:backlog=1024"
        settings = {
            "server": {
                "tcp": listen.format(ports["tcp"]),
                "websocket": listen.format(ports["websocket"]) if websocket else None,
                "http": f"tcp:{ports['http']}:interface=127.0.0.1",
                "max_connections": 20000,
                "max_connections_per_ip": 20000,
                "shutdown_grace_seconds": 2,
            },
            "llm": {"base_url": provider_url, "api_key_env": KEY_ENV, **llm},
            "limits": {} if name in self.default_limits else dict(RAISED_RATE_LIMITS),
            "log": {"format": "text", "level": self.args.log_level},
            # The shipped default backend, in the run's own folder (never the repository).
            "storage": {"sqlite_path": str(self.workdir / f"{name}.db")},
        }
        if feature("safety", "classifier_max_in_flight"):
            # The second opinion's own budget (4 by default) would skip most messages under
            # load, while the floor (--classify) classifies every one: lift it, so both send
            # the provider the same work.
            settings["safety"] = {"classifier_max_in_flight": 100000}
        if storage is None:  # the shipped default (sqlite), in a file of its own
            storage = self.shipped(name)
        if storage:
            settings["storage"] = storage
        for section, values in (extra or {}).items():
            settings.setdefault(section, {}).update(values)
        for section in drop:
            settings.pop(section, None)
        config = self.workdir / f"{name}.yaml"
        config.write_text(json.dumps(settings, indent=2))  # JSON is YAML
        env = {k: v for k, v in self._bench_env().items()
               if not k.startswith("PSICOIA_") and k not in LEGACY_ENV}
        env[KEY_ENV] = "bench-dummy-key"
        if code is not None:
            env["PYTHONPATH"] = str(code) + os.pathsep + env["PYTHONPATH"]
        twistd = Path(self.python).parent / "twistd"
        launcher = [str(twistd)] if twistd.exists() else [
            self.python, "-c", "from twisted.scripts.twistd import run; run()"]
        command = [*launcher, "-n", "--pidfile=", "--logfile", str(self.workdir / f"{name}.log")]
        if profile is not None:
            command += ["--profile", str(profile), "--profiler", "cprofile", "--savestats"]
        command += ["psicoia", "--config", str(config)]
        proc, _ = self.procs.start(name, command, env=env)
        self._wait_http(ports["http"], proc, name)
        if websocket and self.websocket_available is None:
            self.websocket_available = self._accepts(ports["websocket"])
            if not self.websocket_available:
                log("no WebSocket listener: scenario (c) is skipped")
                self.notes.append("no WebSocket listener answered: scenario (c) skipped")
        return {"proc": proc, "pid": proc.pid, "ports": ports, "config": config}

    def _wait_http(self, port: int, proc: subprocess.Popen, name: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; "
                                   f"see {self.workdir / (name + '.log')}")
            try:
                with urllib.request.urlopen(f"http://{LOCAL}:{port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer /healthz within 30 s")

    @staticmethod
    def _accepts(port: int) -> bool:
        import socket

        try:
            with socket.create_connection((LOCAL, port), timeout=2):
                return True
        except OSError:
            return False

    def loadgen(self, mode: str, port: int, pid: int, *options: str,
                latencies: Optional[str] = None, timeout: float = 180) -> dict:
        command = [self.python, "-m", "bench.loadgen", mode, "--port", str(port),
                   "--server-pid", str(pid), "--timeout", str(timeout), *options]
        if latencies:
            command += ["--latencies-file", str(self.workdir / latencies)]
        if mode == "chat" and not self.args.smoke:
            wait_until_quiet(pid)  # the previous run's leftovers are not this run's CPU
        self.loadgen_commands.append(shown(command))
        done = subprocess.run(command, capture_output=True, env=self._bench_env(),
                              cwd=REPO, timeout=timeout + 90, stdin=subprocess.DEVNULL)
        lines = done.stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"load generator printed nothing: {done.stderr.decode()[-500:]}")
        result = json.loads(lines[-1])
        if latencies:
            path = self.workdir / latencies
            if path.exists():
                self.latencies.setdefault(latencies.rsplit("-", 1)[0], []).extend(
                    json.loads(path.read_text()))
        return result

    def direct(self, provider_port: int, clients: int, requests: int,
               timeout: float = 120, pause_ms: float = 0.0) -> dict:
        """bench/direct.py: the streamed provider asked directly, ``clients`` x ``requests``
        (``pause_ms`` between a client's requests; the clients start that far apart too)."""
        command = [self.python, "-m", "bench.direct", "--port", str(provider_port),
                   "--clients", str(clients), "--requests", str(requests),
                   "--timeout", str(timeout), "--pause-ms", str(pause_ms)]
        self.loadgen_commands.append(shown(command))
        done = subprocess.run(command, capture_output=True, env=self._bench_env(), cwd=REPO,
                              timeout=timeout + 30, stdin=subprocess.DEVNULL)
        lines = done.stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"bench.direct printed nothing: {done.stderr.decode()[-500:]}")
        return json.loads(lines[-1])

    def wake_floor(self, idle_ms: float, count: int = 40) -> dict:
        """bench/wake_floor.py: the least a bare relay adds here to a chunk after ``idle_ms``
        of idleness (the machine's floor for (t)'s first byte)."""
        command = [self.python, "-m", "bench.wake_floor", "--count", str(count),
                   "--idle-ms", str(idle_ms)]
        self.loadgen_commands.append(shown(command))
        done = subprocess.run(command, capture_output=True, env=self._bench_env(), cwd=REPO,
                              timeout=count * idle_ms / 1000 + 60, stdin=subprocess.DEVNULL)
        lines = done.stdout.decode().strip().splitlines()
        return json.loads(lines[-1]) if lines else {"error": done.stderr.decode()[-300:]}

    def wire_tap(self, provider_port: int, relays: dict[str, int], seconds: float = 600):
        """bench/wire_times.py on ``lo`` while the caller runs load: what each relay (name ->
        its client-facing port) adds to the provider's stamped first chunks, from the kernel's
        packet times. Returns a function that stops the tap and gives, per relay name, its
        latency summary, or ``{"error": ...}`` (no raw socket here: not measured)."""
        until = self.workdir / f"wire-{len(self.procs.commands)}.stop"
        command = [self.python, "-m", "bench.wire_times", "--provider-port", str(provider_port),
                   "--seconds", str(seconds), "--until-file", str(until)]
        for port in relays.values():
            command += ["--relay-port", str(port)]
        try:
            proc, _ = self.procs.start("wire", command, env=self._bench_env(),
                                       listening_line=True)
        except RuntimeError as error:
            return lambda: {"error": str(error)}

        def finish() -> dict:
            until.touch()
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate(timeout=5)
            if proc in self.procs.running:
                self.procs.running.remove(proc)
            lines = out.decode().strip().splitlines()
            if not lines:
                return {"error": "bench.wire_times printed nothing"}
            found = json.loads(lines[-1]).get("relay_added", {})
            return {name: found.get(str(port)) for name, port in relays.items()}

        return finish

    def metrics(self, port: int) -> dict[str, float]:
        with urllib.request.urlopen(f"http://{LOCAL}:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values

    # --- scenarios ----------------------------------------------------------------------------

    def chat(self, port: int, pid: int, p: dict, transport: str = "tcp", tag: str = "",
             extra: tuple = ()) -> dict:
        options = ["--transport", transport, "--clients", str(p["clients"]),
                   "--messages", str(p["messages"]), "--think-ms", str(p.get("think_ms", 0)),
                   *STREAMED_REPLIES, *extra]
        return self.loadgen("chat", port, pid, *options,
                            latencies=f"{tag}-{len(self.loadgen_commands)}" if tag else None)

    def warm(self, port: int, pid: int, transport: str = "tcp") -> None:
        if self.args.smoke:  # toy sizes: the measured runs are the first use, and that is fine
            return
        result = self.chat(port, pid, self.params["warmup"], transport)
        if result.get("errors"):
            self.problems.append(f"warm-up over {transport} had errors: "
                                 f"{result.get('error_examples')}")

    def scenario_overhead(self) -> None:
        """(a), (c) and the floor under (a): interleaved rounds against one provider."""
        p = self.params["overhead"]
        _, url = self.provider(p["latency_ms"])
        server = self.server("server-a", url, dict(OPEN_LIMITS))
        floor_proc, floor_port = self.floor(url, OPEN_LIMITS["max_in_flight"])
        tcp = server["ports"]["tcp"]
        ws = server["ports"].get("websocket") if self.websocket_available else None
        self.warm(tcp, server["pid"])
        self.warm(floor_port, floor_proc.pid)
        if ws:
            self.warm(ws, server["pid"], "ws")
        rounds: dict[str, list] = {"psicoia": [], "floor": [], "websocket": []}
        for number in range(p["rounds"]):
            log(f"(a)/(c)/(f) round {number + 1}/{p['rounds']}")
            rounds["psicoia"].append(self.chat(tcp, server["pid"], p, tag="a-psicoia"))
            rounds["floor"].append(self.chat(floor_port, floor_proc.pid, p, tag="a-floor"))
            if ws:
                rounds["websocket"].append(self.chat(ws, server["pid"], p, "ws", tag="c-ws"))
        self.results["overhead"] = {"params": p, "rounds": rounds}
        self.procs.stop_all()

    def scenario_throughput(self) -> None:
        """(b) and the floor under (b)."""
        p = self.params["throughput"]
        _, url = self.provider(p["latency_ms"])
        server = self.server("server-b", url, dict(OPEN_LIMITS), websocket=False)
        floor_proc, floor_port = self.floor(url, OPEN_LIMITS["max_in_flight"])
        tcp = server["ports"]["tcp"]
        self.warm(tcp, server["pid"])
        self.warm(floor_port, floor_proc.pid)
        rounds: dict[str, list] = {"psicoia": [], "floor": []}
        for number in range(p["rounds"]):
            log(f"(b)/(f) round {number + 1}/{p['rounds']}")
            rounds["psicoia"].append(self.chat(tcp, server["pid"], p, tag="b-psicoia"))
            rounds["floor"].append(self.chat(floor_port, floor_proc.pid, p, tag="b-floor"))
        self.results["throughput"] = {"params": p, "rounds": rounds}
        self.procs.stop_all()

    def _profile_run(self, url_latency: float, params: dict, path: Path, scenario: str,
                     llm: dict, storage: Optional[dict], floor_stream: bool) -> None:
        """A scenario once more with the server (twistd --profile) and the floor under
        cProfile, one after the other; writes the top functions and a per-module comparison."""
        _, url = self.provider(url_latency)
        server = self.server("server-profile", url, llm, profile=path, websocket=False,
                             storage=storage)
        self.warm(server["ports"]["tcp"], server["pid"])
        ours = self.chat(server["ports"]["tcp"], server["pid"], params)
        self.procs.stop(server["proc"])
        floor_path = self.workdir / "floor.pstats"
        command = [self.python, "-m", "cProfile", "-o", str(floor_path), "-m", "bench.floor",
                   "--provider", url, "--pool", str(llm["max_in_flight"]),
                   "--duration", str(self.args.max_process_seconds)]
        if floor_stream:
            command.append("--stream")
        if feature("safety", "classifier"):
            command.append("--classify")
        floor_proc, floor_port = self.procs.start("floor-profile", command,
                                                  env=self._bench_env(), listening_line=True)
        self.warm(floor_port, floor_proc.pid)
        floor = self.chat(floor_port, floor_proc.pid, params)
        self.procs.stop_all()  # SIGTERM: the reactor stops and cProfile writes its file
        from .profile_report import compare

        self.out_dir.mkdir(parents=True, exist_ok=True)
        target = self.out_dir / "benchmarks-profile.txt"
        target.write_text(compare(path, floor_path, ours, floor, scenario))
        self.results["profile"] = target.name
        self.results["profile_scenario"] = scenario

    def scenario_idle(self) -> None:
        """(d): many idle TCP connections with their session state; a fresh server for each
        variant: greeted only, after one message each (history and rate-limit state) with
        memory storage, and after one message each with the shipped sqlite storage (where
        history need not stay in RAM for idle users), when this version has storage."""
        p = self.params["idle"]
        variants = [("idle", 0, None), ("idle_chatted", 1, None)]
        if feature("storage", "backend"):
            variants = [("idle", 0, self.shipped("server-idle")),
                        ("idle_chatted", 1, {"backend": "memory"}),
                        ("idle_chatted_sqlite", 1, self.sqlite("server-idle-sqlite"))]
        else:
            self.notes.append("(d) with sqlite storage not run: storage.backend is not in this "
                              "version's configuration; the figures are with history in memory")
        for key, say, storage in variants:
            _, url = self.provider(0)
            server = self.server(f"server-{key}", url, dict(OPEN_LIMITS), websocket=False,
                                 storage=storage)
            log(f"(d) {p['connections']} idle connections, {say} message(s) each first")
            result = self.loadgen("idle", server["ports"]["tcp"], server["pid"],
                                  "--connections", str(p["connections"]),
                                  "--connect-concurrency", str(p["connect_concurrency"]),
                                  "--say", str(say))
            self.procs.stop_all()
            backend = (storage or {}).get("backend", "memory")
            if backend == "sqlite" and say and not sqlite_written(storage):
                backend += " (configured; nothing written: not wired in this version)"
            self.results[key] = {"params": p, "result": result, "storage": backend}

    def scenario_saturation(self) -> None:
        """(e): more users than the provider cap can serve, open loop at 2x capacity."""
        p = self.params["saturation"]
        _, url = self.provider(p["latency_ms"])
        llm = {"max_in_flight": p["max_in_flight"], "max_waiting": p["max_waiting"]}
        server = self.server("server-e", url, llm, websocket=False)
        before = self.metrics(server["ports"]["http"])
        log(f"(e) {p['users']} users, open loop {p['rate']}/s")
        result = self.chat(server["ports"]["tcp"], server["pid"],
                           {"clients": p["users"], "messages": p["messages"]},
                           tag="e-psicoia", extra=("--rate", str(p["rate"]),
                                                   "--connect-concurrency", "200"))
        after = self.metrics(server["ports"]["http"])
        self.results["saturation"] = {"params": p, "result": result,
                                      "queue_wait": queue_wait(before, after),
                                      "busy_counted_by_server": busy_count(before, after)}
        self.procs.stop_all()

    @property
    def out_dir(self) -> Path:
        if self.args.out_dir:
            return Path(self.args.out_dir)
        if self.args.smoke:  # never over the real report; the same folder every time
            return Path(tempfile.gettempdir()) / "psicoia-bench-smoke"
        return DOC.parent

    def run(self) -> int:
        started = time.time()
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        chosen = self.args.only.split(",") if self.args.only else ALL_SCENARIOS
        steps = {"a": self.scenario_overhead, "b": self.scenario_throughput,
                 "d": self.scenario_idle, "e": self.scenario_saturation,
                 "h": self.scenario_hostile, "l": self.scenario_loaded,
                 "s": self.scenario_storage, "t": self.scenario_streaming,
                 "r": self.scenario_redis, "m": lambda: scenario_scale(self)}
        try:
            for key in chosen:
                try:
                    steps[key]()
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    self.problems.append(f"scenario {key} failed: {error}")
                    log(f"scenario {key} failed: {error}")
                finally:
                    self.procs.stop_all()
        finally:
            self.procs.stop_all()
        load_after = Path("/proc/loadavg").read_text().split()[:3]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.results["skipped"] = dict(self.skipped)
        summary = targets(self.results, self.websocket_available) + extra_targets(self.results)
        plot = None
        try:
            from .plot import plot_latencies

            plot = plot_latencies(self.latencies, self.results, self.out_dir / PLOT_NAME)
        except ImportError as error:  # matplotlib is the optional ``bench`` extra
            self.notes.append(f"no plot: {error} (pip install -e '.[bench]')")
        document = render(self.results, summary, machine_facts(load_before, load_after),
                          commands=self.procs.commands, loadgen=self.loadgen_commands,
                          plot=plot, problems=self.problems + self.notes
                          + [f"({key}) skipped: {why}" for key, why in self.skipped.items()],
                          smoke=self.args.smoke,
                          seconds=time.time() - started,
                          analysis=ANALYSIS.read_text() if ANALYSIS.exists() else "",
                          invocation=shlex.join(["bench/run", *self.argv]),
                          sections=extra_tables)
        target = self.out_dir / DOC.name
        target.write_text(document)
        if self.args.smoke or self.args.out_dir:  # raw results, for tests and comparisons
            (self.out_dir / "benchmarks.json").write_text(json.dumps(
                {"results": self.results, "targets": summary, "problems": self.problems,
                 "notes": self.notes}, indent=1, default=str))
        log(f"wrote {target}")
        for line in summary:
            log(f"target {line['name']}: {line['value']} ({line['verdict']})")
        errors = count_errors(self.results)
        if errors or self.problems:
            log(f"errors: {errors}; problems: {self.problems}")
            return 1
        return 0


# A streamed reply may keep the last word's trailing space (bench/fake_provider.py sends one
# chunk per word, or REPLY x 4 in timed chunks): the load generator accepts all three shapes.
STREAMED_REPLIES = ("--also-expect", REPLY + " ", "--also-expect", " ".join([REPLY] * 4))


def queue_wait(before: dict, after: dict) -> dict:
    """The server's own semaphore-wait histogram over the run: bucket deltas, percentiles."""
    prefix = "psicoia_semaphore_wait_seconds_bucket{le=\""
    buckets = []
    for name, value in after.items():
        if name.startswith(prefix):
            bound = name[len(prefix):].split('"')[0]
            upper = float("inf") if bound == "+Inf" else float(bound)
            buckets.append((upper, value - before.get(name, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    result = {"count": int(total), "buckets": [[b, int(c)] for b, c in buckets]}
    for label, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        bound = next((b for b, c in buckets if total and c >= fraction * total), None)
        result[f"{label}_le_s"] = bound
    return result


def busy_count(before: dict, after: dict) -> int:
    total = 0.0
    for name, value in after.items():
        if name.startswith("psicoia_messages_total{") and 'outcome="busy"' in name:
            total += value - before.get(name, 0.0)
    return int(total)


def count_errors(results: dict) -> int:
    errors = 0
    for name, scenario in results.items():
        if not isinstance(scenario, dict):
            continue
        if "rounds" in scenario:
            for runs in scenario["rounds"].values():
                errors += sum(run.get("errors", 0) + (1 if "failure" in run else 0)
                              for run in runs)
        if "result" in scenario:
            result = scenario["result"]
            errors += result.get("errors", 0) + result.get("failed", 0)
            errors += result.get("closed_early", 0) + (1 if "failure" in result else 0)
    return errors


def machine_facts(load_before, load_after) -> dict:
    import autobahn
    import treq
    import twisted

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "treq": getattr(treq, "__version__", "?"),
        "autobahn": autobahn.__version__,
        "kernel": platform.release(),
        "loadavg_before": " ".join(load_before),
        "loadavg_after": " ".join(load_after),
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny version of every scenario; writes to a temp folder")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(ALL_SCENARIOS)
                        + " (c and f always run with a and b)")
    parser.add_argument("--out-dir", help="where to write benchmarks.md and the plot "
                        "(default docs/, or a temp folder with --smoke)")
    parser.add_argument("--profile", action="store_true",
                        help="also run (l), closed loop, with the server and the floor under "
                        "cProfile; writes benchmarks-profile.txt")
    parser.add_argument("--rounds", type=int,
                        help="interleaved rounds of (a), (b), (l), (s), (t), (r) and (m)")
    parser.add_argument("--log-level", default="warn",
                        help="the server's log.level (warn keeps logging off the hot path)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (logs, configs, .pstats) after a good run")
    parser.add_argument("--max-process-seconds", type=float, default=1800,
                        help="every helper process stops by itself after this long")
    return parser.parse_args(argv)


def main(argv) -> int:
    args = parse(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    bench = Bench(args)
    bench.argv = list(argv)
    code = 1
    try:
        code = bench.run()
        return code
    finally:
        bench.procs.stop_all()
        if code == 0 and not args.keep:  # keep the logs and configs of a failed run
            shutil.rmtree(bench.workdir, ignore_errors=True)
        else:
            log(f"process logs kept in {bench.workdir}")
