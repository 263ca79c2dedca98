"""
Streamed replies from the provider client (ChatProvider.stream and complete) against the fake
provider of tests/fake_provider.py.

Most tests run it in memory (``StubTreq`` on a ``task.Clock``): the fake writes its events over
clock time and ``flush()`` delivers each write, so the order of deltas, stalls and timeouts is
exact and instant. The last ones serve it on 127.0.0.1 and read it with the real treq client,
where every write is a real TCP read.

Every test that ends a call checks it ended exactly once and left no timer behind.
"""

from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from psicoia.chat.deltas import INTERVAL_SECONDS
from psicoia.ops.instruments import Instruments
from psicoia.ops.metrics import Metrics
from psicoia.provider.breaker import CircuitBreaker
from psicoia.provider.client import ChatProvider, ProviderError, make_http_client
from psicoia.provider.pacing import Pacer
from psicoia.provider.reasoning import ReasoningStyle
from psicoia.provider.streaming import StreamBody, StreamReading
from tests.fake_provider import (
    FakeProvider,
    Scripted,
    Streamed,
    chunk,
    completion,
    serve,
    sse_event,
    stream_frames,
)
from tests.helpers import make_config

PROMPT = [{"role": "system", "content": "Sos breve."}, {"role": "user", "content": "hola"}]
PIECES = ["Te ", "escucho", ". ¿Qué ", "sentís?"]
TEXT = "Te escucho. ¿Qué sentís?"
SECRET = "el usuario parece en riesgo"


class InMemory:
    """A ChatProvider wired to a FakeProvider through StubTreq, all on one Clock.

    The default model (``llama-3.1-8b-instant``) is streamed from its first reply; ``known``
    overrides that: False is a model whose reasoning shape is not known yet (replies held until
    it is), True one already known to write none, or only ``<think>`` blocks.
    """

    def __init__(self, known=None, metrics=None, pacer=None, **llm) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.fake = FakeProvider(clock=self.clock)
        self.stub = StubTreq(self.fake)
        settings = {"base_url": "http://provider.test/v1", "backoff_initial_seconds": 1,
                    "backoff_max_seconds": 1, "timeout_seconds": 10,
                    "stream_stall_seconds": 5, "stream": True}
        settings.update(llm)
        self.config = make_config(llm=settings).llm
        self.client = ChatProvider(self.config, "k", self.clock, http=self.stub,
                                   random=lambda: 1.0, instruments=metrics, pacer=pacer)
        if known is not None:
            self.client.reasoning_style.known = known
        self.deltas: list[str] = []
        self.outcomes: list = []

    def stream(self, provider=None):
        result = (provider or self.client).stream(PROMPT, "Usuario-1:m1", self.deltas.append)
        result.addBoth(self._ended)
        self.flush()
        return result

    def complete(self):
        result = self.client.complete(PROMPT, "Usuario-1:m1")
        result.addBoth(self._ended)
        self.flush()
        return result

    def _ended(self, result):
        """Record the call's outcome; a failure is consumed here (the tests assert on it
        through :meth:`outcome`), so none is left for "Unhandled error in Deferred"."""
        self.outcomes.append(result)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Let ``seconds`` pass in small steps, delivering every write on the way."""
        steps = max(1, round(seconds / step))
        for _ in range(steps):
            self.clock.advance(seconds / steps)
            self.flush()

    def flush(self) -> None:
        """Deliver every write, then end the reactor turn: the calls a real reactor runs
        before it next waits (``callLater(0)``, the stream's batch of one read) run too."""
        self.stub.flush()
        self.clock.advance(0)

    def settle(self, limit: float = 120.0, step: float = 0.05) -> None:
        """Run the clock until nothing is scheduled (bounded), one write per ``step`` at most."""
        waited = 0.0
        while self.clock.getDelayedCalls() and waited < limit:
            self.advance(0.5, step)
            waited += 0.5

    def outcome(self):
        """The one outcome of the one call; fails if there were none or several."""
        assert len(self.outcomes) == 1, f"expected one outcome, got {self.outcomes!r}"
        value = self.outcomes[0]
        return value.value if hasattr(value, "trap") else value

    def finished_cleanly(self) -> None:
        self.settle()
        assert self.clock.getDelayedCalls() == []
        assert self.fake.in_flight == 0


def error_of(env: InMemory) -> ProviderError:
    error = env.outcome()
    assert isinstance(error, ProviderError), error
    return error


# --- the request and what comes back -----------------------------------------------------------

@pytest.mark.parametrize("setting, asked", [(True, True), (False, False)])
def test_stream_asks_for_what_llm_stream_says_and_complete_never_does(setting, asked):
    env = InMemory(stream=setting)
    env.stream()
    env.complete()
    env.finished_cleanly()
    assert [r["json"]["stream"] for r in env.fake.requests] == [asked, False]
    assert env.fake.requests[0]["headers"]["accept"].startswith(
        "text/event-stream" if asked else "application/json")


def test_a_streamed_reply_arrives_in_pieces_that_join_to_the_reply():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES, usage=True), interval=0.1))
    result = env.stream()
    env.advance(0.2)
    assert env.deltas == ["Te", " escucho"] and not result.called
    assert env.fake.in_flight == 1  # the provider has not finished
    env.advance(1)
    assert env.outcome() == TEXT
    assert "".join(env.deltas) == TEXT
    env.finished_cleanly()


