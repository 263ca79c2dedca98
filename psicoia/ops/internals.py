"""
The private internals of Twisted and Autobahn that PsicoIA relies on, each behind one named
helper, with the versions it was checked against.

Each one is a place where the public API cannot do what a chat service needs (said per helper).
``tests/test_internals.py`` checks that every attribute still exists on the installed versions,
so an upgrade that removes one fails the suite instead of a user's connection.

Checked against Twisted 26.10.0 and Autobahn 26.10.2.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
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
