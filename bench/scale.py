"""
Scenario (m), issue 18: two instances on one Redis behind HAProxy, against one instance behind
the same HAProxy; and a model of how that scales on a machine with more cores.

Both sides run the same closed-loop TCP chat load (no think time, provider at ``latency_ms``)
through HAProxy in TCP mode (round robin per connection, so each chat stays on its instance),
with the instances on the same redis-server; rounds interleave ``one`` and ``two``. Every
process's CPU time is read from /proc around each run: the instances', HAProxy's,
redis-server's and the fake provider's (the load generator's own is left out: it is the
client's cost). From the CPU per message of each resource the report derives which one
saturates first when each instance has a core of its own (:func:`model`).

Called by ``bench/run --only m`` (and in ``--smoke`` at toy size) through :func:`scenario_scale`;
it uses the helpers of :class:`bench.orchestrate.Bench`.
"""

from __future__ import annotations

import shutil
import statistics
from typing import Any, Callable, Optional

from .common import LOCAL, cpu_seconds, free_port, log
from .redis_probe import script_calls
from .report import _f
from .scenarios import OPEN_LIMITS, feature, haproxy_config, loadavg, wait_port

PARAMS = {
    "full": {"latency_ms": 0, "clients": 100, "messages": 30, "rounds": 3},
    "smoke": {"latency_ms": 0, "clients": 4, "messages": 3, "rounds": 1},
}

SIDES = ("one", "two")


def scenario_scale(bench: Any) -> None:
    """(m): start redis-server, the fake provider, two instances on Redis and HAProxy (a
    frontend to the first instance only, one to both); run interleaved rounds; record
    ``bench.results["scale"]``. Skips itself (a report line) without redis-server, HAProxy or
    the Redis backend."""
    if not feature("storage", "backend"):
        bench.skip("m", "storage.backend is not in this version's configuration")
        return
    redis_server, haproxy = shutil.which("redis-server"), shutil.which("haproxy")
    if not redis_server or not haproxy:
        bench.skip("m", "redis-server or haproxy is not on PATH: two instances not measured")
        return
    p = dict(PARAMS["smoke" if bench.args.smoke else "full"])
    if bench.args.rounds:
        p["rounds"] = bench.args.rounds
    redis_port = free_port()
    redis_proc, _ = bench.procs.start("redis-m", [
        redis_server, "--port", str(redis_port), "--bind", LOCAL, "--save", "",
        "--appendonly", "no"])
    wait_port(redis_port)
    storage = {"backend": "redis", "redis_url": f"redis://{LOCAL}:{redis_port}/0"}
    provider_proc, url = bench.provider(p["latency_ms"])
    instances = [bench.server(f"server-m-{n}", url, dict(OPEN_LIMITS), websocket=False,
                              storage=storage) for n in (1, 2)]
    ports = {"one": free_port(), "two": free_port()}
    config = bench.workdir / "haproxy-m.cfg"
    config.write_text(haproxy_config(ports, instances[0]["ports"]["tcp"],
                                     instances[1]["ports"]["tcp"]))
    haproxy_proc, _ = bench.procs.start("haproxy-m", [haproxy, "-db", "-f", str(config)])
    for port in ports.values():
        wait_port(port)
    for instance in instances:
        bench.warm(instance["ports"]["tcp"], instance["pid"])
    watched = {"instance_1": instances[0]["pid"], "instance_2": instances[1]["pid"],
               "haproxy": haproxy_proc.pid, "redis": redis_proc.pid,
               "provider": provider_proc.pid}
    rounds: dict[str, list] = {key: [] for key in SIDES}
    load = {"before": loadavg()}
    for number in range(p["rounds"]):
        log(f"(m) round {number + 1}/{p['rounds']}")
        order = SIDES if number % 2 == 0 else tuple(reversed(SIDES))
        for key in order:
            before = {name: cpu_seconds(pid) for name, pid in watched.items()}
            scripts = script_calls(redis_port)
            run = bench.chat(ports[key], instances[0]["pid"], p, tag=f"m-{key}")
            run["cpu_s"] = {name: round(cpu_seconds(pid) - before[name], 3)
                            for name, pid in watched.items()}
            run["redis_round_trips"] = script_calls(redis_port) - scripts
            rounds[key].append(run)
    load["after"] = loadavg()
    bench.results["scale"] = {"params": p, "rounds": rounds, "loadavg": load}
    bench.procs.stop_all()