def test_leading_and_trailing_whitespace_never_reach_the_deltas():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(["\n\n ", " Hola", " ", "\n", "che", " \n"])))
    env.stream()
    assert env.outcome() == "Hola \nche"
    assert env.deltas == ["Hola", " \nche"]
    env.finished_cleanly()


@pytest.mark.parametrize("split", [1, 2, 5, 13, 64])
@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_events_split_anywhere_across_reads_give_the_same_reply(split, line_end):
    env = InMemory()
    frames = stream_frames(PIECES, line_end=line_end, comment=True, usage=True)
    env.fake.push(Streamed(frames=frames, split=split, interval=0.01))
    env.stream()
    env.settle(step=0.01)
    assert len(env.fake.requests) == 1
    assert env.outcome() == TEXT and "".join(env.deltas) == TEXT
    env.finished_cleanly()


def test_a_server_that_streams_when_not_asked_is_read_as_a_stream():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=0.1))
    env.complete()
    env.settle()
    assert env.outcome() == TEXT
    assert env.fake.requests[0]["json"]["stream"] is False
    env.finished_cleanly()


def test_a_plain_json_reply_to_a_streamed_request_is_read_and_shown_once():
    env = InMemory()
    env.fake.push(Scripted(status=200, body=completion(TEXT)))
    env.stream()
    assert env.outcome() == TEXT and env.deltas == [TEXT]
    env.finished_cleanly()


def test_an_error_status_with_an_event_stream_type_is_an_error_status():
    env = InMemory(max_retries=0)
    env.fake.push(Streamed(status=400, frames=[b'data: {"error": {"message": "bad"}}\n\n']))
    env.stream()
    error = error_of(env)
    assert (error.reason, error.status) == ("status", 400)
    env.finished_cleanly()


# --- failure points: each ends in exactly one outcome -------------------------------------------

def test_a_connection_dropped_before_the_first_token_is_retried():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:1], drop=True),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    env.settle()
    assert env.outcome() == TEXT and "".join(env.deltas) == TEXT
    assert len(env.fake.requests) == 2
    env.finished_cleanly()


def test_a_connection_dropped_after_text_was_shown_is_cut_with_that_text():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:3], drop=True))
    env.stream()
    env.settle()
    error = error_of(env)
    assert (error.reason, error.partial, error.attempts) == ("cut", "Te escucho", 1)
    assert "".join(env.deltas) == error.partial
    assert len(env.fake.requests) == 1  # never retried once text was shown
    env.finished_cleanly()


