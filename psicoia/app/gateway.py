"""
Gateway mode: the page and the WebSocket here, the chat somewhere else over TCP.

The original project's topology, for scaling browsers separately from the core: each browser
connection gets its own TCP connection to the core's line protocol (1:1), and closing either
side closes the other. In line mode frames and lines map one to one; in the ``psicoia.v1``
JSON mode the upstream lines become events: the lines up to the one naming ``salir`` are the
greeting, every later line answers the oldest message still waiting for one, and lines that are
known notices (texts.py) become ``notice`` events of their kind; a line ending with the crisis
resources gets ``crisis: true`` (see :func:`read_line`).
"""

from __future__ import annotations

import re
import string
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from psicoia import texts
from psicoia.config import Config
from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.instruments import Instruments
from psicoia.app.lifecycle import ChatService
from psicoia.app.listeners import add_browser_listeners
from psicoia.ops.metrics import Metrics
from psicoia.transports.proxy import proxy_header
from psicoia.transports.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN,
    ChatSocketFactory,
    IChatBackend,
    IChatSocket,
    OriginPolicy,
)
from psicoia.chat import vocabulary
from psicoia.chat.vocabulary import Kind, Reply

CONNECT_TIMEOUT_SECONDS = 10.0
# Upstream lines are replies (one line each); this only bounds a misbehaving upstream.
UPSTREAM_MAX_LINE_BYTES = 1 << 20
_USER = re.compile(r"^(Usuario-\d+)\b")


