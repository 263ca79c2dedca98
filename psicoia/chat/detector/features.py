"""
Features of a message for the learned crisis model (docs/safety.md, "The learned model").

They are read from the detector's normalised text (:func:`~psicoia.chat.detector.normalize.
normalize`: case, accents, chat spelling, repeated letters and digit swaps already folded), so
the model and the rules see the same words. Three kinds, all strings, chosen by out-of-fold
results (``python -m tests.train_crisis_model --compare``):

- every word (``"matarme"``) and the ``"|"`` clause marks;
- every pair of neighbouring words (``"quiero matarme"``, ``"mas |"``): negations and
  first-person forms live in pairs;
- the first ``prefix`` letters of every longer word, marked with ``"~"`` (``"pasti~"``), so
  unseen inflections and derived words still weigh (``"pastillas"``, ``"pastillero"``).

Costs a handful of microseconds per ordinary message: a split and two list comprehensions.
"""

from __future__ import annotations

__all__ = ["PREFIX", "features"]

# Letters kept of a word for its prefix feature (out-of-fold best among 4-6).
PREFIX = 5


def features(normal: str, prefix: int = PREFIX) -> set:
    """The feature strings of ``normal`` (a :func:`normalize` result) as a set.

    ``prefix``: letters of a word's prefix feature (0: none); only words longer than it get one.
    Never raises; an empty text gives an empty set.
    """
    words = normal.split()
    found = set(words)
    if len(words) > 1:
        found.update([f"{a} {b}" for a, b in zip(words, words[1:])])
    if prefix:
        found.update([w[:prefix] + "~" for w in words if len(w) > prefix])
    return found
