"""
The TCP protocol's output: reply lines, streamed or whole, around what a character-mode user
is typing (a mixin of :class:`psicoia.transports.tcp.ChatLineProtocol`).

A streamed reply goes out piece by piece on one line (:meth:`ReplyLines.on_delta`); the line
ends when the reply settles (:meth:`ReplyLines._write_reply`), with whatever the crisis layer or
a deadline added after the streamed text. For a telnet user in character mode, what they were
typing is cleared from the screen before a line and drawn again after it.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.tcp import Connection

from psicoia.chat.vocabulary import Reply

NEWLINE = b"\r\n"
# Before a reply, while a character-mode user has half a line typed: back to column 0 and
# clear the line (ANSI), so the reply does not land in the middle of it; the line is redrawn.
CLEAR_LINE = b"\r\x1b[K"
# Keys, in the open streamed lines' map (trace id -> text shown), of what waits for the line's
# end: a notice, and the echo of what the user types meanwhile (not written into the line).
WAITING = None
ECHOED = 0


class ReplyLines:
    """Uses the protocol's ``transport``, ``editor`` (the line being typed, or None),
    ``echoing``, ``session``, ``disconnect()``, ``_closing`` and ``_streamed`` (trace id ->
    text already written, :data:`WAITING` -> a notice and :data:`ECHOED` -> the echo of
    what is typed, both held until that line's end; None when no reply is streaming)."""

    def on_delta(self, trace_id: str, text: str) -> None:
        """A streamed piece of the reply being written: out now, on the same line (the line
        ends when the reply does, in :meth:`_write_reply`)."""
        if self._closing:
            return
        data = text.encode("utf-8")
        streamed = self._streamed
        if streamed is None:
            streamed = self._streamed = {}
        first = trace_id not in streamed
        if first and self.editor is not None and self.editor.buffer and self.echoing:
            data = CLEAR_LINE + data  # what the user was typing comes back after the line
            streamed.setdefault(ECHOED, bytearray(self.editor.buffer))
        streamed[trace_id] = streamed.get(trace_id, "") + text
        write_now(self.transport, data)

    def _write_reply(self, reply: Reply) -> None:
        streamed = self._streamed
        shown = waiting = echoed = None
        if streamed is not None:
            shown = streamed.pop(reply.trace_id, None)
            if not any(type(key) is str for key in streamed):  # no other reply's line is open
                waiting, echoed = streamed.pop(WAITING, None), streamed.pop(ECHOED, None)
                self._streamed = None  # not kept emptied: about 200 bytes per idle user
        if self._closing:
            return
        if reply.text:
            if shown is None:
                self._send(reply.text)
            else:
                self._send(rest_of(reply.text, shown), clear=False, redraw=echoed)
        if waiting is not None and waiting != reply.text:  # a notice held for the line's end
            self._send(waiting)  # (not twice: at the grace's end the reply is that notice)
        if reply.text and reply.close:
            self.session.close()
            self.disconnect()

    def _echo(self, echo: bytes) -> None:
        """The echo of keys typed in character mode: out now, or, while a reply's line is being
        written, held and written after that line (the keys, corrections and Enter as typed)."""
        streamed = self._streamed
        if streamed:
            streamed.setdefault(ECHOED, bytearray()).extend(echo)
        else:
            self.transport.write(echo)

    def _notice(self, text: str) -> None:
        """A line that is no reply (the server is stopping): if a streamed reply's line is
        open, it waits for that line's end (one line per message), else it goes out now."""
        if self._streamed:
            self._streamed[WAITING] = text
        else:
            self._send(text)

    def _end_open_line(self) -> None:
        """The connection is about to close with a streamed reply's line open (taken over,
        idle, the server stopping): end that line, then the notice that waited, if any."""
        streamed, self._streamed = self._streamed, None
        if streamed:
            waiting = streamed.pop(WAITING, None)
            if any(type(key) is str for key in streamed):
                self.transport.write(NEWLINE)
            if waiting is not None:
                self._send(waiting)

    def _send(self, text: str, clear: bool = True, redraw: Optional[bytes] = None) -> None:
        """One line out (or the end of a streamed one: ``clear`` False). What the user was
        typing is cleared from the screen first and drawn again after the line (``redraw``:
        what to draw instead, the echo held while a streamed line was written)."""
        line = text.encode("utf-8") + NEWLINE
        typed = self.editor.buffer if self.editor is not None else b""
        if redraw is not None:
            line += bytes(redraw) if self.echoing else b""
        elif typed and self.echoing:
            line = (CLEAR_LINE if clear else b"") + line + bytes(typed)
        write_now(self.transport, line)


def rest_of(final: str, shown: str) -> str:
    """What to write after ``shown`` (already on the line) so the line ends as ``final``
    says: its rest, when ``final`` starts with what was shown (the crisis resources, a
    reminder, a cut notice); when text was put before it (the crisis layer raised the tier
    after the stream began) what comes before and after it, never the shown text twice; a
    whole other reply (the crisis support line instead of a cut answer) after an ellipsis
    when what was shown stopped mid-sentence; nothing when all of it is on the line already."""
    if final.startswith(shown):
        return final[len(shown):]
    if final in shown:  # all of it is on the line already (reasoning taken out afterwards)
        return ""
    at = final.find(shown) if shown else -1
    if at > 0:
        return " " + " ".join(part for part in (final[:at].strip(),
                                                final[at + len(shown):].strip()) if part)
    if shown and shown.rstrip()[-1:] not in (".", "!", "?", "…"):
        return "… " + final
    return " " + final


def write_now(transport, data: bytes) -> None:
    """Write ``data`` to ``transport``, sending it at once when nothing else waits to be sent.

    Twisted's ``write`` only buffers: the socket is registered for writing (``epoll_ctl``), the
    next poll reports it writable, ``doWrite`` sends, and the socket is unregistered
    (``epoll_ctl`` again). A streamed reply writes several times per message, so that was two
    system calls and a reactor turn per piece, and reads already ready in that poll (another
    reply, the second opinion's answer) went first: on an idle server a millisecond or more
    before a reply's first words left (bench/analysis.md, "(t)"). Here a plain TCP socket with
    an empty buffer gets the bytes with one ``send``, as asyncio's transports do; what it does
    not take (a full socket buffer), any error, anything already queued, and other transports
    (a PROXY-protocol wrapper, TLS, a closing connection) go through ``write`` as always, so
    the order of bytes, the producer's backpressure and error handling stay Twisted's.
    """
    if isinstance(transport, Connection) and transport.connected \
            and not transport.disconnecting and not transport._writeDisconnected \
            and not transport.dataBuffer and not transport._tempDataBuffer:
        try:
            sent = transport.socket.send(data)
        except OSError:  # EAGAIN, or an error the reactor's own write will find and report
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
