"""
Keep a reasoning model's thinking out of the reply: ``<think>…</think>`` in the text.

Reasoning models write their thinking before the answer, in one of two shapes:

- a block ``<think>…</think>`` (anywhere; an unclosed one runs to the end of the reply);
- only a closing ``</think>``: the chat template already opened the block, so everything the
  model wrote before that tag is reasoning.

(The third shape, a separate ``reasoning`` / ``reasoning_content`` field, never reaches this
module: the client reads only ``content``.) Tags are matched without regard to case.

:func:`strip_reasoning` does it for a whole reply. :class:`ThinkFilter` does it as the text
streams in, with tags split anywhere across pieces. The second shape is the hard one for a
stream: until a ``</think>`` comes, nothing tells reasoning from answer. So the filter can
*hold* the visible text until the shape is known, and :class:`ReasoningStyle` (one per
provider, i.e. per model) says when: every reply of a model seen to use the second shape, and
the first reply of a model whose name says it may reason (:func:`may_reason`: DeepSeek-R1 and
its distills, QwQ, ...), until a reply shows which shape it uses. Any other model is streamed
from its first reply; should it still answer in the second shape, that first reply's reasoning
is shown (never kept), and from then on its replies are held.
"""

from __future__ import annotations

import re

OPEN = "<think>"
CLOSE = "</think>"
_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
# Names of the model families that write their reasoning before the answer (a ``-r1-``, QwQ,
# Qwen3, "think", "reasoning"...), as providers and gateways spell them.
_REASONING_NAME = re.compile(
    r"(?:^|[^a-z0-9])(?:r1|qwq|qwen3|think|thinking|thinker|reason|reasoning|reasoner)"
    r"(?:$|[^a-z0-9])", re.IGNORECASE)


def may_reason(model: str) -> bool:
    """True when the model's name suggests it writes reasoning before its answer."""
    return _REASONING_NAME.search(model) is not None


def strip_reasoning(text: str) -> str:
    """``text`` without its reasoning (either shape); may be empty if nothing else was there."""
    if "<" not in text:
        return text
    filtered = ThinkFilter(hold=False)
    kept = filtered.feed(text) + filtered.finish()
    if filtered.lone_close:
        kept = filtered.after_lone_close
    return kept


def _partial_tag(text: str) -> int:
    """Length of the end of ``text`` that could be the start of a tag (0 when none)."""
    start = text.rfind("<", max(0, len(text) - len(CLOSE) + 1))
    if start < 0:
        return 0
    tail = text[start:].lower()
    return len(tail) if OPEN.startswith(tail) or CLOSE.startswith(tail) else 0


class ThinkFilter:
    """The visible part of a reply that arrives in pieces.

    ``feed(piece) -> str`` returns the visible text that piece released (possibly empty);
    ``finish() -> str`` the rest, once the reply is complete. With ``hold=True`` nothing is
    released until the shape is known: a ``</think>`` with no opening (what came before is
    dropped), or a ``<think>`` block that opens the reply (no second shape then), or the end.

    After the fact: ``lone_close`` says a closing tag with no opening was seen; if visible text
    had been released before it (``hold=False``), ``leaked`` is True and
    ``after_lone_close`` holds only what followed the tag (the reply without the reasoning).
    ``saw_think`` says any tag was seen.
    """

    __slots__ = ("hold", "_inside", "_pending", "_held", "_released", "lone_close", "leaked",
                 "after_lone_close", "saw_think")

    def __init__(self, hold: bool) -> None:
        self.hold = hold
        self._inside = False
        self._pending = ""     # the end of the last piece, maybe the start of a tag
        self._held: list[str] = []
        self._released = False
        self.lone_close = False
        self.leaked = False
        self.after_lone_close = ""
        self.saw_think = False

    def feed(self, piece: str) -> str:
        text = self._pending + piece if self._pending else piece
        self._pending = ""
        if not self._inside and "<" not in text:
            return self._release(self._emit(text))
        out: list[str] = []
        position = 0
        while True:
            match = _TAG.search(text, position)
            if match is None:
                rest = text[position:]
                keep = _partial_tag(rest)
                if keep:
                    self._pending = rest[-keep:]
                    rest = rest[:-keep]
                if not self._inside and rest:
                    out.append(self._emit(rest))
                break
            before = text[position:match.start()]
            position = match.end()
            self.saw_think = True
            if self._inside:
                if match.group(1):
                    self._inside = False
                continue  # a nested <think> inside a block is still reasoning
            if match.group(1):  # a </think> with no <think>: all before it was reasoning
                self.leaked = self.leaked or self._released
                self.lone_close = True
                self.after_lone_close = ""
                self._held = []
                self.hold = False
                out.clear()
                continue
            if before:
                out.append(self._emit(before))
            if self.hold and not "".join(self._held).strip():
                self.hold = False  # a block opens the reply: this model uses the first shape
                self._held = []
            self._inside = True
        return self._release("".join(out))

    def finish(self) -> str:
        """The visible text still to release at the end of the reply."""
        rest = "" if self._inside else self._pending
        self._pending = ""
        self._inside = False
        released = self._emit(rest) if rest else ""
        if self.hold:
            self.hold = False
            released = "".join(self._held)
            self._held = []
        return self._release(released)

    def _emit(self, text: str) -> str:
        if self.hold:
            self._held.append(text)
            return ""
        return text

    def _release(self, text: str) -> str:
        if text:
            if not self._released and not text.isspace():
                self._released = True
            if self.lone_close:
                self.after_lone_close += text
        return text


class ReasoningStyle:
    """What a provider's model has shown of its reasoning shape, for :class:`ThinkFilter`.

    Unknown at first (hold) unless ``known``; after one reply with no lone ``</think>`` the
    model is taken to use only blocks or none (stream at once); once a lone ``</think>`` is
    seen, every reply is held until its ``</think>`` (for the life of the process).
    """

    __slots__ = ("known", "closing_only")

    def __init__(self, known: bool = False) -> None:
        self.known = known
        self.closing_only = False

    @property
    def hold(self) -> bool:
        return self.closing_only or not self.known

    def learn(self, filtered: ThinkFilter) -> None:
        """Record a finished reply's shape."""
        if filtered.lone_close:
            self.closing_only = True
        self.known = True
