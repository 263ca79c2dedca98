"""
What the TCP framing costs per line: the line editor and telnet codec (issue 14) against a bare
``LineReceiver`` splitting on LF, the framing the TCP protocol used before.

Framing only: no session, no provider. Prints microseconds per line for a few traffic shapes.

    python -m bench.framing [--lines 200000]
"""

from __future__ import annotations

import argparse
import time

from twisted.protocols.basic import LineReceiver

from psicoia.transports.lineedit import LineEditor
from psicoia.transports.telnet import TelnetCodec


class _Counting(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 4097
    count = 0

    def lineReceived(self, line: bytes) -> None:
        self.count += 1


def _new(chunks: list[bytes]) -> int:
    editor = LineEditor(4096)
    count = 0

    def keys(data: bytes) -> None:
        nonlocal count
        count += len(editor.feed(data)[0])

    codec = TelnetCodec(keys)
    for chunk in chunks:
        codec.dataReceived(chunk)
    return count


def _old(chunks: list[bytes]) -> int:
    receiver = _Counting()
    for chunk in chunks:
        receiver.dataReceived(chunk)
    return receiver.count


def _time(function, chunks: list[bytes], lines: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs (the machine's noise only ever adds time)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        counted = function(chunks)
        best = min(best, time.perf_counter() - start)
        assert counted == lines, (function.__name__, counted, lines)
    return best / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    lines = parser.parse_args().lines
    line = "me siento un poco solo hoy, no sé bien por qué".encode("utf-8")
    shapes = {
        "one line per read, CRLF (nc, telnet line mode)": [line + b"\r\n"] * lines,
        "pasted, 64 KiB reads, LF": _reads((line + b"\n") * lines, 65536),
    }
    print(f"{'traffic':<48} {'LineReceiver':>13} {'editor+telnet':>14}  (us per line)")
    for name, chunks in shapes.items():
        old = _time(_old, chunks, lines)
        new = _time(_new, chunks, lines)
        print(f"{name:<48} {old:>13.2f} {new:>14.2f}")
    typed = [bytes([b]) for b in line + b"\r\x00"] * (lines // 20)
    new = _time(_new, typed, lines // 20)
    print(f"{'character mode, one read per key, CR NUL':<48} {'-':>13} {new:>14.2f}")


def _reads(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


if __name__ == "__main__":
    main()
