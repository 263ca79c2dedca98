"""
The session manager, transport-agnostic: ordering, the global cap on provider calls and its
bounded queue, history, the rate limit, cancellation, numbering, drain. All on a task.Clock; the
provider is tests/provider_stub.py so each test decides when each call ends.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import fail
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from psicoia import texts
from psicoia.chat.ports import StorageUnavailable
from psicoia.chat.resume import hash_code
from psicoia.storage.memory import MemoryStore
from psicoia.chat.vocabulary import Kind

from tests.helpers import fired, make_manager  # noqa: F401
from tests.helpers import history_of, make_config
from tests.provider_stub import ControlledProvider

SYSTEM = "Sos un acompañante breve."


class Chat:
    """A session plus the replies it got, in the order they arrived."""

    def __init__(self, manager: SessionManager, transport: str = "tcp") -> None:
        self.session = fired(manager.open(transport, "10.0.0.1"))
        self.replies: list = []

    def say(self, text: str):
        result = self.session.submit(text).reply
        result.addCallback(self.replies.append)
        return result

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies]


def build(provider=None, store=None, **sections):
    clock = Clock()
    provider = provider or ControlledProvider()
    manager = make_manager(make_config(**sections), provider, clock, store=store,
                           system_prompt=SYSTEM)
    return manager, provider, clock


# --- numbering and trace ids ------------------------------------------------------------------

def test_user_numbers_are_shared_by_all_transports():
    manager, _, _ = build()
    users = [fired(manager.open(name, "10.0.0.1")).user for name in ("tcp", "websocket", "tcp", "http")]
    assert users == ["Usuario-1", "Usuario-2", "Usuario-3", "Usuario-4"]


def test_trace_id_is_user_and_message_number():
    manager, provider, _ = build()
    first, second = Chat(manager), Chat(manager)
    first.say("a")
    second.say("b")
    provider.answer_all()
    first.say("c")
    assert [c.trace_id for c in provider.calls] == ["Usuario-1:m1", "Usuario-2:m1", "Usuario-1:m2"]
    provider.answer_all()
    assert [r.trace_id for r in first.replies] == ["Usuario-1:m1", "Usuario-1:m2"]


# --- ordering ---------------------------------------------------------------------------------

def test_one_users_messages_are_sent_one_at_a_time_and_answered_in_order():
    manager, provider, _ = build()
    chat = Chat(manager)
    for text in ("uno", "dos", "tres"):
        chat.say(text)
    assert [c.text for c in provider.calls] == ["uno"]
    provider.calls[0].answer("r1")
    assert [c.text for c in provider.calls] == ["uno", "dos"]
    assert chat.texts == ["r1"]
    provider.calls[1].answer("r2")
    provider.calls[2].answer("r3")
    assert chat.texts == ["r1", "r2", "r3"]


def test_next_message_starts_only_after_the_previous_reply_is_delivered():
    manager, provider, _ = build()
    chat = Chat(manager)
    delivered_when_called = []
    provider.on_call = lambda call: delivered_when_called.append(list(chat.texts))
    chat.say("uno")
    chat.say("dos")
    provider.calls[0].answer("r1")
    assert delivered_when_called == [[], ["r1"]]


def test_notices_keep_their_place_in_the_order():
    manager, provider, _ = build(limits={"rate_max_messages": 1, "rate_window_seconds": 60})
    chat = Chat(manager)
    chat.say("uno")
    chat.say("dos")  # rate limited at arrival, answered after "uno"
    chat.session.submit_too_long().reply.addCallback(chat.replies.append)
    assert chat.texts == []
    provider.calls[0].answer("r1")
    assert [r.outcome for r in chat.replies] == [
        Kind.ANSWERED, Kind.RATE_LIMITED, Kind.TOO_LONG]


def test_thousands_of_queued_notices_complete_without_recursion():
    manager, provider, _ = build(limits={"rate_max_messages": 1})
    chat = Chat(manager)
    for index in range(3000):
        chat.say(f"m{index}")
    provider.calls[0].answer("r")
    assert len(chat.replies) == 3000
    assert chat.replies[-1].outcome == Kind.RATE_LIMITED


def test_other_users_are_not_held_by_a_slow_reply():
    manager, provider, _ = build()
    slow, quick = Chat(manager), Chat(manager)
    slow.say("lento")
    quick.say("rápido")
    provider.calls[1].answer("r rápido")
    assert quick.texts == ["r rápido"] and slow.texts == []


# --- the global cap and its queue -------------------------------------------------------------

def test_provider_calls_in_flight_never_exceed_max_in_flight_and_all_are_answered():
    manager, provider, _ = build(llm={"max_in_flight": 3})
    chats = [Chat(manager) for _ in range(12)]
    for index, chat in enumerate(chats):
        chat.say(f"hola {index}")
    most = 0
    while provider.pending:
        most = max(most, len(provider.pending))
        provider.pending[0].answer("ok")
    assert most == 3
    assert len(provider.calls) == 12
    assert all(chat.texts == ["ok"] for chat in chats)
    assert manager.slots.semaphore.tokens == 3


def test_waiting_queue_is_bounded_and_the_overflow_gets_the_busy_notice_at_once():
    manager, provider, _ = build(llm={"max_in_flight": 1, "max_waiting": 2})
    chats = [Chat(manager) for _ in range(5)]
    for chat in chats:
        chat.say("hola")
    assert len(provider.calls) == 1
    assert [c.texts for c in chats] == [[], [], [], [texts.BUSY], [texts.BUSY]]
    while provider.pending:
        provider.pending[0].answer("ok")
    assert [c.texts for c in chats[:3]] == [["ok"]] * 3
    chats[3].say("ahora")
    assert provider.pending, "the queue has room again"


def test_max_waiting_zero_answers_busy_whenever_every_slot_is_taken():
    manager, provider, _ = build(llm={"max_in_flight": 2, "max_waiting": 0})
    chats = [Chat(manager) for _ in range(3)]
    for chat in chats:
        chat.say("hola")
    assert len(provider.calls) == 2
    assert chats[2].replies[0].outcome == Kind.BUSY


class BrokenStore(MemoryStore):
    """A store whose disk is gone: every write fails (the reply must not wait on it)."""

    def append(self, conversation_id, turns, keep, now, risk=None):
        return fail(StorageUnavailable("disk full"))


def stored_turns(store, session) -> list[str]:
    """What the store keeps for the session's conversation (through its public port)."""
    conversation = fired(store.resume(hash_code(session.code), 0))
    return [turn.content for turn in conversation.turns] if conversation else []


