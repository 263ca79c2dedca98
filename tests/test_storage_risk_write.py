"""
One store write per answered message: the crisis state a message's arrival changed travels
with the message's turns (``IConversationStore.append(..., risk=...)``, psicoia/chat/
risk_watch.py and recall.py), and is written alone only when no turns are written (a deadline,
the user gone). Resume still brings the state back, through a real SQLite file too.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.chat.resume import hash_code
from psicoia.chat.vocabulary import Kind
from psicoia.storage.memory import MemoryStore
from tests.helpers import fired, make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.storage_support import open_sqlite


class Writes(MemoryStore):
    """The memory store, noting each write the core asks for (it still does them)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def append(self, conversation_id, turns, keep, now, risk=None):
        self.writes.append("append+risk" if risk is not None else "append")
        return super().append(conversation_id, turns, keep, now, risk=risk)

    def save_risk(self, conversation_id, risk, now):
        self.writes.append("save_risk")
        return super().save_risk(conversation_id, risk, now)


def build(store, **sections):
    clock, provider = Clock(), ControlledProvider()
    manager = make_manager(make_config(**sections), provider, clock, store=store,
                           system_prompt="s")
    return manager, provider, clock, fired(manager.open("tcp", "10.0.0.1"))


async def build_on_disk(store):
    clock, provider = Clock(), ControlledProvider()
    manager = make_manager(make_config(), provider, clock, store=store, system_prompt="s")
    return provider, await manager.open("tcp", "10.0.0.1")


def stored_risk(store, session) -> dict:
    return fired(store.resume(hash_code(session.code), 0)).risk


def test_an_answered_message_is_one_write_carrying_the_crisis_state():
    store = Writes()
    _, provider, _, session = build(store)
    for text in ("hola, ¿cómo va?", "estoy cansada de todo"):
        store.writes.clear()
        reply = session.submit(text).reply
        assert store.writes == [], "nothing is written at the message's arrival"
        provider.answer_all()
        assert fired(reply).outcome == Kind.ANSWERED
        assert store.writes == ["append+risk"]
        assert stored_risk(store, session) == session.risk.to_dict()


def test_a_reply_without_turns_writes_the_crisis_state_alone():
    store = Writes()
    manager, provider, clock, session = build(store)
    reply = session.submit("estoy cansada de todo").reply
    clock.advance(manager.config.llm.reply_deadline_seconds + 1)  # the provider never answers
    assert fired(reply).outcome == Kind.FALLBACK
    assert store.writes == ["save_risk"]
    assert stored_risk(store, session) == session.risk.to_dict()
    store.writes.clear()
    assert fired(session.submit("/ayuda").reply).outcome == Kind.COMMAND
    assert store.writes == [], "a command changes no crisis state: nothing to write"


def test_the_crisis_state_of_a_message_whose_user_left_is_still_saved():
    store = Writes()
    _, provider, _, session = build(store)
    before = stored_risk(store, session)
    reply = session.submit("quiero morirme").reply
    state = session.risk.to_dict()
    session.close()  # gone before the reply: no turns, the state alone
    assert fired(reply).text == "" and provider.calls[0].cancelled
    assert store.writes == ["save_risk"]
    assert stored_risk(store, session) == state != before


@pytest_twisted.ensureDeferred
async def test_the_folded_crisis_state_survives_a_restart_on_a_real_file(tmp_path):
    path = tmp_path / "psicoia.db"
    store = open_sqlite(path)
    provider, first = await build_on_disk(store)
    reply = first.submit("quiero morirme").reply
    provider.answer_all()
    assert (await reply).crisis
    code, state = first.code, first.risk.to_dict()
    await store.close()

    store = open_sqlite(path)  # the server restarted
    try:
        provider, second = await build_on_disk(store)
        assert (await second.submit(f"/retomar {code}").reply).outcome == Kind.COMMAND
        reply = second.submit("hola de nuevo").reply
        provider.answer_all()
        assert texts.CRISIS_REMINDER in (await reply).text, "the reminder state came back"
        stored = await store.resume(hash_code(code), 0)
        assert stored.risk and stored.risk != state, "and it moved on with the new message"
        assert [t.content for t in stored.turns][:1] == ["quiero morirme"]
    finally:
        await store.close()
