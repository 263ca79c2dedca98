"""
Which files the learned crisis model is trained on, and their sha256.

Kept apart from ``tests/train_crisis_model.py`` (which needs scikit-learn, numpy and scipy, a
development-only extra) so the test suite can check, without them, that the shipped model
records the data in the repository.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests import safety_eval

ROOT = Path(__file__).resolve().parent.parent
TRAIN = safety_eval.DATA / "crisis" / "train"


def data_files() -> list[Path]:
    """Every file the model is trained on, in a fixed order: dev, the legacy corpora, train/."""
    files = [safety_eval.DEV / "singles.tsv", safety_eval.DEV / "dialogs.tsv", *safety_eval.LEGACY]
    if TRAIN.is_dir():
        files += sorted(TRAIN.glob("*singles.tsv")) + sorted(TRAIN.glob("*dialogs.tsv"))
    return files


def data_digests() -> dict[str, str]:
    """{path relative to the root: sha256 hex} of :func:`data_files`."""
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in data_files()}
