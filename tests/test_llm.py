"""
The provider client (psicoia.provider.client.ChatProvider) against tests/fake_provider.py.

Most tests run the fake in memory through ``treq.testing.RequestTraversalAgent`` under the
production client (``ProviderHTTP``: requests straight on the agent) with a ``task.Clock``, so
backoff, Retry-After and timeouts are exact and instant; tests/test_streaming.py runs the
same client through treq's ``StubTreq`` (treq's own request path). A few serve the fake on
127.0.0.1 with the real reactor: the wire format and headers, connection refused, a
connection closed without an answer.
"""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest
import pytest_twisted
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from psicoia.provider._http import ProviderHTTP
from psicoia.provider.client import ChatProvider, ProviderError, make_http_client
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import make_config

PROMPT = [{"role": "system", "content": "Sos breve."}, {"role": "user", "content": "hola"}]
OK = Scripted(status=200, body=completion("Te escucho."))


class InMemory:
    """A ChatProvider wired to a FakeProvider in memory (the production client over treq's
    RequestTraversalAgent), all on one Clock."""

    def __init__(self, api_key="k", random=lambda: 0.5, instruments=None, **llm) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)  # a realistic POSIX time, for HTTP dates
        self.fake = FakeProvider(clock=self.clock)
        self.stub = RequestTraversalAgent(self.fake)  # flush(): deliver what is ready
        settings = {"base_url": "http://provider.test/v1", "backoff_initial_seconds": 1,
                    "backoff_max_seconds": 4, "timeout_seconds": 30}
        settings.update(llm)
        self.config = make_config(llm=settings).llm
        self.client = ChatProvider(self.config, api_key, self.clock,
                                   http=ProviderHTTP(self.stub), random=random,
                                   instruments=instruments)

    def call(self):
        result = self.client.complete(PROMPT, "Usuario-1:m1")
        self.stub.flush()
        return result

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.stub.flush()

    def pending_delays(self) -> list[float]:
        now = self.clock.seconds()
        return sorted(round(call.getTime() - now, 6) for call in self.clock.getDelayedCalls())


def outcome(result):
    """The value, or the ProviderError, of an already-fired Deferred."""
    assert result.called, "the call should have finished"
    box = []
    result.addBoth(box.append)
    value = box[0]
    if hasattr(value, "value") and hasattr(value, "trap"):
        return value.value
    return value


# --- statuses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_each_transient_status_is_retried_after_backoff(status):
    env = InMemory()
    env.fake.push(Scripted(status=status, body=b"{}"), OK)
    result = env.call()
    assert not result.called and len(env.fake.requests) == 1
    assert env.pending_delays() == [0.75]  # first backoff: 1 s with jitter 0.5 -> 0.5 + 0.25
    env.advance(0.75)
    assert outcome(result) == "Te escucho."
    assert len(env.fake.requests) == 2


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_is_an_error_status_never_followed_nor_retried(status):
    """An API POST is not redirected (treq's RedirectAgent refused it too, as a connection
    error, and the client retried it): the operator sees the status (a wrong base_url)."""
    env = InMemory()
    env.fake.push(Scripted(status=status, body=b"", headers={"Location": "https://x.test/"}))
    error = outcome(env.call())
    assert isinstance(error, ProviderError)
    assert (error.reason, error.status, error.attempts) == ("status", status, 1)
    assert len(env.fake.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_client_errors_are_never_retried(status):
    env = InMemory()
    env.fake.push(Scripted(status=status, body=b'{"error": "x"}'))
    error = outcome(env.call())
    assert isinstance(error, ProviderError)
    assert (error.reason, error.status, error.attempts) == ("status", status, 1)
    assert len(env.fake.requests) == 1
    assert env.clock.getDelayedCalls() == []


def test_retries_stop_after_max_retries():
    env = InMemory(max_retries=2)
    env.fake.push(*[Scripted(status=503, body=b"{}")] * 5)
    result = env.call()
    env.advance(100)
    env.advance(100)
    error = outcome(result)
    assert (error.reason, error.status, error.attempts) == ("status", 503, 3)
    assert len(env.fake.requests) == 3


def test_backoff_doubles_up_to_the_maximum_within_jitter_bounds():
    for jitter, expected in ((0.0, [0.5, 1.0, 2.0, 2.0]), (1.0, [1.0, 2.0, 4.0, 4.0])):
        env = InMemory(random=lambda: jitter, max_retries=4)
        env.fake.push(*[Scripted(status=500, body=b"{}")] * 4, OK)
        result = env.call()
        delays = []
        while not result.called:
            delays.extend(env.pending_delays())
            env.advance(env.pending_delays()[0])
        assert delays == expected
        assert outcome(result) == "Te escucho."


# --- Retry-After ------------------------------------------------------------------------------

@pytest.mark.parametrize("headers, wait", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"Retry-After": "2"}, 2.0),
    ({"retry-after-ms": "250", "Retry-After": "7"}, 0.25),
])
def test_retry_after_from_the_provider_replaces_the_backoff(headers, wait):
    env = InMemory()
    env.fake.push(Scripted(status=429, body=b"{}", headers=headers), OK)
    result = env.call()
    assert env.pending_delays() == [wait]
    env.advance(wait - 0.01)
    assert len(env.fake.requests) == 1
    env.advance(0.01)
    assert outcome(result) == "Te escucho."


