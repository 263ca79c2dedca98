"""
The page's JSON events (subprotocol ``psicoia.v1``, docs/protocol.md), apart from the socket
that carries them: what an incoming event asks for, and which event a reply of the session
becomes. Pure functions of their arguments, so the WebSocket class keeps only the mechanics.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

from psicoia.chat.vocabulary import Kind, Reply, fold_lines
from psicoia.transports.helplines import helplines

JSON_PROTOCOL = "psicoia.v1"

# Reply outcomes that are a model reply (type "reply"); ERROR is type "error"; the rest notices.
REPLY_OUTCOMES = {Kind.ANSWERED}

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")

Ref = Union[str, int, None]


def without_lone_surrogates(text: str) -> str:
    """JSON can escape a lone surrogate (``\\ud800``), which no UTF-8 write can carry: each is
    replaced by U+FFFD, as invalid UTF-8 is in line mode, instead of failing the connection."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def command_of(event: dict) -> Optional[str]:
    """The text a JSON event stands for: a ``message``'s text, ``resume`` as ``/retomar
    TOKEN``, ``forget`` as ``/olvidar`` (docs/protocol.md); None for anything else."""
    kind = event.get("type")
    if kind == "message" and isinstance(event.get("text"), str):
        return event["text"]
    if kind == "resume" and isinstance(event.get("token"), str):
        return f"/retomar {fold_lines(event['token'])}"
    if kind == "forget":
        return "/olvidar"
    return None


def read_event(text: str) -> tuple[Optional[str], Ref]:
    """``(text, ref)`` of one incoming JSON frame: the chat text it stands for (None when the
    frame is not a JSON object of a known type) and the client's ``ref`` (a string or an
    integer, echoed on what answers it; None when absent or of another type)."""
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the limit
        return None, None
    command = command_of(event) if isinstance(event, dict) else None
    if command is None:
        return None, None
    ref = event.get("ref")
    if not isinstance(ref, (str, int)) or isinstance(ref, bool):
        ref = None
    elif isinstance(ref, str):
        ref = without_lone_surrogates(ref)
    return without_lone_surrogates(command), ref


def reply_event(reply: Reply) -> tuple[str, dict[str, Any]]:
    """``(type, fields)`` of the event one reply of the session becomes: ``reply`` for a model
    answer, ``error``, or a ``notice`` of the reply's kind. A crisis reply also carries its
    tier; a reply whose text names resources (a crisis reply, ``/recursos``) carries them as
    ``helplines`` (label, number, ``tel:`` link each)."""
    fields: dict[str, Any] = {"text": reply.text, "crisis": reply.crisis}
    if reply.crisis:
        fields["tier"] = reply.tier
    if reply.resources:
        fields["helplines"] = helplines(reply.resources)
    if reply.outcome in REPLY_OUTCOMES:
        return "reply", dict(fields, final=True)
    if reply.outcome == Kind.ERROR:
        return "error", dict(fields, code="error")
    return "notice", dict(fields, kind=reply.outcome)