@pytest.mark.parametrize("how", ["provider_error", "unexpected_exception", "history_store_fails",
                                 "cancel_in_flight", "cancel_while_waiting"])
def test_slot_is_released_on_every_failure_path(how):
    store = BrokenStore() if how == "history_store_fails" else None
    manager, provider, _ = build(store=store, llm={"max_in_flight": 1})
    chat, other = Chat(manager), Chat(manager)
    blocker = Chat(manager) if how == "cancel_while_waiting" else None
    if blocker:
        blocker.say("ocupo el lugar")
    chat.say("hola")
    if how == "provider_error":
        provider.calls[0].fail("status", 503)
        assert [r.outcome for r in chat.replies] == [Kind.FALLBACK]
    elif how == "unexpected_exception":
        provider.calls[0].crash(ValueError("bug"))
        assert chat.texts == [texts.ERROR]
    elif how == "history_store_fails":
        provider.calls[0].answer("igual te respondo")
        assert chat.texts == ["igual te respondo"], "a storage failure never costs the reply"
    elif how == "cancel_in_flight":
        chat.session.close()
        assert provider.calls[0].cancelled
    elif how == "cancel_while_waiting":
        assert len(manager.slots.semaphore.waiting) == 1
        chat.session.close()
        assert len(manager.slots.semaphore.waiting) == 0
        provider.calls[0].answer("ok")
    assert manager.slots.semaphore.tokens == 1
    assert manager.slots.semaphore.waiting == []
    other.say("sigo")
    assert provider.calls[-1].text == "sigo"