def test_an_error_object_mid_stream_before_any_text_is_retried():
    env = InMemory()
    error_event = sse_event({"error": {"message": "overloaded", "type": "server_error"}})
    env.fake.push(Streamed(frames=stream_frames([])[:1] + [error_event]),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 2
    env.finished_cleanly()


@pytest.mark.parametrize("error_frame", [
    sse_event({"error": {"message": "overloaded"}}),
    b"event: error\ndata: {\"message\": \"overloaded\"}\n\n",
])
def test_an_error_mid_stream_after_text_is_cut(error_frame):
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:3] + [error_frame], interval=0.1,
                           stall_after=4))  # the server keeps the connection open
    env.stream()
    env.settle()
    error = error_of(env)
    assert (error.reason, error.partial) == ("cut", "Te escucho")
    env.finished_cleanly()  # the half-read response was closed, not left open


@pytest.mark.parametrize("bad", [b"data: {not json\n\n", b"data: [1, 2]\n\n",
                                 b'data: {"choices": "x"}\n\n',
                                 b'data: {"choices": [{"delta": {"content": 7}}]}\n\n'])
def test_a_malformed_event_before_text_is_malformed_and_not_retried(bad):
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames([])[:1] + [bad] + stream_frames(PIECES)[1:]))
    env.stream()
    error = error_of(env)
    assert (error.reason, error.status, error.partial) == ("malformed", 200, "")
    assert len(env.fake.requests) == 1 and env.deltas == []
    env.finished_cleanly()


def test_a_malformed_event_after_text_is_cut():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:2] + [b"data: {oops\n\n"]))
    env.stream()
    error = error_of(env)
    assert (error.reason, error.partial) == ("cut", "Te")
    env.finished_cleanly()


def test_a_stall_after_text_is_cut_after_stream_stall_seconds():
    env = InMemory(stream_stall_seconds=3)
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=1, stall_after=3))
    env.stream()
    while len(env.deltas) < 2:  # role, "Te", "escucho" come one a second; then nothing
        env.advance(0.01, 0.01)
    assert env.deltas == ["Te", " escucho"]
    env.advance(2.9)
    assert env.outcomes == []  # 2.9 s since the last chunk: not yet
    env.advance(0.2)
    error = error_of(env)
    assert (error.reason, error.partial, error.status) == ("cut", "Te escucho", None)
    env.finished_cleanly()


def test_a_stall_after_reasoning_but_before_text_is_retried():
    env = InMemory(stream_stall_seconds=3)
    thinking = stream_frames([], reasoning=["hmm", "mmm"], finish=None, done=False)
    env.fake.push(Streamed(frames=thinking, stall_after=len(thinking)),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    env.advance(3.1)
    assert len(env.fake.requests) == 1 and env.outcomes == []
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 2
    env.finished_cleanly()


def test_the_attempt_timeout_covers_the_time_to_the_first_token_only():
    env = InMemory(timeout_seconds=2.5, stream_stall_seconds=5)
    # The role chunk after 0.5 s, the first token at 2 s, then one chunk every 1.5 s: 9.5 s
    # in all, well past the 2.5 s timeout, yet each gap is shorter than the stall limit.
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=1.5, delay=0.5))
    env.stream()
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 1
    env.finished_cleanly()


def test_no_first_token_within_the_attempt_timeout_is_a_timeout_and_is_retried():
    env = InMemory(timeout_seconds=2, max_retries=1)
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:1], stall_after=1),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    env.advance(1.9)
    assert len(env.fake.requests) == 1
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 2
    env.finished_cleanly()


def test_no_first_token_on_the_last_attempt_is_a_timeout():
    env = InMemory(timeout_seconds=2, max_retries=0)
    env.fake.push(Streamed(frames=stream_frames(PIECES)[:1], stall_after=1))
    env.stream()
    env.settle()
    assert error_of(env).reason == "timeout"
    env.finished_cleanly()