def per_message(runs: list[dict], name: str) -> Optional[float]:
    """Median CPU milliseconds per answered message of process ``name`` over ``runs``."""
    values = [run["cpu_s"][name] * 1000 / answered(run) for run in runs
              if answered(run) and "cpu_s" in run]
    return statistics.median(values) if values else None


def answered(run: dict) -> int:
    return run.get("ok", 0) + run.get("busy", 0)


def model(instance_ms: float, redis_ms: float, haproxy_ms: float,
          cores: int) -> dict:
    """Messages/s each resource allows with ``cores`` cores for the instances (one per
    instance; HAProxy and redis-server on cores of their own): instances ``cores x 1000 /
    instance_ms``, redis-server (single-threaded) ``1000 / redis_ms``, one HAProxy thread
    ``1000 / haproxy_ms``; the smallest is the service's ceiling and names what saturates."""
    limits = {"instances": cores * 1000 / instance_ms if instance_ms else None,
              "redis-server": 1000 / redis_ms if redis_ms else None,
              "haproxy (1 thread)": 1000 / haproxy_ms if haproxy_ms else None}
    known = {k: v for k, v in limits.items() if v}
    first = min(known, key=known.get) if known else None
    return {"limits": limits, "ceiling": known.get(first) if first else None,
            "saturates": first}


def scale_table(results: dict, add: Callable[[str], None]) -> None:
    """The report's section for (m)."""
    scale = results.get("scale")
    if not scale:
        return
    p, rounds = scale["params"], scale["rounds"]
    add("## (m) two instances on Redis behind HAProxy, against one")
    add("")
    add(f"Closed loop through HAProxy (TCP mode, round robin per connection), provider "
        f"{p['latency_ms']} ms, {p['clients']} clients x {p['messages']} messages, no think "
        f"time; {p['rounds']} interleaved rounds, medians; both sides on the same redis-server "
        f"and HAProxy. CPU per answered message from /proc (utime + stime) of each process. "
        f"Load average {scale['loadavg']['before']} before, {scale['loadavg']['after']} after.")
    add("")
    add("| behind HAProxy | messages/s | p50 ms | p99 ms | CPU ms/msg: instances | HAProxy | "
        "redis-server | fake provider | Redis round trips/msg | errors |")
    add("| --- " * 10 + "|")
    figures = {}
    for key, label in (("one", "one instance"), ("two", "two instances")):
        runs = rounds.get(key) or []
        if not runs:
            continue
        rate = statistics.median(run.get("messages_per_s") or 0 for run in runs)
        p50 = statistics.median((run.get("latency") or {}).get("p50_ms") or 0 for run in runs)
        p99 = statistics.median((run.get("latency") or {}).get("p99_ms") or 0 for run in runs)
        both = [dict(run, cpu_s={"instances": run["cpu_s"]["instance_1"]
                                 + run["cpu_s"]["instance_2"], **run["cpu_s"]})
                for run in runs if "cpu_s" in run]
        cpu = {name: per_message(both, name)
               for name in ("instances", "haproxy", "redis", "provider")}
        figures[key] = cpu
        errors = sum(run.get("errors", 0) for run in runs)
        trips = statistics.median(run.get("redis_round_trips", 0) / max(1, answered(run))
                                  for run in runs)
        add(f"| {label} | {_f(rate)} | {_f(p50, 2)} | {_f(p99, 2)} | "
            f"{_f(cpu['instances'], 3)} | {_f(cpu['haproxy'], 3)} | {_f(cpu['redis'], 3)} | "
            f"{_f(cpu['provider'], 3)} | {_f(trips, 2)} | {errors} |")
    add("")
    two = figures.get("two")
    if not two or not all(two.get(k) for k in ("instances", "redis", "haproxy")):
        return
    add("A model from the two-instance row (each instance a core of its own, HAProxy and "
        "redis-server on cores of their own, the provider not the limit): messages/s allowed "
        "by each resource, and the first to saturate.")
    add("")
    add("| cores for instances | instances | redis-server | HAProxy (1 thread) | ceiling | "
        "saturates first |")
    add("| --- " * 6 + "|")
    for cores in (1, 2, 4, 8, 16):
        m = model(two["instances"], two["redis"], two["haproxy"], cores)
        limits = m["limits"]
        add(f"| {cores} | {_f(limits['instances'])} | {_f(limits['redis-server'])} | "
            f"{_f(limits['haproxy (1 thread)'])} | {_f(m['ceiling'])} | {m['saturates']} |")
    add("")
