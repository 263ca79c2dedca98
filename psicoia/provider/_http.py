"""
The HTTP pieces under the provider client: one pooled treq client, the request body, the URL,
and reading a bounded response. Moved out of client.py unchanged; their measurements are in
docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

import treq
from hyperlink import EncodedURL
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

from psicoia.chat.ports import ProviderError
from psicoia.ops.internals import quiet_pool


@implementer(IBodyProducer)
class BytesBody:
    """A request body already in memory, written as soon as the request is.

    treq's default producer for ``bytes`` streams through the reactor's cooperator: a task per
    request and the body sent one reactor turn after the headers, which under load is a
    measurable share of each call (docs/benchmarks.md). Same bytes, same Content-Length.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred:
        consumer.write(self._data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _body_producer(data: Any) -> IBodyProducer:
    return BytesBody(data) if isinstance(data, bytes) else IBodyProducer(data)


class PreparedURL(EncodedURL):
    """A URL already in the form treq sends, with that form computed once.

    treq turns the URL it is given into bytes on every request:
    ``parsed.to_uri().to_text().encode("ascii")``. For a string that is a parse (about 7 us),
    then ``to_uri()`` (the host through IDNA, the path re-encoded: about 25 us) and ``to_text()``
    (about 5 us), for a URL that never changes (docs/benchmarks.md). Built by :meth:`prepare`
    from the already-encoded URI, so ``to_uri()`` of it is itself and ``to_text()`` its text:
    the same bytes on the wire. A copy made by ``replace()`` (treq does that only for
    ``params=``, which this client never passes) has no cached text and computes as usual.
    """

    @classmethod
    def prepare(cls, text: str) -> Any:
        """The prepared URL for ``text``, or ``text`` itself if it does not round-trip."""
        try:
            uri_text = EncodedURL.from_text(text).to_uri().to_text()
            prepared = cls.from_text(uri_text)
        except Exception:  # noqa: BLE001 - treq reports it, per request
            return text
        if super(PreparedURL, prepared).to_text() != uri_text:
            return text
        prepared.__dict__["_uri_text"] = uri_text
        return prepared

    def to_uri(self) -> Any:
        return self if "_uri_text" in self.__dict__ else super().to_uri()

    def to_text(self, with_password: bool = False) -> str:
        text = self.__dict__.get("_uri_text")
        if text is None or with_password:
            return super().to_text(with_password)
        return text


@implementer(IAgentEndpointFactory)
class CachedEndpoints:
    """The endpoints an ``Agent`` connects with, one per (scheme, host, port), made once.

    ``Agent``'s own factory builds a new ``HostnameEndpoint`` for every request, although the
    pool almost always has a connection to reuse, and that constructor runs the host through
    IDNA (about 4 ``idna`` label checks per request, docs/benchmarks.md). An endpoint is
    reusable: this returns the same one for the same destination, built the way ``Agent``'s
    factory builds it (TCP for ``http``, TLS with ``BrowserLikePolicyForHTTPS`` for
    ``https``), so the connections and bytes on the wire are the same. At most
    :data:`MAX_KEPT` destinations are kept (the provider has one or two).
    """

    MAX_KEPT = 16

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._tls = BrowserLikePolicyForHTTPS()
        self._kept: dict[tuple, Any] = {}

    def endpointForURI(self, uri: Any) -> Any:
        """The endpoint for ``uri`` (a ``twisted.web.client.URI``); raises
        ``SchemeNotSupported`` for anything but http/https, ``ValueError`` for a host that is
        not ASCII."""
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._kept.get(key)
        if endpoint is None:
            endpoint = self._make(uri)
            if len(self._kept) >= self.MAX_KEPT:
                self._kept.clear()
            self._kept[key] = endpoint
        return endpoint

    def _make(self, uri: Any) -> Any:
        try:
            host = uri.host.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"the host {uri.host!r} is not ASCII") from None
        endpoint = HostnameEndpoint(self._reactor, host, uri.port)
        if uri.scheme == b"http":
            return endpoint
        if uri.scheme == b"https":
            return wrapClientTLS(self._tls.creatorForNetloc(uri.host, uri.port), endpoint)
        raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")


class ProviderHTTP(HTTPClient):
    """treq's client over ``agent``, plus :meth:`post_bytes`: the per-message POST straight on
    the ``agent``, without the ``CookieAgent``, ``RedirectAgent`` and ``ContentDecoderAgent``
    treq wraps around every request (psicoia/provider/request.py says why). treq's methods
    (the start-up model check) work as before."""

    def __init__(self, agent: IAgent) -> None:
        super().__init__(agent, data_to_body_producer=_body_producer)
        self.agent = agent

    def post_bytes(self, url: bytes, headers: Headers, body: bytes) -> Deferred:
        """Deferred firing with the ``IResponse`` (unread) of ``POST url`` with ``headers``
        and ``body`` (sent at once, with its Content-Length); fails as ``Agent.request``."""
        return self.agent.request(b"POST", url, headers, BytesBody(body))


def make_http_client(reactor: Any, max_connections: int) -> tuple[ProviderHTTP, HTTPConnectionPool]:
    """The production HTTP client: one persistent pool, sized to the semaphore, and one
    endpoint per destination (:class:`CachedEndpoints`)."""
    pool = quiet_pool(HTTPConnectionPool(reactor, persistent=True))
    pool.maxPersistentPerHost = max_connections
    pool.retryAutomatically = False  # we retry ourselves, with backoff and logging
    agent = Agent.usingEndpointFactory(reactor, CachedEndpoints(reactor), pool=pool)
    return ProviderHTTP(agent), pool


# A chat completion of max_tokens is a few KiB; anything this large is not one, and reading it
# all would let a broken or hostile endpoint fill our memory.
MAX_RESPONSE_BYTES = 1 << 20


class _BodyTooLarge(Exception):
    pass


def read_response(response: Any, limit: int) -> Deferred:
    """Deferred firing with (status, headers, body), or failing with ProviderError("malformed")
    once the body passes ``limit`` bytes. Plain callbacks, not a coroutine: one
    ``ensureDeferred`` less per request (docs/benchmarks.md)."""
    chunks: list[bytes] = []
    size = 0

    def collect(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > limit:
            raise _BodyTooLarge()
        chunks.append(data)

    def joined(_: Any) -> tuple[int, dict[str, str], bytes]:
        return response.code, response_headers(response), b"".join(chunks)

    def too_large(failure: Failure) -> None:
        failure.trap(_BodyTooLarge)
        raise ProviderError("malformed", response.code) from None

    return treq.collect(response, collect).addCallbacks(joined, too_large)


def response_headers(response: Any) -> dict[str, str]:
    """The last value of each response header, by lower-case name (for Retry-After, pacing)."""
    return {
        name.decode("latin-1").lower(): values[-1].decode("latin-1")
        for name, values in response.headers.getAllRawHeaders()
    }
