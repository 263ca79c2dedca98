"""
The legacy crisis corpora (``tests/data/crisis_*.tsv``: ``label lang category text``) and their
per-corpus report, read by :mod:`tests.safety_eval` (``python -m tests.safety_eval CORPUS.tsv``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, TextIO

from psicoia.chat import detector

LABELS = ("risk", "ok")


@dataclass(frozen=True)
class Example:
    id: int
    label: str
    lang: str
    category: str
    text: str

    @property
    def risk(self) -> bool:
        return self.label == "risk"


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    wrong: list = field(default_factory=list)

    def add(self, example, predicted: bool) -> None:
        if example.risk and predicted:
            self.tp += 1
        elif example.risk:
            self.fn += 1
            self.wrong.append(example)
        elif predicted:
            self.fp += 1
            self.wrong.append(example)
        else:
            self.tn += 1

    @property
    def precision(self) -> Optional[float]:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else None

    @property
    def recall(self) -> Optional[float]:
        positives = self.tp + self.fn
        return self.tp / positives if positives else None

    @property
    def false_positive_rate(self) -> Optional[float]:
        negatives = self.fp + self.tn
        return self.fp / negatives if negatives else None


def _rows(path: Path, columns: int, what: str):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if number == 1 or not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != columns:
                raise ValueError(f"{path}:{number}: expected {what}")
            yield number, parts


def load(path: Path) -> list[Example]:
    """Read a legacy corpus; a malformed row raises ValueError naming its line."""
    examples = []
    for number, parts in _rows(path, 4, "label<TAB>lang<TAB>category<TAB>text"):
        if parts[0] not in LABELS:
            raise ValueError(f"{path}:{number}: expected label<TAB>lang<TAB>category<TAB>text")
        examples.append(Example(number, *parts))
    return examples


def evaluate(examples: Iterable[Example]) -> tuple[Scores, dict[str, Scores]]:
    """Overall scores, and scores per ``lang`` and per ``label/category`` group."""
    overall = Scores()
    groups: dict[str, Scores] = defaultdict(Scores)
    for example in examples:
        predicted = detector.assess(example.text).tier is not None
        overall.add(example, predicted)
        groups[f"lang={example.lang}"].add(example, predicted)
        groups[f"{example.label}/{example.category}"].add(example, predicted)
    return overall, dict(groups)


def _pct(value: Optional[float]) -> str:
    return "  n/a" if value is None else f"{value * 100:5.1f}%"


def report(path: Path, out: TextIO) -> Scores:
    examples = load(path)
    overall, groups = evaluate(examples)
    out.write(f"{path} ({len(examples)} messages: {overall.tp + overall.fn} risk, "
              f"{overall.fp + overall.tn} ok)\n")
    out.write(f"  precision {_pct(overall.precision)}  recall {_pct(overall.recall)}  "
              f"false-positive rate {_pct(overall.false_positive_rate)}  "
              f"(tp={overall.tp} fn={overall.fn} fp={overall.fp} tn={overall.tn})\n")
    for name in sorted(groups):
        scores = groups[name]
        n = scores.tp + scores.fn + scores.fp + scores.tn
        errors = scores.fn + scores.fp
        out.write(f"    {name:28s} n={n:3d} errors={errors}\n")
    if overall.wrong:
        out.write("  misclassified (id, expected, category, text):\n")
        for example in overall.wrong:
            out.write(f"    {example.id:4d} {example.label:4s} {example.category:18s} "
                      f"{example.text}\n")
    return overall