def _template_regex(template: str) -> str:
    """A texts.py template (``str.format`` placeholders) as a regex matching its output."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(".+?")
    return "".join(parts)


def _template_pattern(template: str) -> re.Pattern:
    return re.compile("^" + _template_regex(template) + "$", re.DOTALL)


def _known_lines() -> list[tuple[Kind, re.Pattern]]:
    """(kind, pattern) for every notice the core may send, from the one table in texts.py."""
    return [(Kind(kind), _template_pattern(text)) for kind, text in texts.NOTICES]


KNOWN_LINES = _known_lines()
# Lines the core sends on its own, never as the answer to a message.
UNSOLICITED = vocabulary.UNSOLICITED
# What the core's crisis layer appends to a reply (SessionManager.with_safety): the resources
# line (any resources list), or the short reminder that /recursos lists them.
_RESOURCES_TAIL = re.compile(r"(?:^|\s)" + _template_regex(texts.CRISIS_RESOURCES) + "$",
                             re.DOTALL)
_REMINDER_TAIL = " " + texts.CRISIS_REMINDER


def read_line(line: str) -> tuple[str, bool]:
    """(kind, crisis) of an upstream line: its notice kind, or ``answered`` for a model reply,
    and whether it is a crisis reply (it ends with the resources line; the goodbye that
    carries them in the reminder window is not one, as in the core's ``Reply.crisis``)."""
    base, crisis = line, False
    tail = _RESOURCES_TAIL.search(line)
    if tail is not None:
        base, crisis = line[:tail.start()], True
    elif line.endswith(_REMINDER_TAIL):
        base = line[:-len(_REMINDER_TAIL)]
    kind = Kind.ANSWERED
    for known, pattern in KNOWN_LINES:
        if pattern.match(base):
            kind = known
            break
    return kind, crisis and kind != Kind.GOODBYE


def classify(line: str) -> str:
    """The notice kind of an upstream line, or ``answered`` for a model reply."""
    return read_line(line)[0]


class UpstreamLine(LineReceiver):
    """The gateway's TCP connection to the core, for one browser."""

    delimiter = b"\n"
    MAX_LENGTH = UPSTREAM_MAX_LINE_BYTES

    def __init__(self, bridge: "GatewayBridge", header: bytes = b"") -> None:
        self.bridge = bridge
        self.header = header

    def connectionMade(self) -> None:
        if self.header:  # the PROXY protocol line: who the browser is (--send-proxy)
            self.transport.write(self.header)

    def lineReceived(self, line: bytes) -> None:
        self.bridge.upstream_line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.bridge.upstream_lost()

    def send(self, text: str) -> None:
        self.sendLine(text.encode("utf-8"))


class _Slot:
    """One answer the browser is owed, in order: from upstream, or a local notice."""

    __slots__ = ("ref", "trace_id", "local", "reply")

    def __init__(self, ref, trace_id: str, local: Optional[Reply] = None) -> None:
        self.ref = ref
        self.trace_id = trace_id
        self.local = local is not None
        self.reply = local


@dataclass(frozen=True)
class Upstream:
    """Where and how every bridge of a gateway connects: ``endpoint`` is a client endpoint
    string (``tcp:HOST:5001``), ``connect_timeout`` in seconds on ``reactor``; ``send_proxy``
    starts the connection with a PROXY protocol v1 line naming the browser."""

    endpoint: str
    reactor: Any
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS
    send_proxy: bool = False

    def connect(self, protocol: "UpstreamLine") -> Deferred:
        connecting = connectProtocol(clientFromString(self.reactor, self.endpoint), protocol)
        connecting.addTimeout(self.connect_timeout, self.reactor)
        return connecting


@implementer(IChatBackend)
class GatewayBridge:
    """A browser (its ``socket``) bridged to its own TCP connection ``upstream``."""

    log = Logger()

    def __init__(self, socket: IChatSocket, upstream: Upstream) -> None:
        self.socket = socket
        self.settings = upstream
        self.upstream: Optional[UpstreamLine] = None
        self._connecting: Optional[Deferred] = None
        self._outgoing: list[str] = []
        self._greeting: Optional[list[str]] = []  # None once the greeting is complete
        self._slots: deque[_Slot] = deque()
        self._sent = 0
        self._local = 0
        self._last_kind: Optional[str] = None
        self.shutting_down = False  # the gateway is stopping: new messages get the notice
        self._upstream_closing = False  # the core has said it is shutting down
        self._answered_waiters: list[Deferred] = []

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, address: str) -> None:
        self.log.info("gateway connection open mode={mode} peer={peer}",
                      mode="json" if self.socket.json_mode else "line", peer=address)
        send_proxy = self.settings.send_proxy
        header = proxy_header(address, self.socket.transport_peer()) if send_proxy else b""
        connecting = self.settings.connect(UpstreamLine(self, header))
        connecting.addCallbacks(self._connected, self._connect_failed)
        self._connecting = connecting

    def _connected(self, upstream: UpstreamLine) -> None:
        self._connecting = None
        if self.socket.closing:
            upstream.transport.abortConnection()
            return
        self.upstream = upstream
        for line in self._outgoing:
            upstream.send(line)
        self._outgoing = []

    def _connect_failed(self, failure) -> None:
        self._connecting = None
        self.log.warn("gateway: upstream unreachable ({error})",
                      error=failure.getErrorMessage() or failure.type.__name__)
        if not self.socket.closing:
            self.socket.send_notice(texts.UPSTREAM_DOWN, "upstream_down", None)
            self.socket.close(CLOSE_TRY_AGAIN)
        self._check_answered()

    def stop(self) -> None:
        self.log.info("[{user}] gateway connection closed", user=self.socket.label)
        if self._connecting is not None:
            self._connecting.cancel()
        if self.upstream is not None:
            # A reset, not a FIN: the core answers every line of a client that only shut its
            # sending side (half-close); this browser is gone and wants nothing more.
            self.upstream.transport.abortConnection()
        self._check_answered()

    # --- graceful shutdown (ChatService._drain, psicoia/lifecycle.py) -----------------------

    def notify_shutdown(self) -> None:
        """From now on new messages get the notice here (the socket says it right after)."""
        self.shutting_down = True

    def awaiting_upstream(self) -> bool:
        """Some message sent upstream has no answer yet."""
        return any(not slot.local and slot.reply is None for slot in self._slots)

    def when_answered(self) -> Deferred:
        """Fires once no message waits for its answer from upstream, or none can come."""
        if self.socket.closing or not self.awaiting_upstream():
            return succeed(None)
        waiter: Deferred = Deferred()
        self._answered_waiters.append(waiter)
        return waiter

    def _check_answered(self) -> None:
        if self._answered_waiters and (self.socket.closing or not self.awaiting_upstream()):
            waiters, self._answered_waiters = self._answered_waiters, []
            for waiter in waiters:
                if not waiter.called:  # cancelled when the grace period ran out
                    waiter.callback(None)

    # --- browser to upstream ----------------------------------------------------------------

    def message(self, text: str, ref) -> None:
        if self.shutting_down:  # as the core does once it is closing: not sent upstream
            self._answer_here(ref, Reply(texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN))
            return
        self._sent += 1
        self._slots.append(_Slot(ref, f"{self.socket.label or 'Usuario'}:m{self._sent}"))
        if self.socket.json_mode:
            self.socket.send_event("accepted", self._slots[-1].trace_id, ref=ref)
        if self.upstream is not None:
            self.upstream.send(text)
        else:
            self._outgoing.append(text)

    def message_too_long(self, ref) -> None:
        """Answered here (the text was not kept), in its place among the pending answers."""
        limit = self.socket.max_message_bytes
        self._answer_here(ref, Reply(texts.TOO_LONG.format(limit=limit), Kind.TOO_LONG))

    def _answer_here(self, ref, reply: Reply) -> None:
        """A notice from the gateway itself, in its place among the pending answers."""
        self._local += 1
        trace_id = f"{self.socket.label or 'Usuario'}:gw{self._local}"
        reply = Reply(reply.text, reply.outcome, trace_id)
        self._slots.append(_Slot(ref, trace_id, reply))
        if self.socket.json_mode:
            self.socket.send_event("accepted", trace_id, ref=ref)
        self._flush()

    # --- upstream to browser ----------------------------------------------------------------

    def upstream_line(self, line: str) -> None:
        if self.socket.closing:
            return
        if self._greeting is not None:
            self._greeting_line(line)
            return
        kind, crisis = read_line(line)
        self._last_kind = kind
        if kind == Kind.SHUTTING_DOWN and not self._upstream_closing:
            # The core tells every connection it is closing before it answers any message
            # with that notice: the first one is unsolicited, later ones are answers.
            self._upstream_closing = True
            if not self.shutting_down:  # else the user has heard it from us already
                self.socket.send_reply(Reply(line, kind, self.socket.label))
            return
        pending = next((slot for slot in self._slots if not slot.local and slot.reply is None),
                       None)
        if pending is None or kind in UNSOLICITED:
            self.socket.send_reply(Reply(line, kind, self.socket.label, crisis=crisis))
            return
        pending.reply = Reply(line, kind, pending.trace_id, crisis=crisis)
        self._flush()
        self._check_answered()

    def _greeting_line(self, line: str) -> None:
        if not self.socket.json_mode:
            self.socket.send_line(line)
        self._greeting.append(line)
        if "salir" not in line.lower():
            return
        lines, self._greeting = self._greeting, None
        found = _USER.match(lines[0])
        self.socket.label = found.group(1) if found else "Usuario"
        for slot in self._slots:  # messages sent before the greeting ended
            slot.trace_id = slot.trace_id.replace("Usuario:", f"{self.socket.label}:", 1)
        if self.socket.json_mode:
            self.socket.send_greeting(self.socket.label, lines)

    def _flush(self) -> None:
        while self._slots and self._slots[0].reply is not None:
            slot = self._slots.popleft()
            self.socket.send_reply(slot.reply, slot.ref)

    def upstream_lost(self) -> None:
        self.upstream = None
        if self.socket.closing:
            return
        kind = self._last_kind
        if self._greeting:  # closed before greeting us: a refusal (server full, ...)
            for line in self._greeting:
                if self.socket.json_mode:
                    self.socket.send_notice(line, classify(line), None)
            self.socket.close(CLOSE_TRY_AGAIN)
        elif kind in (Kind.GOODBYE, "idle_timeout"):
            self.socket.close(CLOSE_NORMAL)
        elif kind == Kind.SHUTTING_DOWN or self._upstream_closing:
            self.socket.close(CLOSE_GOING_AWAY)
        else:
            self.log.info("[{user}] gateway: upstream closed the connection", user=self.socket.label)
            self.socket.send_notice(texts.UPSTREAM_LOST, "upstream_lost", None)
            self.socket.close(CLOSE_TRY_AGAIN)
        self._check_answered()


