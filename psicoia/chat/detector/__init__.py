"""The risk detector: text (and a conversation's risk state) in, an assessment out. Pure
code, no I/O (docs/safety.md)."""

from psicoia.chat.detector.learned import LearnedModel
from psicoia.chat.detector.rules import TIERS, Assessment, assess, is_risk
from psicoia.chat.detector.state import RiskState

__all__ = ["TIERS", "Assessment", "LearnedModel", "RiskState", "assess", "is_risk"]
