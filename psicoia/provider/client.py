"""
The client for an OpenAI-compatible chat-completions API, with timeouts and retries.

One HTTP client over one persistent connection pool serves every user; each attempt is one
POST with its own timeout (psicoia/provider/request.py). Transient failures (connection
errors, timeouts, 408, 409, 429, 5xx) are retried with backoff or after the provider's
``Retry-After``; everything else fails at once. Every failure of the provider or the network
reaches the caller as a :class:`ProviderError` with a short ``reason``; only a programming
error escapes as itself (the session turns it into one error line).

Streaming (docs/operations.md): either call reads JSON or an event stream, asked for or not
(psicoia/provider/streaming.py); retried only while no text was shown, then ``cut``.
"""

from __future__ import annotations

import json
import random as _random
import re
from typing import Any, Callable, Optional, Sequence

from treq.client import HTTPClient
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from zope.interface import implementer

from psicoia.chat.deltas import INTERVAL_SECONDS
from psicoia.chat.ports import IProvider, ProviderError
from psicoia.config import LLMConfig
from psicoia.ops.instruments import Instruments
from psicoia.ops.logsetup import LevelLogger
from psicoia.provider._http import (  # noqa: F401 - also importable from here, as before
    MAX_RESPONSE_BYTES,
    BytesBody,
    PreparedURL,
    _body_producer,
    make_http_client,
    read_response,
    response_headers,
)
from psicoia.provider.concurrency import AdaptiveLimit
from psicoia.provider.diagnosis import CONCURRENCY, ProviderRejected, diagnose
from psicoia.provider.headers import gateway_retries, request_id
from psicoia.provider.models import ModelCheck
from psicoia.provider.pacing import Pacer, PacingTooLong
from psicoia.provider.read_ticks import ReadTicks
from psicoia.provider.reasoning import ReasoningStyle, may_reason, strip_reasoning
from psicoia.provider.request import (  # noqa: F401 - also importable from here, as before
    CONNECTION_ERRORS,
    USER_AGENT,
    Requests,
    Retryable,
)
from psicoia.provider.retry import backoff_delay, is_retryable_status, retry_after_seconds
from psicoia.provider.streaming import StreamReading

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def parse_reply(body: bytes) -> str:
    """The assistant's text from a chat-completions body, or ProviderError("malformed")."""
    return parse_completion(body)[0]


