"""
Keystrokes to finished lines: line ends, erasing, escape sequences, the line length limit.

Terminal clients do not all send what ``nc`` sends. Telnet clients end a line with CR NUL (the
NVT rule) or a bare CR (ConnectBot, PuTTY, ``mode character``); character-mode clients send
every key as it is typed, Backspace and Delete included, and arrow keys as escape sequences.
:class:`LineEditor` turns any of that into the line the user meant, before anything else
(commands, the crisis layer, the rate limit, the model) reads it:

* LF, CR LF, CR NUL and a bare CR each end exactly one line. A CR followed by LF or NUL is one
  line end, also when the two arrive in different reads.
* Backspace (0x08) and Delete (0x7f) erase the previous whole UTF-8 character; Ctrl-U (0x15)
  erases the whole line.
* Escape sequences (CSI ``ESC [ ... final``, SS3 ``ESC O x``, two-byte ``ESC x``) are dropped, as
  is every other C0 control except TAB, so no CR, NUL or control byte ever reaches a message.
* A line longer than ``max_line_bytes`` (counted after editing) yields :data:`TOO_LONG` once and
  the rest of it is dropped up to its line end: memory stays bounded whatever a client sends.

It is pure (bytes in, items and echo bytes out) so the TCP protocol decides what to do with
both, and it can be tested byte by byte.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Union

# An item standing for a line that was too long (its text was not kept).
TOO_LONG = None
Item = Union[bytes, None]

BS, DEL, ESC, NAK, NUL, CR, LF, TAB = 0x08, 0x7F, 0x1B, 0x15, 0x00, 0x0D, 0x0A, 0x09
_SPECIAL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_TEXT, _ESC, _CSI, _SS3 = range(4)

ERASE_ONE = b"\b \b"
NEWLINE = b"\r\n"


def _cells(character: bytes) -> int:
    """Terminal columns taken by one UTF-8 character (wide East Asian ones take two)."""
    text = character.decode("utf-8", "replace")
    if not text:
        return 1
    return 2 if unicodedata.east_asian_width(text[0]) in ("W", "F") else 1


class LineEditor:
    """One connection's line being typed. Feed it bytes; collect finished lines.

    :param max_line_bytes: the longest line accepted, in bytes of UTF-8 after editing.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.buffer = bytearray()
        self._discarding = False   # inside a line already reported as too long
        self._after_cr = False     # a CR ended the last line: a following LF or NUL is its end too
        self._state = _TEXT

    def feed(self, data: bytes) -> tuple[list[Item], bytes]:
        """Consume ``data``; return (finished lines in order, bytes to echo).

        Each finished line is ``bytes`` (without its line end; may be empty) or
        :data:`TOO_LONG`. The echo is what a terminal that does not echo locally should show
        for these keystrokes (the typed text, ``\\b \\b`` per erased column, CR LF per line end);
        the caller writes it only to clients that asked the server to echo.
        """
        if not self.buffer and self._state == _TEXT and not self._discarding:
            whole = self._one_whole_line(data)
            if whole is not None:
                return [whole], data[:len(whole)] + NEWLINE
        items: list[Item] = []
        echo = bytearray()
        position, end = 0, len(data)
        while position < end:
            if self._state != _TEXT:
                position = self._escape(data, position, items, echo)
                continue
            found = _SPECIAL.search(data, position)
            stop = found.start() if found else end
            if stop > position:
                self._after_cr = False
                self._text(data[position:stop], items, echo)
            if found is None:
                break
            self._control(data[stop], items, echo)
            position = stop + 1
        return items, bytes(echo)

    def finish(self) -> list[Item]:
        """The client will send nothing more: an unterminated last line is a line too."""
        items: list[Item] = []
        if self.buffer and not self._discarding:
            items.append(bytes(self.buffer))
        self.buffer.clear()
        self._discarding = False
        return items

    # --- pieces ---------------------------------------------------------------------------

    def _one_whole_line(self, data: bytes):
        """The common read, one plain line and its LF or CR LF (nc, telnet's line mode):
        that line, without the general loop; None for anything else."""
        if data.endswith(b"\r\n"):
            text = data[:-2]
        elif data.endswith(b"\n") and not self._after_cr:
            text = data[:-1]
        else:
            return None
        if len(text) > self.max_line_bytes or _SPECIAL.search(text):
            return None
        self._after_cr = False
        return text

    def _text(self, chunk: bytes, items: list[Item], echo: bytearray) -> None:
        if self._discarding:
            return
        self.buffer += chunk
        if len(self.buffer) > self.max_line_bytes:
            self.buffer.clear()
            self._discarding = True
            items.append(TOO_LONG)
            return
        echo += chunk

    def _control(self, byte: int, items: list[Item], echo: bytearray) -> None:
        after_cr, self._after_cr = self._after_cr, False
        if byte in (LF, NUL) and after_cr:
            return  # the second half of CR LF / CR NUL
        if byte in (LF, CR):
            self._after_cr = byte == CR
            if self._discarding:
                self._discarding = False
            else:
                items.append(bytes(self.buffer))
            self.buffer.clear()
            echo += NEWLINE
        elif byte in (BS, DEL):
            self._erase_one(echo)
        elif byte == NAK:
            while self.buffer:
                self._erase_one(echo)
        elif byte == ESC:
            self._state = _ESC
        elif byte == TAB:
            self._text(b"\t", items, echo)
        # any other control byte (NUL, ^C, ^D, ...) is not text: dropped

    def _erase_one(self, echo: bytearray) -> None:
        buffer = self.buffer
        if not buffer or self._discarding:
            return
        start = len(buffer) - 1
        # Back over continuation bytes (10xxxxxx) to the character's first byte (at most 4).
        while start > 0 and len(buffer) - start < 4 and buffer[start] & 0xC0 == 0x80:
            start -= 1
        character = bytes(buffer[start:])
        del buffer[start:]
        echo += ERASE_ONE * _cells(character)

    def _escape(self, data: bytes, position: int, items: list[Item], echo: bytearray) -> int:
        """Consume bytes of an escape sequence; return the next position to read."""
        byte = data[position]
        if byte < 0x20:  # a control inside a sequence ends it; the control counts as itself
            self._state = _TEXT
            self._control(byte, items, echo)
            return position + 1
        if self._state == _ESC:
            self._state = {ord("["): _CSI, ord("O"): _SS3}.get(byte, _TEXT)
        elif self._state == _SS3:
            self._state = _TEXT
        elif 0x40 <= byte <= 0x7E:  # CSI final byte
            self._state = _TEXT
        elif byte > 0x7E:  # not part of a CSI sequence: end it, keep the byte
            self._state = _TEXT
            return position
        return position + 1
