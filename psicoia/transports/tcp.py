"""
The TCP line protocol (telnet, nc): bytes in, lines to the session, reply lines out.

Thin on purpose: telnet negotiation is answered by :mod:`psicoia.transports.telnet`, keystrokes
become lines in :mod:`psicoia.transports.lineedit` (line ends, Backspace, escape sequences, the
length limit), and this module hands each line to the session and writes whatever it answers,
in order. The rules live in :mod:`psicoia.chat.session`.

Half-close: a client that shuts its sending side (``nc -N``, ``printf ... | ncat``) still gets
every line it sent answered, in order; then the server closes (``IHalfCloseableProtocol``).

Flow control (issue 16, docs/operations.md "Limits and abuse"; the numbers live in
:mod:`psicoia.transports.backlog`): the protocol is its transport's streaming producer, so a
client that does not read what it is sent makes the transport pause it once its write buffer
passes Twisted's high-water mark (64 KiB); while paused the connection hands no line on (each
is answered later, never dropped). At most ``LINES_PER_TURN`` lines of one connection are
handed on per reactor turn, and a big read reaches the line editor ``FEED_BYTES`` at a time
as the lines before it are handed on, so a flood cannot hold the reactor; reading stops while
more than ``LINES_HELD`` finished lines (or any unfed bytes) wait.
"""

from __future__ import annotations

import sys
from typing import Optional

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from psicoia import texts
from psicoia.ops.connections import REFUSALS, ConnectionRegistry
from psicoia.chat.ports import SessionListener
from psicoia.chat.manager import SessionManager
from psicoia.transports.backlog import (
    CLOSE_GRACE_SECONDS,
    FEED_BYTES,
    LINES_HELD,
    LINES_PER_TURN,
    ReplyBacklog,
)
from psicoia.transports.idle import IdleWatch
from psicoia.transports.lineedit import TOO_LONG, LineEditor
from psicoia.transports.lineout import ReplyLines
from psicoia.transports.telnet import IAC, TelnetCodec

# Why a connection is not reading its socket (bits of ChatLineProtocol._holds); it reads
# again when none is left. BACKLOG also stops handing lines to the session.
OPENING, BACKLOG, LINES, EOF = 1, 2, 4, 8
# No finished line waiting (shared: an idle connection keeps no list of its own).
_NO_LINES: tuple = ()


def peer_address(transport) -> str:
    peer = transport.getPeer()
    return getattr(peer, "host", None) or type(peer).__name__


