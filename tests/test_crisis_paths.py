"""A message at risk gets the crisis resources on every path (issue 5, docs/safety.md).

The stack is the real one: SessionManager -> CircuitBreaker -> ChatProvider -> treq, against
tests/fake_provider.py served in memory (StubTreq) on a task.Clock, so retries, timeouts and
the breaker's cooldown run on simulated time. Two end-to-end tests repeat the promise over real
127.0.0.1 sockets, on TCP and on the WebSocket.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.provider.breaker import OPEN, CircuitBreaker
from psicoia.provider.client import ChatProvider
from psicoia.ops.metrics import Metrics
from psicoia.chat.vocabulary import Kind

from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import make_manager  # noqa: F401
from tests.helpers import (
    LOCAL,
    captured_logs,
    history_of,
    connect_line_client,
    fired,
    make_config,
    port_of,
    start_service,
)

AT_RISK = "ya no aguanto más, quiero morirme"
GREETING_LINES = 3 + len(texts.GREETING_BODY)


class Stack:
    """The real manager, breaker and provider client, on a Clock, against the fake provider."""

    def __init__(self, api_key="test-key", safety=None, limits=None, **llm) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(clock=self.clock, default_reply="Te escucho")
        self.stub = StubTreq(self.fake)
        llm = {"max_retries": 1, "backoff_initial_seconds": 0.5, "backoff_max_seconds": 0.5,
               "timeout_seconds": 5, "pacing": False, **llm}
        self.config = make_config(api_key=api_key, llm=llm, safety=safety or {},
                                  limits=limits or {})
        self.metrics = Metrics()
        client = ChatProvider(self.config.llm, api_key, self.clock,
                              self.stub if api_key else None, self.metrics, random=lambda: 0.0)
        self.breaker = CircuitBreaker(client, self.clock, self.config.llm.breaker_failure_threshold,
                                      self.config.llm.breaker_cooldown_seconds, instruments=self.metrics)
        self.manager = make_manager(self.config, self.breaker, self.clock,
                                      instruments=self.metrics, system_prompt="sistema")
        self.session = fired(self.manager.open("tcp", "127.0.0.1"))

    def say(self, text: str, session=None) -> Deferred:
        result = (session or self.session).submit(text).reply
        self.stub.flush()
        return result

    def run(self, seconds: float, step: float = 0.25) -> None:
        """Advance the clock in steps, letting the in-memory HTTP exchange progress."""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.stub.flush()

    def detections(self) -> float:
        return self.metrics.registry.get_sample_value(
            "psicoia_crisis_detections_total", {"transport": "tcp"}) or 0.0


def has_fired(deferred: Deferred) -> bool:
    """True once the reply is there (``Deferred.called`` is also true while it waits on another)."""
    box: list = []

    def seen(result):
        box.append(result)
        return result

    deferred.addBoth(seen)
    return bool(box)


def resources_of(config) -> list[str]:
    return list(config.safety.resources)


def assert_crisis_reply(reply, config, outcome: str) -> None:
    assert reply.outcome == outcome
    assert reply.crisis is True
    for resource in resources_of(config):
        assert resource in reply.text
    assert "\n" not in reply.text
    for notice in (texts.BUSY, texts.RATE_LIMITED.split("{")[0], texts.SHUTTING_DOWN):
        assert notice not in reply.text, "never only 'busy' or 'too many messages'"


# --- online ------------------------------------------------------------------------------------


def test_online_reply_is_the_models_reply_plus_the_resources_and_the_model_is_warned():
    stack = Stack()
    reply = fired(stack.say(AT_RISK))
    assert_crisis_reply(reply, stack.config, Kind.ANSWERED)
    assert reply.text.startswith("Te escucho")
    system = stack.fake.requests[0]["json"]["messages"][0]["content"]
    assert system.startswith("sistema") and "riesgo" in system
    assert stack.detections() == 1


def test_a_message_without_risk_gets_no_resources_and_is_not_counted():
    stack = Stack()
    reply = fired(stack.say("hola, tuve un día largo"))
    assert reply.outcome == Kind.ANSWERED and not reply.crisis
    assert resources_of(stack.config)[0] not in reply.text
    assert stack.fake.requests[0]["json"]["messages"][0]["content"] == "sistema"
    assert stack.detections() == 0


def test_history_keeps_the_models_words_not_the_appended_resources():
    stack = Stack()
    fired(stack.say(AT_RISK))
    history = history_of(stack.session)
    assert [content for _, content in history] == [AT_RISK, f"Te escucho ({len(AT_RISK)})"]


# --- degraded paths ---------------------------------------------------------------------------


def test_offline_no_key():
    stack = Stack(api_key=None)
    reply = fired(stack.say(AT_RISK))
    assert_crisis_reply(reply, stack.config, Kind.OFFLINE)
    assert reply.text.startswith(texts.CRISIS_SUPPORT)


def test_server_errors_until_retries_are_exhausted():
    stack = Stack(max_retries=1)
    stack.fake.push(Scripted(status=503, body=b"{}"), Scripted(status=503, body=b"{}"))
    result = stack.say(AT_RISK)
    stack.run(1)
    assert len(stack.fake.requests) == 2
    assert_crisis_reply(fired(result), stack.config, Kind.FALLBACK)


def test_provider_timeout():
    stack = Stack(max_retries=0, timeout_seconds=5)
    stack.fake.push(Scripted(hang=True))
    result = stack.say(AT_RISK)
    stack.run(4.75)
    assert not has_fired(result)
    stack.run(0.5)
    assert_crisis_reply(fired(result), stack.config, Kind.FALLBACK)


def test_rate_limited_user_is_not_refused_and_still_reaches_the_model():
    stack = Stack(limits={"rate_max_messages": 1, "rate_window_seconds": 60})
    assert fired(stack.say("hola")).outcome == Kind.ANSWERED
    reply = fired(stack.say(AT_RISK))
    assert_crisis_reply(reply, stack.config, Kind.ANSWERED)
    assert len(stack.fake.requests) == 2
    # An ordinary message right after is still limited (and carries the gentle reminder).
    limited = fired(stack.say("otra cosa"))
    assert limited.outcome == Kind.RATE_LIMITED
    assert limited.text.endswith(texts.CRISIS_REMINDER)


def test_busy_when_the_queue_is_full():
    stack = Stack(max_in_flight=1, max_waiting=0)
    stack.fake.push(Scripted(hang=True))
    other = fired(stack.manager.open("tcp", "10.0.0.2"))
    holding = stack.say("hola", session=other)  # holds the only slot
    assert not has_fired(holding)
    ordinary = fired(stack.say("hola"))
    assert ordinary.outcome == Kind.BUSY and ordinary.text == texts.BUSY
    second = fired(stack.manager.open("tcp", "10.0.0.3"))
    reply = fired(stack.say(AT_RISK, session=second))
    assert_crisis_reply(reply, stack.config, Kind.BUSY)
    assert reply.text.startswith(texts.CRISIS_SUPPORT)


def test_breaker_open_answers_at_once_without_calling_the_provider():
    stack = Stack(max_retries=0, breaker_failure_threshold=1)
    stack.fake.push(Scripted(status=500, body=b"{}"))
    fired(stack.say("hola"))
    assert stack.breaker.state == OPEN
    requests = len(stack.fake.requests)
    reply = fired(stack.say(AT_RISK))
    assert_crisis_reply(reply, stack.config, Kind.FALLBACK)
    assert len(stack.fake.requests) == requests


def test_shutting_down():
    stack = Stack()
    stack.manager.drain()
    reply = fired(stack.say(AT_RISK))
    assert_crisis_reply(reply, stack.config, Kind.SHUTTING_DOWN)
    assert stack.fake.requests == []


def test_slow_queue_or_retries_still_give_resources_within_the_crisis_deadline():
    stack = Stack(max_retries=3, timeout_seconds=30, safety={"crisis_reply_seconds": 5})
    stack.fake.push(Scripted(hang=True))
    result = stack.say(AT_RISK)
    stack.run(4.75)
    assert not has_fired(result)
    stack.run(0.5)
    assert_crisis_reply(fired(result), stack.config, Kind.FALLBACK)
    assert stack.manager.slots.semaphore.tokens == stack.config.llm.max_in_flight, "slot released"
    left = [c for c in stack.clock.getDelayedCalls() if c.func != stack.session._at_rest]
    assert left == [], "the provider call and its timers are cancelled (the idle wait is not)"


def test_provider_answering_later_after_the_deadline_changes_nothing():
    stack = Stack(safety={"crisis_reply_seconds": 2})
    stack.fake.push(Scripted(body=completion("tarde"), delay=3))
    result = stack.say(AT_RISK)
    stack.run(4)
    reply = fired(result)
    assert reply.outcome == Kind.FALLBACK and "tarde" not in reply.text
    assert fired(stack.say("hola")).outcome == Kind.ANSWERED


# --- reminders, goodbye, counting, privacy ----------------------------------------------------


def test_next_replies_carry_a_gentle_reminder_for_reminder_turns():
    stack = Stack(safety={"reminder_turns": 2})
    fired(stack.say(AT_RISK))
    resources = fired(stack.say("/recursos"))  # a command neither needs nor spends one
    assert texts.CRISIS_REMINDER not in resources.text
    first, second, third = (fired(stack.say(text)).text for text in ("uno", "dos", "tres"))
    assert first.endswith(texts.CRISIS_REMINDER) and second.endswith(texts.CRISIS_REMINDER)
    assert texts.CRISIS_REMINDER not in third


def test_goodbye_soon_after_a_crisis_carries_the_resources():
    stack = Stack()
    fired(stack.say(AT_RISK))
    goodbye = fired(stack.say("salir"))
    assert goodbye.close and goodbye.text.startswith(texts.GOODBYE)
    assert resources_of(stack.config)[0] in goodbye.text


def test_configured_resources_replace_the_defaults():
    stack = Stack(api_key=None, safety={"resources": ("Línea local 4444",)})
    reply = fired(stack.say(AT_RISK))
    assert "Línea local 4444" in reply.text and "0800-999-0091" not in reply.text


def test_each_detection_is_counted_once_by_transport():
    stack = Stack(api_key=None)
    for text in (AT_RISK, "hola", "i want to kill myself"):
        fired(stack.say(text))
    assert stack.detections() == 2


@pytest.mark.parametrize("api_key", ["test-key", None], ids=["online", "offline"])
def test_logs_never_contain_the_message_or_that_it_was_at_risk(api_key):
    stack = Stack(api_key=api_key)
    with captured_logs() as logs:
        fired(stack.say("quiero morirme zorzal"))
    text = logs.getvalue().lower()
    assert logs.getvalue(), "something was logged"
    # Whole resource numbers: a bare "135" matched a log timestamp's milliseconds (".135").
    for word in ("zorzal", "morir", "crisis", "0800-999-0091", "5275-1135"):
        assert word not in text


# --- over real sockets -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_tcp_end_to_end_offline_and_online():
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    online = await start_service(make_config(llm={"base_url": url}))
    offline = await start_service(make_config(api_key=None))
    try:
        for service in (online, offline):
            client = await connect_line_client(await port_of(service, "tcp"))
            await client.wait_lines(GREETING_LINES)
            client.say("me quiero matar")
            lines = await client.wait_lines(GREETING_LINES + 1)
            assert "135" in lines[-1] and "0800-999-0091" in lines[-1]
            client.say("salir")
            await client.wait_lines(GREETING_LINES + 2)
            await client.closed
    finally:
        await online.stopService()
        await offline.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_websocket_end_to_end_gets_the_resources():
    from tests.wsclient import connect_ws

    service = await start_service(make_config(api_key=None, server={"websocket": LOCAL}))
    try:
        client = await connect_ws(await port_of(service, "websocket"), "/")
        await client.wait_frames(GREETING_LINES)
        client.sendMessage("no quiero vivir más".encode("utf-8"))
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1].startswith(texts.CRISIS_SUPPORT) and "024" in frames[-1]
        client.sendMessage(b"salir")
        await client.wait_frames(GREETING_LINES + 2)
        await client.closed
    finally:
        await service.stopService()
