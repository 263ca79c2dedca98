"""
One provider attempt on the wire: the POST, its whole body, and its own timeout.

:class:`Requests` is built once per :class:`~psicoia.provider.client.ChatProvider`; its
:meth:`Requests.send` makes one attempt and sorts every way it can end into what the retry
loop needs: (status, headers, payload), a :class:`Retryable` (timeout, connection, a stream
that broke before text was shown), a ``ProviderError`` (a malformed stream), or
``CancelledError`` (the caller left). It reads no status: that is the client's.

Hot path (bench/analysis.md): with the production client (:class:`ProviderHTTP`) the request
goes straight to the pooled ``Agent``. treq would wrap it, per request, in a ``CookieAgent``
(``http.cookiejar`` work on the request and the response), a ``RedirectAgent`` (a POST is
never redirected by it: a 3xx became a connection error) and a ``ContentDecoderAgent``
(``Accept-Encoding: gzip``), about 90 us per request together on this machine, none of which
an API called with a bearer key needs. Any other client (treq's ``StubTreq`` in tests) is
called through treq's ``post``, with the same headers and body.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.client import RequestNotSent, RequestTransmissionFailed, ResponseFailed
from twisted.web.http_headers import Headers

from psicoia.chat.ports import ProviderError
from psicoia.config import LLMConfig
from psicoia.ops.logsetup import LevelLogger
from psicoia.provider._http import (
    MAX_RESPONSE_BYTES,
    PreparedURL,
    ProviderHTTP,
    read_response,
    response_headers,
)
from psicoia.provider.streaming import StreamFailure, StreamReading

USER_AGENT = b"PsicoIA/0.1 (+twisted treq)"

# Failures of the connection, before or during a response: worth another attempt.
CONNECTION_ERRORS = (
    net_error.ConnectError, net_error.ConnectionLost, net_error.DNSLookupError,
    net_error.ConnectionDone, ResponseFailed, RequestNotSent, RequestTransmissionFailed,
)


# What a streamed request accepts: a server that ignores "stream" answers JSON.
ACCEPT_STREAM = b"text/event-stream, application/json"


def read_body(response: Any, reading: StreamReading, on_token: Callable[[], None]) -> Deferred:
    """Deferred firing with (status, headers, payload): a 200 event stream read as it comes by
    ``reading`` (payload: the visible text), anything else read whole (payload: bytes)."""
    if response.code == 200 and is_event_stream(response):
        return reading.read(response, on_token).addCallback(
            lambda text: (response.code, response_headers(response), text))
    return read_response(response, MAX_RESPONSE_BYTES)


def is_event_stream(response: Any) -> bool:
    """True when the response's Content-Type is ``text/event-stream`` (any parameters)."""
    values = response.headers.getRawHeaders(b"content-type")
    if not values:
        return False
    return values[-1].split(b";", 1)[0].strip().lower() == b"text/event-stream"


class Retryable(Exception):
    """An attempt failed in a way another attempt may not: ``error`` is what the caller sees
    if none follows; ``retry_after`` the provider's wait (seconds) or None; ``refused`` a
    concurrency refusal (psicoia.provider.concurrency)."""

    def __init__(self, error: ProviderError, retry_after: Optional[float] = None,
                 refused: bool = False) -> None:
        self.error = error
        self.retry_after = retry_after
        self.refused = refused


