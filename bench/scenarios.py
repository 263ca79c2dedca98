"""
The scenarios of issue 19 (the loaded case), of issues 12, 13 and 18 (sqlite storage,
streaming, Redis and HAProxy) and of issue 16 (hostile clients), as a mixin of
:class:`bench.orchestrate.Bench`: each starts its processes through the bench's helpers,
records its rounds in ``self.results``, and skips itself with a report line when this version
of PsicoIA lacks the feature.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import socket
import time
import urllib.request
from pathlib import Path
from typing import Optional

from .common import LOCAL, cpu_seconds, free_port, log
from .redis_probe import script_calls

# Limits raised so they never interfere with what a scenario measures.
OPEN_LIMITS = {"max_in_flight": 200, "max_waiting": 10000}
# The loaded scenario at 4x offers ~2,000 messages/s to a 200 ms provider: 400 calls at once.
LOADED_LIMITS = {"max_in_flight": 1000, "max_waiting": 100000}


def feature(section: str, key: str) -> bool:
    """Whether this version of PsicoIA's configuration has ``section.key``."""
    from psicoia import config

    cls = config.SECTIONS.get(section)
    return cls is not None and key in {f.name for f in dataclasses.fields(cls)}


class FeatureScenarios:
    """(l), (s), (t), (r) and (h); needs the helpers of ``Bench`` (provider, server, floor,
    chat)."""

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
        # Every closed-loop round first, then each open-loop level: an overloaded open-loop run
        # leaves a server (the floor most) slow for a while after it, which inflated the
        # closed-loop rounds that followed it (floor 4.6 ms/message instead of 1.3).
        sides = (("psicoia", tcp, server["pid"]), ("floor", floor_port, floor_proc.pid))
        for level, rate in levels:
            if rate is None:
                shape = p
                extra: tuple = ()
            else:
                # Enough users that each one's messages are open_spacing_s apart.
                clients = max(p["open_clients"], int(rate * p["open_spacing_s"]))
                shape = {"clients": clients, "messages": p["open_messages"]}
                extra = ("--rate", str(rate), "--connect-concurrency", "200")
            for number in range(p["rounds"]):
                log(f"(l) {level}, round {number + 1}/{p['rounds']}")
                for who, port, pid in (sides if number % 2 == 0 else sides[::-1]):
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
        stats = url.rsplit("/v1", 1)[0] + "/stats"
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
        # The same servers at a load that leaves the 2-core box idle most of the time (a few
        # clients): the first byte there is what the server adds, not CPU queueing.
        # Independent users: each thinks 0 to 2 x light_think_ms between messages (and starts
        # that far in), so their first chunks do not all come in one burst (bench/analysis.md,
        # "(t) on the wire": in lockstep, each waited behind the others' first chunks).
        light = {"clients": p["light_clients"], "messages": p["light_messages"],
                 "think_ms": p.get("light_think_ms", 0)}
        pair = [t for t in targets if t[0] != "plain"]
        rounds.update({f"light-{key}": [] for key, _, _ in pair}, **{"light-direct": []})
        wires: list[dict] = []
        provider_port = int(url.rsplit(":", 1)[1].split("/")[0])
        load = {"before": loadavg()}
        for number in range(p["rounds"]):
            log(f"(t) round {number + 1}/{p['rounds']}")
            for key, port, pid in targets:
                provider_stats(stats)  # forget the warm-up's and the other side's streams
                run = self.chat(port, pid, p, tag=f"t-{key}")
                run["provider"] = provider_stats(stats)
                rounds[key].append(run)
            # The kernel's packet times on lo meanwhile: what each relay itself adds between the
            # provider's first chunk leaving the provider and that text leaving the relay.
            wire = self.wire_tap(provider_port, {key: port for key, port, _ in pair})
            for key, port, pid in (pair if number % 2 == 0 else pair[::-1]):
                provider_stats(stats)
                run = self.chat(port, pid, light, tag=f"t-light-{key}")
                run["provider"] = provider_stats(stats)
                rounds[f"light-{key}"].append(run)
            wires.append(wire())
            # The provider asked directly at the same light load: what a server's whole request
            # path adds is its first byte minus this one (the end-to-end figure).
            rounds["light-direct"].append(self.direct(provider_port, light["clients"],
                                                      light["messages"],
                                                      pause_ms=light["think_ms"]))
        load["after"] = loadavg()
        wake = self.wake_floor(p["latency_ms"], count=5 if self.args.smoke else 40)
        self.results["streaming"] = {"params": p, "rounds": rounds, "loadavg": load,
                                     "wire": wires, "wake_floor": wake}
        self.procs.stop_all()

    def scenario_redis(self) -> None:
        """(r): one instance on Redis against one in memory, (b)'s load, CPU per message
        (two instances behind HAProxy are scenario (m), bench/scale.py)."""
        if not feature("storage", "backend"):
            self.skip("r", "storage.backend is not in this version's configuration (branches "
                      "storage and redis not merged): the Redis scenario did not run")
            return
        redis_server = shutil.which("redis-server")
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
            pair = (("redis", one), ("memory", memory))
            for key, server in (pair if number % 2 == 0 else pair[::-1]):
                redis_cpu, scripts = cpu_seconds(redis_proc.pid), script_calls(redis_port)
                run = self.chat(server["ports"]["tcp"], server["pid"], p, tag=f"r-{key}")
                run["redis_cpu_s"] = round(cpu_seconds(redis_proc.pid) - redis_cpu, 3)
                run["redis_round_trips"] = script_calls(redis_port) - scripts
                rounds[key].append(run)
        self.procs.stop(memory["proc"])
        keys = redis_keys(redis_port)
        result: dict = {"params": p, "rounds": rounds, "in_use": bool(keys), "redis_keys": keys}
        if not keys:
            self.notes.append("(r) the Redis instance holds no keys after the Redis rounds: the "
                              "backend is not wired in this version; (r) is not a measurement")
        self.results["redis"] = result
        self.procs.stop_all()

    def scenario_hostile(self) -> None:
        """(h): polite chat p99 without and with the attackers of issue 16 (a chat flooder on
        the TCP listener, slow-header connections and a range flood on HTTP), in ``rounds``
        interleaved rounds (calm, attacked, calm, ...) against one server, so a noisy
        neighbour hits both sides alike; the report gives the medians. The server keeps the
        shipped rate limits (the flooder meets them); polite clients stay under them."""
        p = self.params["hostile"]
        _, url = self.provider(p["latency_ms"])
        self.default_limits.add("server-h")
        server = self.server("server-h", url, dict(OPEN_LIMITS), websocket=False,
                             storage=self.shipped("server-h"))
        tcp, http, pid = server["ports"]["tcp"], server["ports"]["http"], server["pid"]
        self.warm(tcp, pid)
        rounds = []
        for number in range(p.get("rounds", 1)):
            log(f"(h) round {number + 1}/{p.get('rounds', 1)}: {p['clients']} polite clients, "
                "no attackers")
            calm = dict(self.chat(tcp, pid, p, tag="h-calm"), load=loadavg())
            log(f"(h) the same, with {p['flooders']} flooder(s), {p['slow_headers']} "
                f"slow-header connections and {p['range_workers']} range-flood loops")
            attacked, attack, flood = self._under_attack(number, tcp, http, pid, p)
            rounds.append({"calm": calm, "attacked": attacked, "attack": attack,
                           "flood": flood})
        self.results["hostile"] = {
            "params": p,
            # The bench's shape for interleaved rounds (its error count reads it).
            "rounds": {"calm": [r["calm"] for r in rounds],
                       "attacked": [r["attacked"] for r in rounds]},
            "calm": _median_run([r["calm"] for r in rounds]),
            "attacked": _median_run([r["attacked"] for r in rounds]),
            "attacks": [r["attack"] for r in rounds],
            "attack": _summed([r["attack"] for r in rounds]),
            "flood": [_summed(each) for each in zip(*(r["flood"] for r in rounds))]}
        self.procs.stop_all()

    def _under_attack(self, number: int, tcp: int, http: int, pid: int,
                      p: dict) -> tuple[dict, dict, list]:
        """One attacked round: start the attackers, let them settle, chat, stop them; the
        chat result and what each attacker printed."""
        name = f"attackers-{number}"
        attackers, _ = self.procs.start(name, [
            self.python, "-m", "bench.attackers", "--port", str(http),
            "--slow-headers", str(p["slow_headers"]), "--trickle-ms", str(p["trickle_ms"]),
            "--range-workers", str(p["range_workers"])], env=self._bench_env())
        flooders = [(f"flooder-{number}-{n}", self.procs.start(f"flooder-{number}-{n}", [
            self.python, "-m", "bench.flooder", "--port", str(tcp),
            "--seconds", str(self.args.max_process_seconds),
            "--max-bytes", str(p.get("flood_bytes", 0))], env=self._bench_env())[0])
            for n in range(p["flooders"])]
        time.sleep(1.0)  # the slow connections are open and trickling, the flood is on
        before = cpu_seconds(attackers.pid), [cpu_seconds(f.pid) for _, f in flooders]
        attacked = dict(self.chat(tcp, pid, p, tag="h-attacked"), load=loadavg())
        attacked["attackers_cpu_s"] = round(cpu_seconds(attackers.pid) - before[0], 3)
        attacked["flooders_cpu_s"] = [round(cpu_seconds(f.pid) - cpu, 3)
                                      for (_, f), cpu in zip(flooders, before[1])]
        self.procs.stop(attackers)
        for _, flooder in flooders:
            self.procs.stop(flooder)
        return (attacked, self._last_json(name),
                [self._last_json(flooder) for flooder, _ in flooders])

    def _last_json(self, name: str) -> dict:
        out = self.workdir / f"{name}.out"
        lines = out.read_text().strip().splitlines() if out.exists() else []
        return json.loads(lines[-1]) if lines else {}

    def skip(self, key: str, why: str) -> None:
        log(f"({key}) skipped: {why}")
        self.skipped[key] = why

    # --- the whole run ------------------------------------------------------------------------


