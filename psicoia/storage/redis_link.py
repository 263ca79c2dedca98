"""
One instance's link to Redis: commands with a deadline, and whether Redis is reachable.

``txredisapi`` keeps the connections and reconnects with exponential backoff (1 s up to 10 s,
with jitter). This module adds what the service needs on top: every command either answers
within ``timeout`` seconds or fails with :class:`~psicoia.chat.ports.StorageUnavailable`
(never hangs while Redis is down), and one ``up``/``down`` state that the store, the slots,
the metrics and ``/readyz`` share. A change of state logs one line and calls the listeners.

While the link is down, a probe every ``probe_seconds`` checks for a reconnected connection
and PINGs it (one command a second at most); nothing else is sent to a dead Redis.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlparse

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from psicoia.chat.ports import StorageUnavailable
from psicoia.storage.redis_batch import ScriptBatch

log = Logger(namespace="psicoia.storage")

Listener = Callable[[bool], None]


def parse_url(url: str) -> dict:
    """``redis://[:password@]host[:port][/db]`` or ``unix:///path/redis.sock[?db=N]`` as keyword
    arguments for txredisapi (``host``/``port`` or ``path``, ``dbid``, ``password``).
    Raises ValueError for any other scheme."""
    parts = urlparse(url)
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[0]
        return {"path": parts.path, "dbid": int(db), "password": parts.password}
    if parts.scheme != "redis":
        raise ValueError(f"storage.redis_url must start with redis:// or unix://, got {url!r}")
    db = parts.path.strip("/") or "0"
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379,
            "dbid": int(db), "password": parts.password}


class RedisLink:
    """Commands to one Redis, each answered within ``timeout`` seconds or StorageUnavailable.

    ``up`` (bool) is the last known state; ``instance`` a random id naming this process in
    Redis (leases, claims). ``subscribe(listener)`` adds a callable told ``listener(up)`` on
    every change. ``connection`` may be handed in (tests); otherwise a lazy pool of
    ``poolsize`` connections is opened to ``url``. ``batch`` runs the backend's Lua scripts,
    those asked for in one reactor turn in one round trip (:mod:`~psicoia.storage.redis_batch`).
    """

    def __init__(self, url: str, clock: IReactorTime, timeout: float = 1.0,
                 probe_seconds: float = 1.0, poolsize: int = 2,
                 connection: Any = None) -> None:
        self.url = url
        self.clock = clock
        self.timeout = timeout
        self.instance = secrets.token_hex(6)
        self.up = True
        self._listeners: list[Listener] = []
        if connection is None:
            connection = _connect(url, poolsize, timeout)
        self.connection = connection
        self.batch = ScriptBatch(self.call, clock)
        self._probe = LoopingCall(self._check)
        self._probe.clock = clock
        self._probe.start(probe_seconds, now=False)
        self._probing = False
        self._closed = False

    @property
    def address(self) -> dict:
        return parse_url(self.url)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def connected(self) -> bool:
        """Whether txredisapi holds at least one live connection now."""
        if not hasattr(self.connection, "_factory"):
            return True  # a connection handed in by a test
        return bool(_live_connections(self.connection))

    def call(self, command: str, *args: Any) -> Deferred:
        """Run ``command`` (a txredisapi method name, e.g. ``"eval"``) with ``args``.

        Connected, txredisapi's own reply timeout bounds the wait (and drops the connection);
        while a connection is being made, a timeout of our own does.

        Deferred[reply]; fails with StorageUnavailable when Redis is unreachable, slow or
        refuses (``LOADING``, ``READONLY``, out of memory), and marks the link down.
        """
        if not self.up and not self.connected():
            # Known down: fail at once. (While up, a command waits for the connection being
            # made or remade, bounded by the timeout.)
            return fail(StorageUnavailable("redis: not connected"))
        try:
            sent = getattr(self.connection, command)(*args)
        except _client().ConnectionError as error:
            self._set(False)
            return fail(StorageUnavailable(f"redis: {error}"))
        if not self.connected():
            # Waiting for a (re)connection: txredisapi's reply timeout does not cover that.
            sent.addTimeout(self.timeout, self.clock)
        return sent.addCallbacks(self._answered, self._failed)

    def _answered(self, reply: Any) -> Any:
        if not self.up:
            self._set(True)
        return reply

    def _failed(self, failure) -> None:
        self._set(False)
        raise StorageUnavailable(f"redis: {failure.getErrorMessage() or failure.type.__name__}")

    def _check(self) -> None:
        if self.up and not self.connected():
            self._set(False)
        if not self.up and not self._probing:
            self._probing = True
            probed = self.call("ping")
            probed.addErrback(lambda failure: failure.trap(StorageUnavailable))
            probed.addBoth(self._probed)

    def _probed(self, _: Any) -> None:
        self._probing = False

    def _set(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            log.info("redis: reachable again at {where}; shared state resumes", where=_where(self.url))
        else:
            log.warn("redis: unreachable at {where}; answering from local state",
                     where=_where(self.url))
        for listener in list(self._listeners):
            listener(up)

    def close(self) -> Deferred:
        """Stop probing and close the connections; Deferred[None]."""
        if self._probe.running:
            self._probe.stop()
        disconnect = getattr(self.connection, "disconnect", None)
        if disconnect is None or self._closed:
            return succeed(None)
        self._closed = True
        return disconnect().addCallback(lambda _: None)


def _where(url: str) -> str:
    """The URL without a password, for logs."""
    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _live_connections(handler: Any) -> list:
    """The ready connections of a txredisapi pool handler (empty for a handed-in connection).

    txredisapi has no public way to ask whether a lazy handler is connected. Private: ``ConnectionHandler._factory`` and
    ``RedisFactory.pool`` (txredisapi 1.6.0; ``tests/test_redis_store.py`` checks they exist).
    """
    factory = getattr(handler, "_factory", None)
    if factory is None:
        return []
    return [conn for conn in factory.pool if conn.connected]


def _client() -> Any:
    """The ``txredisapi`` module, imported on first use: importing it imports the global
    reactor, which must not happen before ``twistd`` or the bench install theirs."""
    import txredisapi

    return txredisapi


def _connect(url: str, poolsize: int, timeout: float) -> Any:
    """A lazy txredisapi pool: returns at once and connects (and reconnects) by itself."""
    txredisapi = _client()
    where = parse_url(url)
    if "path" in where:
        return txredisapi.lazyUnixConnectionPool(
            where["path"], dbid=where["dbid"], poolsize=poolsize, password=where["password"],
            connectTimeout=timeout, replyTimeout=timeout, convertNumbers=False)
    return txredisapi.lazyConnectionPool(
        where["host"], where["port"], dbid=where["dbid"], poolsize=poolsize,
        password=where["password"], connectTimeout=timeout, replyTimeout=timeout,
        convertNumbers=False)


def subscriber(url: str, on_message: Callable[[str, str], None],
               channels: list[str], on_connected: Optional[Callable[[], None]] = None) -> Any:
    """A lazy txredisapi subscriber connection to ``url`` that re-subscribes to ``channels``
    after every reconnect and calls ``on_message(channel, message)``; returns its handler
    (call ``disconnect()`` on it to stop)."""
    txredisapi = _client()
    where = parse_url(url)

    class Subscriber(txredisapi.SubscriberProtocol):
        def connectionMade(self):
            made = super().connectionMade()
            self.whenConnected().addCallback(lambda _: self.subscribe(channels)).addCallback(
                lambda _: on_connected() if on_connected else None)
            return made

        def messageReceived(self, pattern, channel, message):
            on_message(channel, message)

    factory = txredisapi.SubscriberFactory(isLazy=True)
    factory.protocol = Subscriber
    factory.password = where["password"]
    if "path" in where:
        # txredisapi runs on the global reactor; so does its subscriber endpoint.
        factory.startConnecting(UNIXClientEndpoint(txredisapi.reactor, where["path"]))
    else:
        factory.startConnecting(txredisapi._makeEndpoint(where["host"], where["port"]))
    return factory.handler
