"""
What a relay adds to the provider's first chunk, read off the wire: the kernel's own packet
times on the loopback interface, not any process's clock.

The fake provider (``--stamp``) starts each stream's first chunk with ``[t=W r=R]``; a server
relays that text verbatim. On ``lo`` every TCP segment is seen as it is sent (``PACKET_OUTGOING``,
stamped by the kernel with ``SO_TIMESTAMPNS``). For each stamp W this records when the segment
carrying it left the provider (``--provider-port`` as the source port) and when the segment
carrying it left a relay towards its client (a ``--relay-port`` as the source port). The
difference is what the relay added: its wake-up on the chunk's arrival, reading it, and writing
it out, with neither the provider's own delay before sending nor the client's wake-up on
receipt (bench/analysis.md, "(t) on the wire").

Needs a raw ``AF_PACKET`` socket (root, or ``CAP_NET_RAW``); without one it prints
``{"error": ...}`` and exits 2, and ``bench/run`` reports the figure as not measured.
Prints ``listening 0`` once the tap is open, reads for ``--seconds`` at most (or until
``--until-file`` exists), then prints one JSON line: per relay port, the count and
p50/p90/p99/max of the relay time in ms.

    python -m bench.wire_times --provider-port 8001 --relay-port 5001 --relay-port 7001 \\
        --seconds 30 --until-file /tmp/stop
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import socket
import struct
import sys
import time

from .common import summarize_latencies

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
STAMP = re.compile(rb"\[t=(\d+) r=\d+\]")
ETH_HEADER = 14  # the loopback device has a zeroed Ethernet header


def open_tap() -> socket.socket:
    """A raw socket on ``lo`` that stamps each packet with the kernel's receive time."""
    tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    tap.bind(("lo", 0))
    tap.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    tap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return tap


def tcp_payload(frame: bytes) -> tuple[int, bytes] | None:
    """(source port, payload) of an IPv4 TCP frame, or None for anything else."""
    if len(frame) < ETH_HEADER + 40 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[ETH_HEADER:]
    if ip[9] != 6:  # not TCP
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    offset = (tcp[12] >> 4) * 4
    return struct.unpack_from("!H", tcp, 0)[0], bytes(tcp[offset:])


def kernel_time(ancillary) -> int:
    """The packet's SO_TIMESTAMPNS time in ns (CLOCK_REALTIME: only differences are used)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds
    return time.time_ns()


def watch(tap: socket.socket, provider_port: int, relay_ports: set[int], seconds: float,
          until_file: str | None) -> tuple[dict[bytes, int], dict[int, dict[bytes, int]]]:
    """Collect, per stamp W, the first outgoing segment times (ns) from the provider and from
    each relay, until ``seconds`` pass or ``until_file`` exists."""
    from_provider: dict[bytes, int] = {}
    from_relay: dict[int, dict[bytes, int]] = {port: {} for port in relay_ports}
    deadline = time.monotonic() + seconds
    space = socket.CMSG_SPACE(16)
    stopping = False
    while time.monotonic() < deadline:
        if not stopping and until_file and os.path.exists(until_file):
            stopping = True  # read what the kernel already holds, then stop
        ready, _, _ = select.select([tap], [], [], 0 if stopping else 0.2)
        if not ready:
            if stopping:
                break
            continue
        frame, ancillary, _, address = tap.recvmsg(65600, space)
        if address[2] != PACKET_OUTGOING:
            continue  # each loopback segment is also seen once more, as received
        parsed = tcp_payload(frame)
        if parsed is None or b"[t=" not in parsed[1]:
            continue
        port, payload = parsed
        if port == provider_port:
            seen = from_provider
        elif port in from_relay:
            seen = from_relay[port]
        else:
            continue
        at = kernel_time(ancillary)
        for match in STAMP.finditer(payload):
            seen.setdefault(match.group(1), at)
    return from_provider, from_relay


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider-port", type=int, required=True)
    parser.add_argument("--relay-port", type=int, action="append", required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="read this long at most")
    parser.add_argument("--until-file", help="stop as soon as this file exists")
    args = parser.parse_args(argv)
    try:
        tap = open_tap()
    except OSError as error:
        print(json.dumps({"error": f"no raw socket on lo: {error}"}), flush=True)
        return 2
    print("listening 0", flush=True)  # bench/orchestrate.py's Procs.start waits for this
    from_provider, from_relay = watch(tap, args.provider_port, set(args.relay_port),
                                      args.seconds, args.until_file)
    result = {}
    for port, seen in from_relay.items():
        added = [(at - from_provider[stamp]) / 1e9 for stamp, at in seen.items()
                 if stamp in from_provider]
        result[str(port)] = summarize_latencies(added)
    print(json.dumps({"relay_added": result, "provider_chunks": len(from_provider)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
