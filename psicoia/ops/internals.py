"""
The private internals of Twisted and Autobahn that PsicoIA relies on, each behind one named
helper, with the versions it was checked against.

Each one is a place where the public API cannot do what a chat service needs (said per helper).
``tests/test_internals.py`` checks that every attribute still exists on the installed versions,
so an upgrade that removes one fails the suite instead of a user's connection.

Checked against Twisted 26.10.0 and Autobahn 26.10.2.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader as ProxyHeaderError  # noqa: F401 (re-exported)
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory

CHECKED = {"twisted": "26.10.0", "autobahn": "26.10.2"}


def forget_exit_signal(reactor: Any) -> None:
    """twistd re-raises the SIGTERM/SIGINT that stopped the reactor when it exits (status
    143/130), with no public switch; our stop is graceful and the contract says exit 0.
    Twisted: ``ReactorBase._exitSignal`` (set by the signal handlers)."""
    if getattr(reactor, "_exitSignal", None) is not None:
        reactor._exitSignal = None


def listen_synchronously(service: Any) -> None:
    """Make ``StreamServerEndpointService`` raise a failure to listen from
    ``privilegedStartService`` (so twistd exits before running) instead of logging it.
    Twisted: ``StreamServerEndpointService._raiseSynchronously`` (documented as private)."""
    service._raiseSynchronously = True


def port_waiter(service: Any) -> Deferred:
    """The Deferred that fires with the listening port once ``privilegedStartService`` ran;
    the service offers no public way to learn its port.
    Twisted: ``StreamServerEndpointService._waitingForPort``."""
    return service._waitingForPort


def drop_buffered_message(protocol: Any) -> None:
    """Forget the frames of the message being received (too long: it is answered with a
    notice, and its bytes must not stay in memory). Autobahn keeps them in
    ``WebSocketProtocol.frame_data`` and ``message_data`` (undocumented)."""
    protocol.frame_data = []
    protocol.message_data = []


def use_timers(factory: Any, timers: Any) -> None:
    """Run Autobahn's handshake and keepalive timers on our clock: its default batches them
    into whole seconds on the global reactor, which makes keepalive untestable with a Clock.
    Autobahn: ``WebSocketServerFactory._batched_timer`` (an object with ``call_later``)."""
    factory._batched_timer = timers


class _QuietHTTP11ClientFactory(_HTTP11ClientFactory):
    noisy = False


def quiet_pool(pool: HTTPConnectionPool) -> HTTPConnectionPool:
    """Stop ``Starting factory _HTTP11ClientFactory(...)`` log lines, one per provider
    connection: the pool makes its factories from a class attribute with no public knob.
    Twisted: ``HTTPConnectionPool._factory`` (``_HTTP11ClientFactory``)."""
    pool._factory = _QuietHTTP11ClientFactory
    return pool


# --- Conch's telnet parser (psicoia.transports.telnet) ---------------------------------------
# ``twisted.conch.telnet.Telnet.state`` is the parser's state ("data", "escaped", "command",
# "newline", "subnegotiation", ...), documented as "changes should not be made to it".

def telnet_parser_idle(telnet: Any) -> bool:
    """No telnet command or CR is half-read: plain bytes may bypass the parser."""
    return telnet.state == "data"


def telnet_take_held_cr(telnet: Any) -> bool:
    """Conch holds a CR until the byte after it arrives (to tell CR LF from CR NUL), which
    would hold back the line of a client that ends lines with a bare CR. True if a CR is
    held; the parser is then back in its data state and the caller delivers the CR."""
    if telnet.state == "newline":
        telnet.state = "data"
        return True
    return False


def telnet_reset_parser(telnet: Any) -> None:
    """After Conch refused a byte (``IAC`` and an unknown command raise ValueError): go on
    as if the command had been read."""
    telnet.state = "data"


# --- Twisted's PROXY protocol parsers (psicoia.transports.proxy) -------------------------------
# The public ``twisted.protocols.haproxy.proxyEndpoint`` connects the wrapped protocol before
# the header is read, so its ``connectionMade`` sees the proxy's address; the parsers it uses
# live in private modules.

PROXY_V1_SIGNATURE = b"PROXY "
PROXY_V2_SIGNATURE = V2Parser.PREFIX


def proxy_header_parser(head: bytes) -> Optional[Any]:
    """A parser for a connection whose first bytes are ``head``: v1 (``PROXY ...\\r\\n``) or v2
    (binary), with ``feed(data) -> (info, rest)`` (``(None, None)`` until the header is whole;
    ``info.source`` / ``info.destination`` are addresses or None) raising
    :class:`ProxyHeaderError`. None when ``head`` does not start with either signature.
    Twisted: ``twisted.protocols.haproxy._v1parser.V1Parser``, ``_v2parser.V2Parser``."""
    if head.startswith(PROXY_V1_SIGNATURE):
        return V1Parser()
    if len(head) > 12 and head.startswith(PROXY_V2_SIGNATURE) and head[12] & 0xF0 == 0x20:
        return V2Parser()
    return None


# --- Twisted's write buffer (tests of the output bound, psicoia.transports.tcp) ---------------

def unsent_bytes(transport: Any) -> int:
    """Bytes a socket transport holds that the peer has not taken yet: what a client that
    never reads costs the server. Twisted keeps them in ``FileDescriptor.dataBuffer`` (from
    ``offset``) and ``_tempDataBuffer`` (``_tempDataLen`` bytes); a wrapper (PROXY protocol,
    TLS) is looked through to the socket's transport."""
    while not hasattr(transport, "dataBuffer") and hasattr(transport, "transport"):
        transport = transport.transport
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
