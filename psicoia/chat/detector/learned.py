"""
The learned crisis model: a linear classifier read in pure Python (docs/safety.md).

The rules (:mod:`psicoia.chat.detector.rules`) are the explainable floor; this model adds what
they miss on wording they were never written for. It is two logistic regressions trained
offline by ``python -m tests.train_crisis_model`` (scikit-learn, a development dependency only)
and shipped as ``crisis_model.json`` beside this module: only the non-zero weights, rounded.

- ``any``: one weight per feature; the bias plus the weights of the features present is the
  log-odds that the message is about risk (any tier) rather than ordinary.
- ``tier``: four weights per feature (``acute``, ``risk``, ``third_party``, ``help``), read only
  when ``any`` is confident: the tier with the highest sum.

Reading a message is a set intersection and a sum (a few microseconds); nothing here logs.
Two thresholds on the log-odds, chosen by cross-validation when training: at or above
``confident`` the model gives a tier; between ``signal`` and ``confident`` it gives a weak
signal (``"model"`` in :data:`~psicoia.chat.detector.signals.WEAK_WEIGHTS`) that adds up with
the rules' weak signals and, through the conversation's
:class:`~psicoia.chat.detector.state.RiskState`, across turns. A third, optional one,
``doubt`` (absent: never), marks a message the model reads as clearly ordinary: the rules'
families with known everyday look-alikes then count only as a weak signal (rules.py).
"""

from __future__ import annotations

import json
from itertools import repeat
from importlib import resources
from typing import Any, Mapping, NamedTuple, Optional

from psicoia.chat.detector.features import features

__all__ = ["MODEL_FILE", "SILENT", "LearnedModel", "Verdict", "default_model"]

MODEL_FILE = "crisis_model.json"
_ZEROS = repeat(0.0)  # the default of every weight lookup (map stops at the features' end)
FORMAT = 1


class Verdict(NamedTuple):
    """The model's reading of one message: ``tier`` when confident (else None), ``signal``
    when mid-confident (a weak signal, never with a tier), ``logit`` the log-odds of risk
    (carried evidence included), ``own`` the log-odds of this message alone, ``doubt`` when
    ``own`` is below the model's ``doubt`` threshold (clearly ordinary to the model)."""

    tier: Optional[str] = None
    signal: bool = False
    logit: float = 0.0
    own: float = 0.0
    doubt: bool = False


class LearnedModel:
    """A model from its exported mapping (the JSON object ``crisis_model.json`` holds).

    Raises ValueError on a mapping of another format or with a missing part.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"crisis model: expected format {FORMAT}, got {data.get('format')!r}")
        try:
            self.prefix = int(data["prefix"])
            self.classes = tuple(data["classes"])
            self.bias = float(data["any"]["bias"])
            self.weights = {str(k): float(v) for k, v in data["any"]["weights"].items()}
            self.tier_bias = tuple(float(b) for b in data["tier"]["bias"])
            self.tier_weights = {str(k): tuple(map(float, v))
                                 for k, v in data["tier"]["weights"].items()}
            self.confident = float(data["confident"])
            self.signal = float(data["signal"])
            doubt = data.get("doubt")
            self.doubt = None if doubt is None else float(doubt)
        except (KeyError, TypeError) as error:
            raise ValueError(f"crisis model: malformed ({error!r})") from None
        if len(self.tier_bias) != len(self.classes) or any(
                len(v) != len(self.classes) for v in self.tier_weights.values()):
            raise ValueError("crisis model: tier weights do not match its classes")
        self._get = self.weights.get  # one table lookup per feature (cache-friendly)
        self._tier_keys = frozenset(self.tier_weights)

    @classmethod
    def from_json(cls, text: str) -> "LearnedModel":
        return cls(json.loads(text))

    def logit(self, normal: str) -> float:
        """The log-odds that ``normal`` (a normalised message) is about risk."""
        return self.bias + sum(map(self._get, features(normal, self.prefix), _ZEROS))

    def tier_of(self, normal: str) -> str:
        """The most likely tier of a message already read as risk."""
        sums = list(self.tier_bias)
        for feature in features(normal, self.prefix) & self._tier_keys:
            for i, weight in enumerate(self.tier_weights[feature]):
                sums[i] += weight
        return self.classes[max(range(len(sums)), key=sums.__getitem__)]

    def read(self, normal: str, carried: float = 0.0) -> Verdict:
        """The verdict on ``normal`` (a :func:`~psicoia.chat.detector.normalize.normalize`
        result), with ``carried`` evidence (log-odds) from the conversation's earlier turns
        added only when the message alone reaches the ``signal`` level: a quiet message is
        never flagged by the past alone. Never raises."""
        own = self.logit(normal)
        logit = own + carried if own >= self.signal else own
        if logit >= self.confident:
            return Verdict(self.tier_of(normal), False, logit, own)
        doubt = self.doubt is not None and own < self.doubt
        return Verdict(None, logit >= self.signal, logit, own, doubt)


# A model that never speaks: the rules alone (tests of the rules' own mechanics, comparisons).
SILENT = LearnedModel({"format": FORMAT, "prefix": 0, "classes": ["risk"], "confident": 1e9,
                       "signal": 1e9, "any": {"bias": -1e9, "weights": {}},
                       "tier": {"bias": [0.0], "weights": {}}})

_DEFAULT: list = []


def default_model() -> LearnedModel:
    """The shipped model (``crisis_model.json`` in this package), read once."""
    if not _DEFAULT:
        text = resources.files("psicoia.chat.detector").joinpath(MODEL_FILE).read_text("utf-8")
        _DEFAULT.append(LearnedModel.from_json(text))
    return _DEFAULT[0]
