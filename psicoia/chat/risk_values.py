"""
The crisis state's values: what the store was last sent, and what it still has to be sent.

A session keeps the values it last handed to the store (``Session._saved_risk``, a flat tuple
of about 80 bytes). The state changes at each message's arrival (the crisis layer reads it),
but it is not written then: it travels with the message's two turns in one store write
(:func:`unsaved`, read by ``recall.remember``), and is written alone only when no such write
follows (a command's reply, a deadline, the user gone: ``risk_watch.last_word``). Shared by
``risk_watch`` and ``recall``, which the session uses both of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from psicoia.chat.detector import RiskState

if TYPE_CHECKING:  # the session imports the modules that import this one; annotations only
    from psicoia.chat.session import Session

_KEYS = tuple(RiskState().to_dict())


def values(state: dict) -> tuple:
    """A crisis state (``RiskState.to_dict()``) as a flat tuple (about 80 bytes; the dict
    was 300)."""
    return tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in state.values())


def restored(flat: tuple) -> RiskState:
    """The crisis state :func:`values` flattened."""
    return RiskState.from_dict({key: dict(value) if isinstance(value, tuple) else value
                                for key, value in zip(_KEYS, flat)})


def unsaved(session: "Session") -> Optional[dict]:
    """The crisis state (``RiskState.to_dict()``) if it changed since the store was last sent
    it, else None; either way the store counts as sent it from now on (the caller writes it).
    A session that let go of its state (``session.risk`` None) has nothing unsaved: it let go
    only after saving."""
    if session.risk is None:
        return None
    current = session.risk.to_dict()
    flat = values(current)
    if flat == session._saved_risk:
        return None
    session._saved_risk = flat
    return current
