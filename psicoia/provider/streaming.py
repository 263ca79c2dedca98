"""
Reading one streamed chat completion (``text/event-stream``) as it arrives.

The provider client (:mod:`psicoia.provider.client`) hands each ``200`` response whose
content type is ``text/event-stream`` to :meth:`StreamReading.read`, whether the request asked
for a stream or not. The body is parsed with :class:`psicoia.provider.sse.SSEParser`; each
``data:`` event is one OpenAI-style chunk::

    {"choices": [{"delta": {"content": "Ho"}, "finish_reason": null}]}
    ...
    {"choices": [], "usage": {...}}          a final usage chunk: fine
    [DONE]                                   the end

Only ``delta.content`` is visible text; ``reasoning`` / ``reasoning_content`` fields are never
read (they count as tokens, not as text), and ``<think>`` blocks in the content are removed by
:class:`psicoia.provider.reasoning.ThinkFilter`. What ends a stream, and how:

- ``[DONE]``: the reply is complete.
- the body ends without ``[DONE]``: complete if some chunk had a ``finish_reason``, else the
  stream was cut (``connection``, retryable);
- an ``error`` object (or an ``event: error``): ``stream_error``, retryable;
- an event that is not a chunk (not JSON, wrong shapes), or a body over the size limit:
  ``malformed``, not retried (as for a plain JSON reply);
- no new data event for ``stall_seconds`` after the first token: ``stalled``, retryable;
- the connection fails: ``connection``, retryable.

Once the first text is shown (in the reactor turn that read it), the stream is read in
batches: reading stops until the next read tick, ``read_pause`` seconds at most
(:data:`psicoia.chat.deltas.INTERVAL_SECONDS`, the cadence at which the reply is shown anyway;
one :class:`~psicoia.provider.read_ticks.ReadTicks` timer resumes every paused stream), so
what the provider sends meanwhile waits in the kernel and comes in one read; Twisted hands its
HTTP chunks over one by one, and they are parsed together at the end of that reactor turn
(``callLater(0)``, before the reactor next waits: the write to the user goes out no later),
their text shown as one piece. 40 chunks over 400 ms cost about five reads, parses and writes
instead of forty (bench/analysis.md, "(t)"); a reply's end may reach the user up to
``read_pause`` after the provider sent it.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

from psicoia.chat.deltas import INTERVAL_SECONDS
from psicoia.chat.ports import ProviderError
from psicoia.ops.instruments import Instruments
from psicoia.ops.logsetup import LevelLogger
from psicoia.provider.read_ticks import ReadTicks
from psicoia.provider.reasoning import ReasoningStyle, ThinkFilter
from psicoia.provider.sse import SSEParser
from psicoia.provider.visible import VisibleText

# json.loads without its two wrapper frames, for the usual chunk (no surrounding spaces).
_RAW_DECODE = json.JSONDecoder().raw_decode

class StreamFailure(Exception):
    """One streamed attempt failed: ``reason`` is a ProviderError reason; ``retryable``
    says whether another attempt may follow (when no visible text was shown yet)."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason, retryable)
        self.reason = reason
        self.retryable = retryable


class StreamReading:
    """What lasts across the attempts of one call: the visible text and its timings.

    ``on_delta`` gets each new visible piece (see :class:`VisibleText`). ``style`` is the
    provider's :class:`ReasoningStyle`, learned from each completed stream. ``stall_seconds``
    bounds the silence between data events after the first token; ``limit`` the body bytes;
    ``read_pause`` (seconds, 0: never) how long reading stops after a read that brought text,
    at most: ``ticks`` (:class:`ReadTicks`) resumes the paused streams together.
    """

    log = LevelLogger()

    def __init__(self, clock: IReactorTime, stall_seconds: float, limit: int,
                 style: ReasoningStyle, on_delta: Optional[Callable[[str], Any]],
                 instruments: Instruments, trace_id: str,
                 read_pause: float = INTERVAL_SECONDS,
                 ticks: Optional[ReadTicks] = None) -> None:
        self.clock = clock
        self.stall_seconds = stall_seconds
        self.read_pause = read_pause
        self.ticks = ticks if ticks is not None else ReadTicks(clock, read_pause)
        self.limit = limit
        self.style = style
        self.visible = VisibleText(on_delta)
        self.instruments = instruments
        self.trace_id = trace_id
        self.started = clock.seconds()

    def cut(self, error: ProviderError, attempt: int, started: float) -> ProviderError:
        """The failure of attempt ``attempt`` (begun at ``started``) once text was shown:
        ``ProviderError("cut")`` with that text in ``partial``, counted and logged."""
        seconds = self.clock.seconds() - started
        self.instruments.provider_attempt(error.reason, seconds)
        cut = ProviderError("cut", error.status, attempt, partial=self.visible.reply())
        self.log.error(
            "[{trace_id}] provider cut attempt={attempt} status={status} error={error} "
            "latency_ms={latency_ms} shown_chars={shown_chars}",
            trace_id=self.trace_id, attempt=attempt, status=error.status, error=error.reason,
            latency_ms=int(seconds * 1000), shown_chars=len(cut.partial),
        )
        return cut

    def read(self, response: Any, on_token: Callable[[], None]) -> Deferred:
        """Read one streamed response; Deferred firing with the reply's text or failing
        with StreamFailure (or what ``on_delta`` raised). ``on_token()`` is called once, at the
        first generated token (visible or reasoning). Cancelling it closes the connection."""
        body = StreamBody(self, on_token)
        response.deliverBody(body)
        return body.done