def test_a_missing_done_after_a_finish_reason_is_a_complete_reply():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES, done=False, usage=True)))
    env.stream()
    assert env.outcome() == TEXT
    env.finished_cleanly()


def test_a_response_left_open_after_done_is_answered_at_once_then_closed():
    env = InMemory(stream_stall_seconds=3)
    frames = stream_frames(PIECES)
    env.fake.push(Streamed(frames=frames, stall_after=len(frames)))
    env.stream()
    assert env.outcome() == TEXT
    assert env.fake.in_flight == 1  # the server never ended the response
    env.advance(3.1)
    assert env.fake.in_flight == 0  # so the connection was let go, not kept for ever
    env.finished_cleanly()


def test_a_missing_done_with_no_finish_reason_is_cut():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES, done=False, finish=None)))
    env.stream()
    error = error_of(env)
    assert (error.reason, error.partial) == ("cut", TEXT)
    env.finished_cleanly()


def test_a_missing_done_with_no_text_yet_is_retried():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames([], reasoning=["hmm"], done=False, finish=None)),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 2
    env.finished_cleanly()


def test_a_body_past_the_size_limit_is_cut_or_malformed():
    from psicoia.provider.client import MAX_RESPONSE_BYTES

    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(["Hola"] + ["x" * 4096] * 300)))
    env.stream()
    error = error_of(env)
    assert error.reason == "cut" and len(error.partial) < MAX_RESPONSE_BYTES
    env.finished_cleanly()


def test_cancelling_mid_stream_stops_the_deltas_and_closes_the_response():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=0.5))
    result = env.stream()
    env.advance(0.6)
    shown = list(env.deltas)
    assert shown == ["Te"]
    result.cancel()
    assert isinstance(env.outcome(), CancelledError)
    env.settle()
    assert env.deltas == shown and env.clock.getDelayedCalls() == []
    assert env.fake.in_flight == 0 and len(env.fake.requests) == 1


def test_an_error_raised_by_on_delta_reaches_the_caller_as_itself():
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=0.1))

    def broken(text):
        raise ZeroDivisionError()

    result = env.client.stream(PROMPT, "Usuario-1:m1", broken)
    result.addBoth(env._ended)
    env.settle()
    assert isinstance(env.outcome(), ZeroDivisionError)
    env.finished_cleanly()


# --- once text flows, a stream is read in batches ----------------------------------------------

def streamed_body(on_delta):
    """A StreamBody on Twisted's StringTransport (which records pauses), on its own Clock."""
    clock = Clock()
    reading = StreamReading(clock, 5.0, 10 ** 6, ReasoningStyle(known=True), on_delta,
                            Instruments(), "Usuario-1:m1")
    body = StreamBody(reading, lambda: None)
    transport = StringTransport()
    body.makeConnection(transport)
    outcomes: list = []
    body.done.addBoth(outcomes.append)
    return clock, body, transport, outcomes


def test_the_first_text_is_shown_in_its_read_then_each_read_is_one_piece_and_a_pause():
    deltas: list[str] = []
    clock, body, transport, outcomes = streamed_body(deltas.append)
    body.dataReceived(sse_event(chunk("Te ")))
    assert deltas == ["Te"] and transport.producerState == "paused"  # at once, then a pause
    body.dataReceived(sse_event(chunk("escucho")))  # two HTTP chunks of one read
    body.dataReceived(sse_event(chunk(". ¿Qué ")))
    assert deltas == ["Te"]
    clock.advance(0)  # the end of the reactor turn: both, parsed together, as one piece
    assert deltas == ["Te", " escucho. ¿Qué"] and transport.producerState == "paused"
    clock.advance(INTERVAL_SECONDS)
    assert transport.producerState == "producing"
    body.dataReceived(sse_event(chunk("sentís?", finish="stop")) + sse_event("[DONE]"))
    clock.advance(0)
    assert outcomes == [TEXT] and "".join(deltas) == TEXT
    # Done, but the body's end is still to be read (and the connection pooled): not paused.
    assert transport.producerState == "producing"
    body.connectionLost(Failure(ResponseDone()))
    assert clock.getDelayedCalls() == [] and outcomes == [TEXT]


