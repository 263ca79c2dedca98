"""
An incremental parser for server-sent events (``text/event-stream``), as the WHATWG HTML
standard specifies it ("Parsing an event stream", html.spec.whatwg.org, section 9.2.6).

A chat-completions stream arrives in TCP reads that split events, lines, and even UTF-8
characters anywhere, so the parser keeps what it has not finished and hands back only whole
events. What the standard says, and what is done here:

- The body is UTF-8 (invalid bytes become U+FFFD); one leading byte-order mark is dropped.
- A line ends with CRLF, a lone LF or a lone CR (a CR at the end of one read and an LF at the
  start of the next are one line end, not two).
- A line starting with ``:`` is a comment (keep-alive pings): ignored.
- ``field: value`` (one space after the colon removed; a line with no colon is a field with an
  empty value). ``data`` appends the value and a LF to the data buffer; ``event`` sets the
  type; ``id`` sets the last event id (unless it holds NUL); ``retry`` (digits only) sets
  :attr:`SSEParser.retry`; any other field is ignored.
- An empty line dispatches the event: none if the data buffer is empty, else the data without
  its last LF, the type (``message`` when none was given) and the last event id.
- At the end of the stream an event not followed by an empty line is discarded
  (:attr:`SSEParser.truncated` then says so).

Pure: no I/O, no clock. Costs one regular-expression split per read.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple, Optional

_LINE_END = re.compile(r"\r\n|\r|\n")


class Event(NamedTuple):
    """One dispatched event: ``data`` (lines joined by LF), its ``event`` type and ``id``."""

    data: str
    event: str = "message"
    id: str = ""


class SSEParser:
    """Feed it the body's bytes as they come; it returns the events each read completed.

    ``feed(bytes) -> list[Event]`` any number of times, then ``close()`` once at the end of
    the body. Never raises on any input.
    """

    __slots__ = ("_decoder", "_line", "_after_cr", "_started", "_data", "_type",
                 "_last_id", "retry", "truncated")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""          # the unfinished last line
        self._after_cr = False   # the previous read ended with CR: a leading LF is its pair
        self._started = False    # the byte-order mark may only come first
        self._data: list[str] = []
        self._type = ""
        self._last_id = ""
        self.retry: Optional[int] = None    # milliseconds, from a ``retry`` field
        self.truncated = False              # close() found an unfinished event

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data`` (possibly none), in order."""
        decoder = self._decoder
        if decoder.buffer:  # the end of a character split across reads
            text = decoder.decode(data)
        else:
            try:
                text = data.decode("utf-8")  # the usual case, without the decoder's overhead
            except UnicodeDecodeError:
                text = decoder.decode(data)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        if not text:
            return []
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            lines = _LINE_END.split(text)
        else:  # the usual case, and str.split is several times faster than a pattern
            self._after_cr = False
            lines = text.split("\n")
        if len(lines) == 1:
            self._line += text
            return []
        if self._line:
            lines[0] = self._line + lines[0]
        self._line = lines.pop()
        events: list[Event] = []
        data_lines = self._data
        for line in lines:
            if line.startswith("data: "):  # the usual line, without the general parse
                data_lines.append(line[6:])
            elif not line:
                if data_lines:
                    events.append(Event("\n".join(data_lines), self._type or "message",
                                        self._last_id))
                    data_lines.clear()
                self._type = ""
            else:
                self._process(line)
        return events

    def close(self) -> None:
        """The body ended: anything not dispatched is dropped (and noted in ``truncated``)."""
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._line += tail
        self.truncated = bool(self._line or self._data)
        self._line = ""
        self._data.clear()
        self._type = ""

    def _process(self, line: str) -> None:
        """A line that is neither empty nor ``data: ...``."""
        if line[0] == ":":
            return
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._type = value
        elif field == "id":
            if "\x00" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