def gateway_socket_factory(config: Config, upstream: Upstream, registry: ConnectionRegistry,
                           origins: OriginPolicy, clock: Any = None,
                           **options: Any) -> ChatSocketFactory:
    """The gateway's WebSocket factory: every admitted socket gets a :class:`GatewayBridge`
    to ``upstream``; ``clock`` (default: the upstream's reactor) runs the idle timeout."""
    limits = config.limits
    return ChatSocketFactory(registry, clock or upstream.reactor, limits.max_line_bytes,
                             limits.idle_timeout_seconds, origins,
                             lambda socket: GatewayBridge(socket, upstream),
                             reactor=upstream.reactor, helplines=config.safety.resources,
                             **options)


class GatewayService(ChatService):
    """The page and WebSocket listeners of a gateway; stopping it closes every bridge.

    Stopping is graceful like the core's (:mod:`psicoia.app.lifecycle`): answers already requested
    upstream get ``server.shutdown_grace_seconds`` (on ``clock``) to arrive.
    """

    mode = "gateway"

    def __init__(self, config: Config, reactor: Any, registry: ConnectionRegistry,
                 upstream: str, instruments: Optional[Instruments] = None,
                 clock: Any = None) -> None:
        super().__init__(config, reactor, registry, instruments, grace_clock=clock)
        self.upstream = upstream

    def startService(self) -> None:
        super().startService()
        self.log.info("gateway: bridging browsers to {upstream}", upstream=self.upstream)

    def pending_replies(self) -> Deferred:
        connections = self.registry.connections()
        return DeferredList([connection.backend.when_answered() for connection in connections])


def build_gateway(config: Config, upstream: str, reactor: Any, clock: Any = None,
                  instruments: Optional[Instruments] = None,
                  send_proxy: bool = False) -> GatewayService:
    """Wire a gateway from ``config`` (server.http, server.websocket, limits) to ``upstream``.

    ``send_proxy``: start each upstream connection with a PROXY protocol v1 line naming the
    browser, for a core listener such as ``server.tcp_proxied: "haproxy:tcp:5002"``.
    """
    instruments = instruments or Metrics()
    registry = ConnectionRegistry(
        config.server.max_connections, config.server.max_connections_per_ip, instruments)
    service = GatewayService(config, reactor, registry, upstream, instruments, clock)
    settings = Upstream(upstream, reactor, send_proxy=send_proxy)
    add_browser_listeners(service, config, reactor, lambda origins: gateway_socket_factory(
        config, settings, registry, origins, clock=clock),
        service.report, getattr(instruments, "registry", None))
    return service