def _median_run(runs: list[dict]) -> dict:
    """One chat result standing for ``runs``: the median of each latency figure and of the
    rate and server CPU; answers and errors summed."""
    def mid(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    latency = {key: mid([r["latency"].get(key) for r in runs])
               for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    return {"latency": latency, "rounds": len(runs),
            "messages_per_s": mid([r.get("messages_per_s") for r in runs]),
            "server_cpu_s": mid([r.get("server_cpu_s") for r in runs]),
            "ok": sum(r.get("ok", 0) for r in runs),
            "errors": sum(r.get("errors", 0) for r in runs),
            "error_examples": {k: v for r in runs for k, v in r.get("error_examples", {}).items()}}


def _summed(counts) -> dict:
    """Attacker counts (dicts of numbers) added up over rounds."""
    total: dict = {}
    for each in counts:
        for key, value in each.items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


def sqlite_written(storage: Optional[dict]) -> bool:
    """Whether the sqlite database of these ``storage`` settings (or its -wal) holds data."""
    if not storage or storage.get("backend") != "sqlite":
        return False
    files = [Path(storage["sqlite_path"]), Path(storage["sqlite_path"] + "-wal")]
    return any(path.exists() and path.stat().st_size > 0 for path in files)


def redis_keys(port: int) -> int:
    """DBSIZE of the redis-server we started on 127.0.0.1:port (-1: no answer)."""
    try:
        with socket.create_connection((LOCAL, port), timeout=2) as sock:
            sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
            answer = sock.recv(64)
    except OSError:
        return -1
    return int(answer[1:].split(b"\r\n")[0]) if answer.startswith(b":") else -1


def provider_stats(url: str) -> dict:
    """The fake provider's ``GET /stats`` (bench/fake_provider.py): how late its first chunks
    went out since the last call, so (t) can tell the provider's lateness from the server's."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_port(port: int, seconds: float = 20) -> None:
    """Until something accepts on 127.0.0.1:port (a helper we started), or RuntimeError."""
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
