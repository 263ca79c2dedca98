"""
The TCP line protocol (telnet, nc): bytes in, lines to the session, reply lines out.

Thin on purpose: it parses lines, strips telnet negotiation, enforces the line length without
dropping the connection, and writes whatever the session answers, in order. The rules live in
:mod:`psicoia.chat.session`.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from psicoia import texts
from psicoia.ops.connections import REFUSALS, ConnectionRegistry
from psicoia.chat.ports import SessionListener
from psicoia.chat.vocabulary import Reply
from psicoia.chat.manager import SessionManager
from psicoia.transports.backlog import ReplyBacklog
from psicoia.transports.telnet import TelnetFilter

NEWLINE = b"\r\n"


def peer_address(transport) -> str:
    peer = transport.getPeer()
    return getattr(peer, "host", None) or type(peer).__name__


class ChatLineProtocol(LineReceiver, TimeoutMixin, SessionListener):
    delimiter = b"\n"
    transport_name = "tcp"
    log = Logger()

    def __init__(self, factory: "ChatLineFactory") -> None:
        self.factory = factory
        limits = factory.manager.config.limits
        self.max_line_bytes = limits.max_line_bytes
        # One spare byte for the "\r" of "\r\n"; the exact limit is checked in lineReceived.
        self.MAX_LENGTH = limits.max_line_bytes + 1
        self.callLater = factory.clock.callLater  # TimeoutMixin schedules on the injected clock
        self.session = None
        self._telnet = TelnetFilter()
        self._discarding = False
        self._reparse = False
        self._closing = False
        # Stops reading (LineReceiver's own pause: buffered lines wait too) when far ahead.
        self.backlog = ReplyBacklog(self.pauseProducing, self.resumeProducing)

    # --- connection lifecycle -------------------------------------------------------------

    def connectionMade(self) -> None:
        address = peer_address(self.transport)
        refusal = self.factory.registry.admit(self, address)
        if refusal:
            self.log.info("connection refused transport=tcp reason={reason}", reason=refusal)
            self._send(REFUSALS[refusal])
            self._closing = True
            self.transport.loseConnection()
            return
        opened = self.factory.manager.open(self.transport_name, address, self)
        if not opened.called:  # the store is numbering it: read nothing until it is ready
            self.transport.pauseProducing()
        opened.addCallbacks(self._opened, self._open_failed, callbackArgs=(address,))

    def _opened(self, session, address: str) -> None:
        if self._closing:  # the client left while the conversation was being made
            session.close()
            return
        self.session = session
        self.transport.resumeProducing()
        self.log.info("[{user}] connection open transport=tcp peer={peer}",
                      user=session.user, peer=address)
        for line in session.greeting():
            self._send(line)
        self.setTimeout(self.factory.manager.config.limits.idle_timeout_seconds)

    def _open_failed(self, failure) -> None:
        self.log.failure("could not open a conversation", failure)
        self._send(texts.ERROR)
        self.disconnect()

    def connectionLost(self, reason=None) -> None:
        self.setTimeout(None)
        self._closing = True
        self.factory.registry.release(self)  # idempotent; a refused connection was never in it
        if self.session is None:
            return
        self.log.info("[{user}] connection closed transport=tcp", user=self.session.user)
        self.session.close()

    def timeoutConnection(self) -> None:
        self.log.info("[{user}] idle timeout", user=self.session.user)
        self.factory.registry.instruments.idle_timeout(self.transport_name)
        self._send(texts.IDLE_TIMEOUT)
        self.disconnect()

    def notify_shutdown(self) -> None:
        self._send(texts.SHUTTING_DOWN)

    # --- what the session tells us besides replies (psicoia.chat.ports.ISessionListener) ---

    def on_taken_over(self) -> None:
        self._send(texts.TAKEN_OVER)
        self.disconnect()

    def disconnect(self) -> None:
        self._closing = True
        self.transport.loseConnection()

    # --- input ----------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.session is None or self._closing:
            return
        data = self._telnet.feed(data)
        if self._discarding:
            end = data.find(self.delimiter)
            if end == -1:
                return
            data = data[end + 1:]
            self._discarding = False
        LineReceiver.dataReceived(self, data)
        while self._reparse and not self._closing:
            self._reparse = False
            LineReceiver.dataReceived(self, b"")

    def lineReceived(self, line: bytes) -> None:
        if self._closing:  # e.g. lines that came in the same read after "salir"
            return
        self.resetTimeout()
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line_bytes:
            self._answer(self.session.submit_too_long().reply)
            return
        text = line.decode("utf-8", "replace")
        if not text.strip():
            return
        self._answer(self.session.submit(text).reply)

    def lineLengthExceeded(self, line: bytes) -> None:
        """Too long: one notice, skip to the end of that line, keep the connection."""
        self.resetTimeout()
        end = line.find(self.delimiter)
        if end == -1:
            self._discarding = True
        else:
            self._buffer = line[end + 1:]
            self._reparse = bool(self._buffer)
        self._answer(self.session.submit_too_long().reply)

    # --- output ---------------------------------------------------------------------------

    def _answer(self, result) -> None:
        self.backlog.added()
        result.addBoth(self._answered)  # one callback per message, not two (docs/benchmarks.md)

    def _answered(self, result):
        """Write the reply (a failure was logged by the session: nothing to write), then count
        it out of the backlog, whatever happened."""
        try:
            if not isinstance(result, Failure):
                result = self._write_reply(result)
        finally:
            self.backlog.answered(self._closing)
        return result

    def _write_reply(self, reply: Reply) -> None:
        if self._closing or not reply.text:
            return
        self._send(reply.text)
        if reply.close:
            self.session.close()
            self.disconnect()

    def _send(self, text: str) -> None:
        self.transport.write(text.encode("utf-8") + NEWLINE)


class ChatLineFactory(Factory):
    noisy = False
    protocol = ChatLineProtocol

    def __init__(self, manager: SessionManager, registry: ConnectionRegistry,
                 clock: IReactorTime) -> None:
        self.manager = manager
        self.registry = registry
        self.clock = clock

    def buildProtocol(self, addr):
        return self.protocol(self)
