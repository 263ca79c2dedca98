"""Small shared pieces: percentiles, /proc readings of a process, free ports."""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from typing import Optional, Sequence

from psicoia.ops.process import raise_file_limit  # noqa: F401 (light: no application import)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
LOCAL = "127.0.0.1"


def percentile(sorted_values: Sequence[float], fraction: float) -> Optional[float]:
    """Nearest-rank percentile of an already sorted sequence (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize_latencies(latencies_s: Sequence[float]) -> dict:
    values = sorted(latencies_s)
    result = {"count": len(values)}
    for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)):
        value = percentile(values, fraction)
        result[f"{name}_ms"] = None if value is None else round(value * 1000, 3)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (from /proc/<pid>/stat), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        raw = handle.read()
    # The command name may contain spaces; fields after the closing parenthesis are fixed.
    fields = raw[raw.rindex(b")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def wait_until_quiet(pid: int, timeout: float = 30.0, step: float = 0.25) -> float:
    """Wait (at most ``timeout`` seconds) until ``pid`` used no CPU for two ``step``s in a row:
    work left over from the previous run (a server still answering calls an overloaded run
    queued, such as the floor's classification calls nobody waits for) must not be counted
    in the next run's CPU per message. Returns the seconds waited."""
    started = time.monotonic()
    quiet, last = 0, cpu_seconds(pid)
    while quiet < 2 and time.monotonic() - started < timeout:
        time.sleep(step)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now == last else 0
        last = now
    return time.monotonic() - started


def memory_kib(pid: int) -> dict:
    """VmRSS and VmHWM (peak RSS) of ``pid`` from /proc/<pid>/status, in KiB."""
    result = {}
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                result[name] = int(value.split()[0])
    return {"rss_kib": result.get("VmRSS"), "hwm_kib": result.get("VmHWM")}


class ProcessProbe:
    """Reads a process's CPU time and memory at marks, so a run can report the deltas."""

    def __init__(self, pid: Optional[int]) -> None:
        self.pid = pid
        self._cpu_start = None

    def start(self) -> None:
        if self.pid:
            self._cpu_start = cpu_seconds(self.pid)

    def report(self) -> dict:
        if not self.pid:
            return {}
        try:
            cpu = cpu_seconds(self.pid) - (self._cpu_start or 0.0)
            memory = memory_kib(self.pid)
        except (OSError, ValueError):
            return {}
        return {"server_cpu_s": round(cpu, 3), "server_rss_kib": memory["rss_kib"],
                "server_hwm_kib": memory["hwm_kib"]}


def free_port() -> int:
    """An ephemeral 127.0.0.1 port that was free a moment ago (for twistd's endpoint string)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL, 0))
        return sock.getsockname()[1]


def emit_result(result: dict) -> None:
    """Tools print a human summary on stderr and one JSON line on stdout (for bench/run)."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(text: str) -> None:
    """A progress line of bench/run on stderr."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()
