"""The latency distribution plot for docs/benchmarks.md (matplotlib, the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (title, scenario whose provider latency is subtracted or None, log x axis, series)
PANELS = (
    ("(a)/(c)/(f): latency added to the provider's", "overhead", True,
     (("a-psicoia", "PsicoIA TCP"), ("a-floor", "floor TCP"), ("c-ws", "PsicoIA WebSocket"))),
    ("(b)/(f): provider 0 ms, throughput", None, False,
     (("b-psicoia", "PsicoIA TCP"), ("b-floor", "floor TCP"))),
    ("(e): saturation, answered messages", None, False, (("e-psicoia", "PsicoIA TCP"),)),
)


def plot_latencies(latencies: dict[str, list[float]], results: dict,
                   path: Path) -> Optional[str]:
    """Draw one CDF panel per scenario family; return the file name, or None if no data."""
    if not any(latencies.values()):
        return None
    figure, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.5))
    for axis, (title, offset_from, log_x, series) in zip(axes, PANELS):
        drawn = False
        offset = (results.get(offset_from) or {}).get("params", {}).get("latency_ms", 0) \
            if offset_from else 0
        for key, label in series:
            values = sorted(max(0.01, v - offset) for v in latencies.get(key, []))
            if not values:
                continue
            fractions = [(i + 1) / len(values) * 100 for i in range(len(values))]
            axis.plot(values, fractions, label=f"{label} (n={len(values)})")
            drawn = True
        axis.set_title(title)
        if log_x and drawn:
            axis.set_xscale("log")
        axis.set_xlabel(f"latency minus the provider's {offset:g} ms (ms, log scale)"
                        if offset else "latency (ms)")
        axis.set_ylabel("percentile")
        axis.grid(True, alpha=0.3)
        if drawn:
            axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path.name
