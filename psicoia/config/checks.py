"""
Validation of configuration values: each check returns None, or one line saying what is wrong.

Also :class:`ConfigError` (what every configuration problem raises) and
:func:`endpoint_problem`, which the gateway's ``--upstream`` uses too.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Optional
from urllib.parse import urlsplit

from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.testing import MemoryReactor


class ConfigError(Exception):
    """A configuration problem, as one line a person can act on."""


def endpoint_problem(value: str, client: bool = False) -> Optional[str]:
    """What is wrong with an endpoint string (None: nothing), parsed the way the listener
    (or, with ``client``, the connector) will parse it, without listening or connecting."""
    parse = clientFromString if client else serverFromString
    if not client and value.startswith("haproxy:ssl:"):
        # The PROXY header comes before TLS on the wire, and would be looked for inside it.
        return ("haproxy:ssl: is not supported (the proxy's header precedes TLS); terminate "
                "TLS at the proxy and use haproxy:tcp:..., or use ssl: without the proxy")
    try:
        endpoint = parse(MemoryReactor(), value)
    except Exception as exc:  # endpoint parsers raise many types; all mean "bad string"
        return f"not a valid Twisted endpoint string ({exc.__class__.__name__}: {exc})"
    port = getattr(endpoint, "_port", None)  # TCP/SSL endpoints; only checked when listening
    if isinstance(port, int) and not 0 <= port <= 65535:
        return f"port must be 0-65535, got {port} in {value!r}"
    return None


def non_empty(value: str) -> Optional[str]:
    return None if value.strip() else "must not be empty"


def redis_url(value: str) -> Optional[str]:
    if value.startswith(("redis://", "unix://")):
        return None
    return f"must start with redis:// or unix://, got {value!r}"


def positive(value: Any) -> Optional[str]:
    return None if value > 0 else f"must be greater than 0, got {value!r}"


def non_negative(value: Any) -> Optional[str]:
    return None if value >= 0 else f"must be 0 or more, got {value!r}"


def one_of(*choices: str):
    def check(value: str) -> Optional[str]:
        return None if value in choices else f"must be one of {', '.join(choices)}; got {value!r}"

    return check


def url(value: str) -> Optional[str]:
    if value.startswith(("http://", "https://")):
        return None
    return f"must be an http:// or https:// URL, got {value!r}"


def origins(value: tuple) -> Optional[str]:
    """Each entry is ``*``, ``null`` or an origin ``scheme://host[:port]`` (no path)."""
    for entry in value:
        if entry in ("*", "null"):
            continue
        parts = urlsplit(entry)
        try:
            parts.port
        except ValueError:
            return f"bad port in origin {entry!r}"
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            return f"each entry must be an origin like https://chat.example.org, got {entry!r}"
    return None


def networks(value: tuple) -> Optional[str]:
    """Each entry is an IP network in CIDR form (``10.0.0.0/8``) or a single address."""
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"each entry must be an address or CIDR network like 10.0.0.0/8, got {entry!r}"
    return None


def proxied_endpoint(value: str) -> Optional[str]:
    if not value.startswith("haproxy:"):
        return f"must be a haproxy: endpoint string (PROXY protocol), like haproxy:tcp:5002; got {value!r}"
    return endpoint_problem(value)


def resource_lines(value: tuple) -> Optional[str]:
    if not value:
        return "must list at least one crisis resource"
    for entry in value:
        if not entry.strip() or "\n" in entry or "\r" in entry:
            return f"each resource must be one non-empty line, got {entry!r}"
    return None
