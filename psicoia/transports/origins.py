"""
Which browser pages may open a WebSocket: the ``Origin`` check of the handshake.

The page's own origin is judged by where the connection really arrived (the listener's local
address and port, and the ports where the page is served), never by the ``Host`` header alone:
a page on ``http://evil.example:8000`` whose name an attacker re-points at this server (DNS
rebinding) sends ``Host: evil.example:8000`` and ``Origin: http://evil.example:8000``, which
match each other but name nothing we serve. DNS names are therefore allowed only when listed in
``server.allowed_origins``; IP literals and ``localhost`` cannot be re-pointed by a third party,
so those are accepted on our own ports (docs/protocol.md, "Origin rules").
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class OriginPolicy:
    """
    Allowed (a refusal is HTTP 403 at the handshake):

    * no ``Origin``: wscat, scripts (Origin protects browsers; it is not authentication);
    * an origin listed in ``allowed`` (``server.allowed_origins``; ``*`` allows any, ``null``
      opaque origins), compared case-insensitively with default ports filled in;
    * the page's own origin: an ``http``/``https`` origin whose port is the port the
      connection arrived on or one of ``page_ports()`` (where the HTTP listener serves the
      page), and whose host is ``localhost``/a loopback address, the IP address the connection
      arrived on, or the IP literal the browser put in ``Host`` (an IP literal, unlike a name,
      cannot be re-pointed at us by someone else).
    """

    def __init__(self, allowed: Iterable[str] = (),
                 page_ports: Callable[[], Iterable[int]] = lambda: ()) -> None:
        allowed = tuple(allowed)
        self.allow_any = "*" in allowed
        self.allowed = {normalize_origin(o) for o in allowed if o != "*"}
        self.page_ports = page_ports

    def allows(self, origin: Optional[str], local_host: Optional[str] = None,
               local_port: Optional[int] = None, host_header: Optional[str] = None) -> bool:
        """``local_host``/``local_port``: the address the connection arrived on
        (``transport.getHost()``); ``host_header``: the handshake's ``Host``, or None."""
        if not origin:
            return True
        if self.allow_any:
            return True
        normal = normalize_origin(origin)
        if normal in self.allowed:
            return True
        if normal == "null":
            return False
        scheme, host, port = _origin_parts(origin)
        if scheme not in ("http", "https") or host is None:
            return False
        ports = set(self.page_ports())
        if local_port is not None:
            ports.add(local_port)
        if port not in ports:
            return False
        host = _canonical_ip(host) or host
        if host in LOOPBACK_NAMES or _is_loopback(host):
            return True
        if local_host is not None and host == _canonical_ip(local_host):
            return True
        if host_header:
            header_host, _ = _host_parts(host_header)
            header_ip = _canonical_ip(header_host) if header_host else None
            return header_ip is not None and header_ip == host
        return False


def _canonical_ip(text: str) -> Optional[str]:
    """The IP address in ``text`` in one spelling (IPv4-mapped IPv6 as IPv4), else None."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin_parts(origin: str) -> tuple[str, Optional[str], Optional[int]]:
    parts = urlsplit(origin.strip())
    try:
        port = parts.port
    except ValueError:
        return parts.scheme, None, None
    if port is None:
        port = 443 if parts.scheme in ("https", "wss") else 80
    return parts.scheme, (parts.hostname or None), port


def _host_parts(host_header: str) -> tuple[Optional[str], Optional[int]]:
    parts = urlsplit("//" + host_header.strip())
    try:
        return (parts.hostname or None), parts.port
    except ValueError:
        return None, None


def normalize_origin(origin: str) -> str:
    origin = origin.strip().lower()
    if origin == "null":
        return origin
    scheme, host, port = _origin_parts(origin)
    return f"{scheme}://{host}:{port}"