@implementer(IHalfCloseableProtocol, IPushProducer)
class ChatLineProtocol(ReplyLines, Protocol, TimeoutMixin, SessionListener):
    transport_name = "tcp"
    log = Logger()
    def __init__(self, factory: "ChatLineFactory") -> None:
        # Every attribute a connection will ever have is set here, never first later on
        # (psicoia/transports/layout.py: about 600 bytes per connection otherwise).
        self.transport = None
        self.connected = 0
        self.timeOut = None  # TimeoutMixin's (only the close grace uses it)
        self._TimeoutMixin__timeoutCall = None
        self.factory = factory
        self.session = None
        self.editor: Optional[LineEditor] = None  # the line being typed (None: none is)
        # Made when the first IAC arrives: most clients never send one (about 1 KiB saved per
        # idle connection, docs/benchmarks.md).
        self.telnet: Optional[TelnetCodec] = None
        self._delivering = False
        self._closing = False
        self._eof = False              # the client has shut its sending side
        self._lines = _NO_LINES        # finished lines not yet handed on (a list if any)
        self._unfed = b""              # read, not yet given to the line editor
        self._holds = 0                # why the socket is not read: OPENING | BACKLOG | ...
        self._output_full = False      # the client is not reading: no new line is handed on
        self._budget = LINES_PER_TURN  # lines this connection may still hand on this turn
        self._next_turn = None         # the callLater(0) that refills the budget
        # Made with a first unanswered message, dropped once all are answered (about 300
        # bytes per idle connection).
        self.backlog: Optional[ReplyBacklog] = None  # stops reading when far ahead of replies
        self._streamed: Optional[dict] = None  # trace id -> reply text already written

    # --- connection lifecycle -------------------------------------------------------------

    def connectionMade(self) -> None:
        # One string per address, shared by its connections (the session keeps it).
        address = sys.intern(peer_address(self.transport))
        refusal = self.factory.registry.admit(self, address)
        if refusal:
            self.log.info("connection refused transport=tcp reason={reason}", reason=refusal)
            self._send(REFUSALS[refusal])
            self._closing = True
            self.transport.loseConnection()
            return
        # The transport pauses us when the client does not read what we write (unregistered
        # by the first disconnect(): a registered producer would hold the close).
        self.transport.registerProducer(self, True)
        opened = self.factory.manager.open(self.transport_name, address, self)
        if not opened.called:  # the store is numbering it: read nothing until it is ready
            self._hold(OPENING)
        opened.addCallbacks(self._opened, self._open_failed, callbackArgs=(address,))

    def _opened(self, session, address: str) -> None:
        if self._closing:  # the client left while the conversation was being made
            session.close()
            return
        self.session = session
        self._release(OPENING)
        self.log.info("[{user}] connection open transport=tcp peer={peer}",
                      user=session.user, peer=address)
        for line in session.greeting():
            self._send(line)
        self.factory.idle.start(self)  # one timer for all of the listener's connections
        self._deliver()  # lines that came while the conversation was being opened

    def _open_failed(self, failure) -> None:
        self.log.failure("could not open a conversation", failure)
        self._send(texts.ERROR)
        self.disconnect()

    def readConnectionLost(self) -> None:
        """The client sent FIN: answer every line it sent (an unterminated last one too),
        then close."""
        if self._eof or self._closing:
            return
        self._eof = True
        self._holds |= EOF  # a half-closed socket must not be polled for reading again
        if not self._unfed and self.editor is not None:  # else once the last bytes are edited
            self._queue(self.editor.finish())
        self._deliver()

    def writeConnectionLost(self) -> None:
        self.disconnect()

    def connectionLost(self, reason=None) -> None:
        self.factory.idle.forget(self)
        self.setTimeout(None)
        self._closing = True
        self._lines = _NO_LINES
        self._unfed = b""
        if self._next_turn is not None and self._next_turn.active():
            self._next_turn.cancel()
        self.factory.registry.release(self)  # idempotent; a refused connection was never in it
        if self.session is None:
            return
        self.log.info("[{user}] connection closed transport=tcp", user=self.session.user)
        self.session.close()

    def callLater(self, delay, func, *args):
        """TimeoutMixin's scheduler (only the close grace uses it): the injected clock."""
        return self.factory.clock.callLater(delay, func, *args)

    def timeoutConnection(self) -> None:
        """Idle for limits.idle_timeout_seconds (the factory's IdleWatch), or closed by us
        and the client has not taken its last lines within the grace (TimeoutMixin)."""
        if self._closing:  # closed by us, and the client has not taken its last lines
            self.transport.abortConnection()
            return
        self.log.info("[{user}] idle timeout", user=self.session.user)
        self.factory.registry.instruments.idle_timeout(self.transport_name)
        self._end_open_line()
        self._send(texts.IDLE_TIMEOUT_RESUME.format(code=self.session.code))
        self.disconnect()

    def notify_shutdown(self) -> None:
        self._notice(texts.SHUTTING_DOWN)

    # --- what the session tells us besides replies (psicoia.chat.ports.ISessionListener) ---

    def on_taken_over(self) -> None:
        self._end_open_line()
        self._send(texts.TAKEN_OVER)
        self.disconnect()

    def disconnect(self) -> None:
        """Close once the last lines are written; a client that does not take them within
        CLOSE_GRACE_SECONDS is cut off (its buffer must not stay for the idle timeout)."""
        if not self._closing:
            self._end_open_line()  # a streamed line left open, and a notice that waited for it
            self.transport.unregisterProducer()
            self.factory.idle.forget(self)
            self.setTimeout(CLOSE_GRACE_SECONDS)
        self._closing = True
        self.transport.loseConnection()

    # --- input ----------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closing or self._eof:
            return
        if self.telnet is not None:
            self.telnet.dataReceived(data)
        elif IAC in data:  # the client speaks telnet
            self.telnet = TelnetCodec(self._keys)
            self.telnet.makeConnection(self.transport)
            self.telnet.dataReceived(data)
        else:
            self._keys(data)
        self._deliver()

    def _keys(self, data: bytes) -> None:
        """The user's bytes, telnet commands taken out. A big read (a paste, a flood: 64 KiB
        of ``a\\n`` is 32,768 lines) is edited FEED_BYTES at a time, as the lines before it
        are handed on, so no single turn splits all of it."""
        if self._unfed or len(data) > FEED_BYTES:
            self._unfed += data
            self._feed()
        else:
            self._edit(data)

    def _feed(self) -> None:
        """Edit unfed bytes until LINES_HELD lines wait; hold reading while any are left."""
        while self._unfed and len(self._lines) < LINES_HELD:
            data, self._unfed = self._unfed[:FEED_BYTES], self._unfed[FEED_BYTES:]
            self._edit(data)
        if self._eof and not self._unfed and self.editor is not None:  # an unterminated line
            self._queue(self.editor.finish())
        if self._unfed or len(self._lines) > LINES_HELD:
            self._hold(LINES)

    def _edit(self, data: bytes) -> None:
        editor = self.editor
        if editor is None:
            editor = self.editor = LineEditor(self.factory.manager.config.limits.max_line_bytes)
        lines, echo = editor.feed(data)
        if data.endswith(b"\n") and not self._unfed:
            # An LF ends every state of the editor (a line, a CR LF, an escape sequence, a
            # line too long): it is as a new one would be, so an idle user keeps none.
            self.editor = None
        if echo and self.echoing:
            self._echo(echo)  # held while a streamed reply's line is written (lineout.py)
        if lines:
            self.factory.idle.touch(self)
            self._queue(lines)
            if len(self._lines) > LINES_HELD:
                self._hold(LINES)

    def _queue(self, lines: list) -> None:
        """Finished lines wait to be handed on (a list of their own only while any do)."""
        if not lines:
            return
        if self._lines is _NO_LINES:
            self._lines = list(lines)
        else:
            self._lines.extend(lines)

    def _deliver(self) -> None:
        """Hand finished lines to the session, unless held back, at most LINES_PER_TURN per
        reactor turn (the rest on the next turn); once the client is done sending and
        everything is answered, close."""
        if self._delivering or self.session is None:
            return
        self._delivering = True
        lines = self._lines
        done = 0
        try:
            while not self._holds & BACKLOG and not self._output_full and not self._closing:
                if done == len(lines):
                    if not self._unfed:
                        break
                    if done:
                        del lines[:done]
                        done = 0
                    self._feed()
                    lines = self._lines  # the first lines of a connection make its list
                    continue
                if not self._budget:
                    if self._next_turn is None:
                        self._next_turn = self.factory.clock.callLater(0, self._new_turn)
                    break
                self._budget -= 1
                done += 1
                self._line(lines[done - 1])
        finally:
            if done:
                del lines[:done]  # one move per batch: pop(0) per line is quadratic in a flood
            if not self._lines:
                self._lines = _NO_LINES
            self._delivering = False
        if self._holds & LINES and not self._unfed and len(lines) <= LINES_HELD // 2:
            self._release(LINES)
        if (self._eof and not self._lines and not self._unfed and self.backlog is None
                and not self._closing):
            self.disconnect()

    def _line(self, line) -> None:
        if line is TOO_LONG:
            self._answer(self.session.submit_too_long().reply)
            return
        text = line.decode("utf-8", "replace")
        if text.strip():
            self._answer(self.session.submit(text).reply)

    def _new_turn(self) -> None:
        self._next_turn = None
        self._budget = LINES_PER_TURN
        self._deliver()

    def _hold(self, reason: int) -> None:
        """Stop reading the socket for ``reason`` (one of the bits above)."""
        if not self._holds and not self._closing:
            self.transport.pauseProducing()
        self._holds |= reason

    def _release(self, reason: int) -> None:
        """``reason`` no longer holds reading back; read again if nothing else does."""
        if self._holds & reason:
            self._holds &= ~reason
            if not self._holds and not self._closing:
                self.transport.resumeProducing()

    def _pause_reading(self) -> None:
        self._hold(BACKLOG)

    def _resume_reading(self) -> None:
        self._release(BACKLOG)
        self._deliver()

    # --- the transport's producer (twisted.internet.interfaces.IPushProducer) --------------

    def pauseProducing(self) -> None:
        """The client is not reading: its write buffer passed the high-water mark. No new
        line is handed on (so no new reply is made); reading goes on until LINES_HELD lines
        wait, so a TLS handshake or a client's half-close still gets through."""
        self._output_full = True

    def resumeProducing(self) -> None:
        """The write buffer drained: answer again."""
        self._output_full = False
        self._deliver()

    def stopProducing(self) -> None:
        """The connection is going away (connectionLost follows)."""
        self._closing = True

    @property
    def echoing(self) -> bool:
        """The client asked the server to echo what it types (telnet character mode)."""
        return self.telnet is not None and self.telnet.echoing

    # --- output ---------------------------------------------------------------------------

    def _answer(self, result) -> None:
        backlog = self.backlog
        if backlog is None:
            backlog = self.backlog = ReplyBacklog(self._pause_reading, self._resume_reading)
        backlog.added()
        result.addBoth(self._answered)  # one callback per message, not two (docs/benchmarks.md)

    def _answered(self, result):
        """Write the reply (a failure was logged by the session: nothing to write), then count
        it out of the backlog, whatever happened."""
        try:
            if not isinstance(result, Failure):
                result = self._write_reply(result)
        finally:
            backlog = self.backlog
            backlog.answered(self._closing)
            if not backlog.count and not backlog.paused:
                self.backlog = None
            if self._eof and not self._delivering:
                self._deliver()
        return result


class ChatLineFactory(Factory):
    noisy = False
    protocol = ChatLineProtocol

    def __init__(self, manager: SessionManager, registry: ConnectionRegistry,
                 clock: IReactorTime) -> None:
        self.manager = manager
        self.registry = registry
        self.clock = clock
        self.idle = IdleWatch(clock, manager.config.limits.idle_timeout_seconds)

    def buildProtocol(self, addr):
        return self.protocol(self)
