"""
The CPU one instance spends talking to Redis per message, alone: repeatable on a busy machine.

    .venv/bin/python -m bench.redis_client_cost [--messages N] [--per-turn K] [--repeats R]

Starts a ``redis-server`` on a free 127.0.0.1 port (no persistence; stopped at the end) and, in
this process, the real ``RedisStore`` and ``RedisSlots`` on one ``RedisLink``; then plays what a
message asks of Redis (its crisis state saved and a provider slot taken at arrival; the slot
given back and the turns appended at the answer), ``--per-turn`` messages per reactor turn, as a
loaded server does. Prints this process's CPU milliseconds (user + system, ``getrusage``) per
message for each repeat and their median. No chat, no provider, no load generator: only the
Redis client path, so the number moves little with the machine's load (``bench.redis_cost`` and
``bench/run --only r`` measure the whole server).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time

from .common import LOCAL, free_port


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(reactor, url: str, messages: int, per_turn: int, repeats: int) -> list:
    from twisted.internet.defer import gatherResults

    from psicoia.chat.ports import Turn
    from psicoia.storage.redis import RedisStore
    from psicoia.storage.redis_link import RedisLink
    from psicoia.storage.redis_slots import RedisSlots

    link = RedisLink(url, reactor, timeout=2.0)
    store = RedisStore(link, 3600.0)
    slots = RedisSlots(link, reactor, 100000, 100000, 1, 10.0)
    conversations = [await store.create(os.urandom(32), 1000.0) for _ in range(per_turn)]
    turns = (Turn("user", "hola, hoy estoy muy triste"),
             Turn("assistant", "Te escucho. Contame un poco más de eso, estoy acá con vos."))

    async def one_turn() -> None:
        risks = [store.save_risk(c.id, {"v": 1, "turns": 3, "alert": 0.0}, 1001.0)
                 for c in conversations]
        held = await gatherResults([slots.acquire_slot(lambda position: None)
                                    for _ in conversations] + risks)
        writes = []
        for conversation, slot in zip(conversations, held[:per_turn]):
            slots.release_slot(slot)
            writes.append(store.append(conversation.id, turns, 20, 1002.0))
        await gatherResults(writes)

    try:
        for _ in range(20):  # warm: scripts loaded, connections made
            await one_turn()
        results = []
        for _ in range(repeats):
            started = _cpu()
            for _ in range(max(1, messages // per_turn)):
                await one_turn()
            results.append(round((_cpu() - started) * 1000 / messages, 4))
        return results
    finally:
        slots.stop()
        await link.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.redis_client_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--per-turn", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", LOCAL, "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((LOCAL, port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        from twisted.internet import reactor
        from twisted.internet.defer import ensureDeferred
        from twisted.internet.task import react

        found: list = []

        def run(_reactor):
            measured = ensureDeferred(_measure(reactor, f"redis://{LOCAL}:{port}/0",
                                               args.messages, args.per_turn, args.repeats))
            return measured.addCallback(found.extend)

        try:
            react(run)
        except SystemExit as done:
            if done.code:
                return int(done.code)
        print(json.dumps({"per_turn": args.per_turn, "messages": args.messages,
                          "cpu_ms_per_message": found,
                          "median": statistics.median(found) if found else None,
                          "loadavg": open("/proc/loadavg").read().split()[:3]}))
        return 0
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
