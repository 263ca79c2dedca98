"""
What the ``redis`` backend costs one instance: CPU per message, Redis vs memory storage.

    .venv/bin/python -m bench.redis_cost [--rounds N] [--clients C] [--messages M] [--smoke]

Starts (all on 127.0.0.1, stopped by pid at the end) the bench's fake provider (0 ms), a
``redis-server`` without persistence, and two ``twistd -n psicoia`` servers that differ only in
``storage.backend`` (``memory`` and ``redis``); then runs the bench's TCP chat load against
each, interleaved, ``--rounds`` times, and prints the server's CPU milliseconds per message
(``/proc/PID/stat``, measured by ``bench.loadgen``), the median of the rounds and the ratio
(the target in issue 18: redis ≤ 1.3 × memory). Not run by the test suite; no timing is
asserted anywhere. The Redis server's own CPU is reported separately: on one box it competes
for the same cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import time

from bench.orchestrate import OPEN_LIMITS, Bench, free_port, log
from bench.orchestrate import parse as bench_parse


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / 100.0


def start_redis(bench: Bench) -> tuple:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc, _ = bench.procs.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.redis_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.clients, args.messages = 1, 4, 5
    bench = Bench(bench_parse(["--smoke"] if args.smoke else []))
    try:
        redis_proc, redis_url = start_redis(bench)
        _, url = bench.provider(0)
        servers = {
            "memory": bench.server("server-memory", url, dict(OPEN_LIMITS), websocket=False,
                                   storage={"backend": "memory"}),
            "redis": bench.server("server-redis", url, dict(OPEN_LIMITS), websocket=False,
                                  storage={"backend": "redis", "redis_url": redis_url}),
        }
        params = {"clients": args.clients, "messages": args.messages}
        for server in servers.values():
            bench.warm(server["ports"]["tcp"], server["pid"])
        per_message: dict[str, list[float]] = {name: [] for name in servers}
        rates: dict[str, list[float]] = {name: [] for name in servers}
        p50s: dict[str, list[float]] = {name: [] for name in servers}
        redis_cpu_before = cpu_seconds(redis_proc.pid)
        for number in range(args.rounds):
            log(f"redis cost round {number + 1}/{args.rounds}")
            for name, server in servers.items():
                result = bench.chat(server["ports"]["tcp"], server["pid"], params)
                if result.get("errors"):
                    raise RuntimeError(f"{name}: {result.get('error_examples')}")
                per_message[name].append(result["server_cpu_ms_per_message"])
                rates[name].append(result.get("messages_per_s") or 0.0)
                p50s[name].append((result.get("latency") or {}).get("p50_ms") or 0.0)
        redis_cpu = cpu_seconds(redis_proc.pid) - redis_cpu_before
        answered = args.rounds * args.clients * args.messages
        summary = {
            "params": {**params, "rounds": args.rounds},
            "server_cpu_ms_per_message": {k: statistics.median(v) for k, v in per_message.items()},
            "rounds": per_message,
            "messages_per_second": {k: statistics.median(v) for k, v in rates.items()},
            "p50_ms": {k: statistics.median(v) for k, v in p50s.items()},
            "redis_server_cpu_ms_per_message": round(redis_cpu * 1000 / answered, 3),
        }
        memory, redis = (summary["server_cpu_ms_per_message"][k] for k in ("memory", "redis"))
        summary["ratio_redis_over_memory"] = round(redis / memory, 3) if memory else None
        print(json.dumps(summary, indent=2))
        return 0
    finally:
        bench.procs.stop_all()
        shutil.rmtree(bench.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