def test_a_body_that_ends_in_the_read_of_its_last_events_is_complete_at_once():
    deltas: list[str] = []
    clock, body, transport, outcomes = streamed_body(deltas.append)
    body.dataReceived(sse_event(chunk("Te ")))
    clock.advance(INTERVAL_SECONDS)
    body.dataReceived(sse_event(chunk("escucho. ¿Qué sentís?", finish="stop")))
    body.connectionLost(Failure(ResponseDone()))  # no [DONE], in the same read
    assert outcomes == [TEXT] and deltas == ["Te", " escucho. ¿Qué sentís?"]
    assert clock.getDelayedCalls() == []


def test_a_bad_event_in_a_batch_ends_it_after_showing_the_events_before_it():
    deltas: list[str] = []
    clock, body, transport, outcomes = streamed_body(deltas.append)
    body.dataReceived(sse_event(chunk("Te ")))
    body.dataReceived(sse_event(chunk("escucho")))
    body.dataReceived(b"data: {not json\n\n")
    body.dataReceived(sse_event(chunk(" nunca")))
    clock.advance(0)
    assert deltas == ["Te", " escucho"]
    assert [o.value.reason for o in outcomes] == ["malformed"]
    assert transport.disconnecting and clock.getDelayedCalls() == []


def test_an_error_raised_by_on_delta_for_a_batch_reaches_the_caller_as_itself():
    def on_delta(text: str) -> None:
        if text != "Te":
            raise ZeroDivisionError()

    clock, body, transport, outcomes = streamed_body(on_delta)
    body.dataReceived(sse_event(chunk("Te ")))
    body.dataReceived(sse_event(chunk("escucho")))
    clock.advance(0)
    assert [o.type for o in outcomes] == [ZeroDivisionError]
    assert transport.disconnecting and clock.getDelayedCalls() == []


# --- reasoning never reaches the user ----------------------------------------------------------

THINK_STREAMS = {
    "block split across chunks": ["<thi", "nk>", SECRET[:10], SECRET[10:] + "</th", "ink>\n\n",
                                  "Te escucho", ". ¿Qué sentís?"],
    "block in one chunk": [f"<think>{SECRET}</think>", "Te escucho. ¿Qué sentís?"],
}


@pytest.mark.parametrize("name", sorted(THINK_STREAMS))
@pytest.mark.parametrize("known", [True, False])
def test_think_blocks_in_a_stream_never_reach_the_deltas_or_the_reply(name, known):
    env = InMemory(known=known)
    env.fake.push(Streamed(frames=stream_frames(THINK_STREAMS[name]), split=7, interval=0.01))
    env.stream()
    env.settle(step=0.01)
    assert len(env.fake.requests) == 1
    assert env.outcome() == TEXT and "".join(env.deltas) == TEXT
    assert "riesgo" not in "".join(env.deltas) and "<" not in "".join(env.deltas)
    env.finished_cleanly()


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_fields_in_a_stream_are_never_shown(field):
    env = InMemory()
    env.fake.push(Streamed(frames=stream_frames(PIECES, reasoning=[SECRET, " y más"],
                                                reasoning_field=field)))
    env.stream()
    assert env.outcome() == TEXT and "riesgo" not in "".join(env.deltas)
    env.finished_cleanly()


@pytest.mark.parametrize("model, held", [("deepseek-r1-distill-llama-70b", True),
                                          ("llama-3.1-8b-instant", False)])