class StreamBody(Protocol):
    """The body protocol of one streamed attempt; ``done`` fires exactly once."""

    def __init__(self, reading: StreamReading, on_token: Callable[[], None]) -> None:
        self.reading = reading
        self.on_token = on_token
        self.filter = ThinkFilter(hold=reading.style.hold)
        self.parser = SSEParser()
        self.done: Deferred = Deferred(self._cancel)
        self.ended = False          # done has fired (or is about to): ignore the rest
        self.size = 0
        self.chunks = 0
        self.first_token_at: Optional[float] = None
        self.last_data_at = 0.0
        self.now = 0.0  # clock time of the read being parsed (see _parse)
        self.finish_reason: Optional[str] = None
        self.timer: Any = None
        # False until the first text is shown; then True while reading waits for the next read
        # tick, else None. What a read brought waits in ``unread`` for ``batch`` (see _parse).
        self.paused: Any = False
        self.unread: list[bytes] = []
        self.batch: Any = None
        self.content: list[str] = []  # the content of the events parsed, not yet filtered

    # --- the wire ------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.ended:
            return
        self.size += len(data)
        if self.size > self.reading.limit:
            self._fail("malformed", False)
            return
        if self.paused is not False:
            # Text flows: the HTTP chunks of this read are parsed together, once the reactor
            # has delivered them all and before it next waits (writes go out no later).
            self.unread.append(data)
            if self.batch is None:
                self.batch = self.reading.clock.callLater(0, self._read_batch)
            return
        self._parse(data)
        if self.reading.visible.shown and not self.ended and self.reading.read_pause > 0:
            self._pause()  # the first text is out: from now on, read in batches

    def _read_batch(self, then_pause: bool = True) -> None:
        self.batch = None
        data = b"".join(self.unread)
        self.unread.clear()
        if not self.ended:
            self._parse(data)
        if then_pause and not self.ended:
            self._pause()

    def _parse(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
            if events:
                self.now = self.reading.clock.seconds()  # the events of one read: one time
            for event in events:
                self._event(event)
                if self.ended:
                    return
            self._release()
        except Exception:  # noqa: BLE001 - on_delta's own error: the caller sees it as is
            failure = Failure()
            self._end()
            self._close()
            self.done.errback(failure)

    def connectionLost(self, reason: Failure = None) -> None:
        if self.batch is not None:  # the body's end came in the same read as its last events
            self.batch.cancel()
            self._read_batch(then_pause=False)
        self.parser.close()
        self._stop_timer()
        self._unpause()
        if self.ended:
            return
        if reason is not None and reason.check(ResponseDone, PotentialDataLoss):
            if self.finish_reason is not None:
                self._complete()
            else:
                self._fail("connection", True)  # ended with no [DONE] and no finish_reason
            return
        self._fail("connection", True)

    def _pause(self) -> None:
        """Stop reading until the next read tick, ``read_pause`` seconds at most (see the
        module's docstring)."""
        if not self.paused and self.transport is not None:
            self.transport.pauseProducing()
            self.paused = True
            self.reading.ticks.pause(self, self._resume)

    def _resume(self) -> None:
        self.paused = None
        if self.transport is not None:
            self.transport.resumeProducing()  # may deliver what waited, at once

    def _unpause(self) -> None:
        """The stream ended: reading resumes now (the body's end, after ``[DONE]``, is still
        read and the connection pooled), and no batch is due."""
        if self.paused:
            if self.reading.ticks.cancel(self):
                self._resume()
            self.paused = None
        if self.batch is not None:
            if self.batch.active():
                self.batch.cancel()
            self.batch = None

    # --- events --------------------------------------------------------------------------

    def _event(self, event: Any) -> None:
        if event.event != "message":
            if event.event == "error":
                self._fail("stream_error", True)
            return  # other named events (pings, metadata) carry no reply text
        data = event.data
        if data == "[DONE]":
            self.last_data_at = self.now
            self._complete()
            return
        try:
            chunk, end = _RAW_DECODE(data)
            if end != len(data):
                raise ValueError("not one JSON value")
        except (ValueError, RecursionError):
            try:  # leading or trailing spaces: what json.loads accepts is accepted
                chunk = json.loads(data)
            except (ValueError, RecursionError):
                self._fail("malformed", False)
                return
        # The usual chunk first: ``choices[0].delta.content`` a string. Indexing succeeds only
        # when each level has the right JSON type (a dict, then a list of dicts), so only the
        # content's own type is left to check; anything else takes the general path below.
        try:
            choice = chunk["choices"][0]
            content = choice["delta"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if type(content) is str and content and not chunk.get("error"):
            self.chunks += 1
            self.last_data_at = self.now
            if self.first_token_at is None:
                self._token()
            self.content.append(content)  # shown at the end of the read (_release)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            return
        self._general(chunk)

    def _general(self, chunk: Any) -> None:
        """Any chunk but the usual one (see :meth:`_event`): every shape checked in turn."""
        if not isinstance(chunk, dict):
            self._fail("malformed", False)
            return
        if chunk.get("error"):
            self._fail("stream_error", True)
            return
        self.chunks += 1
        self.last_data_at = self.now
        choices = chunk.get("choices")
        if not choices:
            return  # a usage chunk, or metadata
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict):
            self._fail("malformed", False)
            return
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message")  # some servers send whole messages as chunks
        if delta:
            if not isinstance(delta, dict):
                self._fail("malformed", False)
                return
            content = delta.get("content")
            if content:
                if not isinstance(content, str):
                    self._fail("malformed", False)
                    return
                if self.first_token_at is None:
                    self._token()
                self.content.append(content)  # shown at the end of the read (_release)
            elif delta.get("reasoning") or delta.get("reasoning_content"):
                self._token()
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]

    def _token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self.last_data_at
            self.on_token()
            self.timer = self.reading.clock.callLater(self.reading.stall_seconds, self._check)

    def _release(self) -> None:
        """Show the content of the events parsed so far, as one piece."""
        content = self.content
        if content:
            piece = self.filter.feed(content[0] if len(content) == 1 else "".join(content))
            content.clear()
            self._show(piece)

    def _show(self, piece: str) -> None:
        if not piece:
            return
        visible = self.reading.visible
        if visible.shown:  # the usual piece: the first-token metric is already taken
            visible.add(piece)
            return
        visible.add(piece)
        if visible.shown:
            reading = self.reading
            reading.instruments.provider_first_token(reading.clock.seconds() - reading.started)

    # --- endings -------------------------------------------------------------------------

    def _check(self) -> None:
        """The stall timer: fail if no data event came for ``stall_seconds``; after ``[DONE]``,
        let go of a response the server never ended."""
        self.timer = None
        stall = self.reading.stall_seconds
        quiet = self.reading.clock.seconds() - self.last_data_at
        if quiet < stall:
            self.timer = self.reading.clock.callLater(stall - quiet, self._check)
        elif self.ended:
            self._close()
        else:
            self._fail("stalled", True)

    def _complete(self) -> None:
        reading = self.reading
        self._release()
        self._show(self.filter.finish())
        self._end(keep_timer=True)
        reading.style.learn(self.filter)
        if self.filter.leaked:
            # A model that had not used this shape in this process: what preceded the tag was
            # shown, but it stays out of the kept reply and the next replies are held.
            reading.visible.final = self.filter.after_lone_close.strip()
            reading.log.warn("[{trace_id}] provider reasoning shown before a lone </think>",
                             trace_id=reading.trace_id)
        if not reading.visible.reply():
            self._close()
            self.done.errback(StreamFailure("malformed", False))
            return
        self.done.callback(reading.visible.reply())

    def _fail(self, reason: str, retryable: bool) -> None:
        self._release()  # the events before the failing one in the same read are shown
        self._end()
        self._close()
        self.done.errback(StreamFailure(reason, retryable))

    def _cancel(self, _: Deferred) -> None:
        if not self.ended:
            self._end()
            self._close()

    def _end(self, keep_timer: bool = False) -> None:
        self.ended = True
        self._unpause()
        if not keep_timer:
            self._stop_timer()
        if self.chunks:
            spent = self.last_data_at - (self.first_token_at or self.last_data_at)
            self.reading.instruments.provider_stream(self.chunks, spent)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            if self.timer.active():
                self.timer.cancel()
            self.timer = None

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()
