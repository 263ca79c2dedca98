"""
Who may see what operators see: ``/metrics``, and the details of ``/readyz`` and ``/healthz``.

Counters (crises per transport, refusals, messages by outcome) and the number of people
connected are operators' business, not the public's: by default only loopback addresses see
them (``server.metrics_allowed``, CIDRs). Everyone else gets 403 for ``/metrics``, the status
code and ``{"status": ...}`` for ``/readyz`` (load balancers need it), and ``{"status": "ok"}``
for ``/healthz``. The address is the TCP peer, never a forwarded header (anyone can write those).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Iterable, Optional

from twisted.web.resource import Resource

from psicoia import texts
from psicoia.ops.connections import ConnectionRegistry
from psicoia.transports.status import Report, json_body, readiness


class AddressPolicy:
    """Which client addresses may see operators' details: ``server.metrics_allowed`` CIDRs.

    The address is the TCP peer, never a forwarded header (anyone can write those). A peer that
    is not an IP address (a UNIX socket) is local and allowed.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def allows(self, host: Optional[str]) -> bool:
        if host is None:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True
        address = getattr(address, "ipv4_mapped", None) or address
        return any(address in network for network in self.networks)

    def allows_request(self, request) -> bool:
        return self.allows(getattr(request.getClientAddress(), "host", None))


class Forbidden(Resource):
    """403 with a short Spanish line."""

    isLeaf = True

    def render(self, request) -> bytes:
        body = (texts.HTTP_FORBIDDEN + "\n").encode("utf-8")
        request.setResponseCode(403)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body


class PublicHealth(Resource):
    """``/healthz`` for everyone else: alive, and nothing about who is connected."""

    isLeaf = True

    def render_GET(self, request) -> bytes:
        return json_body(request, {"status": "ok"})


class PublicReady(Resource):
    """``/readyz`` for everyone else: the status code a load balancer needs, not the reasons."""

    isLeaf = True

    def __init__(self, report: Report) -> None:
        super().__init__()
        self.report = report

    def render_GET(self, request) -> bytes:
        ready, body = readiness(self.report())
        request.setResponseCode(200 if ready else 503)
        return json_body(request, {"status": body["status"]})


class ByAddress(Resource):
    """``allowed`` for addresses the policy allows, ``others`` for everyone else; ``HEAD`` is
    the ``GET``'s headers and length (without Twisted's "I think I'll eat it" warning)."""

    isLeaf = True

    def __init__(self, allowed: Resource, others: Resource, policy: AddressPolicy) -> None:
        super().__init__()
        self.allowed = allowed
        self.others = others
        self.policy = policy

    def render(self, request) -> bytes:
        chosen = self.allowed if self.policy.allows_request(request) else self.others
        if request.method != b"HEAD":
            return chosen.render(request)
        request.method = b"GET"
        try:
            body = chosen.render(request)
        finally:
            request.method = b"HEAD"
        request.setHeader(b"Content-Length", b"%d" % len(body))
        return b""


def people_only(report: Report, connections: ConnectionRegistry, own_transport: str) -> Report:
    """``report`` whose ``connections`` leaves out the site's own connections (transport name
    ``own_transport``: page loads, health checks): /healthz reports people connected."""

    def counted():
        status = report()
        own = sum(1 for connection in connections.connections()
                  if connection.transport_name == own_transport)
        return dataclasses.replace(status, connections=max(0, status.connections - own))

    return counted
