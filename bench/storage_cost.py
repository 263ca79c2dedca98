"""
What the conversation store costs per message: CPU and wall time of ``append`` (one user turn
and one reply, as the core writes after each answer) for each backend.

    .venv/bin/python bench/storage_cost.py [--messages N] [--callers 20,100] [--window S]
        [--backends memory,sqlite] [--dir PATH]

Backends: ``memory``, ``sqlite`` (a real file in ``--dir``, default a temporary directory),
``sqlite+key`` (the same with AES-GCM encryption at rest). ``callers`` is how many
conversations write at once: with more than one, the SQLite store's group commit puts their
writes in one transaction; ``--window`` is the store's group-commit window (default the
shipped one: with one caller each append then waits that long, so use ``--window 0`` to see
the cost of a lone write without the wait). CPU is the whole process's (reactor and database thread), from
``getrusage``; best of ``--repeat`` rounds. Compare with the server's CPU per message in
scenario (b) of docs/benchmarks.md. Not run by the test suite; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, reactor, task  # noqa: E402

from psicoia.chat.ports import Turn  # noqa: E402
from psicoia.storage.crypto import TextCipher  # noqa: E402
from psicoia.storage.memory import MemoryStore  # noqa: E402
from psicoia.storage.sqlite import WINDOW, SqliteStore  # noqa: E402

TEXT = "me siento bastante triste hoy y no sé bien por qué, creo que es por el trabajo " * 2


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_store(kind: str, directory: str, window: float = WINDOW):
    if kind == "memory":
        return MemoryStore()
    path = os.path.join(directory, f"bench-{secrets.token_hex(4)}.db")
    cipher = TextCipher([secrets.token_bytes(32)]) if kind == "sqlite+key" else None
    return SqliteStore.open(path, reactor, reactor, cipher=cipher, window=window)


async def one_round(kind: str, callers: int, messages: int, directory: str,
                    window: float = WINDOW) -> tuple[float, float]:
    store = make_store(kind, directory, window)
    conversations = [await store.create(secrets.token_bytes(32), 1.0) for _ in range(100)]
    turns = (Turn("user", TEXT), Turn("assistant", TEXT))

    async def caller(offset: int) -> None:
        for i in range(offset, messages, callers):
            await store.append(conversations[i % 100].id, turns, 10, 2.0 + i)

    cpu, wall = cpu_seconds(), time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(caller(c)) for c in range(callers)])
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    await store.close()
    return 1e6 * cpu / messages, 1e6 * wall / messages


async def main(reactor, options) -> None:
    directory = options.dir or tempfile.mkdtemp(prefix="psicoia-bench-")
    try:
        await report(options, directory)
    finally:
        if not options.dir:
            shutil.rmtree(directory, ignore_errors=True)


async def report(options, directory: str) -> None:
    print(f"# {options.messages} appends of 2 turns, best of {options.repeat}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores, files in {directory}")
    print(f"# group-commit window {options.window * 1000:g} ms")
    print(f"{'backend':12} {'callers':>7} {'CPU us/msg':>11} {'wall us/msg':>12}")
    for kind in options.backends.split(","):
        for callers in options.callers:
            rounds = [await one_round(kind, callers, options.messages, directory, options.window)
                      for _ in range(options.repeat)]
            cpu = min(r[0] for r in rounds)
            wall = min(r[1] for r in rounds)
            print(f"{kind:12} {callers:7d} {cpu:11.1f} {wall:12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--window", type=float, default=WINDOW)
    parser.add_argument("--backends", default="memory,sqlite,sqlite+key")
    parser.add_argument("--callers", type=lambda v: [int(x) for x in v.split(",")],
                        default=[20, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None)
    options = parser.parse_args()
    task.react(lambda r: defer.ensureDeferred(main(r, options)))
