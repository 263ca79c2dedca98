"""
Train the learned crisis model and write ``psicoia/chat/detector/crisis_model.json``.

    pip install -e '.[train]'                          # scikit-learn, development only
    python -m tests.train_crisis_model                 # retrain and write the shipped file
    python -m tests.train_crisis_model --check         # exit 1 if the shipped file differs
    python -m tests.train_crisis_model --compare       # model-only out-of-fold table of options

Data (never the held-out sets): ``tests/data/crisis/dev/`` and the legacy corpora (read as
:mod:`tests.safety_eval` reads them) plus every ``*singles.tsv`` / ``*dialogs.tsv`` in
``tests/data/crisis/train/``. Dialog turns are examples too, each turn alone (the runtime
model never sees earlier turns' text: the conversation state carries numbers only).

Two logistic regressions (:mod:`psicoia.chat.detector.learned` reads them): ``any`` (risk of
any tier against ordinary messages and look-alikes) and ``tier`` (acute / risk /
third_party / help among risk messages), both with balanced class weights. The thresholds on
``any``'s log-odds come from out-of-fold scores of the training singles: ``confident`` keeps at
most :data:`CONFIDENT_FP` of the ok rows above it, ``signal`` at most :data:`SIGNAL_FP`.

Everything is seeded and deterministic: the test suite regenerates the file (when scikit-learn
is installed) and compares it with the shipped one, so the file cannot drift silently; the file
also records the sha256 of the data it was trained on, which the suite checks always.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from psicoia.chat.detector.features import PREFIX, features
from psicoia.chat.detector.learned import FORMAT, MODEL_FILE
from psicoia.chat.detector.normalize import normalize
from tests import safety_eval
from tests.crisis_training_files import ROOT, TRAIN, data_digests, data_files  # noqa: F401

OUTPUT = ROOT / "psicoia" / "chat" / "detector" / MODEL_FILE
SEED = 20261130
CLASSES = ("acute", "risk", "third_party", "help")


@dataclass(frozen=True)
class Options:
    """What the training may vary; the defaults are the out-of-fold choice."""

    prefix: int = PREFIX
    c_any: float = 4.0
    c_tier: float = 4.0
    min_df: int = 2
    penalty: str = "l2"
    dialog_weight: float = 0.0  # turns alone: out of fold, dialogs do better carried (state)
    confident_fp: float = 0.04
    signal_fp: float = 0.15
    digits: int = 2
    # Below this log-odds the model doubts the rules' families with everyday look-alikes
    # (rules._DOUBTABLE); chosen out of fold with the rules (tests/safety_eval.py --oof).
    doubt: float = -2.0
    tier_floor: float = 0.05  # tier columns whose weights are all smaller are left out


CONFIDENT_FP = Options.confident_fp
SIGNAL_FP = Options.signal_fp


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "risk" or "ok"
    tier: str  # CLASSES or "none"
    kind: str
    weight: float
    source: str  # "single" or "dialog"


def training_data() -> tuple[list, dict]:
    """(singles, dialogs) in :mod:`tests.safety_eval`'s shapes: dev, legacy and train."""
    singles, dialogs = safety_eval.dev_data()
    dialogs = {f"dev/{name}": turns for name, turns in dialogs.items()}
    if TRAIN.is_dir():
        for path in sorted(TRAIN.glob("*singles.tsv")):
            singles += safety_eval.load_singles(path)
        for path in sorted(TRAIN.glob("*dialogs.tsv")):
            for name, turns in safety_eval.load_dialogs(path).items():
                dialogs[f"{path.stem}/{name}"] = turns
    return singles, dialogs


def examples(singles: list, dialogs: dict, options: Options) -> list:
    rows = [Example(s.text, s.label, s.tier, s.kind, 1.0, "single") for s in singles]
    for turns in dialogs.values():
        rows += [Example(t.text, t.label, t.tier, "dialog", options.dialog_weight, "dialog")
                 for t in turns]
    return rows