def test_closing_mid_request_cancels_queued_messages_without_calling_the_provider():
    manager, provider, _ = build()
    chat = Chat(manager)
    chat.say("uno")
    chat.say("dos")
    chat.say("tres")
    chat.session.close()
    assert [c.text for c in provider.calls] == ["uno"]
    assert provider.calls[0].cancelled
    assert all(reply.text == "" for reply in chat.replies)
    assert chat.session.conversation_id not in manager.holders


def test_a_cancelled_call_leaves_no_half_written_history():
    store = MemoryStore()
    manager, provider, _ = build(store=store)
    chat = Chat(manager)
    chat.say("uno")
    provider.calls[0].answer("r1")
    chat.say("dos")
    chat.session.close()
    assert stored_turns(store, chat.session) == ["uno", "r1"]


def test_a_failed_call_writes_no_history():
    manager, provider, _ = build()
    chat = Chat(manager)
    chat.say("uno")
    provider.calls[0].fail("timeout", None)
    chat.say("dos")
    assert [m["content"] for m in provider.calls[1].messages] == [SYSTEM, "dos"]


# --- history ----------------------------------------------------------------------------------

def test_prompt_is_system_then_the_newest_turns_within_max_messages():
    manager, provider, clock = build(history={"max_messages": 4})
    chat = Chat(manager)
    for index in range(5):
        chat.say(f"u{index}")
        provider.pending[0].answer(f"a{index}")
        clock.advance(10)  # stay clear of the rate limit
    chat.say("u5")
    sent = provider.calls[-1].messages
    assert sent[0] == {"role": "system", "content": SYSTEM}
    assert [m["content"] for m in sent[1:]] == ["u4", "a4", "u5"]
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]


def test_prompt_keeps_only_the_newest_turns_that_fit_the_token_budget():
    manager, provider, clock = build(history={"max_messages": 50, "input_token_budget": 30,
                                              "chars_per_token": 1})
    chat = Chat(manager)
    for index in range(4):
        chat.say(f"usuario {index}")   # 9 characters = 9 tokens
        provider.pending[0].answer(f"model {index}")  # 7 tokens
        clock.advance(10)
    chat.say("ultimo!!!")  # 9
    sent = [m["content"] for m in provider.calls[-1].messages]
    # 9 (new) + 7 + 9 = 25 fit, one more assistant turn (7) would exceed 30.
    assert sent == [SYSTEM, "usuario 3", "model 3", "ultimo!!!"]


def test_history_is_per_user_and_outlives_the_connection_in_the_store_only():
    store = MemoryStore()
    manager, provider, _ = build(store=store)
    first, second = Chat(manager), Chat(manager)
    first.say("secreto de uno")
    provider.pending[0].answer("r")
    second.say("hola")
    assert [m["content"] for m in provider.calls[-1].messages] == [SYSTEM, "hola"]
    first.session.close()
    assert first.session.conversation_id not in manager.holders
    assert stored_turns(store, first.session) == ["secreto de uno", "r"]
    assert stored_turns(store, second.session) == []


def test_replies_are_stored_folded_into_one_line():
    manager, provider, _ = build()
    chat = Chat(manager)
    chat.say("uno")
    provider.calls[0].answer("línea uno\nlínea dos")
    chat.say("dos")
    assert provider.calls[1].messages[-2]["content"] == "línea uno línea dos"
    assert chat.texts == ["línea uno línea dos"]


# --- rate limit -------------------------------------------------------------------------------

def test_rate_limit_is_a_sliding_window_per_user_on_the_clock():
    manager, provider, clock = build(limits={"rate_max_messages": 2, "rate_window_seconds": 10})
    chat, other = Chat(manager), Chat(manager)
    chat.say("1")
    provider.answer_all()
    clock.advance(4)
    chat.say("2")
    provider.answer_all()
    chat.say("3")
    assert chat.replies[-1].outcome == Kind.RATE_LIMITED
    assert chat.texts[-1] == texts.RATE_LIMITED.format(seconds=6)
    other.say("otro usuario")
    assert provider.pending, "the limit is per user"
    provider.answer_all()
    clock.advance(6)  # the first message leaves the window
    chat.say("4")
    assert provider.calls[-1].text == "4"


