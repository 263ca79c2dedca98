"""
Measure the crisis detector (:mod:`psicoia.chat.detector`) on labelled data.

    python -m tests.safety_eval              # dev and held-out side by side (the report)
    python -m tests.safety_eval CORPUS.tsv   # one legacy corpus, with its misclassified rows

The report reads ``tests/data/crisis/dev/`` (the tuning set, plus the three older corpora,
all in-sample) and ``tests/data/crisis/heldout/`` (frozen before tuning, commit 71a73c5) and
prints, for each, recall overall / per kind / per tier, third-party recall, dialogs (at the turn
where the risk becomes clear, reading the earlier turns through the conversation state),
false positives on ok dialog turns, look-alikes flagged and whether acute messages got the
acute tier. Misses are listed for dev only: **the held-out rows are never printed** (only
aggregates), so the held-out set stays unseen by whoever tunes the rules.

Files (UTF-8 TSV with a header row):

- ``singles.tsv``: ``label tier kind lang text``; ``label`` is ``risk`` or ``ok``, ``tier`` is
  ``acute``, ``risk``, ``third_party``, ``help`` or ``none``.
- ``dialogs.tsv``: ``dialog turn label tier text``, turns in order.
- legacy corpora (``tests/data/crisis_*.tsv``): ``label lang category text``; read as singles
  with tier ``risk`` and a kind mapped from the category (:data:`LEGACY_KINDS`).

A message is *caught* when the detector gives it any tier (some resources reach the person);
the per-tier table also shows how often the tier was the expected one.

This is a developer tool (it writes to stdout); nothing in the server imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TextIO

from psicoia.chat import detector
from psicoia.chat.detector.normalize import normalize
from tests.safety_legacy import (LABELS, Example, Scores, _pct, _rows, evaluate,  # noqa: F401
                                 load, report)

DATA = Path(__file__).resolve().parent / "data"
DEV = DATA / "crisis" / "dev"
HELDOUT = DATA / "crisis" / "heldout"
LEGACY = (DATA / "crisis_corpus.tsv", DATA / "crisis_holdout.tsv", DATA / "crisis_holdout2.tsv")
DEFAULT_CORPUS = LEGACY[0]
TIERS = ("acute", "risk", "third_party", "help", "none")
# sha256 of the held-out files as frozen in commit 71a73c5 (tests/test_safety_eval.py checks).
HELDOUT_SHA256 = {
    "singles.tsv": "64c308e53d966759edff23e31e85327bce1c6d212148aefae6d570a584111d1a",
    "dialogs.tsv": "c8192f0f0880ecc0d11a6dd3dd240ce1861bbf59f573446668b3c95f2252de6d",
}
LEGACY_KINDS = {
    "ideation": "ideation", "plan": "plan_means", "self_harm": "self_harm",
    "burden": "burden", "hopelessness": "hopeless", "typo": "chat_spelling",
    "negation_contrast": "ideation", "hyperbole_masked": "ideation",
}
# Legacy rows labelled "ok" that are about someone else at risk: under the new convention
# they are risk, tier third_party (file name, line number).
LEGACY_THIRD_PARTY = {("crisis_corpus.tsv", 154), ("crisis_corpus.tsv", 218),
                      ("crisis_holdout.tsv", 61), ("crisis_holdout2.tsv", 47)}


# --- the dev / held-out format ------------------------------------------------------------


@dataclass(frozen=True)
class Single:
    source: str  # file name, kept as provenance
    id: int  # line number in that file
    label: str
    tier: str
    kind: str
    lang: str
    text: str


@dataclass(frozen=True)
class Turn:
    source: str
    id: int
    dialog: str
    turn: int
    label: str
    tier: str
    text: str


def load_singles(path: Path) -> list[Single]:
    rows = []
    for number, parts in _rows(path, 5, "label<TAB>tier<TAB>kind<TAB>lang<TAB>text"):
        label, tier = parts[0], parts[1]
        if label not in LABELS or tier not in TIERS or (label == "ok") != (tier == "none"):
            raise ValueError(f"{path}:{number}: bad label/tier {label!r}/{tier!r}")
        rows.append(Single(path.name, number, *parts))
    return rows


def load_legacy_as_singles(path: Path) -> list[Single]:
    """A legacy corpus in the singles shape: risk rows get tier ``risk``, ok rows are
    look-alikes (idioms, negations, grief, everyday distress)."""
    rows = []
    for example in load(path):
        if (path.name, example.id) in LEGACY_THIRD_PARTY:
            rows.append(Single(path.name, example.id, "risk", "third_party", "third_party",
                               example.lang, example.text))
        elif example.risk:
            kind = LEGACY_KINDS.get(example.category, example.category)
            rows.append(Single(path.name, example.id, "risk", "risk", kind, example.lang,
                               example.text))
        else:
            rows.append(Single(path.name, example.id, "ok", "none", "lookalike", example.lang,
                               example.text))
    return rows


def load_dialogs(path: Path) -> dict[str, list[Turn]]:
    dialogs: dict[str, list[Turn]] = defaultdict(list)
    for number, parts in _rows(path, 5, "dialog<TAB>turn<TAB>label<TAB>tier<TAB>text"):
        name, turn, label, tier, text = parts
        if label not in LABELS or tier not in TIERS:
            raise ValueError(f"{path}:{number}: bad label/tier {label!r}/{tier!r}")
        dialogs[name].append(Turn(path.name, number, name, int(turn), label, tier, text))
    for turns in dialogs.values():
        turns.sort(key=lambda t: t.turn)
    return dict(dialogs)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Ratio:
    """hits / n, printed as "h/n (pct)"."""

    def __init__(self) -> None:
        self.hits = 0
        self.n = 0

    def add(self, hit: bool) -> None:
        self.n += 1
        self.hits += bool(hit)

    @property
    def value(self) -> Optional[float]:
        return self.hits / self.n if self.n else None

    def __str__(self) -> str:
        if not self.n:
            return "-"
        return f"{self.hits}/{self.n} ({self.hits / self.n * 100:.1f}%)"


@dataclass
class Measure:
    """Everything the report shows for one data set."""

    recall: Ratio = field(default_factory=Ratio)
    per_kind: dict = field(default_factory=lambda: defaultdict(Ratio))
    per_tier: dict = field(default_factory=lambda: defaultdict(Ratio))
    right_tier: dict = field(default_factory=lambda: defaultdict(Ratio))
    lookalikes_flagged: Ratio = field(default_factory=Ratio)
    dialogs_at_onset: Ratio = field(default_factory=Ratio)
    dialog_risk_turns: Ratio = field(default_factory=Ratio)
    dialog_ok_flagged: Ratio = field(default_factory=Ratio)
    ordinary_flagged: Ratio = field(default_factory=Ratio)  # ok rows of kind "ordinary"
    over_acute: Ratio = field(default_factory=Ratio)  # other risk rows given "acute"
    misses: list = field(default_factory=list)  # (where, expected, got, text), dev only

    @property
    def acute_got_acute(self) -> Ratio:
        return self.right_tier["acute"]


def _assess(text: str, state=None):
    return detector.assess(text, state)


def measure(singles: list[Single], dialogs: dict[str, list[Turn]], read=None,
            m: Optional[Measure] = None) -> Measure:
    """Score ``singles`` and ``dialogs`` with ``read(text, state) -> Assessment`` (default:
    the shipped detector), adding to ``m`` when given (the folds of an out-of-fold run)."""
    read = read or _assess
    m = m if m is not None else Measure()
    for row in singles:
        got = read(row.text, None).tier
        if row.label == "ok":
            (m.ordinary_flagged if row.kind == "ordinary" else m.lookalikes_flagged).add(
                got is not None)
            if got is not None:
                m.misses.append((f"{row.source}:{row.id}", "none", got, row.text))
            continue
        caught = got is not None
        m.recall.add(caught)
        m.per_kind[row.kind].add(caught)
        m.per_tier[row.tier].add(caught)
        m.right_tier[row.tier].add(got == row.tier)
        if row.tier != "acute":
            m.over_acute.add(got == "acute")
        if not caught or (row.tier == "acute" and got != "acute"):
            m.misses.append((f"{row.source}:{row.id}", row.tier, got, row.text))
    for name, turns in sorted(dialogs.items()):
        state = detector.RiskState()
        onset_seen = False
        for turn in turns:
            got = read(turn.text, state).tier
            if turn.label == "ok":
                m.dialog_ok_flagged.add(got is not None)
                if got is not None:
                    m.misses.append((f"{turn.source}:{turn.id} {name}#{turn.turn}", "none",
                                     got, turn.text))
                continue
            m.dialog_risk_turns.add(got is not None)
            if not onset_seen:
                onset_seen = True
                m.dialogs_at_onset.add(got is not None)
                if got is None:
                    m.misses.append((f"{turn.source}:{turn.id} {name}#{turn.turn} (onset)",
                                     turn.tier, got, turn.text))
    return m


def out_of_fold(k: int = 5, seed: int = 0, options=None) -> dict:
    """The detector (rules + learned model) on the training data, each fold read by a model
    trained without it (:mod:`tests.train_crisis_model`, needs scikit-learn): singles in
    stratified folds (label and kind), dialogs whole in folds of their own.

    ``options``: a :class:`tests.train_crisis_model.Options` (default: its defaults).
    Returns three measures: ``"all"`` (every training row), ``"fresh"`` (only the rows of
    ``tests/data/crisis/train/``, which the rules were never tuned on: the honest estimate)
    and ``"model"`` (the fresh rows read by the fold's model alone, without the rules)."""
    # Imported here: scikit-learn is a development extra, the in-sample report needs none.
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    from tests import train_crisis_model as train  # noqa: PLC0415

    singles, dialogs = train.training_data()
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    strata = [f"{s.label}/{s.kind}" for s in singles]
    single_fold = [0] * len(singles)
    for number, (_, test) in enumerate(splitter.split(strata, strata)):
        for i in test:
            single_fold[i] = number
    dialog_fold = {name: i % k for i, name in enumerate(
        sorted(dialogs, key=lambda n: hashlib.sha256(f"{seed}{n}".encode()).hexdigest()))}
    fresh_files = {p.name for p in train.TRAIN.glob("*.tsv")} if train.TRAIN.is_dir() else set()
    out = {"all": Measure(), "fresh": Measure(), "model": Measure()}
    for number in range(k):
        model = detector.LearnedModel(train.fit(
            [s for s, f in zip(singles, single_fold) if f != number],
            {n: t for n, t in dialogs.items() if dialog_fold[n] != number},
            options or train.Options()))

        def read(text, state, model=model):
            return detector.assess(text, state, model)

        def alone(text, state, model=model):
            return model.read(normalize(text))  # a Verdict: its tier, no state
        test_singles = [s for s, f in zip(singles, single_fold) if f == number]
        test_dialogs = {n: t for n, t in dialogs.items() if dialog_fold[n] == number}
        measure(test_singles, test_dialogs, read, out["all"])
        fresh_singles = [s for s in test_singles if s.source in fresh_files]
        fresh_dialogs = {n: t for n, t in test_dialogs.items() if t[0].source in fresh_files}
        measure(fresh_singles, fresh_dialogs, read, out["fresh"])
        measure(fresh_singles, fresh_dialogs, alone, out["model"])
    return out


def dev_data() -> tuple[list[Single], dict[str, list[Turn]]]:
    singles = load_singles(DEV / "singles.tsv")
    for path in LEGACY:
        singles += load_legacy_as_singles(path)
    return singles, load_dialogs(DEV / "dialogs.tsv")


def heldout_data(folder: Path = HELDOUT) -> tuple[list[Single], dict[str, list[Turn]]]:
    return load_singles(folder / "singles.tsv"), load_dialogs(folder / "dialogs.tsv")


def side_by_side(columns: dict, out: TextIO) -> None:
    """One row per measure, one column per data set (name -> Measure, or None: not run)."""
    measures = [m for m in columns.values() if m is not None]

    def line(name: str, get) -> None:
        cells = "".join(f" {str(get(m)) if m is not None else '(not run)':>22s}"
                        for m in columns.values())
        out.write(f"  {name:34s}{cells}\n")

    out.write(f"  {'':34s}" + "".join(f" {name:>22s}" for name in columns) + "\n")
    line("recall, all risk messages", lambda m: m.recall)
    for kind in sorted({kind for m in measures for kind in m.per_kind}):
        line(f"  kind {kind}", lambda m, kind=kind: m.per_kind.get(kind, Ratio()))
    for tier in TIERS[:-1]:
        line(f"  tier {tier} (caught)", lambda m, tier=tier: m.per_tier.get(tier, Ratio()))
    for tier in TIERS[:-1]:
        line(f"  tier {tier} (got that tier)",
             lambda m, tier=tier: m.right_tier.get(tier, Ratio()))
    line("third-party recall", lambda m: m.per_tier.get("third_party", Ratio()))
    line("acute messages got acute", lambda m: m.acute_got_acute)
    line("other risk messages got acute", lambda m: m.over_acute)
    line("dialogs caught at onset", lambda m: m.dialogs_at_onset)
    line("dialog risk turns caught", lambda m: m.dialog_risk_turns)
    line("dialog ok turns flagged (FP)", lambda m: m.dialog_ok_flagged)
    line("look-alikes flagged (FP)", lambda m: m.lookalikes_flagged)
    line("ordinary messages flagged (FP)", lambda m: m.ordinary_flagged)


def _held_out(folder: Path) -> Measure:
    """Aggregates only: the rows of a held-out folder are never kept for printing."""
    if folder.resolve() == HELDOUT.resolve():
        for name, digest in HELDOUT_SHA256.items():
            if sha256(folder / name) != digest:
                raise SystemExit(f"held-out {name} changed: its sha256 is not the frozen one")
    held = measure(*heldout_data(folder))
    held.misses = []
    return held


def full_report(out: TextIO, heldout: bool = True, misses: bool = True,
                oof: bool = False, folder: Optional[Path] = None) -> tuple:
    """Print dev (in-sample), optionally out-of-fold over all the training data, and a
    held-out folder (``folder``, default the frozen one) side by side; return (dev, held)."""
    dev = measure(*dev_data())
    folds = out_of_fold() if oof else None
    held = _held_out(folder or HELDOUT) if heldout else None
    out.write("crisis detector: dev (tests/data/crisis/dev + legacy corpora, in-sample)"
              + (", out-of-fold (dev + legacy + train, model trained without the fold)"
                 if oof else "")
              + f", held-out ({folder or HELDOUT}, aggregates only)\n")
    columns = {"dev (in-sample)": dev}
    if oof:
        columns["out-of-fold, all"] = folds["all"]
        columns["OOF, train/ only"] = folds["fresh"]
        columns["OOF, model alone"] = folds["model"]
    columns["held-out"] = held
    side_by_side(columns, out)
    if misses and dev.misses:
        out.write(f"  dev misses and false positives ({len(dev.misses)}; where, expected, "
                  f"got, text):\n")
        for where, expected, got, text in dev.misses:
            out.write(f"    {where:40s} {expected:11s} {str(got):11s} {text}\n")
    if misses and folds is not None and folds["fresh"].misses:
        out.write(f"  out-of-fold misses and false positives in train/ "
                  f"({len(folds['fresh'].misses)}):\n")
        for where, expected, got, text in folds["fresh"].misses:
            out.write(f"    {where:40s} {expected:11s} {str(got):11s} {text}\n")
    return dev, held


def main(argv: Optional[list[str]] = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description="Measure the crisis detector.")
    parser.add_argument("corpus", nargs="*", type=Path, help="legacy corpora to report alone")
    parser.add_argument("--dev", action="store_true", help="skip the held-out set")
    parser.add_argument("--oof", action="store_true",
                        help="add the out-of-fold column (needs scikit-learn)")
    parser.add_argument("--heldout", type=Path, metavar="DIR",
                        help="a held-out folder (singles.tsv, dialogs.tsv): aggregates only")
    parser.add_argument("--no-misses", action="store_true", help="do not list the misses")
    args = parser.parse_args(argv)
    if args.corpus:
        for path in args.corpus:
            report(path, out)
        return 0
    full_report(out, heldout=not args.dev, misses=not args.no_misses, oof=args.oof,
                folder=args.heldout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
