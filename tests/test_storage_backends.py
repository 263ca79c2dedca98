"""What every IConversationStore promises, checked on each backend (memory, and sqlite on a
real file)."""

from __future__ import annotations

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from psicoia.chat.ports import Conversation, IConversationStore, Turn
from psicoia.storage.memory import MemoryStore
from tests.storage_support import open_sqlite

HOUR = 3600.0


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request, tmp_path):
    opened = []

    def make(retention_seconds=None):
        if request.param == "memory":
            store = MemoryStore(retention_seconds=retention_seconds)
        else:
            store = open_sqlite(tmp_path / "psicoia.db", retention_seconds=retention_seconds)
        opened.append(store)
        return store

    yield make
    for store in opened:
        pytest_twisted.blockon(store.close())


def test_each_backend_provides_the_port(make_store):
    assert verifyObject(IConversationStore, make_store())


@pytest_twisted.ensureDeferred
async def test_create_then_resume_round_trip(make_store):
    store = make_store()
    created = await store.create(b"h" * 32, 1000.0)
    assert isinstance(created, Conversation)
    assert created.turns == [] and created.risk == {}
    assert created.created_at == created.updated_at == 1000.0
    await store.append(created.id, [Turn("user", "hola, me llamo Ana"),
                                    Turn("assistant", "Hola Ana, ¿cómo estás?")], 10, 1001.0)
    await store.save_risk(created.id, {"level": 2, "reminders": 1, "scores": [0.5, 1]}, 1002.0)

    resumed = await store.resume(b"h" * 32, 1003.0)
    assert resumed.id == created.id and resumed.number == created.number
    assert resumed.turns == [Turn("user", "hola, me llamo Ana"),
                             Turn("assistant", "Hola Ana, ¿cómo estás?")]
    assert resumed.risk == {"level": 2, "reminders": 1, "scores": [0.5, 1]}
    assert resumed.updated_at == 1002.0


@pytest_twisted.ensureDeferred
async def test_numbers_are_distinct_and_counting(make_store):
    store = make_store()
    numbers = [(await store.create(bytes([i]) * 32, 1.0)).number for i in range(5)]
    assert numbers == list(range(numbers[0], numbers[0] + 5))


@pytest_twisted.ensureDeferred
async def test_unknown_secret_resumes_nothing(make_store):
    store = make_store()
    await store.create(b"a" * 32, 1.0)
    assert await store.resume(b"b" * 32, 2.0) is None


@pytest_twisted.ensureDeferred
async def test_history_keeps_only_the_newest_turns(make_store):
    store = make_store()
    c = await store.create(b"k" * 32, 1.0)
    for i in range(7):
        await store.append(c.id, [Turn("user", f"m{i}"), Turn("assistant", f"r{i}")], 4, 2.0 + i)
    resumed = await store.resume(b"k" * 32, 10.0)
    assert [t.content for t in resumed.turns] == ["m5", "r5", "m6", "r6"]


@pytest_twisted.ensureDeferred
async def test_clear_forgets_history_but_keeps_number_and_code(make_store):
    store = make_store()
    c = await store.create(b"c" * 32, 1.0)
    await store.append(c.id, [Turn("user", "algo")], 10, 2.0)
    await store.clear(c.id, 3.0)
    resumed = await store.resume(b"c" * 32, 4.0)
    assert resumed.number == c.number and resumed.turns == []
    await store.append(c.id, [Turn("user", "de nuevo")], 10, 5.0)
    assert [t.content for t in (await store.resume(b"c" * 32, 6.0)).turns] == ["de nuevo"]


@pytest_twisted.ensureDeferred
async def test_forget_makes_the_code_stop_working(make_store):
    store = make_store()
    c = await store.create(b"f" * 32, 1.0)
    await store.append(c.id, [Turn("user", "secreto")], 10, 2.0)
    await store.forget(c.id)
    assert await store.resume(b"f" * 32, 3.0) is None
    await store.append(c.id, [Turn("user", "tarde")], 10, 4.0)  # ignored, no error
    assert await store.resume(b"f" * 32, 5.0) is None


@pytest_twisted.ensureDeferred
async def test_expired_conversation_does_not_resume_before_the_purge(make_store):
    store = make_store(retention_seconds=168 * HOUR)
    c = await store.create(b"e" * 32, 0.0)
    await store.append(c.id, [Turn("user", "hola")], 10, 10.0)
    assert (await store.resume(b"e" * 32, 10.0 + 168 * HOUR)) is not None
    assert (await store.resume(b"e" * 32, 10.0 + 168 * HOUR + 1)) is None


@pytest_twisted.ensureDeferred
async def test_purge_deletes_conversations_untouched_since_the_cutoff(make_store):
    store = make_store()
    old = await store.create(b"o" * 32, 0.0)
    await store.append(old.id, [Turn("user", "viejo")], 10, 100.0)
    new = await store.create(b"n" * 32, 0.0)
    await store.append(new.id, [Turn("user", "nuevo")], 10, 500.0)
    assert await store.purge(200.0) == 1
    assert await store.resume(b"o" * 32, 600.0) is None
    assert (await store.resume(b"n" * 32, 600.0)).turns == [Turn("user", "nuevo")]
    assert await store.purge(200.0) == 0


@pytest_twisted.ensureDeferred
async def test_risk_state_refuses_text(make_store):
    store = make_store()
    c = await store.create(b"r" * 32, 1.0)
    with pytest.raises(ValueError):
        await store.save_risk(c.id, {"last_message": "me quiero morir"}, 2.0)
    assert (await store.resume(b"r" * 32, 3.0)).risk == {}


@pytest_twisted.ensureDeferred
async def test_append_carries_the_crisis_state_in_the_same_write(make_store):
    store = make_store()
    c = await store.create(b"f" * 32, 1.0)
    await store.append(c.id, [Turn("user", "uno"), Turn("assistant", "dos")], 10, 2.0,
                       risk={"level": 1, "turns": [0.25]})
    await store.append(c.id, [Turn("user", "tres"), Turn("assistant", "cuatro")], 10, 3.0)
    resumed = await store.resume(b"f" * 32, 4.0)
    assert [t.content for t in resumed.turns] == ["uno", "dos", "tres", "cuatro"]
    assert resumed.risk == {"level": 1, "turns": [0.25]}, "no risk: the stored one stays"
    assert resumed.updated_at == 3.0
    with pytest.raises(ValueError):  # text in the crisis state: nothing of the write lands
        await store.append(c.id, [Turn("user", "cinco")], 10, 5.0, risk={"said": "cinco"})
    resumed = await store.resume(b"f" * 32, 6.0)
    assert [t.content for t in resumed.turns] == ["uno", "dos", "tres", "cuatro"]
    assert resumed.risk == {"level": 1, "turns": [0.25]} and resumed.updated_at == 3.0


@pytest_twisted.ensureDeferred
async def test_resumed_copies_do_not_change_the_store(make_store):
    store = make_store()
    c = await store.create(b"x" * 32, 1.0)
    c.turns.append(Turn("user", "sólo en memoria"))
    c.risk["level"] = 3
    resumed = await store.resume(b"x" * 32, 2.0)
    assert resumed.turns == [] and resumed.risk == {}