def test_rate_limited_messages_do_not_reach_the_provider_or_the_history():
    manager, provider, _ = build(limits={"rate_max_messages": 1, "rate_window_seconds": 10})
    chat = Chat(manager)
    chat.say("1")
    chat.say("no pasa")
    provider.answer_all()
    assert [c.text for c in provider.calls] == ["1"]
    assert history_of(chat.session) == [("user", "1"), ("assistant", "re: 1")]


def test_goodbye_closes_and_bypasses_the_rate_limit():
    manager, provider, _ = build(limits={"rate_max_messages": 1, "rate_window_seconds": 10})
    chat = Chat(manager)
    chat.say("1")
    provider.answer_all()
    chat.say("  SALIR ")
    assert chat.replies[-1].outcome == Kind.GOODBYE
    assert chat.replies[-1].close


# --- offline and drain ------------------------------------------------------------------------

def test_offline_provider_is_never_called():
    manager, provider, _ = build(provider=ControlledProvider(online=False))
    chat = Chat(manager)
    chat.say("hola")
    assert provider.calls == []
    assert [r.outcome for r in chat.replies] == [Kind.OFFLINE]
    assert chat.texts[0].strip()


def test_drain_waits_for_in_flight_replies_and_refuses_new_messages():
    manager, provider, _ = build()
    busy, idle = Chat(manager), Chat(manager)
    busy.say("uno")
    drained = manager.drain()
    assert not drained.called
    idle.say("tarde")
    assert idle.texts == [texts.SHUTTING_DOWN]
    provider.calls[0].answer("r")
    assert drained.called
    assert busy.texts == ["r"]


def test_drain_with_nothing_in_flight_fires_at_once():
    manager, _, _ = build()
    Chat(manager)
    assert manager.drain().called


def test_a_closed_session_creates_no_state_again():
    manager, provider, _ = build()
    chat = Chat(manager)
    chat.session.close()
    chat.say("después de cerrar")
    assert provider.calls == []
    assert history_of(chat.session) == []
    assert manager.limiter.check(chat.session.user) == 0  # a fresh window: nothing was counted


# --- the same over real sockets ---------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_disconnect_mid_request_over_real_sockets_frees_the_slot_for_the_next_user():
    from tests.fake_provider import FakeProvider, Scripted, serve
    from tests.helpers import connect_line_client, port_of, start_service

    provider = FakeProvider()
    provider.push(Scripted(hang=True))
    provider_port, url = await serve(provider)
    service = await start_service(make_config(llm={"base_url": url, "max_in_flight": 1}))
    try:
        port = await port_of(service, "tcp")
        first, second = await connect_line_client(port), await connect_line_client(port)
        greeting = 3 + len(texts.GREETING_BODY)
        await first.wait_lines(greeting)
        await second.wait_lines(greeting)

        async def until(predicate) -> None:
            for _ in range(500):  # bounded: 5 s
                if predicate():
                    return
                await deferLater(reactor, 0.01, lambda: None)

        first.say("me quedo colgado")
        await until(lambda: provider.in_flight)  # the first user's call holds the only slot
        second.say("espero mi turno")
        await until(lambda: service.manager.slots.semaphore.waiting)
        assert len(service.manager.slots.semaphore.waiting) == 1
        # A reset: the client is gone. (A FIN alone may be a half-close, whose lines are still
        # answered: tests/test_half_close.py.)
        first.transport.abortConnection()
        await first.closed
        lines = await second.wait_lines(greeting + 1, timeout=5)
        assert lines[-1].startswith("Te escucho.")
        assert len(provider.requests) == 2
        assert provider.requests[0]["json"]["messages"][-1]["content"] == "me quedo colgado"
        await until(lambda: provider.in_flight == 0)  # the hung request was aborted
        assert service.manager.slots.semaphore.tokens == 1
    finally:
        await service.stopService()
        await provider_port.stopListening()
