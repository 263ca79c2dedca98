"""
Scenario (s) as an A/B of several servers at once: each ``--variant NAME=CHECKOUT:BACKEND``
(BACKEND ``memory`` or ``sqlite``, CHECKOUT a directory whose ``psicoia`` the server imports)
gets (b)'s load (provider 0 ms, 50 clients x 40 messages, closed loop) in interleaved rounds
(order reversed every other round), and the server's CPU per message is split into its main
(reactor) thread and the others (the database thread) from ``/proc/PID/task``, with each
side's voluntary context switches per message (waits for the GIL, a lock or the disk). For the
hand-made measurements in bench/analysis.md; not part of bench/run.

    python -m bench.storage_ab --variant memory=.:memory --variant main=/tmp/main:sqlite \\
        --variant branch=.:sqlite --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from .common import log
from .orchestrate import FULL, Bench
from .scenarios import OPEN_LIMITS, loadavg


def thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime (clock ticks) of each thread of ``pid``."""
    ticks = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except FileNotFoundError:  # the thread ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks[int(task)] = int(fields[11]) + int(fields[12])
    return ticks


def thread_switches(pid: int) -> dict[int, int]:
    """Voluntary context switches (a wait: for the GIL, a lock, the disk) of each thread."""
    switches = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            status = Path(f"/proc/{pid}/task/{task}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                switches[int(task)] = int(line.split()[1])
    return switches


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True,
                        help="NAME=CHECKOUT:BACKEND, e.g. main=/tmp/main:sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=40)
    args = parser.parse_args(argv)
    bench = Bench(argparse.Namespace(smoke=False, rounds=None, profile=False, log_level="warn",
                                     max_process_seconds=1800.0))
    bench.params = json.loads(json.dumps(FULL))
    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    shape = {"clients": args.clients, "messages": args.messages}
    sides: dict[str, tuple[int, int]] = {}
    runs: dict[str, list[tuple[float, float, float, float, float]]] = {}
    try:
        _, url = bench.provider(0)
        for spec in args.variant:
            name, rest = spec.split("=", 1)
            code, backend = rest.rsplit(":", 1)
            storage = {"backend": "memory"} if backend == "memory" else bench.sqlite(f"ab-{name}")
            server = bench.server(f"ab-{name}", url, dict(OPEN_LIMITS), websocket=False,
                                  storage=storage, code=Path(code).resolve())
            sides[name] = (server["ports"]["tcp"], server["pid"])
            runs[name] = []
        for port, pid in sides.values():
            bench.warm(port, pid)
        before = loadavg()
        for number in range(args.rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for name in order:
                port, pid = sides[name]
                start, waits = thread_ticks(pid), thread_switches(pid)
                result = bench.chat(port, pid, shape)
                end, waited = thread_ticks(pid), thread_switches(pid)
                answered = (result.get("ok") or 0) + (result.get("busy") or 0)
                if result.get("errors") or not answered:
                    log(f"{name}: errors {result.get('errors')}, answered {answered}")
                    answered = max(answered, 1)
                main_ms = (end.get(pid, 0) - start.get(pid, 0)) * tick_ms / answered
                other_ms = sum(t - start.get(tid, 0) for tid, t in end.items()
                               if tid != pid) * tick_ms / answered
                main_waits = (waited.get(pid, 0) - waits.get(pid, 0)) / answered
                other_waits = sum(w - waits.get(tid, 0) for tid, w in waited.items()
                                  if tid != pid) / answered
                runs[name].append((result.get("server_cpu_ms_per_message"), main_ms, other_ms,
                                   main_waits, other_waits))
                log(f"round {number + 1} {name}: {runs[name][-1][0]} ms/msg "
                    f"(main {main_ms:.3f}, others {other_ms:.3f})")
        after = loadavg()
    finally:
        bench.procs.stop_all()
    print(f"(b)'s load, {args.clients} clients x {args.messages} messages, {args.rounds} "
          f"rounds; load average before {before}, after {after}; CPU ms per message, medians")
    for name, rows in runs.items():
        cpu, main_ms, other_ms, main_waits, other_waits = (
            statistics.median(column) for column in zip(*rows))
        print(f"{name:10} {cpu:.3f} (main thread {main_ms:.3f}, others {other_ms:.3f}; "
              f"waits per message {main_waits:.2f} / {other_waits:.2f}) "
              f"rounds {[row[0] for row in rows]}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
