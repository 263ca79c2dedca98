"""
The incoming side of one WebSocket, bounded (issue 16; docs/operations.md "Limits and abuse"):
:class:`Inflow`, composed into :class:`~psicoia.transports.websocket.ChatSocket`.

Autobahn parses every frame it has buffered in one go, and one 64 KiB read is ~9,000 one-byte
frames: a flood of tiny frames would hold the reactor while other users wait. The same bounds
as on TCP (:mod:`psicoia.transports.backlog`) apply here:

* read bytes reach the frame parser at most FEED_BYTES at a time, and only while fewer than
  LINES_HELD parsed messages wait; reading the socket stops while any read bytes wait;
* at most LINES_PER_TURN messages of one connection are handed on per reactor turn, the rest on
  the next turn (a ``callLater(0)``);
* the inflow is its transport's streaming producer: while the client does not read what it is
  sent (the transport's write buffer past Twisted's 64 KiB high-water mark) no message is
  handed on; replies already under way are still written, and every message is answered later,
  in order, never dropped.

Control frames (ping, pong, close) are parsed with the messages, so they flow while messages
are held back by the backend, up to LINES_HELD parsed messages.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet.interfaces import IPushProducer, IReactorTime
from zope.interface import implementer

from psicoia.transports.backlog import FEED_BYTES, LINES_HELD, LINES_PER_TURN

# Why the socket is not reading (bits of Inflow.holds); it reads again when none is left.
# BACKLOG (the backend holds too many messages) also stops handing messages on.
BACKLOG, INBOX = 1, 2


@implementer(IPushProducer)
class Inflow:
    """One connection's read bytes and parsed messages, handed on a turn's worth at a time.

    ``parse(data: bytes)`` gives bytes to the frame parser, which calls :meth:`add` with each
    message it completes (any tuple); ``handle(*item)`` hands one message on. ``clock`` runs
    the next turn. :meth:`attach` registers with the transport, :meth:`detach` lets go of it.
    """

    def __init__(self, clock: IReactorTime, parse: Callable[[bytes], None],
                 handle: Callable[..., None]) -> None:
        self.clock = clock
        self._parse = parse
        self._handle = handle
        self.transport: Any = None
        self.inbox: deque = deque()   # parsed messages not yet handed on
        self.unfed = b""              # read bytes not yet given to the parser
        self.holds = 0                # BACKLOG | INBOX
        self.output_full = False      # the client is not reading: hand nothing on
        self.active = True            # False once the connection closes
        self._budget = LINES_PER_TURN
        self._next_turn = None
        self._pumping = False
        self._producing = False

    def attach(self, transport: Any) -> None:
        """Become ``transport``'s streaming producer. Under ``/ws`` the HTTP channel the
        connection came from is still registered: it hears no more of the connection."""
        self.transport = transport
        try:
            transport.registerProducer(self, True)
        except RuntimeError:
            transport.unregisterProducer()
            transport.registerProducer(self, True)
        self._producing = True

    def detach(self) -> None:
        """The connection is closing: a registered producer would keep it open."""
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()

    def stop(self) -> None:
        """The connection is gone: drop what waits, run nothing more."""
        self.active = False
        self.inbox.clear()
        self.unfed = b""
        if self._next_turn is not None and self._next_turn.active():
            self._next_turn.cancel()

    # --- input ---------------------------------------------------------------------------------

    def add(self, item: tuple) -> None:
        """A message the parser completed; handed on in its turn (:meth:`pump`)."""
        self.inbox.append(item)

    def later(self, data: bytes) -> None:
        """Read bytes that go after those already waiting (parsed by :meth:`pump`)."""
        self.unfed += data

    def pump(self) -> None:
        """Hand messages on while allowed (at most LINES_PER_TURN this turn), and parse more
        read bytes while fewer than LINES_HELD messages wait; hold reading while bytes wait."""
        if self._pumping or not self.active:
            return
        self._pumping = True
        try:
            while self.active:
                if self.inbox and not self.output_full and not self.holds & BACKLOG:
                    if self._budget:
                        self._budget -= 1
                        self._handle(*self.inbox.popleft())
                        continue
                    if self._next_turn is None:
                        self._next_turn = self.clock.callLater(0, self._new_turn)
                if not self.unfed or len(self.inbox) >= LINES_HELD:
                    break
                data, self.unfed = self.unfed[:FEED_BYTES], self.unfed[FEED_BYTES:]
                self._parse(data)
        finally:
            self._pumping = False
        if self.unfed or len(self.inbox) > LINES_HELD:
            self.hold(INBOX)
        elif len(self.inbox) <= LINES_HELD // 2:
            self.release(INBOX)

    def _new_turn(self) -> None:
        self._next_turn = None
        self._budget = LINES_PER_TURN
        self.pump()

    # --- reading the socket --------------------------------------------------------------------

    def hold(self, reason: int) -> None:
        """Stop reading the socket for ``reason`` (BACKLOG or INBOX)."""
        if not self.holds and self.active and self.transport is not None:
            self.transport.pauseProducing()
        self.holds |= reason

    def release(self, reason: int) -> None:
        """``reason`` no longer holds reading back; read again if nothing else does."""
        if self.holds & reason:
            self.holds &= ~reason
            if not self.holds and self.active and self.transport is not None:
                self.transport.resumeProducing()

    # --- the transport's producer (twisted.internet.interfaces.IPushProducer) ------------------

    def pauseProducing(self) -> None:
        """The client is not reading (its write buffer passed the high-water mark)."""
        self.output_full = True

    def resumeProducing(self) -> None:
        """The write buffer drained: hand messages on again."""
        self.output_full = False
        self.pump()

    def stopProducing(self) -> None:
        """The connection is going away (connectionLost follows)."""
        self.stop()
