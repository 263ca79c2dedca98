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
(t) streaming   provider streams 40 chunks over 400 ms: time to first byte added, CPU with and
                without streaming, throughput against a streaming floor
(h) hostile     polite p99 alone and while a chat flooder, slow-header connections and a
                multi-range flood run
(r) redis       storage.backend redis against memory (CPU per message); two instances behind
                HAProxy against one

Rounds of (a)/(c)/(f) and (b)/(f) are interleaved (PsicoIA, floor, PsicoIA over WebSocket, ...)
so a noisy neighbour on the shared machine hits both sides alike; medians are reported.
A scenario whose feature is not in this version of PsicoIA (no ``storage.backend``, no
``llm.stream``, no Redis backend) is skipped with a line in the report saying so.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from .common import LOCAL, cpu_seconds, free_port
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
                "slow_headers": 200, "trickle_ms": 500, "range_workers": 4, "flooders": 1},
    "loaded": {"latency_ms": 200, "clients": 100, "messages": 5, "rounds": 3,
               "open_clients": 500, "open_messages": 4, "open_factors": [2, 4]},
    "storage": {"latency_ms": 0, "clients": 50, "messages": 40, "rounds": 3},
    "streaming": {"latency_ms": 200, "chunks": 40, "stream_ms": 400, "clients": 100,
                  "messages": 3, "rounds": 3},
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
                "flood_bytes": 65536},
    "loaded": {"latency_ms": 20, "clients": 4, "messages": 2, "rounds": 1,
               "open_clients": 8, "open_messages": 2, "open_factors": [2]},
    "storage": {"latency_ms": 0, "clients": 4, "messages": 5, "rounds": 1},
    "streaming": {"latency_ms": 20, "chunks": 5, "stream_ms": 40, "clients": 3, "messages": 2,
                  "rounds": 1},
    "redis": {"latency_ms": 0, "clients": 4, "messages": 5, "rounds": 1},
}
# Limits raised so they never interfere with what a scenario measures.
OPEN_LIMITS = {"max_in_flight": 200, "max_waiting": 10000}
# The loaded scenario at 4x offers ~2,000 messages/s to a 200 ms provider: 400 calls at once.
LOADED_LIMITS = {"max_in_flight": 1000, "max_waiting": 100000}
RAISED_RATE_LIMITS = {"rate_max_messages": 1000000, "rate_window_seconds": 1}
# Every scenario, in the order a full run takes them.
ALL_SCENARIOS = ["l", "a", "b", "s", "t", "r", "h", "d", "e"]


def feature(section: str, key: str) -> bool:
    """Whether this version of PsicoIA's configuration has ``section.key``."""
    from psicoia import config

    cls = config.SECTIONS.get(section)
    return cls is not None and key in {f.name for f in dataclasses.fields(cls)}

# Every name the server's configuration reads from the environment: cleared for the server.
LEGACY_ENV = ("GROQ_API_KEY", "MODEL_NAME", "LLM_URL", "APP_PORT", "MAX_IN_FLIGHT",
              "RATE_MAX_MESSAGES", "RATE_WINDOW_SECONDS", "LLM_TEMPERATURE", "LLM_MAX_TOKENS",
              "LLM_TIMEOUT_SECONDS", "LLM_MAX_RETRIES", "LLM_BACKOFF_INITIAL", "LLM_BACKOFF_MAX",
              "LLM_HISTORY_MAX_MESSAGES", "LLM_INPUT_TOKEN_BUDGET", "LLM_CHARS_PER_TOKEN")


