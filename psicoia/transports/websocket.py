"""
The WebSocket transport (Autobahn, same reactor): frames in, messages to a chat backend, frames
out.

Two ways to talk, chosen at the handshake:

* no subprotocol: the TCP line protocol, one line per text frame both ways (docs/protocol.md);
* ``psicoia.v1``: typed JSON events for the web page (greeting, accepted, queued, waiting,
  reply, notice, error), every one with a trace id.

By composition, not inheritance: :class:`ChatSocket` is the one Autobahn protocol class and does
only WebSocket mechanics (Origin check, size limit without closing, binary frames, keepalive,
idle timeout with ``TimeoutMixin`` as the TCP protocol does, the connection caps, event
encoding). What the messages mean is the job of a backend (:class:`IChatBackend`), one per
connection, made by the factory when the socket is admitted: :mod:`psicoia.transports.chat_socket`
puts a session of this process behind it, the gateway (:mod:`psicoia.app.gateway`) a TCP
connection upstream. The backend talks back only through :class:`IChatSocket`. Like the TCP
protocol it stays thin: the rules live in :mod:`psicoia.chat.session`.

Flow control (issue 16) is the socket's :class:`~psicoia.transports.inflow.Inflow`: a slice of a
read parsed at a time, a turn's worth of messages handed on at a time, nothing handed on while
the client does not read its replies. Autobahn's close handshake timeout cuts off a closed
client that does not read.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from psicoia import texts
from psicoia.ops.connections import REFUSALS, ConnectionRegistry
from psicoia.ops.internals import drop_buffered_message, use_timers
from psicoia.chat.vocabulary import CONVERSATIONAL, Kind, Reply, fold_lines
from psicoia.transports.backlog import FEED_BYTES
from psicoia.transports.inflow import BACKLOG, Inflow
from psicoia.transports.origins import OriginPolicy
from psicoia.transports.helplines import helplines
from psicoia.transports.proxy import NO_PROXIES
from psicoia.transports.socket_api import (  # the seam, also imported from here
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN,
    IChatBackend,
    IChatSocket,
)
from psicoia.transports.tcp import peer_address
from psicoia.transports.timers import ClockTimers
from psicoia.transports.ws_events import JSON_PROTOCOL, read_event, reply_event  # noqa: F401

# A JSON frame may escape each byte of text as \\u00XX (6 bytes); plus room for the envelope.
JSON_OVERHEAD_FACTOR = 6
JSON_ENVELOPE_BYTES = 1024
# Above this Autobahn itself fails the connection (1009). Below it, anything longer than
# limits.max_line_bytes is discarded as it arrives and answered with the too-long notice.
HARD_CAP_MIN_BYTES = 1 << 20

PING_INTERVAL_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 30.0

# A ping or pong's place among the messages of an inflow (Inflow.add): handled, it does nothing.
CONTROL_FRAME = (None, False, False)

@implementer(IChatSocket)
class ChatSocket(WebSocketServerProtocol, TimeoutMixin):
    """WebSocket mechanics for one connection; the chat is its :attr:`backend`'s
    (``factory.backend(socket) -> IChatBackend``, made when the socket is admitted)."""

    transport_name = "websocket"
    log = Logger()

    def __init__(self) -> None:
        super().__init__()
        self.json_mode = False
        self.admitted = False
        self.closing = False
        self.label: Optional[str] = None  # who this is in logs and events (Usuario-N)
        self.backend: Optional[IChatBackend] = None
        self._message_bytes = 0
        self._message_too_long = False
        self.inflow: Optional[Inflow] = None  # made with the connection

    @property
    def max_message_bytes(self) -> int:
        return self.factory.max_message_bytes

    def transport_peer(self):
        return self.transport.getPeer()

    # --- handshake and lifecycle ------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        self.inflow = Inflow(self.factory.clock, self._parse, self._handle)
        self.inflow.attach(self.transport)  # paused when the client does not read

    def connectionLost(self, reason) -> None:
        if self.inflow is not None:
            self.inflow.stop()
        super().connectionLost(reason)

    def unregisterProducer(self) -> None:
        """Autobahn calls this before it drops the connection: the inflow lets go of the
        transport (a registered producer would hold the close)."""
        if self.inflow is not None:
            self.inflow.detach()

    def onConnect(self, request):
        local = self.transport.getHost()
        if not self.factory.origins.allows(request.origin, getattr(local, "host", None),
                                           getattr(local, "port", None),
                                           request.headers.get("host")):
            self.log.info("websocket refused reason=origin")
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")
        if JSON_PROTOCOL in request.protocols:
            self.json_mode = True
            return JSON_PROTOCOL
        return None

    def onOpen(self) -> None:
        # The client's address: X-Forwarded-For / Forwarded count only from trusted proxies.
        address = self.factory.trusted_proxies.client(peer_address(self.transport),
                                                      self.http_headers)
        refusal = self.factory.registry.admit(self, address)
        if refusal:
            self.log.info("connection refused transport=websocket reason={reason}",
                          reason=refusal)
            self.send_notice(REFUSALS[refusal], refusal, None)
            self.close(CLOSE_TRY_AGAIN)
            return
        self.admitted = True
        self.backend = self.factory.backend(self)
        self.setTimeout(self.factory.idle_timeout or None)
        self.backend.start(address)

    def onClose(self, wasClean: bool, code, reason) -> None:
        if self.admitted:
            self.factory.registry.instruments.websocket_closed(code)
        self.closing = True
        self.setTimeout(None)
        if self.admitted:
            self.admitted = False
            self.factory.registry.release(self)
            self.backend.stop()

    def close(self, code: int = CLOSE_NORMAL) -> None:
        """Start the closing handshake. ``sendClose`` only takes 1000 and 3000-4999 (the codes
        a client may send); a server may also say 1001 and 1013, hence ``sendCloseFrame``."""
        self.closing = True
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
        elif self.state == self.STATE_CONNECTING:
            self.dropConnection(abort=True)

    def pause_reading(self) -> None:
        """The backend holds too many messages: stop reading and handing messages on."""
        self.inflow.hold(BACKLOG)

    def resume_reading(self) -> None:
        self.inflow.release(BACKLOG)
        self.inflow.pump()

    # --- Connection interface (psicoia.ops.connections) -----------------------------------------

    def notify_shutdown(self) -> None:
        self.backend.notify_shutdown()
        self.send_notice(texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN, None)

    def disconnect(self) -> None:
        self.close(CLOSE_GOING_AWAY)

    # --- idle timeout (TimeoutMixin) on the injected clock --------------------------------------

    def callLater(self, period: float, func: Callable[[], Any]):
        return self.factory.clock.callLater(period, func)

    def timeoutConnection(self) -> None:
        if self.closing:
            return
        self.log.info("[{user}] idle timeout", user=self.label)
        self.factory.registry.instruments.idle_timeout(self.transport_name)
        self.send_notice(texts.IDLE_TIMEOUT, Kind.IDLE_TIMEOUT, None)
        self.close(CLOSE_NORMAL)

    # --- input: a slice of a read at a time (Inflow), one message per frame -----------------

    def _dataReceived(self, data: bytes) -> None:
        if self.inflow is not None and self.inflow.unfed:  # after the bytes already waiting
            self.inflow.later(data)
            self.inflow.pump()
            return
        super()._dataReceived(data)

    def consumeData(self) -> None:
        """Autobahn parses every frame it has in one go: it gets FEED_BYTES at a time (also of
        what follows the opening handshake in one read); the rest waits in the inflow."""
        if self.state == self.STATE_OPEN and len(self.data) > FEED_BYTES:
            self.inflow.later(self.data[FEED_BYTES:])  # nothing waits: data came in first
            self.data = self.data[:FEED_BYTES]
        super().consumeData()
        self.inflow.pump()

    def _parse(self, data: bytes) -> None:
        """More read bytes for Autobahn's parser (from the inflow, at most FEED_BYTES)."""
        if self.state in (self.STATE_OPEN, self.STATE_CLOSING):
            self.data += data
            super().consumeData()

    def onMessageBegin(self, isBinary: bool) -> None:
        super().onMessageBegin(isBinary)
        self._message_bytes = 0
        self._message_too_long = False

    def onMessageFrameData(self, payload: bytes) -> None:
        """Keep at most the limit in memory; past it (or for binary frames) drop the bytes."""
        if self.message_is_binary or self._message_too_long:
            return
        self._message_bytes += len(payload)
        if self._message_bytes > self.factory.frame_limit(self.json_mode):
            self._message_too_long = True
            drop_buffered_message(self)
            return
        super().onMessageFrameData(payload)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # Every message takes its place in the inflow, also those dropped after a close: a
        # flood after the close handshake is parsed a turn's worth at a time as well.
        if self.admitted and not self.closing:
            self.resetTimeout()
        self.inflow.add((payload, isBinary, self._message_too_long))

    def onPing(self, payload: bytes) -> None:
        super().onPing(payload)  # the pong, at once
        self.inflow.add(CONTROL_FRAME)  # counted, so a flood of pings is parsed a turn at a time

    def onPong(self, payload: bytes) -> None:
        super().onPong(payload)
        self.inflow.add(CONTROL_FRAME)

    def _handle(self, payload: Optional[bytes], isBinary: bool, too_long: bool) -> None:
        """One message, in its turn (the inflow's); a control frame's place does nothing."""
        if payload is None or not self.admitted or self.closing:
            return
        if isBinary:
            self.send_notice(texts.BINARY_FRAME, "binary", None)
            return
        if too_long:
            self.backend.message_too_long(None)
            return
        text = payload.decode("utf-8", "replace")
        if not self.json_mode:
            self._text_message(text, None)
            return
        text, ref = read_event(text)
        if text is None:
            self.send_event("error", None, code="bad_request", text=texts.BAD_REQUEST)
            return
        self._text_message(text, ref)

    def _text_message(self, text: str, ref) -> None:
        # Line mode measured the raw frame already (frame_limit); JSON mode measures the text.
        if self.json_mode and len(text.encode("utf-8")) > self.factory.max_message_bytes:
            self.backend.message_too_long(ref)
            return
        text = fold_lines(text)
        if not text:
            return  # like an empty line: no reply
        self.backend.message(text, ref)

    # --- output -----------------------------------------------------------------------------

    def send_line(self, text: str) -> None:
        if self.state == self.STATE_OPEN:
            self.sendMessage(text.encode("utf-8"), isBinary=False)

    def send_event(self, event_type: str, trace_id: Optional[str], **fields: Any) -> None:
        event = {"type": event_type, "trace_id": trace_id}
        event.update(fields)
        self.send_line(json.dumps(event, ensure_ascii=False))

    def send_notice(self, text: str, kind: str, trace_id: Optional[str], ref=None,
                    crisis: bool = False) -> None:
        """A notice not tied to a model reply: a plain line, or a ``notice`` event."""
        if self.json_mode:
            self.send_event("notice", trace_id or self.label, ref=ref, kind=kind, text=text,
                            crisis=crisis)
        else:
            self.send_line(text)

    def send_reply(self, reply: Reply, ref=None) -> None:
        """One reply of the session, as a line or as its event.

        JSON events say ``crisis`` (docs/protocol.md): the crisis layer matched the message and
        the text carries the resources, so the page can make them stand out.
        """
        if not self.json_mode:
            self.send_line(reply.text)
            return
        event_type, fields = reply_event(reply)
        self.send_event(event_type, reply.trace_id, ref=ref, **fields)

    def send_greeting(self, user: str, lines: list[str], resume_token: Optional[str] = None) -> None:
        if not self.json_mode:
            for line in lines:
                self.send_line(line)
            return
        fields: dict[str, Any] = {}
        if resume_token is not None:
            fields["resume_token"] = resume_token
        self.send_event("greeting", user, user=user, lines=lines, protocol=JSON_PROTOCOL,
                        max_message_bytes=self.factory.max_message_bytes,
                        kinds=sorted(Kind), conversational=sorted(CONVERSATIONAL),
                        helplines=helplines(self.factory.helplines), **fields)