def parse_completion(body: bytes) -> tuple[str, Any]:
    """(the assistant's text, the body's ``id`` unchecked) from a chat-completions body, or
    ProviderError("malformed"). Reasoning is not text: ``reasoning`` / ``reasoning_content``
    are not read, ``<think>`` blocks are removed; a reply with nothing else is malformed."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise ProviderError("malformed") from None
    if isinstance(content, str):
        content = strip_reasoning(content)
    if not isinstance(content, str) or not content.strip():
        raise ProviderError("malformed")
    # JSON may escape a lone surrogate (\ud800): not encodable, it would fail the write of
    # the reply. Replaced like invalid UTF-8 from a user.
    return _LONE_SURROGATE.sub("\ufffd", content.strip()), data.get("id")


@implementer(IProvider)
class ChatProvider:
    """Calls the provider; knows nothing of users beyond the trace id it forwards."""

    log = LevelLogger()  # per-message events: not built when the level drops them

    def __init__(
        self,
        config: LLMConfig,
        api_key: Optional[str],
        clock: IReactorTime,
        http: Optional[HTTPClient] = None,
        instruments: Optional[Instruments] = None,
        random: Callable[[], float] = _random.random,
        pacer: Optional[Pacer] = None,
        limit: Optional[AdaptiveLimit] = None,
    ) -> None:
        self.config = config
        self._api_key = api_key
        self._clock = clock
        self._http = http
        self._instruments = instruments or Instruments()
        self._random = random
        self._pacer = pacer
        self._requests = Requests(config, api_key, clock, http)
        # Requests at once as the provider accepts them, below the session manager's semaphore.
        self.limit = limit or AdaptiveLimit(clock, config.max_in_flight, instruments=instruments)
        self._crowded_429s = 0  # plain 429s in a row that came while our other calls were out
        self._stacked_warned = False
        self._model_check: Optional[ModelCheck] = None
        self.reasoning_style = ReasoningStyle(known=not may_reason(config.model))
        # One timer resumes every paused stream of this client (psicoia/provider/read_ticks.py).
        self._read_ticks = ReadTicks(clock, INTERVAL_SECONDS)

    def check_model(self) -> Deferred:
        """Ask ``GET {base_url}/models`` once and warn when ``llm.model`` is not listed.

        Deferred firing with True (listed), False (not listed) or None (offline, or the list
        could not be had: error status, timeout, unreadable body); never fails. Bounded by
        ``min(llm.timeout_seconds, 10)`` seconds; start-up does not wait for it. See
        :class:`psicoia.provider.models.ModelCheck`.
        """
        if not self.online:
            return succeed(None)
        headers = {b"Authorization": [self._requests.bearer()], b"Accept": [b"application/json"],
                   b"User-Agent": [USER_AGENT]}
        self._model_check = ModelCheck(self.config, self._clock, self._http, headers,
                                       read_response)
        return self._model_check.run()

    def stop(self) -> None:
        """Abandon a model check still running (service shutdown)."""
        if self._model_check is not None:
            self._model_check.stop()

    @property
    def online(self) -> bool:
        return bool(self._api_key) and self._http is not None

    def complete(self, messages: Sequence[dict], trace_id: str, model: Optional[str] = None,
                 max_tokens: Optional[int] = None) -> Deferred:
        """Deferred firing with the reply text, or failing with ProviderError. ``model`` and
        ``max_tokens`` override ``llm.model`` / ``llm.max_tokens`` for this call only."""
        return ensureDeferred(self._complete(list(messages), trace_id, model, max_tokens,
                                             None, False))

    def stream(self, messages: Sequence[dict], trace_id: str,
               on_delta: Callable[[str], Any]) -> Deferred:
        """Like :meth:`complete`, calling ``on_delta(text)`` with each new piece of visible text
        as it arrives (synchronously; the pieces join to the reply). Fails with
        ``ProviderError("cut", partial=text shown)`` after text was shown. Without ``llm.stream``
        (or from a server that does not stream) ``on_delta`` gets the whole reply once."""
        return ensureDeferred(self._complete(list(messages), trace_id, None, None, on_delta,
                                             self.config.stream))

    async def _complete(self, messages: list, trace_id: str, model: Optional[str],
                        max_tokens: Optional[int], on_delta: Optional[Callable[[str], Any]],
                        stream: bool) -> str:
        if not self.online:
            raise ProviderError("offline")
        cfg = self.config
        max_tokens = max_tokens or cfg.max_tokens
        body = json.dumps(
            {
                "model": model or cfg.model,
                "messages": messages,
                "temperature": cfg.temperature,
                "max_tokens": max_tokens,
                "stream": stream,
            }
        ).encode("utf-8")
        reading = StreamReading(self._clock, cfg.stream_stall_seconds, MAX_RESPONSE_BYTES,
                                self.reasoning_style, on_delta, self._instruments, trace_id,
                                ticks=self._read_ticks)
        attempt = refusals = 0
        first_started = self._clock.seconds()
        while True:
            attempt += 1
            ticket = await self.limit.acquire()
            if self._pacer is not None:
                tokens = len(body) / 4 + max_tokens
                if not self._pacer.spend_now(tokens):
                    try:
                        await self._paced(tokens, trace_id, attempt)
                    except BaseException:
                        self.limit.release()
                        raise
            started = self._clock.seconds()
            self.log.debug(
                "[{trace_id}] provider start attempt={attempt} bytes={size}",
                trace_id=trace_id, attempt=attempt, size=len(body),
            )
            try:
                answer = await self._requests.send(body, trace_id, reading, stream)
                text, status, rid = self._answered(*answer)
            except Retryable as retryable:
                self.limit.release()
                if reading.visible.shown:
                    raise reading.cut(retryable.error, attempt, started)
                error = retryable.error
                error.attempts = attempt
                error.retry_after = None if retryable.refused else retryable.retry_after
                latency_ms = int((self._clock.seconds() - started) * 1000)
                self._instruments.provider_attempt(
                    str(error.status) if error.status else error.reason, latency_ms / 1000
                )
                if retryable.refused:
                    # The gateway's Retry-After is its window, not when a slot frees: queue
                    # again for a slot of the (now lower) limit, after a short backoff.
                    refusals += 1
                    self.limit.refused(ticket)
                    delay = backoff_delay(refusals, cfg.backoff_initial_seconds,
                                          cfg.backoff_max_seconds, self._random)
                    waited = self._clock.seconds() - first_started
                    if waited + delay > cfg.retry_after_max_seconds:
                        self._log_fail(trace_id, attempt, latency_ms, error)
                        raise error
                else:
                    self._crowded(error, ticket)
                    if attempt - refusals > cfg.max_retries:
                        self._log_fail(trace_id, attempt, latency_ms, error)
                        raise error
                    if retryable.retry_after is not None:
                        if retryable.retry_after > cfg.retry_after_max_seconds:
                            error.reason = "retry_after_too_long"
                            self._log_fail(trace_id, attempt, latency_ms, error)
                            raise error
                        delay = retryable.retry_after
                    else:
                        delay = backoff_delay(attempt - refusals, cfg.backoff_initial_seconds,
                                              cfg.backoff_max_seconds, self._random)
                self.log.warn(
                    "[{trace_id}] provider retry attempt={attempt} status={status} "
                    "error={error} latency_ms={latency_ms} delay_ms={delay_ms}",
                    trace_id=trace_id, attempt=attempt, status=error.status,
                    error=error.reason, latency_ms=latency_ms, delay_ms=int(delay * 1000),
                )
                self._instruments.provider_retry()
                await deferLater(self._clock, delay, lambda: None)
                continue
            except ProviderError as error:
                self.limit.release()
                if reading.visible.shown:
                    raise reading.cut(error, attempt, started)
                error.attempts = attempt
                latency_ms = int((self._clock.seconds() - started) * 1000)
                self._instruments.provider_attempt(
                    str(error.status) if error.status else error.reason, latency_ms / 1000
                )
                self._log_fail(trace_id, attempt, latency_ms, error)
                raise
            except BaseException:
                self.limit.release()
                raise
            self.limit.release()
            self.limit.succeeded()
            self._crowded_429s = 0
            latency_ms = int((self._clock.seconds() - started) * 1000)
            self._instruments.provider_attempt(str(status), latency_ms / 1000)
            self.log.info(
                "[{trace_id}] provider ok attempt={attempt} status={status} "
                "latency_ms={latency_ms} reply_chars={reply_chars} request_id={request_id}",
                trace_id=trace_id, attempt=attempt, status=status,
                latency_ms=latency_ms, reply_chars=len(text), request_id=rid or "-",
            )
            if not reading.visible.shown:  # a whole reply at once: shown as one piece
                reading.visible.add(text)
            return reading.visible.reply()

    def _crowded(self, error: ProviderError, ticket: int) -> None:
        """A plain 429 (no concurrency marker) while our other calls were out: two in a row
        are read as a concurrency refusal too, and lower the limit."""
        if error.status != 429:
            return
        if self.limit.in_flight < 1:  # alone: a quota, not our own crowd
            self._crowded_429s = 0
            return
        self._crowded_429s += 1
        if self._crowded_429s >= 2:
            self._crowded_429s = 0
            self.limit.refused(ticket)

    async def _paced(self, tokens: float, trace_id: str, attempt: int) -> None:
        """Wait for the pacer (docs/operations.md); a hold too long fails the call at once."""
        try:
            await self._pacer.ready(tokens, trace_id)
        except PacingTooLong as held:
            error = ProviderError("paced_too_long", attempts=attempt - 1)
            error.retry_after = held.seconds
            raise error from None

    def _log_fail(self, trace_id: str, attempt: int, latency_ms: int, error: ProviderError) -> None:
        if isinstance(error, ProviderRejected):
            # Only the body's enumerated words and our own hint: never its message text.
            found = error.diagnosis
            self.log.error(
                "[{trace_id}] provider fail attempt={attempt} status={status} error={error} "
                "latency_ms={latency_ms} type={error_type} code={error_code} "
                "request_id={request_id} hint={hint}",
                trace_id=trace_id, attempt=attempt, status=error.status, error=error.reason,
                latency_ms=latency_ms, error_type=found.error_type or "-",
                error_code=found.error_code or "-", request_id=error.request_id or "-",
                hint=found.hint or "-",
            )
            return
        self.log.error(
            "[{trace_id}] provider fail attempt={attempt} status={status} error={error} "
            "latency_ms={latency_ms}",
            trace_id=trace_id, attempt=attempt, status=error.status,
            error=error.reason, latency_ms=latency_ms,
        )

    def _answered(self, status: int, headers: dict, payload: Any) -> tuple[str, int, Optional[str]]:
        """What one attempt's answer means: (text, status, the provider's request id or
        None); raises Retryable or ProviderError (ProviderRejected for an error status)."""
        if self._pacer is not None:
            self._pacer.observe(headers)
        if not self._stacked_warned and self.config.max_retries and gateway_retries(headers):
            self._stacked_warned = True  # once: docs/operations.md, "Running behind a gateway"
            self.log.warn("the gateway retried upstream and so do we (llm.max_retries={count}): "
                          "retry at one layer only", count=self.config.max_retries)
        if status == 200:
            if isinstance(payload, str):  # a stream, read and checked as it came
                return payload, status, request_id(headers, None)
            try:
                text, body_id = parse_completion(payload)
            except ProviderError as error:
                error.status = status
                raise
            return text, status, request_id(headers, body_id)
        diagnosis = diagnose(status, headers, payload)
        error = ProviderRejected(status, diagnosis, request_id(headers, diagnosis.body_id))
        if diagnosis.kind is not None:
            self._instruments.provider_rejected(diagnosis.kind)
        if diagnosis.kind == CONCURRENCY:
            raise Retryable(error, refused=True)
        if is_retryable_status(status):
            raise Retryable(error, retry_after_seconds(headers, self._clock.seconds()))
        raise error