def test_only_a_model_whose_name_suggests_reasoning_has_its_first_reply_held(model, held):
    env = InMemory(model=model)
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=0.1))
    env.stream()
    env.advance(0.25)
    assert env.deltas == ([] if held else ["Te", " escucho"])
    env.settle()
    assert "".join(env.deltas) == TEXT and not env.client.reasoning_style.hold
    env.finished_cleanly()


def test_a_first_reply_with_only_a_closing_tag_is_held_and_its_reasoning_dropped():
    env = InMemory(known=False)
    pieces = [SECRET[:12], SECRET[12:], "</thi", "nk>\n\nTe escucho", ". ¿Qué sentís?"]
    env.fake.push(Streamed(frames=stream_frames(pieces), interval=0.1))
    env.stream()
    env.advance(0.35)
    assert env.deltas == []  # held: nothing yet tells reasoning from answer
    env.settle()
    assert env.outcome() == TEXT and "".join(env.deltas) == TEXT
    assert env.client.reasoning_style.hold  # from now on every reply waits for its </think>
    env.finished_cleanly()


def test_a_first_reply_without_tags_is_shown_at_the_end_and_the_next_ones_as_they_come():
    env = InMemory(known=False)
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=0.1),
                  Streamed(frames=stream_frames(PIECES), interval=0.1))
    env.stream()
    env.advance(0.25)
    assert env.deltas == []
    env.settle()
    assert env.deltas == [TEXT]
    env.deltas.clear()
    env.outcomes.clear()
    env.stream()
    env.advance(0.25)
    assert env.deltas == ["Te", " escucho"]
    env.finished_cleanly()


def test_a_model_seen_to_use_a_lone_closing_tag_is_streamed_after_its_tag():
    env = InMemory(known=False)
    pieces = [SECRET, "</think>", "Te escucho", ". ¿Qué sentís?"]
    env.fake.push(Streamed(frames=stream_frames(pieces)),
                  Streamed(frames=stream_frames(pieces), interval=0.1))
    env.stream()
    env.outcomes.clear()
    env.deltas.clear()
    env.stream()
    env.advance(0.35)
    assert env.deltas == ["Te escucho"]
    env.settle()
    assert "".join(env.deltas) == TEXT and env.outcome() == TEXT
    env.finished_cleanly()


def test_a_lone_closing_tag_after_shown_text_keeps_the_reasoning_out_of_the_reply():
    env = InMemory(known=True)
    env.fake.push(Streamed(frames=stream_frames([SECRET, "</think>", TEXT])))
    env.stream()
    assert env.outcome() == TEXT  # what the history keeps
    assert env.client.reasoning_style.hold


@pytest.mark.parametrize("message", [
    {"role": "assistant", "content": f"<think>{SECRET}</think>\n{TEXT}"},
    {"role": "assistant", "content": f"{SECRET}</think>\n\n{TEXT}"},
    {"role": "assistant", "content": TEXT, "reasoning_content": SECRET},
    {"role": "assistant", "content": TEXT, "reasoning": SECRET},
])
@pytest.mark.parametrize("call", ["stream", "complete"])
def test_reasoning_in_a_plain_json_reply_is_never_shown(message, call):
    env = InMemory()
    body = json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
    env.fake.push(Scripted(status=200, body=body.encode()))
    getattr(env, call)()
    assert env.outcome() == TEXT
    assert env.deltas == ([TEXT] if call == "stream" else [])
    env.finished_cleanly()


