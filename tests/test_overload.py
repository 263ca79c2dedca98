"""
Overload and shutdown keep their promises (issue "Hardening", items 5 and 6):

- a user's own queued messages count toward ``llm.max_waiting`` (the busy notice fires);
- nobody waits longer than ``llm.reply_deadline_seconds`` for a line (the fallback answers);
- at shutdown every accepted message gets exactly one final reply or notice, in order, even
  when the provider hangs past the grace.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from psicoia import texts
from psicoia.chat.vocabulary import Kind
from tests.helpers import fired, make_config, make_manager, start_service
from tests.provider_stub import ControlledProvider


class Chat:
    def __init__(self, manager, peer="10.0.0.1") -> None:
        self.session = fired(manager.open("tcp", peer))
        self.replies: list = []

    def say(self, text: str) -> None:
        self.session.submit(text).reply.addCallback(self.replies.append)

    @property
    def kinds(self) -> list[str]:
        return [reply.outcome for reply in self.replies]


def build(**llm):
    clock, provider = Clock(), ControlledProvider()
    settings = {"max_in_flight": 1, "max_waiting": 3, "reply_deadline_seconds": 30}
    settings.update(llm)
    config = make_config(llm=settings, limits={"rate_max_messages": 100})
    return make_manager(config, provider, clock, system_prompt="s"), provider, clock


def test_a_users_own_queue_counts_toward_max_waiting():
    manager, provider, _ = build()
    chat = Chat(manager)
    for number in range(6):
        chat.say(f"mensaje {number}")
    # One in flight, three waiting behind it (max_waiting 3): the last two are refused at
    # arrival (busy) and never reach the provider; in order, so they are written after the rest.
    assert manager.waiting() == 3
    while provider.pending:
        provider.answer_all()
    assert chat.kinds == [Kind.ANSWERED] * 4 + [Kind.BUSY, Kind.BUSY]
    assert len(provider.calls) == 4
    assert manager.waiting() == 0


def test_slot_waiters_and_own_queues_add_up():
    manager, provider, _ = build(max_in_flight=1, max_waiting=2)
    first, second, third = Chat(manager), Chat(manager, "10.0.0.2"), Chat(manager, "10.0.0.3")
    first.say("uno")        # in flight
    second.say("dos")       # waits for the slot (1)
    first.say("tres")       # waits behind "uno" (2)
    third.say("cuatro")     # the queue is full
    assert third.kinds == [Kind.BUSY]
    assert manager.waiting() == 2


def test_a_hanging_provider_yields_the_fallback_by_the_deadline():
    manager, provider, clock = build(reply_deadline_seconds=20)
    chat, other = Chat(manager), Chat(manager, "10.0.0.2")
    chat.say("hola")
    other.say("yo espero el lugar")
    clock.advance(19.9)
    assert chat.replies == [] and other.replies == []
    clock.advance(0.2)
    assert chat.kinds == [Kind.FALLBACK] and provider.calls[0].cancelled
    # The slot came back: the other user's call went out, with its own deadline from arrival.
    assert len(provider.calls) == 2
    clock.advance(20)
    assert other.kinds == [Kind.FALLBACK]
    assert manager.slots.in_flight() == 0


def test_the_deadline_counts_from_arrival_even_behind_the_users_own_messages():
    manager, provider, clock = build(reply_deadline_seconds=20, max_waiting=10)
    chat = Chat(manager)
    chat.say("uno")
    chat.say("dos")
    clock.advance(15)
    provider.calls[0].answer("r1")
    assert chat.kinds == [Kind.ANSWERED]
    clock.advance(5.1)  # "dos" arrived 20.1 s ago: its call is cut, the fallback answers
    assert chat.kinds == [Kind.ANSWERED, Kind.FALLBACK]


def test_shutdown_gives_every_accepted_message_one_final_in_order():
    manager, provider, _ = build(max_in_flight=1, max_waiting=50)
    chats = [Chat(manager, f"10.0.0.{n}") for n in range(3)]
    for chat in chats:
        for number in range(3):
            chat.say(f"m{number}")
    accepted = 9
    drained = manager.drain()
    assert not drained.called
    provider.calls[0].answer("la única respuesta")  # the one call in flight finishes
    # Everything else never reaches the provider: one shutting-down notice each, in order.
    assert len(provider.calls) == 1
    assert drained.called
    finals = [reply for chat in chats for reply in chat.replies]
    assert len(finals) == accepted
    assert chats[0].kinds == [Kind.ANSWERED, Kind.SHUTTING_DOWN, Kind.SHUTTING_DOWN]
    assert chats[1].kinds == chats[2].kinds == [Kind.SHUTTING_DOWN] * 3


def test_when_the_grace_runs_out_every_pending_message_still_gets_its_notice():
    manager, provider, _ = build(max_in_flight=1, max_waiting=50)
    chat, other = Chat(manager), Chat(manager, "10.0.0.2")
    chat.say("me cuelgo")
    # Not "y después esto": the retrained crisis model reads it as risk (a known false positive).
    chat.say("y otra cosa más")
    other.say("espero")
    manager.drain()
    manager.abandon()  # the provider never answered within the grace
    assert provider.calls[0].cancelled
    assert chat.kinds == [Kind.SHUTTING_DOWN, Kind.SHUTTING_DOWN]
    assert other.kinds == [Kind.SHUTTING_DOWN]
    assert [r.text for r in chat.replies] == [texts.SHUTTING_DOWN] * 2
    assert manager.slots.in_flight() == 0


@pytest_twisted.ensureDeferred
async def test_stopping_the_service_under_overload_answers_every_message():
    """The real service: a hung provider, queued users, stopService with a short grace."""
    from tests.fake_provider import FakeProvider, Scripted, serve
    from tests.helpers import connect_line_client, port_of

    provider = FakeProvider()
    for _ in range(3):
        provider.push(Scripted(hang=True))
    provider_port, url = await serve(provider)
    config = make_config(llm={"base_url": url, "max_in_flight": 2, "max_waiting": 50},
                         server={"shutdown_grace_seconds": 0.3})
    service = await start_service(config)
    try:
        port = await port_of(service, "tcp")
        greeting = 3 + len(texts.GREETING_BODY)
        clients = [await connect_line_client(port) for _ in range(3)]
        for client in clients:
            await client.wait_lines(greeting)
        for client in clients:
            for number in range(3):
                client.say(f"mensaje {number}")
        for _ in range(500):  # bounded: 5 s for the 9 messages to be read and accepted
            if provider.in_flight == 2 and service.manager.waiting() == 7:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert service.manager.waiting() == 7
        stopped = service.stopService()
        for client in clients:
            # The shutdown notice line, then one final line per accepted message.
            lines = await client.wait_lines(greeting + 1 + 3, timeout=5)
            finals = lines[greeting:]
            assert finals.count(texts.SHUTTING_DOWN) == 4, finals
        await stopped
    finally:
        await provider_port.stopListening()
