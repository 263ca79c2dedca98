"""
Listeners: a named ``StreamServerEndpointService`` per endpoint string, and the browser-facing
ones (the standalone WebSocket and the HTTP site) that the core and the gateway share.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from prometheus_client import CollectorRegistry
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from psicoia.config import Config
from psicoia.ops.internals import listen_synchronously, port_waiter
from psicoia.ops.observers import Waiters
from psicoia.transports.http import build_site
from psicoia.transports.layout import share_server_layout
from psicoia.transports.proxy import TrustedProxies, listening_endpoint
from psicoia.transports.status import Report
from psicoia.transports.origins import OriginPolicy


class ListenFailed(SystemExit, Exception):
    """A listener could not bind: ``twistd`` exits 2 after the one line in ``str()``.

    Also an ``Exception`` so that twistd's start-up cleans up (removes its pid file) on the way
    out, as it does for any failed start; a ``SystemExit`` so nothing prints a traceback.
    """

    def __init__(self, line: str) -> None:
        super().__init__(2)
        self.line = line

    def __str__(self) -> str:
        return self.line


def listen_failure_reason(failure: Failure) -> str:
    """Why a listen failed, in a few words (``Address already in use``)."""
    error = failure.value
    if isinstance(error, CannotListenError):
        cause = error.socketError
        return getattr(cause, "strerror", None) or str(cause)
    return f"{type(error).__name__}: {error}"


class Listener(StreamServerEndpointService):
    """A named listener that remembers its port, and stops twistd when it cannot listen.

    A ``haproxy:`` endpoint string expects the PROXY protocol (psicoia.transports.proxy).
    Failing to bind logs and writes to stderr one line (the listener, the address, the reason)
    and raises :class:`ListenFailed` (exit status 2 under ``twistd -n``), before the reactor
    runs: the process ends, so nothing keeps running half-started.
    """

    log = Logger()

    def __init__(self, name: str, description: str, reactor: Any, factory: Any) -> None:
        endpoint, factory = listening_endpoint(reactor, description, factory)
        super().__init__(endpoint, factory)
        self.setName(name)
        self.description = description
        self.port = None
        listen_synchronously(self)
        self._port_waiters = Waiters()

    def privilegedStartService(self) -> None:
        share_server_layout()  # before any connection of any listener exists (layout.py)
        try:
            super().privilegedStartService()
        except Exception:
            line = (f"psicoia: cannot listen: {self.name} on {self.description}: "
                    f"{listen_failure_reason(Failure())}")
            self.log.error("{line}", line=line)
            # twistd has pointed sys.stderr at the log by now; the person starting it reads fd 2.
            stderr = sys.__stderr__ or sys.stderr
            stderr.write(line + "\n")
            stderr.flush()
            raise ListenFailed(line) from None
        port_waiter(self).addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        self.log.info("listening {name} on {address}", name=self.name,
                      address=str(port.getHost()))
        self._port_waiters.fire(port)
        return port

    def when_listening(self) -> Deferred:
        if self.port is not None:
            return succeed(self.port)
        return self._port_waiters.wait()


def listening_ports(service: MultiService, name: str) -> tuple[int, ...]:
    """The port the named listener got (none while it is not listening)."""
    try:
        listener = service.getServiceNamed(name)
    except KeyError:
        return ()
    return (listener.port.getHost().port,) if listener.port is not None else ()


def add_browser_listeners(service: MultiService, config: Config, reactor: Any,
                          make_socket_factory: Callable[[OriginPolicy], Any],
                          report: Report, registry: CollectorRegistry = None) -> None:
    """``server.websocket`` and ``server.http`` (page, ``/ws``), each with its own factory.

    ``make_socket_factory(origins)`` builds the WebSocket factory (chat or gateway). The
    standalone listener also accepts the page's origin, which is on the HTTP listener's port.
    """
    allowed = config.server.allowed_origins
    proxies = TrustedProxies(config.server.trusted_proxies)

    def socket_factory(origins: OriginPolicy) -> Any:
        factory = make_socket_factory(origins)
        factory.trusted_proxies = proxies  # X-Forwarded-For / Forwarded from these only
        return factory

    if config.server.websocket:
        origins = OriginPolicy(allowed, lambda: listening_ports(service, "http"))
        Listener("websocket", config.server.websocket, reactor,
                 socket_factory(origins)).setServiceParent(service)
    if config.server.http:
        site = build_site(report, registry, socket_factory(OriginPolicy(allowed)),
                          connections=service.registry, clock=reactor, server=config.server)
        Listener("http", config.server.http, reactor, site).setServiceParent(service)