@pytest.mark.parametrize("response, lone_close", [
    (Streamed(frames=stream_frames([], reasoning=[SECRET])), False),
    (Streamed(frames=stream_frames([f"<think>{SECRET}</think>", "  "])), False),
    (Streamed(frames=stream_frames([SECRET, "</think>"])), True),
    (Scripted(status=200, body=json.dumps({"choices": [{"message": {
        "role": "assistant", "content": "", "reasoning_content": SECRET}}]}).encode()), False),
    (Scripted(status=200, body=completion(f"<think>{SECRET}</think>")), False),
    (Scripted(status=200, body=completion(f"{SECRET}</think>")), False),
])
@pytest.mark.parametrize("known", [True, False])
def test_nothing_but_reasoning_is_a_malformed_reply(response, lone_close, known):
    env = InMemory(known=known)
    env.fake.push(response)
    env.stream()
    error = error_of(env)
    if known and lone_close:
        # A model already seen without lone closing tags: its reasoning was shown before the
        # tag came, so the reply is cut (the line was started), and nothing is kept.
        assert (error.reason, error.partial) == ("cut", "")
    else:
        assert (error.reason, error.partial) == ("malformed", "")
        assert env.deltas == []
    assert len(env.fake.requests) == 1
    env.finished_cleanly()


# --- breaker, pacing, metrics ------------------------------------------------------------------

def test_the_client_and_the_breaker_provide_the_provider_port():
    from zope.interface.verify import verifyObject

    from psicoia.chat.ports import IProvider

    env = InMemory()
    breaker = CircuitBreaker(env.client, env.clock, failure_threshold=2, cooldown_seconds=30)
    assert verifyObject(IProvider, env.client) and verifyObject(IProvider, breaker)


def test_the_breaker_counts_streamed_calls_like_complete_ones():
    env = InMemory(max_retries=0)
    breaker = CircuitBreaker(env.client, env.clock, failure_threshold=2, cooldown_seconds=30)
    cut = Streamed(frames=stream_frames(PIECES)[:2], drop=True)
    env.fake.push(cut, Streamed(frames=stream_frames(PIECES)), cut, cut)
    for expected in ("cut", TEXT, "cut", "cut"):
        env.outcomes.clear()
        env.stream(breaker)
        env.advance(1)
        result = env.outcome()
        assert getattr(result, "reason", result) == expected
    assert breaker.state == "open"
    env.outcomes.clear()
    env.stream(breaker)
    assert error_of(env).reason == "breaker_open" and len(env.fake.requests) == 4
    breaker.stop()


def test_a_long_stream_is_slow_for_the_breaker_only_if_its_first_text_comes_late():
    env = InMemory(stream_stall_seconds=5)
    breaker = CircuitBreaker(env.client, env.clock, failure_threshold=1, cooldown_seconds=30,
                             slow_call_seconds=2)
    # 9 s in all, but the first words after 1.5 s: a reply being shown, not a hung provider.
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=1.5))
    env.stream(breaker)
    env.advance(10)
    assert env.outcome() == TEXT and breaker.state == "closed"
    # The first words after 2.5 s: slow, counted at 2 s (the threshold is 1: open).
    env.outcomes.clear()
    env.fake.push(Streamed(frames=stream_frames(PIECES), interval=1.5, delay=1))
    env.stream(breaker)
    env.advance(2.1)
    assert breaker.state == "open" and env.outcomes == []
    env.advance(10)
    assert env.outcome() == TEXT
    breaker.stop()


def test_pacing_reads_the_headers_of_a_streamed_reply_and_holds_the_next_call():
    clock_env = InMemory()
    pacer = Pacer(clock_env.clock, max_wait_seconds=10)
    env = InMemory(pacer=pacer)
    pacer._clock = env.clock
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    env.fake.push(Streamed(frames=stream_frames(PIECES), headers=headers),
                  Streamed(frames=stream_frames(PIECES)))
    env.stream()
    assert env.outcome() == TEXT
    env.outcomes.clear()
    env.stream()
    env.advance(1.9)
    assert len(env.fake.requests) == 1  # held until the reported reset
    env.settle()
    assert env.outcome() == TEXT and len(env.fake.requests) == 2