def log(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


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


class Bench:
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

    def floor(self, provider_url: str, pool: int,
              stream: bool = False) -> tuple[subprocess.Popen, int]:
        command = [self.python, "-m", "bench.floor", "--provider", provider_url,
                   "--pool", str(pool), "--duration", str(self.args.max_process_seconds)]
        if stream:
            command.append("--stream")
        return self.procs.start("floor", command, env=self._bench_env(), listening_line=True)

    def stream_provider(self, latency_ms: float, chunks: int,
                        stream_ms: float) -> tuple[subprocess.Popen, str]:
        command = [self.python, "-m", "bench.fake_provider", "--latency-ms", str(latency_ms),
                   "--stream-chunks", str(chunks), "--stream-ms", str(stream_ms),
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
               websocket: bool = True, storage: Optional[dict] = None) -> dict:
        """Start ``twistd -n psicoia`` with a generated config; return its pid and ports."""
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
        if storage is None:  # the shipped default (sqlite), in a file of its own
            storage = self.shipped(name)
        if storage:
            settings["storage"] = storage
        config = self.workdir / f"{name}.yaml"
        config.write_text(json.dumps(settings, indent=2))  # JSON is YAML
        env = {k: v for k, v in self._bench_env().items()
               if not k.startswith("PSICOIA_") and k not in LEGACY_ENV}
        env[KEY_ENV] = "bench-dummy-key"
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

    def scenario_hostile(self) -> None:
        """(h): polite chat p99 without and then with the HTTP attackers of issue 16 running
        (slow headers, a range flood) and the chat flooder against the same server. The server
        keeps the shipped rate limits (the flooder meets them); polite clients stay under them."""
        p = self.params["hostile"]
        _, url = self.provider(p["latency_ms"])
        self.default_limits.add("server-h")
        server = self.server("server-h", url, dict(OPEN_LIMITS), websocket=False,
                             storage=self.shipped("server-h"))
        tcp, http = server["ports"]["tcp"], server["ports"]["http"]
        self.warm(tcp, server["pid"])
        log(f"(h) {p['clients']} polite clients, no attackers")
        calm = self.chat(tcp, server["pid"], p, tag="h-calm")
        command = [self.python, "-m", "bench.attackers", "--port", str(http),
                   "--slow-headers", str(p["slow_headers"]), "--trickle-ms",
                   str(p["trickle_ms"]), "--range-workers", str(p["range_workers"])]
        attackers, _ = self.procs.start("attackers", command, env=self._bench_env())
        flooders = [self.procs.start(f"flooder-{n}", [
            self.python, "-m", "bench.flooder", "--port", str(tcp),
            "--seconds", str(self.args.max_process_seconds),
            "--max-bytes", str(p.get("flood_bytes", 0))], env=self._bench_env())[0]
            for n in range(p["flooders"])]
        time.sleep(1.0)  # the slow connections are open and trickling, the flood is on
        log(f"(h) the same, with {p['slow_headers']} slow-header connections and "
            f"{p['range_workers']} range-flood loops")
        attacked = self.chat(tcp, server["pid"], p, tag="h-attacked")
        self.procs.stop(attackers)
        flood = []
        for n, flooder in enumerate(flooders):
            self.procs.stop(flooder)
            out = self.workdir / f"flooder-{n}.out"
            lines = out.read_text().strip().splitlines() if out.exists() else []
            flood.append(json.loads(lines[-1]) if lines else {})
        out = self.workdir / "attackers.out"
        lines = out.read_text().strip().splitlines() if out.exists() else []
        attack = json.loads(lines[-1]) if lines else {}
        self.results["hostile"] = {"params": p, "calm": calm, "attacked": attacked,
                                   "attack": attack, "flood": flood}
        self.procs.stop_all()

    def scenario_loaded(self) -> None:
        """(l): the loaded case of issue 19. Closed loop with no think time (about
        clients / provider latency messages/s offered), then open loop at each of
        ``open_factors`` times that rate; PsicoIA with the shipped defaults (sqlite storage and
        streaming once they exist) against the floor doing the same provider-side work,
        interleaved rounds; the server's CPU per message from /proc is the primary ratio."""
        p = self.params["loaded"]
        stream = feature("llm", "stream")  # on by default once it exists: the floor streams too
        _, url = self.provider(p["latency_ms"])
        server = self.server("server-l", url, dict(LOADED_LIMITS), websocket=False,
                             storage=self.shipped("server-l"))
        floor_proc, floor_port = self.floor(url, LOADED_LIMITS["max_in_flight"], stream=stream)
        tcp = server["ports"]["tcp"]
        self.warm(tcp, server["pid"])
        self.warm(floor_port, floor_proc.pid)
        base_rate = p["clients"] * 1000.0 / p["latency_ms"]
        levels = [("closed", None)] + [(f"{f}x", base_rate * f) for f in p["open_factors"]]
        rounds: dict[str, list] = {}
        load = {"before": loadavg()}
        for number in range(p["rounds"]):
            log(f"(l) round {number + 1}/{p['rounds']}")
            for level, rate in levels:
                if rate is None:
                    shape = p
                    extra: tuple = ()
                else:
                    shape = {"clients": p["open_clients"], "messages": p["open_messages"]}
                    extra = ("--rate", str(rate), "--connect-concurrency", "200")
                for who, port, pid in (("psicoia", tcp, server["pid"]),
                                       ("floor", floor_port, floor_proc.pid)):
                    rounds.setdefault(f"{level}-{who}", []).append(
                        self.chat(port, pid, shape, tag=f"l-{level}-{who}", extra=extra))
        load["after"] = loadavg()
        self.procs.stop_all()
        storage_label = (self.shipped("x") or {}).get("backend", "memory (no storage.backend)")
        if feature("storage", "backend") and not sqlite_written(self.shipped("server-l")):
            storage_label += " configured, but nothing was written to its file (not wired)"
        self.results["loaded"] = {
            "params": p, "rounds": rounds, "levels": [[lv, r] for lv, r in levels],
            "base_rate": base_rate, "loadavg": load, "stream": stream,
            "storage": storage_label}
        self.procs.stop_all()
        if self.args.profile:
            self._profile_run(p["latency_ms"], p, self.workdir / "server-l.pstats",
                              scenario="the loaded scenario (l), closed loop, default config",
                              llm=dict(LOADED_LIMITS), storage=self.shipped("server-profile"),
                              floor_stream=stream)

    def scenario_storage(self) -> None:
        """(s): (b) on a server with sqlite storage against one with memory storage."""
        if not feature("storage", "backend"):
            self.skip("s", "storage.backend is not in this version's configuration "
                      "(branch storage not merged): the sqlite scenario did not run")
            return
        p = self.params["storage"]
        _, url = self.provider(p["latency_ms"])
        servers = {
            "memory": self.server("server-s-memory", url, dict(OPEN_LIMITS), websocket=False,
                                  storage={"backend": "memory"}),
            "sqlite": self.server("server-s-sqlite", url, dict(OPEN_LIMITS), websocket=False,
                                  storage=self.sqlite("server-s-sqlite")),
        }
        for server in servers.values():
            self.warm(server["ports"]["tcp"], server["pid"])
        rounds: dict[str, list] = {key: [] for key in servers}
        for number in range(p["rounds"]):
            log(f"(s) round {number + 1}/{p['rounds']}")
            order = list(servers) if number % 2 == 0 else list(reversed(servers))
            for key in order:
                server = servers[key]
                rounds[key].append(self.chat(server["ports"]["tcp"], server["pid"], p,
                                             tag=f"s-{key}"))
        self.procs.stop_all()
        in_use = sqlite_written(self.sqlite("server-s-sqlite"))
        self.results["storage"] = {"params": p, "rounds": rounds, "in_use": in_use}
        if not in_use:
            self.notes.append("(s) the sqlite server wrote nothing to its database file: storage "
                              "is not wired into the server in this version, so (s) compared "
                              "two servers that differ in nothing")

    def scenario_streaming(self) -> None:
        """(t): the provider streams ``chunks`` chunks over ``stream_ms`` after ``latency_ms``;
        PsicoIA with llm.stream on and off, and the floor streaming, interleaved rounds."""
        if not feature("llm", "stream"):
            self.skip("t", "llm.stream is not in this version's configuration (branch "
                      "streaming not merged): the streaming scenario did not run")
            return
        p = self.params["streaming"]
        _, url = self.stream_provider(p["latency_ms"], p["chunks"], p["stream_ms"])
        storage = {"backend": "memory"} if feature("storage", "backend") else None
        sides = {
            "stream": self.server("server-t-stream", url, {**OPEN_LIMITS, "stream": True},
                                  websocket=False, storage=storage),
            "plain": self.server("server-t-plain", url, {**OPEN_LIMITS, "stream": False},
                                 websocket=False, storage=storage),
        }
        floor_proc, floor_port = self.floor(url, OPEN_LIMITS["max_in_flight"], stream=True)
        targets = [(key, s["ports"]["tcp"], s["pid"]) for key, s in sides.items()]
        targets.append(("floor", floor_port, floor_proc.pid))
        for _, port, pid in targets:
            self.warm(port, pid)
        rounds: dict[str, list] = {key: [] for key, _, _ in targets}
        for number in range(p["rounds"]):
            log(f"(t) round {number + 1}/{p['rounds']}")
            for key, port, pid in targets:
                rounds[key].append(self.chat(port, pid, p, tag=f"t-{key}"))
        self.results["streaming"] = {"params": p, "rounds": rounds}
        self.procs.stop_all()

    def scenario_redis(self) -> None:
        """(r): one instance on Redis against one in memory, (b)'s load, CPU per message; then
        two instances on the same Redis behind HAProxy against one behind the same HAProxy."""
        if not feature("storage", "backend"):
            self.skip("r", "storage.backend is not in this version's configuration (branches "
                      "storage and redis not merged): the Redis scenario did not run")
            return
        redis_server, haproxy = shutil.which("redis-server"), shutil.which("haproxy")
        if not redis_server:
            self.skip("r", "no redis-server on PATH: the Redis scenario did not run")
            return
        p = self.params["redis"]
        redis_port = free_port()
        redis_proc, _ = self.procs.start("redis", [
            redis_server, "--port", str(redis_port), "--bind", LOCAL, "--save", "",
            "--appendonly", "no"])
        wait_port(redis_port)
        redis = {"backend": "redis", "redis_url": f"redis://{LOCAL}:{redis_port}/0"}
        _, url = self.provider(p["latency_ms"])
        try:
            one = self.server("server-r-redis", url, dict(OPEN_LIMITS), websocket=False,
                              storage=redis)
        except RuntimeError as error:
            said = [line for path in (self.workdir / "server-r-redis.log",
                                      self.workdir / "server-r-redis.err") if path.exists()
                    for line in path.read_text(errors="replace").splitlines() if "redis" in line]
            self.skip("r", "a server with storage.backend redis did not start ("
                      + (said[-1].strip()[-160:] if said else str(error))
                      + "): the Redis scenario did not run")
            return
        memory = self.server("server-r-memory", url, dict(OPEN_LIMITS), websocket=False,
                             storage={"backend": "memory"})
        for server in (one, memory):
            self.warm(server["ports"]["tcp"], server["pid"])
        rounds: dict[str, list] = {"redis": [], "memory": []}
        for number in range(p["rounds"]):
            log(f"(r) round {number + 1}/{p['rounds']}")
            for key, server in (("redis", one), ("memory", memory)):
                redis_cpu = cpu_seconds(redis_proc.pid)
                run = self.chat(server["ports"]["tcp"], server["pid"], p, tag=f"r-{key}")
                run["redis_cpu_s"] = round(cpu_seconds(redis_proc.pid) - redis_cpu, 3)
                rounds[key].append(run)
        self.procs.stop(memory["proc"])
        keys = redis_keys(redis_port)
        result: dict = {"params": p, "rounds": rounds, "in_use": bool(keys), "redis_keys": keys}
        if not keys:
            self.notes.append("(r) the Redis instance holds no keys after the Redis rounds: the "
                              "backend is not wired in this version; (r) is not a measurement")
        if not haproxy:
            result["haproxy"] = "no haproxy on PATH: two instances were not measured"
        else:
            two = self.server("server-r-redis-2", url, dict(OPEN_LIMITS), websocket=False,
                              storage=redis)
            self.warm(two["ports"]["tcp"], two["pid"])
            ports = {"one": free_port(), "two": free_port()}
            config = self.workdir / "haproxy.cfg"
            config.write_text(haproxy_config(ports, one["ports"]["tcp"], two["ports"]["tcp"]))
            self.procs.start("haproxy", [haproxy, "-db", "-f", str(config)])
            for port in ports.values():
                wait_port(port)
            spread: dict[str, list] = {"one": [], "two": []}
            for number in range(p["rounds"]):
                log(f"(r) HAProxy round {number + 1}/{p['rounds']}")
                for key in ("one", "two"):
                    cpu_before = cpu_seconds(two["pid"])
                    run = self.chat(ports[key], one["pid"], p, tag=f"r-haproxy-{key}")
                    run["second_instance_cpu_s"] = round(cpu_seconds(two["pid"]) - cpu_before, 3)
                    spread[key].append(run)
            result["haproxy"] = spread
        self.results["redis"] = result
        self.procs.stop_all()

    def skip(self, key: str, why: str) -> None:
        log(f"({key}) skipped: {why}")
        self.skipped[key] = why

    # --- the whole run ------------------------------------------------------------------------

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
                 "r": self.scenario_redis}
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
        from .report import render, targets

        self.results["skipped"] = dict(self.skipped)
        summary = targets(self.results, self.websocket_available)
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
                          invocation=shlex.join(["bench/run", *self.argv]))
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


