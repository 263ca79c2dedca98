"""
The machine's own floor for (t): how long a process that waited idle takes to pass on what
arrives, with no framework at all.

Three processes on 127.0.0.1: a sender, a bare relay (blocking sockets: ``recv`` then ``send``,
nothing else) and a reader. Every ``--idle-ms`` (the fake provider's wait before its first
chunk) the sender writes ``time.monotonic_ns()`` just before its ``send``; the relay, right
after its own ``send`` returns, takes the difference (one clock for every process on Linux).
That is the least any relay adds on this machine to a chunk that follows an idle wait: the
kernel waking a sleeping process (on a virtual machine, its idle virtual CPU too) and two
system calls. PsicoIA's and the floor server's figures in (t) include it.

    python -m bench.wake_floor --count 40 --idle-ms 200

Prints one JSON line: ``relay_added`` (count, p50/p90/p99/max in ms). Bounded: ``--count``
messages, ``--idle-ms`` apart; every socket is closed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time

from .common import LOCAL, summarize_latencies

STAMP = struct.Struct("!q")


def relay(upstream: socket.socket, downstream: socket.socket, results: int) -> None:
    """The child: pass on each stamp, then write the measured times to ``results`` (a fd)."""
    added = []
    while True:
        data = upstream.recv(64)
        if not data:
            break
        downstream.send(data)
        done = time.monotonic_ns()
        for (stamp,) in STAMP.iter_unpack(data[: len(data) - len(data) % STAMP.size]):
            added.append((done - stamp) / 1e9)
    os.write(results, json.dumps(added).encode())
    os.close(results)


def reader(downstream: socket.socket) -> None:
    while downstream.recv(64):
        pass


def connected_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one 127.0.0.1 TCP connection, Nagle off on both."""
    listener = socket.socket()
    listener.bind((LOCAL, 0))
    listener.listen(1)
    one = socket.create_connection(listener.getsockname(), timeout=10)
    other, _ = listener.accept()
    listener.close()
    for end in (one, other):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end.settimeout(None)
    return one, other


def measure(count: int, idle_s: float) -> dict:
    send_end, relay_in = connected_pair()
    relay_out, read_end = connected_pair()
    results_read, results_write = os.pipe()
    children = []
    for role in ("relay", "reader"):
        pid = os.fork()
        if pid == 0:  # the child keeps only its own sockets
            try:
                if role == "relay":
                    send_end.close(), read_end.close(), os.close(results_read)
                    relay(relay_in, relay_out, results_write)
                else:
                    send_end.close(), relay_in.close(), relay_out.close()
                    reader(read_end)
            finally:
                os._exit(0)
        children.append(pid)
    relay_in.close(), relay_out.close(), read_end.close(), os.close(results_write)
    for _ in range(count):
        time.sleep(idle_s)
        send_end.send(STAMP.pack(time.monotonic_ns()))
    send_end.close()
    raw = b""
    while chunk := os.read(results_read, 1 << 16):
        raw += chunk
    os.close(results_read)
    for pid in children:
        os.waitpid(pid, 0)
    return {"relay_added": summarize_latencies(json.loads(raw or b"[]")), "idle_ms": idle_s * 1e3}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--idle-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.count, args.idle_ms / 1000.0)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
