"""
The visible text of one streamed reply, as it grows (:class:`VisibleText`).

Used by :mod:`psicoia.provider.streaming` across the attempts of one call: what was shown
decides whether a failure is retried (nothing shown) or cut (some text shown).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class VisibleText:
    """The reply's visible text, delivered to ``on_delta`` as it grows.

    The pieces given to ``on_delta`` always join to :attr:`text`: leading whitespace is
    dropped, trailing whitespace is held back until more text follows (and dropped at the
    end), and a lone surrogate (not encodable) becomes U+FFFD. ``on_delta`` is called
    synchronously; whatever it raises propagates to the caller of :meth:`add`.
    """

    __slots__ = ("_on_delta", "_parts", "_space", "final")

    def __init__(self, on_delta: Optional[Callable[[str], Any]] = None) -> None:
        self._on_delta = on_delta
        self._parts: list[str] = []
        self._space = ""
        self.final: Optional[str] = None   # set when the reply must differ from what was shown

    @property
    def shown(self) -> bool:
        """Some visible text was delivered (a failure now is a cut, never a retry)."""
        return bool(self._parts)

    @property
    def text(self) -> str:
        """Everything delivered so far."""
        return "".join(self._parts)

    def reply(self) -> str:
        """The reply to keep (history, final message): what was shown, unless overridden."""
        return self.text if self.final is None else self.final

    def add(self, piece: str) -> None:
        if not piece.isascii() and _LONE_SURROGATE.search(piece):
            piece = _LONE_SURROGATE.sub("\ufffd", piece)
        if not self._parts:
            piece = piece.lstrip()
        core = piece.rstrip()
        if not core:
            if self._parts:
                self._space += piece
            return
        shown = self._space + core if self._space else core
        self._space = piece[len(core):]
        self._parts.append(shown)
        if self._on_delta is not None:
            self._on_delta(shown)
