"""
Checks made when a user's message arrives, before it waits its turn: the service closing, the
wait queue full, the per-user rate limit and the flood sanction (docs/operations.md "Limits and
abuse"). A Reply from :func:`at_arrival` answers the message instead of the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from psicoia import texts
from psicoia.chat.vocabulary import Kind, Reply

if TYPE_CHECKING:  # the session imports this module; annotations only
    from psicoia.chat.session import Session

# A connection refused this many times its rate_max_messages in a row is closed (flooding).
FLOOD_FACTOR = 10


def at_arrival(session: "Session", trace_id: str, tier: Optional[str]) -> Optional[Reply]:
    """The Reply that stops a message at arrival, or None to let it wait its turn.

    A message at risk is counted by the rate limiter but never refused by it: it goes on to
    the model like any other (docs/safety.md).
    """
    manager = session.manager
    if manager.closing:
        return session.notice(trace_id, texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN)
    if session._pending and manager.waiting() >= manager.config.llm.max_waiting:
        # It would wait behind this user's earlier message while the service is full.
        return session.notice(trace_id, texts.BUSY, Kind.BUSY)
    wait = manager.limiter.check(session.user)
    if not wait or tier:
        session._refused = 0
        return None
    # Over the rate limit: each line still gets its notice (the contract), but only the first
    # of a run is logged, and a connection that keeps sending far past its limit is told why
    # and closed.
    session._refused += 1
    refused = session._refused
    if refused > FLOOD_FACTOR * manager.config.limits.rate_max_messages:
        manager.log.info("[{trace_id}] flooding: closing after {count} refused messages",
                         trace_id=trace_id, count=refused, transport=session.transport)
        manager.instruments.message_handled(session.transport, Kind.RATE_LIMITED)
        return Reply(texts.FLOODING, Kind.RATE_LIMITED, trace_id, close=True)
    text = texts.RATE_LIMITED.format(seconds=max(1, round(wait)))
    if refused == 1:
        return session.notice(trace_id, text, Kind.RATE_LIMITED)
    manager.instruments.message_handled(session.transport, Kind.RATE_LIMITED)
    return Reply(text, Kind.RATE_LIMITED, trace_id)
