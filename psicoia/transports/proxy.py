"""
Who the client really is, when a proxy stands between it and us.

Two mechanisms, for two kinds of listener (docs/operations.md, "Behind a proxy"):

* **PROXY protocol** (HAProxy ``send-proxy``, nginx ``proxy_protocol on``, the gateway's
  ``--send-proxy``): a listener whose endpoint string starts with ``haproxy:`` expects every
  connection to start with a PROXY v1 or v2 header, parsed by :mod:`twisted.protocols.haproxy`.
  :func:`listening_endpoint` builds it with :class:`ProxiedConnection`, which (unlike Twisted's
  own wrapper) connects the chat protocol only once the header is read, so the protocol's
  ``transport.getPeer()`` is the real client from ``connectionMade`` on, and which passes a
  client's half-close on. A connection without a valid header is closed. Such a listener must
  only be reachable by the proxy: anyone who can connect to it can claim any address.
* **X-Forwarded-For / Forwarded** on the HTTP and WebSocket listeners: believed only when the
  connection comes from an address in ``server.trusted_proxies`` (CIDRs); see
  :class:`TrustedProxies`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, Mapping, Optional, Union

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IAddress, IHalfCloseableProtocol, IReactorTime
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import directlyProvides, implementer, providedBy

from psicoia.ops.internals import (
    PROXY_V1_SIGNATURE,
    PROXY_V2_SIGNATURE,
    ProxyHeaderError,
    proxy_header_parser,
)

PROXIED_PREFIX = "haproxy:"
HEADER_TIMEOUT_SECONDS = 10.0

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


# --- the PROXY protocol --------------------------------------------------------------------------

@implementer(IHalfCloseableProtocol)
class ProxiedConnection(ProtocolWrapper):
    """Reads the PROXY header, then connects the wrapped protocol as the real client.

    Twisted's ``HAProxyProtocolWrapper`` connects the wrapped protocol at once, so its
    ``connectionMade`` (where the connection caps and the log look at the peer) sees the
    proxy's address, and it turns a client's half-close into ``connectionLost``. This one
    connects it after the header, and passes half-closes on.
    """

    def __init__(self, factory: WrappingFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)
        self._parser: Any = None
        self._head = b""
        self._info = None
        self._started = False
        self._deadline = None

    def makeConnection(self, transport) -> None:
        # ProtocolWrapper.makeConnection, except that the wrapped protocol waits for the header.
        directlyProvides(self, providedBy(transport))
        self.connected = 1
        self.transport = transport
        self.factory.registerProtocol(self)
        # A connection that never sends its header holds a descriptor and counts nowhere.
        self._deadline = self.factory.clock.callLater(self.factory.header_timeout,
                                                      self._no_header)

    def _no_header(self) -> None:
        self._deadline = None
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._started:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._parser is None:
            self._head += data
            data, self._head = self._head, b""
            self._parser = proxy_header_parser(data)
            if self._parser is None:
                if _could_become_header(data):
                    self._head = data  # too short to tell yet (proxies send it whole)
                else:
                    self.transport.loseConnection()
                return
        try:
            info, remaining = self._parser.feed(data)
        except ProxyHeaderError:
            self.transport.loseConnection()
            return
        if info is None:
            return
        self._info = info
        self._started = True
        self._cancel_deadline()
        self.wrappedProtocol.makeConnection(self)
        if remaining and self.connected:
            self.wrappedProtocol.dataReceived(remaining)

    def getPeer(self) -> IAddress:
        if self._info is not None and self._info.source is not None:
            return self._info.source
        return self.transport.getPeer()

    def getHost(self) -> IAddress:
        if self._info is not None and self._info.destination is not None:
            return self._info.destination
        return self.transport.getHost()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def connectionLost(self, reason) -> None:
        self._cancel_deadline()
        self.factory.unregisterProtocol(self)
        if self._started:
            self.wrappedProtocol.connectionLost(reason)

    def readConnectionLost(self) -> None:
        self._half_closed("readConnectionLost")

    def writeConnectionLost(self) -> None:
        self._half_closed("writeConnectionLost")

    def _half_closed(self, event: str) -> None:
        half = IHalfCloseableProtocol(self.wrappedProtocol, None) if self._started else None
        if half is None:
            self.transport.loseConnection()
        else:
            getattr(half, event)()


def _could_become_header(data: bytes) -> bool:
    """Still a prefix of a signature (at most 12 bytes are ever kept before choosing)."""
    return PROXY_V1_SIGNATURE.startswith(data) or PROXY_V2_SIGNATURE.startswith(data)


class ProxiedFactory(WrappingFactory):
    """Wraps a listener's factory: each connection starts with a PROXY header, within
    ``header_timeout`` seconds on ``clock`` (proxies send it at once), or is dropped."""

    protocol = ProxiedConnection
    noisy = False

    def __init__(self, wrappedFactory: Any, clock: IReactorTime,
                 header_timeout: float = HEADER_TIMEOUT_SECONDS) -> None:
        super().__init__(wrappedFactory)
        self.clock = clock
        self.header_timeout = header_timeout


def proxy_header(client: str, peer: Any) -> bytes:
    """The PROXY protocol v1 line that says ``client`` (an address string) is connecting.

    ``peer`` is the client's transport address (its port is used when it is the same host).
    The destination is given as the unspecified address: our listener ignores it.
    """
    address = _address(client)
    if address is None:
        return b"PROXY UNKNOWN\r\n"
    port = getattr(peer, "port", 0) if getattr(peer, "host", None) == client else 0
    family, anywhere = ("TCP4", "0.0.0.0") if address.version == 4 else ("TCP6", "::")
    return f"PROXY {family} {address} {anywhere} {port} 0\r\n".encode("ascii")


def listening_endpoint(reactor: Any, description: str, factory: Any) -> tuple[Any, Any]:
    """(endpoint, factory) for a listener's endpoint string.

    ``haproxy:REST`` listens on ``REST`` (any endpoint string: ``tcp:5002``, ``ssl:...``) with
    ``factory`` behind :class:`ProxiedFactory`; anything else is ``serverFromString`` as is.
    Raises what ``serverFromString`` raises for a bad string.
    """
    if description.startswith(PROXIED_PREFIX):
        inner = serverFromString(reactor, description[len(PROXIED_PREFIX):])
        return inner, ProxiedFactory(factory, reactor)
    return serverFromString(reactor, description), factory


# --- X-Forwarded-For / Forwarded ------------------------------------------------------------------

_FORWARDED_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def parse_cidrs(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1"]`` -> networks; a bare address is a one-address network.

    Raises ValueError naming the first entry that is not an address or CIDR.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {entry!r}") from None
    return tuple(networks)


def _address(text: str) -> Optional[Address]:
    """An address from a header entry: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]``, ``[::1]:80``,
    ``::1``; None for ``unknown``, obfuscated names (``_hidden``) and anything else."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chain(headers: Mapping[str, str]) -> Optional[list[Optional[Address]]]:
    """The client addresses a request's proxies reported, nearest proxy last: from
    ``Forwarded`` (RFC 7239) if present, else ``X-Forwarded-For``; None if neither is.
    ``headers`` has lower-case names; repeated headers are joined with ", " (as Autobahn and
    HTTP allow). Entries that are not addresses are None."""
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        return [_address(match.group(1)) for element in forwarded.split(",")
                for match in [_FORWARDED_FOR.search(element.strip())] if match]
    xff = headers.get("x-forwarded-for")
    if xff is not None:
        return [_address(part) for part in xff.split(",") if part.strip()]
    return None


class TrustedProxies:
    """``server.trusted_proxies``: whose forwarding headers to believe.

    :meth:`client` walks the chain from the nearest hop outwards, past every trusted proxy, and
    returns the first address no trusted proxy vouches for: a client cannot pick its address by
    sending the header itself, since the header is only read from a trusted peer and only
    entries a trusted proxy added are skipped.
    """

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks = parse_cidrs(cidrs)

    def trusts(self, address: Optional[Address]) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address as a string: ``peer`` (the TCP peer's host) unless it is a
        trusted proxy that reported one in ``headers``."""
        if not self.networks:
            return peer
        hop = _address(peer)
        if not self.trusts(hop):
            return peer
        chain = forwarded_chain(headers)
        if not chain:
            return peer
        for entry in reversed(chain):
            if entry is None:  # "unknown" or garbage: the last hop we can vouch for
                return str(hop)
            hop = entry
            if not self.trusts(entry):
                return str(entry)
        return str(hop)  # every hop is a trusted proxy: the farthest one


NO_PROXIES = TrustedProxies(())