class ChatSocketFactory(WebSocketServerFactory):
    """Settings shared by every socket of one listener: limits, origins, caps, keepalive, and
    ``backend``, called with each admitted :class:`ChatSocket` to make its
    :class:`IChatBackend`.

    ``clock`` runs the idle timeout (``idle_timeout`` seconds, 0 for none),
    ``timers_clock`` (default: the reactor) the handshake and keepalive timers (seconds).
    ``max_message_bytes`` is ``limits.max_line_bytes``.
    """

    noisy = False
    protocol = ChatSocket
    trusted_proxies = NO_PROXIES  # server.trusted_proxies (psicoia.transports.proxy)

    def __init__(self, registry: ConnectionRegistry, clock: IReactorTime, max_message_bytes: int,
                 idle_timeout: float, origins: OriginPolicy,
                 backend: Callable[[ChatSocket], IChatBackend], reactor: Any = None,
                 ping_interval: float = PING_INTERVAL_SECONDS,
                 ping_timeout: float = PING_TIMEOUT_SECONDS,
                 timers_clock: Optional[IReactorTime] = None,
                 helplines: tuple[str, ...] = ()) -> None:
        super().__init__(server="PsicoIA", reactor=reactor)
        self.backend = backend
        self.helplines = helplines  # shown by the page from the greeting on (header, offline)
        use_timers(self, ClockTimers(timers_clock or self.reactor))
        self.registry = registry
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.origins = origins
        hard_cap = max(HARD_CAP_MIN_BYTES, 2 * self.frame_limit(True))
        self.setProtocolOptions(
            webStatus=False,
            allowNullOrigin=True,  # so that OriginPolicy decides (403), not Autobahn (400)
            # Invalid UTF-8 is replaced like on TCP instead of failing the connection.
            utf8validateIncoming=False,
            maxFramePayloadSize=hard_cap,
            maxMessagePayloadSize=hard_cap,
            autoPingInterval=ping_interval,
            autoPingTimeout=ping_timeout,
            openHandshakeTimeout=10,
        )

    def frame_limit(self, json_mode: bool) -> int:
        """Bytes kept per frame: the message limit, or its worst-case JSON encoding."""
        if json_mode:
            return self.max_message_bytes * JSON_OVERHEAD_FACTOR + JSON_ENVELOPE_BYTES
        return self.max_message_bytes
