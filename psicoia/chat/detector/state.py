"""
A conversation's risk state: numbers only, never text (docs/safety.md).

Weak signals (despair, a decision, a time, a goodbye phrase, a means at hand...) are not
enough alone; kept here with a decay per turn, they add up across the turns of one
conversation, so "estoy cansada de todo" / "ya lo decidí" / "mañana ya no voy a estar" reads
as risk by the third turn. The state also holds the crisis layer's reminder count. It is
serialised with the conversation as a JSON object of numbers (:meth:`RiskState.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from psicoia.chat.detector.rules import WEAK_WEIGHTS, Assessment

# Each turn keeps this share of the weak signals carried so far (0.7: a signal from three
# turns ago weighs about a third of its first weight).
DECAY = 0.7
# After a message at risk, later turns with any weak signal are read as risk too; this much
# of the alert is carried per turn.
ALERT_DECAY = 0.8
# Share of the learned model's evidence (its log-odds above its bias, never below 0) passed
# from one turn to the next: the model then reads a turn with the earlier turns' evidence,
# about as if their words were still in view (chosen by out-of-fold dialog results).
MODEL_CARRY = 0.5
# At most this much evidence is passed on (log-odds): after a very clear risk turn, half its
# evidence would lift any next turn near the model's signal level ("uno") to a tier; capped,
# the out-of-fold dialogs lose nothing (docs/safety.md).
EVIDENCE_CAP = 2.0
_FLOOR = 0.01  # weights below this are dropped, so the state stays small
_VERSION = 1


@dataclass
class RiskState:
    """Decayed weak-signal weights (name -> float), the alert after a risk turn, the learned
    model's decayed evidence, the turn count and the crisis layer's reminders left. Mutable;
    one per conversation."""

    signals: dict = field(default_factory=dict)
    alert: float = 0.0
    evidence: float = 0.0
    turns: int = 0
    reminders_left: int = 0

    def carried(self) -> dict:
        """The weights earlier turns pass to the next one (already decayed), plus the alert
        as a pseudo-signal worth its level."""
        carried = {name: weight * DECAY for name, weight in self.signals.items()}
        if self.alert > _FLOOR:
            carried["alert"] = self.alert
        return carried

    def carried_evidence(self) -> float:
        """The learned model's evidence earlier turns pass to the next one (log-odds units)."""
        return min(self.evidence * MODEL_CARRY, EVIDENCE_CAP)

    def observe(self, assessment: Assessment, evidence: float = 0.0) -> None:
        """Add one turn: decay what was carried, add this turn's weak signals and the model's
        ``evidence`` for this turn (carried included, as :func:`assess` computed it)."""
        self.turns += 1
        self.evidence = round(max(0.0, min(evidence, 100.0)), 4)
        signals = {name: weight * DECAY for name, weight in self.signals.items()}
        for name in assessment.categories:
            # The model's weak signal counts within its turn only: across turns the model
            # speaks through its carried evidence, so many mid-confident ordinary turns
            # ("mensaje 8", "mensaje 9", ...) never add up to risk on their own.
            if name in WEAK_WEIGHTS and name != "model":
                signals[name] = signals.get(name, 0.0) + WEAK_WEIGHTS[name]
        self.signals = {n: round(w, 4) for n, w in signals.items() if w >= _FLOOR}
        if assessment.tier in ("acute", "risk", "third_party"):
            self.alert = 1.0 if assessment.tier != "third_party" else 0.0
        else:
            self.alert = round(self.alert * ALERT_DECAY, 4) if self.alert > _FLOOR else 0.0

    def to_dict(self) -> dict:
        """A JSON-ready dict of numbers (and signal names): no text, no categories of a
        message beyond the weak-signal names' weights."""
        return {"v": _VERSION, "signals": dict(self.signals), "alert": self.alert,
                "evidence": self.evidence, "turns": self.turns,
                "reminders_left": self.reminders_left}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RiskState":
        """The inverse of :meth:`to_dict`; unknown signal names and bad values are dropped
        (a stored state from another version never raises)."""
        state = cls()
        if not isinstance(data, Mapping):
            return state
        signals = data.get("signals", {})
        if isinstance(signals, Mapping):
            state.signals = {str(n): float(w) for n, w in signals.items()
                             if n in WEAK_WEIGHTS and isinstance(w, (int, float))
                             and 0 <= w < 100}
        state.alert = _number(data.get("alert"), 0.0, 1.0)
        state.evidence = _number(data.get("evidence"), 0.0, 100.0)
        state.turns = int(_number(data.get("turns"), 0, 1e12))
        state.reminders_left = int(_number(data.get("reminders_left"), 0, 1e6))
        return state


def _number(value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return low
    return float(min(max(value, low), high))