def test_retry_after_as_an_http_date_is_honoured():
    env = InMemory()
    when = formatdate(env.clock.seconds() + 3, usegmt=True)
    env.fake.push(Scripted(status=503, body=b"{}", headers={"Retry-After": when}), OK)
    result = env.call()
    assert env.pending_delays() == [3.0]
    env.advance(3)
    assert outcome(result) == "Te escucho."


@pytest.mark.parametrize("headers", [{"Retry-After": "60"}, {"retry-after-ms": "600000"},
                                     {"Retry-After": formatdate(1_700_003_600, usegmt=True)}])
def test_a_retry_after_longer_than_the_cap_gives_up_at_once(headers):
    env = InMemory(retry_after_max_seconds=10)
    env.fake.push(Scripted(status=429, body=b"{}", headers=headers), OK)
    error = outcome(env.call())
    assert error.reason == "retry_after_too_long"
    assert error.retry_after > 10
    assert len(env.fake.requests) == 1
    assert env.clock.getDelayedCalls() == []


# --- timeouts and cancellation ----------------------------------------------------------------

def test_each_attempt_times_out_on_the_clock_and_is_retried():
    env = InMemory(timeout_seconds=5, max_retries=1)
    env.fake.push(Scripted(hang=True), OK)
    result = env.call()
    env.advance(4.9)
    assert len(env.fake.requests) == 1 and not result.called
    env.advance(0.1)  # the attempt times out; the retry waits its backoff
    assert env.pending_delays() == [0.75]
    env.advance(0.75)
    assert outcome(result) == "Te escucho."


def test_timeout_on_the_last_attempt_is_a_provider_error():
    env = InMemory(timeout_seconds=5, max_retries=0)
    env.fake.push(Scripted(hang=True))
    result = env.call()
    env.advance(5)
    error = outcome(result)
    assert (error.reason, error.attempts) == ("timeout", 1)
    assert env.clock.getDelayedCalls() == []


def test_cancelling_a_call_stops_it_and_leaves_no_timer():
    env = InMemory()
    env.fake.push(Scripted(status=503, body=b"{}"), OK)
    result = env.call()
    result.cancel()
    assert isinstance(outcome(result), CancelledError)
    env.advance(100)
    assert len(env.fake.requests) == 1
    assert env.clock.getDelayedCalls() == []


# --- malformed bodies -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"<html>Bad gateway</html>",
    b"",
    b"[]",
    b'{"choices": []}',
    b'{"error": {"message": "x"}}',
    json.dumps({"choices": [{"message": {"role": "assistant", "content": ""}}]}).encode(),
    json.dumps({"choices": [{"message": {"role": "assistant", "content": "  \n "}}]}).encode(),
    json.dumps({"choices": [{"message": {"role": "assistant", "content": None}}]}).encode(),
    json.dumps({"choices": [{"message": {"role": "assistant", "content": 42}}]}).encode(),
    b"\xff\xfe not utf-8",
    b'{"choices": ' + b"[" * 100_000,  # nested past Python's recursion limit
])
def test_malformed_bodies_are_a_provider_error_not_an_exception(body):
    env = InMemory()
    env.fake.push(Scripted(status=200, body=body))
    error = outcome(env.call())
    assert isinstance(error, ProviderError)
    assert (error.reason, error.status) == ("malformed", 200)
    assert len(env.fake.requests) == 1


def test_a_body_larger_than_any_completion_is_malformed_not_read_into_memory():
    from psicoia.provider.client import MAX_RESPONSE_BYTES

    env = InMemory()
    env.fake.push(Scripted(status=200, body=b" " * (MAX_RESPONSE_BYTES + 1) + completion("x")))
    error = outcome(env.call())
    assert isinstance(error, ProviderError)
    assert (error.reason, error.status) == ("malformed", 200)


# --- offline ----------------------------------------------------------------------------------

