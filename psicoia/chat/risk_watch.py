"""
A session's side of the crisis layer (docs/safety.md): its conversation's crisis state, read
at each message's arrival, the model's second opinion, and the last word on every reply.

The state (a :class:`~psicoia.chat.detector.RiskState`, numbers only) is what the crisis
layer reads each turn with. An idle session keeps only its values as a flat tuple
(``Session._saved_risk``, about 80 bytes, what the store was last sent) and makes the state
again from them when a message arrives (:func:`state`). The change a message's arrival makes
is not written then: it goes to the store with the message's turns, in the same write
(``recall.remember``, :func:`psicoia.chat.risk_values.unsaved`), and :func:`last_word` writes
it alone only when the reply wrote no turns (a command, a deadline, the user gone). So an
ordinary message costs one store write, and the state is saved before the session can let go
of it (the last word runs before the user can be idle). Changes made after the turns were
written (the resources' reminders, a late second opinion) are saved at once (:func:`save`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from twisted.internet.defer import CancelledError

from psicoia import texts
from psicoia.chat import recall
from psicoia.chat.crisis import most_urgent
from psicoia.chat.detector import RiskState
from psicoia.chat.risk_values import restored, unsaved, values
from psicoia.chat.vocabulary import Kind, Reply

if TYPE_CHECKING:  # the session imports this module; annotations only
    from psicoia.chat.session import Session

__all__ = ["check", "last_word", "restored", "save", "state", "unexpected", "values"]


def state(session: "Session") -> RiskState:
    """The conversation's crisis state, made again from its values if it was let go."""
    if session.risk is None:
        session.risk = restored(session._saved_risk)
    return session.risk


def save(session: "Session") -> None:
    """Store the crisis state now if it changed (numbers only; not awaited)."""
    current = unsaved(session)
    if current is not None:
        manager = session.manager
        manager.persist(manager.store.save_risk(session.conversation_id, current,
                                                manager.clock.seconds()))


def check(session: "Session", text: str) -> Optional[str]:
    """Read an arriving message as the next turn of this conversation (psicoia/chat/
    crisis.py): its tier or None. Starts the model's second opinion when it could add
    something; it never delays the reply (see :func:`last_word`)."""
    manager = session.manager
    tier = manager.crisis.check(state(session), text, session.transport)
    # Not saved here: it goes with the reply's turns (recall.remember) or by last_word.
    opinion = manager.second_opinion
    if opinion is not None and opinion.wanted(tier):
        # It reads the user's earlier messages too: once the history is back if it is being
        # read from the store.
        if session.turns is None:
            recall.recall(session).addCallback(_ask_second_opinion, session, text)
        else:
            _ask_second_opinion(None, session, text)
    return tier


def _ask_second_opinion(_, session: "Session", text: str) -> None:
    recent = [content for role, content in session.turns or () if role == "user"]
    session.manager.second_opinion.ask([*recent, text], f"{session.user}:check").addCallback(
        _second_opinion, session)


def _second_opinion(tier: Optional[str], session: "Session") -> None:
    """The model saw a tier the rules did not: the next turns read with that alert, and the
    reply not yet written (this one, or the next) carries its resources."""
    if tier is not None:
        session.manager.crisis.confirm(state(session), tier)
        save(session)
        session._late_tier = most_urgent(session._late_tier, tier)
        session.rest()


def last_word(reply: Reply, session: "Session", tier: Optional[str]) -> Reply:
    """The crisis layer's last word on a reply, whatever path it took (decorate: resources by
    tier, the support line instead of "busy", reminders afterwards). The session's last
    callback for a message: an idle session then lets go of what it no longer needs."""
    try:
        if reply.outcome != Kind.ANSWERED:  # no turns were written to carry the crisis state
            save(session)
        if not reply.text:  # the user left: nothing more is written
            return reply
        late = session._late_tier
        if late is not None and reply.outcome != Kind.COMMAND:
            tier, session._late_tier = most_urgent(tier, late), None
        current = state(session)
        if tier is None and current.reminders_left <= 0:  # most replies: nothing to add
            return reply
        decorated = session.manager.crisis.decorate(reply, current, tier)
        save(session)
        return decorated
    finally:
        session.rest()


def unexpected(failure, session: "Session", trace_id: str, tier: Optional[str]) -> Reply:
    """A message's reply failed (cancelled, or a programming error): the reply to write
    instead, with the crisis layer's last word on it."""
    if failure.check(CancelledError):
        if session.manager.closing and not session.closed:  # abandoned at the grace's end
            reply = session.notice(trace_id, texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN)
        else:
            reply = Reply("", Kind.ERROR, trace_id)
    else:
        session.manager.log.failure("[{trace_id}] unexpected error", failure, trace_id=trace_id)
        reply = Reply(texts.ERROR, Kind.ERROR, trace_id)
    return last_word(reply, session, tier)
