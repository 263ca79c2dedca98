"""
What a redis-server started by the bench has done: its keys and the scripts it ran.

Plain RESP over a socket to 127.0.0.1 (no client library in the bench's processes); used by
scenarios (r) and (m) to count Redis round trips per message (``EVAL`` + ``EVALSHA`` calls
from ``INFO commandstats``: each is one round trip of one instance's batch of scripts).
"""

from __future__ import annotations

import socket

from .common import LOCAL


def _command(port: int, *words: str) -> bytes:
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection((LOCAL, port), timeout=2) as sock:
        sock.sendall(request.encode())
        answer = sock.recv(65536)
        if answer.startswith(b"$"):
            size = int(answer[1:answer.index(b"\r\n")])
            while len(answer) < size + len(str(size)) + 5:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
    return answer


def script_calls(port: int) -> int:
    """EVAL + EVALSHA calls the server has answered so far (-1: no answer)."""
    try:
        answer = _command(port, "INFO", "commandstats").decode(errors="replace")
    except OSError:
        return -1
    total = 0
    for line in answer.splitlines():
        if line.startswith(("cmdstat_eval:", "cmdstat_evalsha:")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total
