"""The risk detector: text in, an assessment out. Pure functions, no I/O (docs/safety.md)."""

from psicoia.chat.detector.rules import Assessment, assess, is_risk

__all__ = ["Assessment", "assess", "is_risk"]