def test_time_to_first_token_and_chunks_reach_the_metrics():
    metrics = Metrics()
    env = InMemory(metrics=metrics)
    env.fake.push(Streamed(frames=stream_frames(PIECES, usage=True), interval=0.1, delay=0.3))
    env.stream()
    env.settle()
    assert env.outcome() == TEXT
    sample = metrics.registry.get_sample_value
    assert sample("psicoia_provider_first_token_seconds_count") == 1
    assert 0.35 <= sample("psicoia_provider_first_token_seconds_sum") <= 0.45
    assert sample("psicoia_provider_stream_chunks_total") == len(PIECES) + 3  # role, finish, usage
    assert sample("psicoia_provider_stream_chunks_per_second_count") == 1


# --- over a real socket on 127.0.0.1 -----------------------------------------------------------

async def real_client(url: str, **llm):
    settings = {"base_url": url, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02,
                "timeout_seconds": 5, "max_retries": 1, "stream": True}
    settings.update(llm)
    config = make_config(llm=settings)
    http, pool = make_http_client(reactor, 2)
    return ChatProvider(config.llm, "k", reactor, http=http), pool


async def until(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached in time")


@pytest_twisted.ensureDeferred
async def test_over_a_real_socket_the_first_delta_arrives_long_before_the_provider_finishes():
    fake = FakeProvider()
    port, url = await serve(fake)
    client, pool = await real_client(url)
    pieces = [f"palabra{i} " for i in range(20)]
    fake.push(Streamed(frames=stream_frames(pieces), interval=0.02))  # 20 chunks over ~0.4 s
    seen: list[tuple[float, str, int]] = []
    try:
        started = time.monotonic()
        result = client.stream(PROMPT, "Usuario-1:m1",
                               lambda text: seen.append((time.monotonic(), text, fake.in_flight)))
        reply = await result
        finished = time.monotonic()
        assert reply == "".join(pieces).strip() == "".join(text for _, text, _ in seen)
        assert seen[0][2] == 1  # the provider was still writing when the first words came
        # They came while the provider wrote, a batch per read every INTERVAL_SECONDS (0.1 s;
        # streaming.py reads a flowing stream at that cadence), not all at the end.
        assert len(seen) >= 3 and seen[-2][2] == 1
        assert all(b[0] - a[0] >= INTERVAL_SECONDS * 0.9 for a, b in zip(seen[1:], seen[2:]))
        assert seen[0][0] - started < (finished - started) / 2
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_over_a_real_socket_events_split_across_writes_and_a_stream_not_asked_for():
    fake = FakeProvider()
    port, url = await serve(fake)
    client, pool = await real_client(url)
    fake.push(Streamed(frames=stream_frames(PIECES, line_end="\r\n"), split=3, interval=0.002))
    try:
        assert await client.complete(PROMPT, "Usuario-1:m1") == TEXT
        assert fake.requests[0]["json"]["stream"] is False
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_over_a_real_socket_a_stall_cuts_the_reply_and_closes_the_connection():
    fake = FakeProvider()
    port, url = await serve(fake)
    client, pool = await real_client(url, stream_stall_seconds=0.3)
    fake.push(Streamed(frames=stream_frames(PIECES), stall_after=3))
    seen: list[str] = []
    try:
        with pytest.raises(ProviderError) as raised:
            await client.stream(PROMPT, "Usuario-1:m1", seen.append)
        assert (raised.value.reason, raised.value.partial) == ("cut", "Te escucho")
        assert "".join(seen) == "Te escucho"
        await until(lambda: fake.in_flight == 0)  # we hung up on the stalled response
        assert len(fake.requests) == 1
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_over_a_real_socket_the_default_fake_reply_streams_when_asked():
    fake = FakeProvider(stream_interval=0.005)
    port, url = await serve(fake)
    client, pool = await real_client(url)
    seen: list[str] = []
    try:
        reply = await client.stream(PROMPT, "Usuario-1:m1", seen.append)
        assert reply == "Te escucho. ¿Qué sentís? (4)" == "".join(seen) and len(seen) > 1
        assert fake.requests[0]["json"]["stream"] is True
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()