@pytest.mark.parametrize("api_key", [None, ""])
def test_without_a_key_the_client_is_offline_and_makes_no_calls(api_key):
    env = InMemory(api_key=api_key)
    assert not env.client.online
    error = outcome(env.call())
    assert error.reason == "offline"
    assert env.fake.requests == []


# --- over a real socket on 127.0.0.1 ----------------------------------------------------------

async def real_client(url: str, **llm):
    settings = {"base_url": url, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02,
                "timeout_seconds": 5}
    settings.update(llm)
    config = make_config(api_key="sk-real-key", llm=settings)
    http, pool = make_http_client(reactor, 2)
    return ChatProvider(config.llm, config.api_key, reactor, http=http), pool


@pytest_twisted.ensureDeferred
async def test_request_wire_format_and_headers():
    fake = FakeProvider()
    port, url = await serve(fake)
    client, pool = await real_client(url + "/", model="test-model", temperature=0.2,
                                     max_tokens=77)
    try:
        reply = await client.complete(PROMPT, "Usuario-7:m3")
        assert reply == "Te escucho. ¿Qué sentís? (4)"
        request = fake.requests[0]
        assert request["path"] == b"/v1/chat/completions"
        assert request["headers"]["authorization"] == "Bearer sk-real-key"
        assert request["headers"]["x-request-id"] == "Usuario-7:m3"
        assert request["headers"]["content-type"] == "application/json"
        assert request["json"] == {"model": "test-model", "messages": PROMPT,
                                   "temperature": 0.2, "max_tokens": 77, "stream": False}
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_retried_status_over_a_real_socket_then_success():
    fake = FakeProvider()
    port, url = await serve(fake)
    fake.push(Scripted(status=502, body=b"bad gateway"))
    client, pool = await real_client(url)
    try:
        assert (await client.complete(PROMPT, "Usuario-1:m1")).startswith("Te escucho.")
        assert len(fake.requests) == 2
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_connection_refused_is_retried_then_a_provider_error():
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory())
    number = port.getHost().port
    await port.stopListening()  # nothing listens there now
    client, pool = await real_client(f"http://127.0.0.1:{number}/v1", max_retries=2)
    try:
        with pytest.raises(ProviderError) as raised:
            await client.complete(PROMPT, "Usuario-1:m1")
        assert (raised.value.reason, raised.value.attempts) == ("connection", 3)
    finally:
        await pool.closeCachedConnections()


class HangUp(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.factory.count += 1
        self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_connection_closed_without_an_answer_is_retried_then_a_provider_error():
    factory = Factory.forProtocol(HangUp)
    factory.count = 0
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    client, pool = await real_client(f"http://127.0.0.1:{port.getHost().port}/v1",
                                     max_retries=1)
    try:
        with pytest.raises(ProviderError) as raised:
            await client.complete(PROMPT, "Usuario-1:m1")
        assert (raised.value.reason, raised.value.attempts) == ("connection", 2)
        assert factory.count == 2
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


async def until(predicate, seconds: float = 5.0) -> None:
    """Let the real reactor run until ``predicate()`` holds (bounded)."""
    from twisted.internet.task import deferLater

    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached in time")


@pytest_twisted.ensureDeferred
async def test_a_timed_out_request_over_a_real_socket_is_a_timeout_and_is_aborted():
    fake = FakeProvider()
    port, url = await serve(fake)
    fake.push(Scripted(hang=True))
    clock = Clock()
    config = make_config(llm={"base_url": url, "timeout_seconds": 5, "max_retries": 0})
    http, pool = make_http_client(reactor, 2)
    client = ChatProvider(config.llm, "k", clock, http=http)
    try:
        result = client.complete(PROMPT, "Usuario-1:m1")
        await until(lambda: fake.in_flight == 1)
        clock.advance(5)
        with pytest.raises(ProviderError) as raised:
            await result
        assert raised.value.reason == "timeout"
        await until(lambda: fake.in_flight == 0)  # the hung request was aborted
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_cancelling_during_a_real_request_is_a_cancel_not_a_retry():
    fake = FakeProvider()
    port, url = await serve(fake)
    fake.push(Scripted(hang=True))
    clock = Clock()
    config = make_config(llm={"base_url": url, "timeout_seconds": 5, "max_retries": 3})
    http, pool = make_http_client(reactor, 2)
    client = ChatProvider(config.llm, "k", clock, http=http)
    try:
        result = client.complete(PROMPT, "Usuario-1:m1")
        await until(lambda: fake.in_flight == 1)
        result.cancel()
        with pytest.raises(CancelledError):
            await result
        assert clock.getDelayedCalls() == []  # no timeout left, no retry scheduled
        await until(lambda: fake.in_flight == 0)
        assert len(fake.requests) == 1
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()
