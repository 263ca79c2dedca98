"""
The seam between a WebSocket and what sits behind it (:mod:`psicoia.transports.websocket`):
:class:`IChatBackend` (the chat of one connection: :mod:`psicoia.transports.chat_socket` for this
process's core, :mod:`psicoia.app.gateway` for a core upstream) and :class:`IChatSocket` (what a
backend may use of its socket), with the close codes they speak.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

# WebSocket close codes (RFC 6455): the page reconnects on GOING_AWAY and TRY_AGAIN_LATER only.
CLOSE_NORMAL = 1000       # goodbye, idle timeout: the user is done
CLOSE_GOING_AWAY = 1001   # the server is shutting down
CLOSE_TRY_AGAIN = 1013    # refused (server full) or the gateway lost its upstream


class IChatBackend(Interface):
    """What sits behind one WebSocket: the chat of that connection.

    The socket calls these, in this order: :meth:`start` once when it is admitted, then any
    number of :meth:`message` / :meth:`message_too_long` (and :meth:`notify_shutdown`), then
    :meth:`stop` once when it has closed. It never calls them for a refused socket.
    """

    def start(address):
        """The socket is open and admitted; ``address`` (str) is the client's address (after
        ``server.trusted_proxies``). The backend greets the user (``send_greeting``)."""

    def message(text, ref):
        """One message from the user: ``text`` is non-empty, line breaks folded; ``ref`` is
        the JSON event's ``ref`` (str or int) or None (line mode, or none given). Each one must
        be answered exactly once, in order."""

    def message_too_long(ref):
        """A message over ``limits.max_line_bytes`` arrived; its text was not kept. Answered
        with the too-long notice, in its place among the answers."""

    def notify_shutdown():
        """The service is stopping; the socket tells the user right after this returns."""

    def stop():
        """The socket has closed (by either side): let go of what the connection holds."""


class IChatSocket(Interface):
    """What a backend may use of its socket (:class:`ChatSocket`)."""

    json_mode = Attribute("bool: the client chose psicoia.v1 (JSON events), else line mode")
    closing = Attribute("bool: the socket is closing or closed; send nothing more")
    label = Attribute("Optional[str]: who this is in logs and events (Usuario-N); settable")
    max_message_bytes = Attribute("int: limits.max_line_bytes, in UTF-8 bytes")

    def transport_peer():
        """The transport's peer address (an IAddress; its port, for the PROXY header)."""

    def send_line(text):
        """One text frame, while the socket is open."""

    def send_event(event_type, trace_id, **fields):
        """One psicoia.v1 event: ``{"type": event_type, "trace_id": trace_id, **fields}``."""

    def send_notice(text, kind, trace_id, ref=None, crisis=False):
        """A notice: the line in line mode, a ``notice`` event of ``kind`` in JSON mode."""

    def send_reply(reply, ref=None):
        """A :class:`~psicoia.chat.vocabulary.Reply`: its line, or its event (reply, error or
        notice by ``reply.outcome``, with ``crisis`` and the helplines)."""

    def send_greeting(user, lines, resume_token=None):
        """The greeting: its lines one per frame, or one ``greeting`` event."""

    def close(code=CLOSE_NORMAL):
        """Start the closing handshake with ``code`` (1000, 1001 or 1013)."""

    def pause_reading():
        """Stop reading the socket (backpressure: too many messages held)."""

    def resume_reading():
        """Read the socket again."""