def _matrix(feature_sets: list, vocabulary: dict) -> csr_matrix:
    indptr, indices = [0], []
    for found in feature_sets:
        indices += sorted(vocabulary[f] for f in found if f in vocabulary)
        indptr.append(len(indices))
    data = np.ones(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(feature_sets), len(vocabulary)))


def _vocabulary(feature_sets: list, min_df: int) -> dict:
    counts: dict = {}
    for found in feature_sets:
        for f in found:
            counts[f] = counts.get(f, 0) + 1
    return {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= min_df))}


def _regression(c: float, options: Options) -> LogisticRegression:
    if options.penalty == "l1":
        return LogisticRegression(C=c, l1_ratio=1.0, solver="saga", max_iter=5000,
                                  class_weight="balanced", random_state=SEED)
    return LogisticRegression(C=c, solver="lbfgs", max_iter=5000, class_weight="balanced",
                              random_state=SEED)


def _fit_raw(rows: list, options: Options) -> dict:
    """The two regressions on ``rows``, as plain weights (not yet thresholded or rounded)."""
    sets = [features(normalize(r.text), options.prefix) for r in rows]
    vocabulary = _vocabulary(sets, options.min_df)
    names = sorted(vocabulary, key=vocabulary.get)
    x = _matrix(sets, vocabulary)
    weights = np.array([r.weight for r in rows])
    y_any = np.array([r.label == "risk" for r in rows], dtype=int)
    any_model = _regression(options.c_any, options).fit(x, y_any, sample_weight=weights)
    risky = np.flatnonzero(y_any)
    y_tier = np.array([CLASSES.index(rows[i].tier) for i in risky])
    tier_model = _regression(options.c_tier, options).fit(x[risky], y_tier,
                                                           sample_weight=weights[risky])
    tier_coef = tier_model.coef_
    tier_bias = tier_model.intercept_
    if tier_coef.shape[0] == 1:  # only two classes present: sklearn gives one row
        tier_coef = np.vstack([-tier_coef[0] / 2, tier_coef[0] / 2])
        tier_bias = np.array([-tier_bias[0] / 2, tier_bias[0] / 2])
    present = [CLASSES[k] for k in tier_model.classes_]
    full_coef = np.full((len(CLASSES), len(names)), 0.0)
    full_bias = np.full(len(CLASSES), -50.0)
    for row, name in enumerate(present):
        full_coef[CLASSES.index(name)] = tier_coef[row]
        full_bias[CLASSES.index(name)] = tier_bias[row]
    return {"names": names, "any_coef": any_model.coef_[0], "any_bias": any_model.intercept_[0],
            "tier_coef": full_coef, "tier_bias": full_bias}


def _export(raw: dict, options: Options, confident: float, signal: float,
            digests: Optional[dict]) -> dict:
    digits = options.digits
    floor = 0.5 * 10 ** -digits
    any_weights = {n: round(float(w), digits) for n, w in zip(raw["names"], raw["any_coef"])
                   if abs(w) >= floor}
    tier_weights = {}
    for j, name in enumerate(raw["names"]):
        column = [round(float(raw["tier_coef"][k][j]), digits) for k in range(len(CLASSES))]
        if max(map(abs, column)) >= options.tier_floor:
            tier_weights[name] = column
    return {
        "format": FORMAT,
        "prefix": options.prefix,
        "classes": list(CLASSES),
        "confident": round(confident, digits),
        "signal": round(signal, digits),
        "doubt": options.doubt,
        "any": {"bias": round(float(raw["any_bias"]), digits), "weights": any_weights},
        "tier": {"bias": [round(float(b), digits) for b in raw["tier_bias"]],
                 "weights": tier_weights},
        "trained": {"seed": SEED, "options": options.__dict__, "data": digests or {}},
    }


def _folds(rows: list, k: int, seed: int) -> list:
    """Fold number of each row: stratified by label and source."""
    strata = [f"{r.label}/{r.source}" for r in rows]
    fold = [0] * len(rows)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for number, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), strata)):
        for i in test:
            fold[i] = number
    return fold


