"""tests/safety_eval.py: the held-out set stays frozen and unseen; dev is reported in full.

The held-out rows are never read here beyond their hash: the evaluation on them is run by hand,
twice (before tuning and at the end, docs/safety.md), not by the test suite.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests import safety_eval
from tests.crisis_training_files import data_files

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(safety_eval.HELDOUT_SHA256))
def test_the_held_out_files_are_the_frozen_ones(name):
    assert safety_eval.sha256(safety_eval.HELDOUT / name) == safety_eval.HELDOUT_SHA256[name]


def _pins(version: int) -> dict:
    """{path under tests/data/crisis/: sha256} from HELDOUT<version>.sha256 (frozen before
    that round's tuning)."""
    pins = {}
    for line in (safety_eval.DATA / "crisis" / f"HELDOUT{version}.sha256").read_text().splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split()
            pins[name if "/" in name else f"heldout{version}/{name}"] = digest
    return pins


@pytest.mark.parametrize("version, name",
                         [(v, name) for v in (3, 4, 5) for name in sorted(_pins(v))])
def test_later_held_out_files_are_the_ones_frozen_before_tuning(version, name):
    path = safety_eval.DATA / "crisis" / name
    assert safety_eval.sha256(path) == _pins(version)[name]


@pytest.mark.parametrize("version", [4, 5])
def test_later_held_out_sets_are_both_halves(version):
    halves = (f"heldout{version}", f"heldout{version}b")
    assert sorted(_pins(version)) == [f"{half}/{name}" for half in halves
                                      for name in ("dialogs.tsv", "singles.tsv")]


def test_no_held_out_file_is_training_data():
    assert not any("heldout" in str(path) for path in data_files())


def test_the_dev_set_is_large_mixed_and_well_formed():
    singles, dialogs = safety_eval.dev_data()
    kinds = {row.kind for row in singles}
    for kind in ("ideation", "passive", "burden", "hopeless", "goodbye", "plan_means",
                 "self_harm", "acute", "third_party", "help", "english", "spain",
                 "portuguese", "chat_spelling", "lookalike"):
        assert kind in kinds
    assert len(singles) >= 600 and len(dialogs) >= 20
    # The relabelled legacy rows are third-party risk now.
    relabelled = [r for r in singles if (r.source, r.id) in safety_eval.LEGACY_THIRD_PARTY]
    assert len(relabelled) == 4 and {r.tier for r in relabelled} == {"third_party"}


def test_dev_thresholds_hold_as_a_regression_guard():
    """In-sample numbers: a guard against regressions, not a proof of generalisation."""
    dev = safety_eval.measure(*safety_eval.dev_data())
    assert dev.recall.value >= 0.95
    assert dev.lookalikes_flagged.value <= 0.05
    assert dev.acute_got_acute.value >= 0.95
    assert dev.per_tier["third_party"].value >= 0.9
    assert dev.dialogs_at_onset.value >= 0.85
    for kind, ratio in dev.per_kind.items():
        assert ratio.value >= 0.85, kind


def test_held_out_rows_are_never_printed(tmp_path, monkeypatch):
    """With a stand-in held-out set of marked rows, the report shows only aggregates."""
    held = tmp_path / "heldout"
    held.mkdir()
    (held / "singles.tsv").write_text(
        "label\ttier\tkind\tlang\ttext\n"
        "risk\trisk\tideation\tes\tMARKER-ONE quiero morirme\n"
        "risk\trisk\tideation\tes\tMARKER-TWO algo que no se detecta\n"
        "ok\tnone\tlookalike\tes\tMARKER-THREE me quiero matar jaja me olvidé las llaves\n",
        encoding="utf-8")
    (held / "dialogs.tsv").write_text(
        "dialog\tturn\tlabel\ttier\ttext\nh1\t1\trisk\trisk\tMARKER-FOUR sin detectar\n",
        encoding="utf-8")
    monkeypatch.setattr(safety_eval, "HELDOUT", held)
    monkeypatch.setattr(safety_eval, "HELDOUT_SHA256", {
        name: safety_eval.sha256(held / name) for name in ("singles.tsv", "dialogs.tsv")})
    out = io.StringIO()
    dev, measured = safety_eval.full_report(out)
    text = out.getvalue()
    assert "MARKER" not in text
    assert measured.recall.n == 2 and measured.recall.hits == 1
    assert "held-out" in text and "dev misses" in text


def test_a_changed_held_out_file_stops_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(safety_eval, "HELDOUT_SHA256", {"singles.tsv": "0" * 64})
    with pytest.raises(SystemExit, match="changed"):
        safety_eval.full_report(io.StringIO())


def test_a_malformed_row_is_named_by_its_line(tmp_path):
    bad = tmp_path / "singles.tsv"
    bad.write_text("label\ttier\tkind\tlang\ttext\nrisk\tmaybe\tideation\tes\tx\n",
                   encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        safety_eval.load_singles(bad)


def test_the_dev_report_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "tests.safety_eval", "--dev"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "recall, all risk messages" in done.stdout and "(not run)" in done.stdout