def sqlite_written(storage: Optional[dict]) -> bool:
    """Whether the sqlite database of these ``storage`` settings (or its -wal) holds data."""
    if not storage or storage.get("backend") != "sqlite":
        return False
    files = [Path(storage["sqlite_path"]), Path(storage["sqlite_path"] + "-wal")]
    return any(path.exists() and path.stat().st_size > 0 for path in files)


def redis_keys(port: int) -> int:
    """DBSIZE of the redis-server we started on 127.0.0.1:port (-1: no answer)."""
    import socket

    try:
        with socket.create_connection((LOCAL, port), timeout=2) as sock:
            sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
            answer = sock.recv(64)
    except OSError:
        return -1
    return int(answer[1:].split(b"\r\n")[0]) if answer.startswith(b":") else -1


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_port(port: int, seconds: float = 20) -> None:
    """Until something accepts on 127.0.0.1:port (a helper we started), or RuntimeError."""
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOCAL, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {LOCAL}:{port} within {seconds} s")


def haproxy_config(ports: dict, first: int, second: int) -> str:
    """HAProxy in TCP mode on 127.0.0.1: ``one`` forwards to the first instance only, ``two``
    round-robins connections over both (each chat connection stays on its instance)."""
    return f"""global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend one
    bind {LOCAL}:{ports['one']}
    default_backend first
frontend two
    bind {LOCAL}:{ports['two']}
    default_backend both
backend first
    server a {LOCAL}:{first}
backend both
    balance roundrobin
    server a {LOCAL}:{first}
    server b {LOCAL}:{second}
"""


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
                        help="interleaved rounds of (a), (b), (l), (s), (t) and (r)")
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