def _logit(raw: dict, text: str, options: Options, index: dict) -> float:
    total = float(raw["any_bias"])
    for f in features(normalize(text), options.prefix):
        if f in index:
            total += float(raw["any_coef"][index[f]])
    return total


def oof_logits(rows: list, options: Options, k: int = 5, seed: int = SEED) -> list:
    """Out-of-fold log-odds of each row (a model trained without its fold)."""
    fold = _folds(rows, k, seed)
    out = [0.0] * len(rows)
    for number in range(k):
        train = [r for r, f in zip(rows, fold) if f != number]
        raw = _fit_raw(train, options)
        index = {n: i for i, n in enumerate(raw["names"])}
        for i, (r, f) in enumerate(zip(rows, fold)):
            if f == number:
                out[i] = _logit(raw, r.text, options, index)
    return out


def thresholds(rows: list, logits: list, options: Options) -> tuple[float, float]:
    """(confident, signal): the log-odds above which at most ``confident_fp`` / ``signal_fp``
    of the look-alike singles fall, out of fold (ordinary messages are easier: not counted)."""
    ok = sorted((x for r, x in zip(rows, logits)
                 if r.label == "ok" and r.source == "single" and r.kind != "ordinary"),
                reverse=True)
    if not ok:
        return 0.0, 0.0

    def above(share: float) -> float:
        allowed = int(share * len(ok))
        return ok[allowed] + 1e-3 if allowed < len(ok) else ok[-1]
    return above(options.confident_fp), above(options.signal_fp)


def fit(singles: list, dialogs: dict, options: Options = Options(),
        digests: Optional[dict] = None) -> dict:
    """The exported model (a JSON-ready dict) trained on ``singles`` and ``dialogs``, its
    thresholds chosen on out-of-fold scores of the same data. Deterministic for fixed data."""
    rows = examples(singles, dialogs, options)
    confident, signal = thresholds(rows, oof_logits(rows, options), options)
    return _export(_fit_raw(rows, options), options, confident, signal, digests)


def dump(model: dict) -> str:
    return json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def compare(out=sys.stdout) -> None:
    """Model-only out-of-fold recall and look-alike rate for a few options (choose by these)."""
    singles, dialogs = training_data()
    variants = {
        "default": Options(),
        "prefix 4": Options(prefix=4),
        "prefix 6": Options(prefix=6),
        "no prefix": Options(prefix=0),
        "C 1": Options(c_any=1.0, c_tier=1.0),
        "C 16": Options(c_any=16.0, c_tier=16.0),
        "min_df 1": Options(min_df=1),
        "l1 C 16": Options(penalty="l1", c_any=16.0, c_tier=16.0),
        "dialogs 1.0": Options(dialog_weight=1.0),
        "dialogs 0": Options(dialog_weight=0.0),
    }
    for name, options in variants.items():
        rows = examples(singles, dialogs, options)
        logits = oof_logits(rows, options)
        singles_rows = [(r, x) for r, x in zip(rows, logits) if r.source == "single"]
        for share in (0.02, 0.04):
            ok = sorted((x for r, x in singles_rows if r.label == "ok"), reverse=True)
            cut = ok[int(share * len(ok))]
            risk = [x > cut for r, x in singles_rows if r.label == "risk"]
            out.write(f"{name:12s} FP<={share:.0%}: model-only OOF recall "
                      f"{sum(risk) / len(risk):.3f}\n")


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file")
    parser.add_argument("--compare", action="store_true", help="out-of-fold table of options")
    args = parser.parse_args(argv)
    if args.compare:
        compare()
        return 0
    text = dump(fit(*training_data(), digests=data_digests()))
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_text("utf-8") == text
        print("crisis model: up to date" if same else "crisis model: differs, retrain")
        return 0 if same else 1
    OUTPUT.write_text(text, "utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
