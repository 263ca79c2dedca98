"""
The WebSocket backed by this process's chat core: :class:`ChatBackend`, the
:class:`~psicoia.transports.websocket.IChatBackend` whose messages go to a session
(psicoia/chat/session.py), and :func:`chat_socket_factory`, the factory the service listens with.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from psicoia import texts
from psicoia.chat.manager import SessionManager
from psicoia.chat.ports import SessionListener
from psicoia.chat.vocabulary import Kind, Reply
from psicoia.ops.connections import ConnectionRegistry
from psicoia.transports.backlog import ReplyBacklog
from psicoia.transports.origins import OriginPolicy
from psicoia.transports.websocket import (
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN,
    ChatSocketFactory,
    IChatBackend,
    IChatSocket,
)


# Messages a socket holds (read, not yet submitted) before it stops reading the socket.
WAITING_LIMIT = 256


@implementer(IChatBackend)
class ChatBackend(SessionListener):
    """A browser (or wscat) talking to this process's session manager, through ``socket``.

    In JSON mode it shows what the session tells it (accepted, queued, waiting) as events
    carrying the message's ``ref``. Events raised while :meth:`Session.submit` runs are held
    until it returns with the trace id, then sent with the ref (:meth:`_submit`).
    """

    transport_name = "websocket"
    log = Logger()

    def __init__(self, manager: SessionManager, socket: IChatSocket) -> None:
        self.manager = manager
        self.socket = socket
        self.session = None
        self._refs: dict[str, Any] = {}
        self._held: Optional[list] = None  # events raised inside submit(), sent after it
        # Far ahead of its replies, the socket holds new messages back instead of submitting
        # them, but keeps reading, so pings, pongs and close frames still flow (a page with a
        # slow provider is not dropped by keepalive). Only past WAITING_LIMIT held messages
        # does it stop reading the socket: memory stays bounded for a flooder.
        self.backlog = ReplyBacklog(self._hold, self._release)
        self._waiting: deque = deque()  # (text or None for too long, ref)
        self._holding = False
        self._reading_paused = False

    def start(self, address: str) -> None:
        opened = self.manager.open(self.transport_name, address, self)
        opened.addCallbacks(self._opened, self._open_failed, callbackArgs=(address,))

    def _opened(self, session, address: str) -> None:
        if self.socket.closing:
            session.close()
            return
        self.session = session
        self.socket.label = session.user
        self.log.info("[{user}] connection open transport=websocket mode={mode} peer={peer}",
                      user=session.user, mode="json" if self.socket.json_mode else "line",
                      peer=address)
        self.socket.send_greeting(session.user, session.greeting(), session.code)

    def _open_failed(self, failure) -> None:
        self.log.failure("could not open a conversation", failure)
        self.socket.send_notice(texts.ERROR, Kind.ERROR, None)
        self.socket.close(CLOSE_TRY_AGAIN)

    def stop(self) -> None:
        if self.session is None:
            return
        self.log.info("[{user}] connection closed transport=websocket", user=self.socket.label)
        self.session.close()

    def notify_shutdown(self) -> None:
        """Nothing to do: the session manager answers new messages with the notice itself."""

    def message(self, text: str, ref) -> None:
        self._accept(text, ref)

    def message_too_long(self, ref) -> None:
        self._accept(None, ref)

    def _accept(self, text: Optional[str], ref) -> None:
        if self.session is None:
            return
        if self._holding or self._waiting:
            self._waiting.append((text, ref))
            if len(self._waiting) >= WAITING_LIMIT and not self._reading_paused:
                self._reading_paused = True
                self.socket.pause_reading()
            return
        self._submit_one(text, ref)

    def _submit_one(self, text: Optional[str], ref) -> None:
        if text is None:
            self._submit(self.session.submit_too_long, ref)
        else:
            self._submit(lambda: self.session.submit(text), ref)

    def _hold(self) -> None:
        self._holding = True

    def _release(self) -> None:
        """Half the unanswered messages are answered: submit the held ones, in order, until
        the backlog fills again; read the socket again once few are held."""
        self._holding = False
        while self._waiting and not self._holding and not self.socket.closing:
            self._submit_one(*self._waiting.popleft())
        if self._reading_paused and len(self._waiting) < WAITING_LIMIT // 2:
            self._reading_paused = False
            self.socket.resume_reading()

    def _submit(self, submit: Callable, ref) -> None:
        self._held = []
        try:
            submission = submit()
        finally:
            held, self._held = self._held, None
        if submission.trace_id is not None:
            self._refs[submission.trace_id] = ref
        if self.socket.json_mode:
            for event_type, trace_id, fields in held:
                self.socket.send_event(event_type, trace_id, ref=ref, **fields)
        self.backlog.added()
        submission.reply.addCallback(self._write_reply)
        submission.reply.addBoth(self._answered)

    def _answered(self, result):
        self.backlog.answered(self.socket.closing)
        return result

    # --- what the session tells us (psicoia.chat.ports.ISessionListener) -------------------

    def _event(self, event_type: str, trace_id: str, **fields: Any) -> None:
        if self._held is not None:
            self._held.append((event_type, trace_id, fields))
        elif self.socket.json_mode:
            self.socket.send_event(event_type, trace_id, ref=self._refs.get(trace_id), **fields)

    def on_accepted(self, trace_id: str) -> None:
        self._event("accepted", trace_id)

    def on_queued(self, trace_id: str, position: int) -> None:
        self._event("queued", trace_id, position=position)

    def on_waiting(self, trace_id: str) -> None:
        self._event("waiting", trace_id)

    def on_delta(self, trace_id: str, text: str) -> None:
        """JSON mode: a ``reply_delta`` per piece (the final ``reply`` has the whole text);
        line mode sends the reply as one frame when it is complete."""
        self._event("reply_delta", trace_id, text=text)

    def on_taken_over(self) -> None:
        self.socket.send_notice(texts.TAKEN_OVER, Kind.TAKEN_OVER, None)
        self.socket.close(CLOSE_NORMAL)

    def on_conversation(self, user: str, code: str, turns: list) -> None:
        self.socket.label = user
        transcript = [{"role": turn.role, "text": turn.content} for turn in turns]
        if self._held is not None:  # answering a resume/forget event: sent with its ref
            self._held.append(("conversation", user, {"user": user, "resume_token": code,
                                                      "transcript": transcript}))
        elif self.socket.json_mode:
            self.socket.send_event("conversation", user, ref=None, user=user,
                                   resume_token=code, transcript=transcript)

    def _write_reply(self, reply: Reply) -> None:
        ref = self._refs.pop(reply.trace_id, None)
        if self.socket.closing or not reply.text:
            return
        self.socket.send_reply(reply, ref)
        if reply.close:
            self.socket.close(CLOSE_NORMAL)


def chat_socket_factory(manager: SessionManager, registry: ConnectionRegistry,
                        clock: IReactorTime, origins: Optional[OriginPolicy] = None,
                        reactor: Any = None, **options: Any) -> ChatSocketFactory:
    """The WebSocket factory of the service: every admitted socket gets a :class:`ChatBackend`
    on ``manager``. ``options`` are :class:`ChatSocketFactory`'s keepalive settings."""
    limits = manager.config.limits
    if origins is None:
        origins = OriginPolicy(manager.config.server.allowed_origins)
    return ChatSocketFactory(registry, clock, limits.max_line_bytes,
                             limits.idle_timeout_seconds, origins,
                             lambda socket: ChatBackend(manager, socket), reactor=reactor,
                             helplines=manager.config.safety.resources, **options)
