"""Summarise two cProfile files (PsicoIA and the floor under the same load) side by side."""

from __future__ import annotations

import collections
import io
import pstats
from pathlib import Path

REPO = str(Path(__file__).resolve().parent.parent) + "/"


def _module(filename: str) -> str:
    for marker in ("site-packages/", REPO, "python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return filename


def by_module(path: Path) -> tuple[collections.Counter, float, int]:
    """Own time per module (the reactor's idle epoll wait left out), total, call count."""
    stats = pstats.Stats(str(path))
    totals: collections.Counter = collections.Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        if name == "<method 'poll' of 'select.epoll' objects>":
            continue
        totals[_module(filename)] += own
    return totals, sum(totals.values()), stats.total_calls


def compare(ours_path: Path, floor_path: Path, ours: dict, floor: dict,
            scenario: str = "scenario (b)") -> str:
    out = io.StringIO()
    ours_by, ours_total, ours_calls = by_module(ours_path)
    floor_by, floor_total, floor_calls = by_module(floor_path)
    ours_n = ours.get("ok", 0) + ours.get("busy", 0) or 1
    floor_n = floor.get("ok", 0) or 1
    out.write(f"cProfile of {scenario}, PsicoIA (twistd --profile) and the floor, one after "
              "the other.\nMicroseconds are under the profiler (several times the real cost); "
              "compare them with each other, not with the tables.\n"
              "Both runs include their warm-up messages and start-up.\n\n")
    out.write(f"PsicoIA: {ours_n} messages, {ours_calls} function calls, "
              f"{ours_total:.3f} s busy\n")
    out.write(f"floor:   {floor_n} messages, {floor_calls} function calls, "
              f"{floor_total:.3f} s busy\n\n")
    out.write("Own time per message by module, largest differences first (us/message):\n\n")
    out.write(f"{'PsicoIA':>9} {'floor':>9} {'diff':>9}  module\n")
    modules = set(ours_by) | set(floor_by)
    rows = sorted(modules, key=lambda m: -(ours_by[m] / ours_n - floor_by[m] / floor_n))
    for module in rows[:30]:
        a, b = ours_by[module] / ours_n * 1e6, floor_by[module] / floor_n * 1e6
        out.write(f"{a:9.1f} {b:9.1f} {a - b:+9.1f}  {module}\n")
    out.write(f"{ours_total / ours_n * 1e6:9.1f} {floor_total / floor_n * 1e6:9.1f} "
              f"{(ours_total / ours_n - floor_total / floor_n) * 1e6:+9.1f}  all\n\n")
    for title, path in (("PsicoIA", ours_path), ("floor", floor_path)):
        out.write(f"--- {title}: top functions by own time ---\n")
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats("tottime").print_stats(20)
    out.write("--- PsicoIA: its own functions by cumulative time ---\n")
    stats = pstats.Stats(str(ours_path), stream=out)
    stats.sort_stats("cumulative").print_stats("psicoia/", 30)
    return out.getvalue()
