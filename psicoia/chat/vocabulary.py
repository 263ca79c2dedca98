"""
One vocabulary for what can happen to a message, shared by the core, the transports, the
gateway and the page (which learns it from the JSON greeting).

:class:`Kind` names every outcome of a message and every notice a connection may get; the
texts live in :mod:`psicoia.texts`. A ``Kind`` is a ``str``, so it goes into JSON, logs and
metric labels as its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Optional


class Kind(StrEnum):
    """Outcomes of a message (one per reply) and notices sent on a connection's own."""

    ANSWERED = "answered"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    TOO_LONG = "too_long"
    FALLBACK = "fallback"
    OFFLINE = "offline"
    GOODBYE = "goodbye"
    COMMAND = "command"
    SHUTTING_DOWN = "shutting_down"
    ERROR = "error"
    # Notices a connection gets without having sent a message.
    IDLE_TIMEOUT = "idle_timeout"
    SERVER_FULL = "server_full"
    PER_ADDRESS = "per_address"
    BINARY = "binary"
    UPSTREAM_DOWN = "upstream_down"
    UPSTREAM_LOST = "upstream_lost"
    TAKEN_OVER = "taken_over"


# Kinds that are part of the conversation: the page shows them as PsicoIA's replies.
CONVERSATIONAL = frozenset({Kind.ANSWERED, Kind.OFFLINE, Kind.FALLBACK, Kind.COMMAND,
                            Kind.GOODBYE})
# Kinds the core sends on its own, never as the answer to a message.
UNSOLICITED = frozenset({Kind.IDLE_TIMEOUT, Kind.SERVER_FULL, Kind.PER_ADDRESS,
                         Kind.TAKEN_OVER})


@dataclass(frozen=True, slots=True)  # slots: one per message, and each user keeps the last
class Reply:
    """One line for the user. ``close`` asks the transport to hang up after writing it.

    ``crisis`` is set when the message matched the crisis layer (the text then carries the
    resources); ``tier`` says which resources ("acute", "risk", "third_party", "help").
    """

    text: str
    outcome: str
    trace_id: Optional[str] = None
    close: bool = False
    crisis: bool = False
    tier: Optional[str] = None
    resources: tuple[str, ...] = ()  # the helplines the text carries (crisis replies)


def fold_lines(text: str) -> str:
    """Make any text one line: the protocol promises a reply never contains a line break."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# What str.splitlines (and so fold_lines) treats as a line break.
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_HAS_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class LineFolder:
    """:func:`fold_lines` for text that arrives in pieces (a streamed reply).

    ``feed(piece)`` returns what can be shown now; the concatenation of every result is always
    a prefix of ``fold_lines(whole text)``, and equals it once the stream ends. Spaces before a
    line break and the break itself are held back until the next visible character, so nothing
    shown has to be taken back.
    """

    __slots__ = ("shown", "_spaces", "_broken")

    def __init__(self) -> None:
        self.shown = ""       # everything returned so far, joined
        self._spaces = ""     # spaces seen since the last visible character
        self._broken = False  # a line break since the last visible character

    def feed(self, piece: str) -> str:
        if _HAS_BREAK.search(piece) is None:  # the usual piece: no character loop
            return self._feed_unbroken(piece)
        out = []
        for char in piece:
            if char in _LINE_BREAKS:
                self._broken, self._spaces = True, ""
            elif char.isspace():
                if not self._broken:
                    self._spaces += char
            else:
                if self.shown or out:
                    out.append(" " if self._broken else self._spaces)
                self._broken, self._spaces = False, ""
                out.append(char)
        text = "".join(out)
        self.shown += text
        return text

    def _feed_unbroken(self, piece: str) -> str:
        """:meth:`feed` for a piece without line breaks, with str methods (the same result:
        whitespace inside the piece is kept as it is, around it as the loop would)."""
        core = piece.strip()
        if not core:  # only spaces: held (or dropped after a break) until visible text
            if not self._broken:
                self._spaces += piece
            return ""
        if self.shown:
            before = " " if self._broken else self._spaces + piece[:len(piece) - len(piece.lstrip())]
            text = before + core
        else:
            text = core
        self._broken = False
        self._spaces = piece[len(piece.rstrip()):]
        self.shown += text
        return text