class Requests:
    """The provider's URL, key and HTTP client, made into one attempt at a time."""

    log = LevelLogger()  # per-message events: not built when the level drops them

    def __init__(self, config: LLMConfig, api_key: Optional[str], clock: IReactorTime,
                 http: Any) -> None:
        self._clock = clock
        self._http = http
        self._timeout = config.timeout_seconds
        self._api_key = api_key
        # Built once, not per request (bench/analysis.md): the URL treq would re-encode each
        # time, and (on first use, see bearer) the header that holds the key.
        self._url = PreparedURL.prepare(config.completions_url)
        self._direct = isinstance(http, ProviderHTTP)
        self._url_bytes = (self._url if isinstance(self._url, str)
                           else self._url.to_text()).encode("ascii", "replace")
        self._authorization: Optional[bytes] = None

    def bearer(self) -> bytes:
        """The ``Authorization`` value (``Bearer <key>``), built on first use."""
        if self._authorization is None:
            self._authorization = b"Bearer " + self._api_key.encode("latin-1")
        return self._authorization

    def send(self, body: bytes, trace_id: str, reading: StreamReading,
             stream: bool) -> Deferred:
        """One POST of ``body`` (JSON bytes) with a timeout of ``llm.timeout_seconds`` to the
        whole reply, or for an event stream to its first token.

        Deferred firing with (status, headers by lower-case name, payload: the body's bytes,
        or the visible text ``reading`` took from an event stream); failing with
        :class:`Retryable` (``timeout``, ``connection``, a broken stream), ProviderError (a
        malformed stream), ``CancelledError`` when cancelled (never retried), or a programming
        error as itself. Cancelling an HTTP request in flight makes the Agent fail with
        ``ResponseNeverReceived``: a timeout and a caller's cancel are told apart by flags."""
        attempt = _Attempt(self, trace_id)
        attempt.timer = self._clock.callLater(self._timeout, attempt.expire)
        attempt.post = self._post(body, trace_id, reading, stream, attempt.first_token)
        attempt.post.addCallbacks(attempt.answered, attempt.failed)
        return attempt.result

    def _post(self, body: bytes, trace_id: str, reading: StreamReading, stream: bool,
              on_token: Callable[[], None]) -> Deferred:
        """Deferred firing with (status, headers, payload): one request and its whole body;
        cancelling it cancels whichever of the request or the body read is pending."""
        raw = {
            b"Authorization": [self.bearer()],
            b"Content-Type": [b"application/json"],
            b"Accept": [ACCEPT_STREAM if stream else b"application/json"],
            b"User-Agent": [USER_AGENT],
            b"X-Request-ID": [trace_id.encode("ascii", "replace")],
        }
        try:
            if self._direct:
                request = self._http.post_bytes(self._url_bytes, Headers(raw), body)
            else:
                # unbuffered: read once (read_body), no treq copy of every chunk
                request = self._http.post(self._url, data=body, headers=raw, unbuffered=True)
        except Exception:  # noqa: BLE001 - the caller sees a failed Deferred
            return fail()
        return request.addCallback(read_body, reading, on_token)


class _Attempt:
    """The state of one :meth:`Requests.send`: its timer, its request and how it ended."""

    __slots__ = ("requests", "trace_id", "timer", "post", "result", "timed_out", "cancelled")

    def __init__(self, requests: Requests, trace_id: str) -> None:
        self.requests = requests
        self.trace_id = trace_id
        self.timer: Any = None
        self.post: Any = None
        self.timed_out = False
        self.cancelled = False
        self.result: Deferred = Deferred(self._cancel)

    def expire(self) -> None:
        self.timed_out = True
        self.post.cancel()

    def first_token(self) -> None:
        if self.timer.active():
            self.timer.cancel()

    def _cancel(self, _: Deferred) -> None:
        self.cancelled = True
        self.post.cancel()

    def _settle(self) -> bool:
        """Stop the timer; False when the result was already given (cancelled before)."""
        if self.timer.active():
            self.timer.cancel()
        return not self.result.called

    def answered(self, outcome: tuple) -> None:
        if not self._settle():
            return  # a reply that raced the cancel: the caller is gone
        if self.cancelled:
            self.result.errback(CancelledError())
        else:
            self.result.callback(outcome)

    def failed(self, failure: Failure) -> None:
        if not self._settle():
            return
        exc = failure.value
        if self.timed_out:
            failure = Failure(Retryable(ProviderError("timeout")))
        elif self.cancelled or isinstance(exc, CancelledError):
            failure = Failure(CancelledError())
        elif isinstance(exc, StreamFailure):
            # A stream that broke says the provider is unwell (the breaker counts it); a
            # malformed one, like a malformed JSON reply, that it answered.
            error = ProviderError(exc.reason, None if exc.retryable else 200)
            failure = Failure(Retryable(error) if exc.retryable else error)
        elif isinstance(exc, CONNECTION_ERRORS):
            self.requests.log.debug("[{trace_id}] provider connection error {kind}",
                                    trace_id=self.trace_id, kind=exc.__class__.__name__)
            failure = Failure(Retryable(ProviderError("connection")))
        self.result.errback(failure)
