"""
Appends in one group-commit batch (psicoia/storage/sqlite_ops.py ``append_many``: a few
statements for the whole batch) and the keyed window (psicoia/storage/batches.py), on real
SQLite files: each conversation keeps its own turns, in order, trimmed to its window; an
unknown one gets nothing; bad input still fails alone; and no conversation ever has more than
one write waiting for the window.
"""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock

from psicoia.chat.ports import Turn
from psicoia.storage import sqlite_ops
from tests.storage_support import files_containing, marker, new_key, open_sqlite
from tests.test_storage_batches import WINDOW, committed, make, put, setup_table


def exchange(i: int) -> list[Turn]:
    return [Turn("user", f"u{i}"), Turn("assistant", f"a{i}")]


@pytest.mark.parametrize("keys", [(), (new_key(),)], ids=["plain", "encrypted"])
@pytest_twisted.ensureDeferred
async def test_many_appends_in_one_batch_keep_each_conversation_apart(tmp_path, keys):
    path = tmp_path / "p.db"
    store = open_sqlite(path, keys=keys)
    try:
        convs = await gatherResults([store.create(bytes([i]) * 32, 1.0) for i in range(12)])
        await store.resume(bytes([0]) * 32, 1.0)  # every row written
        count = sqlite_ops.CHUNK // 2 + 30  # more than one statement's worth
        busy = store.resume(bytes([0]) * 32, 1.0)  # the thread is busy: the rest waits
        calls = [store.append(convs[i % 10].id, exchange(i), 4, 2.0 + i,
                              risk={"n": i} if i % 3 == 0 else None) for i in range(count)]
        calls.append(store.append("no-such-conversation", exchange(999), 4, 5.0))
        calls.append(store.append(convs[10].id, exchange(1000), 0, 5.0))  # keep none
        calls.append(store.append(convs[11].id, exchange(1001), 100, 5.0))
        await busy
        assert await gatherResults(calls) == [None] * len(calls)
        for k in range(10):
            resumed = await store.resume(bytes([k]) * 32, 500.0)
            mine = [i for i in range(k, count, 10)]
            expected = [text for i in mine[-2:] for text in (f"u{i}", f"a{i}")]
            assert [t.content for t in resumed.turns] == expected
            assert resumed.updated_at == 2.0 + mine[-1]
            assert resumed.risk == {"n": max(i for i in mine if i % 3 == 0)}
        assert (await store.resume(bytes([10]) * 32, 500.0)).turns == []
        assert [t.content for t in (await store.resume(bytes([11]) * 32, 500.0)).turns] == [
            "u1001", "a1001"]
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM turns WHERE conversation_id NOT IN "
                          "(SELECT id FROM conversations)").fetchone() == (0,)
    finally:
        db.close()
    if keys:
        assert files_containing(path, "u1001") == []


@pytest_twisted.ensureDeferred
async def test_encrypted_batches_keep_the_text_out_of_the_files(tmp_path):
    path = tmp_path / "k.db"
    store = open_sqlite(path, keys=(new_key(),))
    secret = marker()
    try:
        convs = await gatherResults([store.create(bytes([i]) * 32, 1.0) for i in range(5)])
        busy = store.resume(bytes([0]) * 32, 1.0)
        calls = [store.append(c.id, [Turn("user", f"{secret} {c.number}")], 10, 2.0)
                 for c in convs]
        await busy
        await gatherResults(calls)
        assert (await store.resume(bytes([3]) * 32, 3.0)).turns[0].content.startswith(secret)
    finally:
        await store.close()
    assert files_containing(path, secret) == []


def put_many(connection, calls):
    """A ``many`` for :func:`put` that fails the whole run if any key is bad."""
    connection.executemany("INSERT INTO t (k, v) VALUES (?, ?)", calls)
    return [key for key, _ in calls]


@pytest_twisted.ensureDeferred
async def test_bad_input_in_a_merged_run_fails_only_its_own_operation(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()

    def put_one(connection, key, value):
        return put(connection, key, value)

    put_one.many = put_many
    pool, counted, batches, _ = make(path, clock)
    try:
        calls = [batches.submit(put_one, f"k{i}", i) for i in range(5)]
        calls.append(batches.submit(put_one, "k2", 99))  # a duplicate key: bad input
        calls.append(batches.submit(put_one, "k9", 9))
        clock.advance(WINDOW)
        results = await gatherResults(calls[:5] + calls[6:])
        assert results == ["k0", "k1", "k2", "k3", "k4", "k9"]
        with pytest.raises(sqlite3.IntegrityError):
            await calls[5]
        assert committed(path) == {**{f"k{i}": i for i in range(5)}, "k9": 9}
        assert counted.calls == 1
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_a_second_write_of_one_key_starts_the_batch_at_once(tmp_path):
    """The window waits for other conversations' writes, never for a conversation's second:
    a crash can lose at most one waiting write per conversation."""
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()  # never advanced past the window
    pool, counted, batches, _ = make(path, clock)
    try:
        first = [batches.submit(put, f"a{i}", i, key=f"conv{i}") for i in range(3)]
        assert counted.calls == 0, "other conversations' writes wait for the window"
        again = batches.submit(put, "a0-again", 10, key="conv0")
        assert counted.calls == 1, "conv0's second write started the batch"
        assert await gatherResults(first + [again]) == ["a0", "a1", "a2", "a0-again"]
        later = batches.submit(put, "a0-later", 11, key="conv0")  # the queue is empty again
        assert counted.calls == 1
        clock.advance(WINDOW)
        assert await later == "a0-later" and counted.calls == 2
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_a_batch_run_alone_without_a_transaction_still_fails_bad_input_alone(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()

    def put_one(connection, key, value):
        return put(connection, key, value)

    def put_in_one_statement(connection, calls):
        connection.execute("INSERT INTO t (k, v) VALUES " + ", ".join(["(?, ?)"] * len(calls)),
                           [value for call in calls for value in call])
        return [key for key, _ in calls]

    put_one.many = put_in_one_statement
    put_one.alone = lambda calls: True
    pool, counted, batches, _ = make(path, clock)
    try:
        good = [batches.submit(put_one, f"k{i}", i) for i in range(3)]
        clock.advance(WINDOW)
        assert await gatherResults(good) == ["k0", "k1", "k2"]
        calls = [batches.submit(put_one, "k3", 3), batches.submit(put_one, "k0", 99),
                 batches.submit(put_one, "k4", 4)]
        clock.advance(WINDOW)
        assert await calls[0] == "k3" and await calls[2] == "k4"
        with pytest.raises(sqlite3.IntegrityError):
            await calls[1]
        assert committed(path) == {f"k{i}": i for i in range(5)}
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_appends_of_no_turns_and_of_more_turns_than_a_statement_holds(tmp_path):
    store = open_sqlite(tmp_path / "p.db")
    try:
        c = await store.create(b"w" * 32, 1.0)
        await store.append(c.id, [], 10, 2.0, risk={"turns": 1})  # a touch only
        resumed = await store.resume(b"w" * 32, 3.0)
        assert resumed.turns == [] and resumed.updated_at == 2.0 and resumed.risk == {"turns": 1}
        many = [Turn("user", f"t{i}") for i in range(sqlite_ops.CHUNK + 75)]
        busy = store.resume(b"w" * 32, 3.0)
        calls = [store.append(c.id, many, 1000, 4.0), store.append(c.id, exchange(7), 1000, 5.0)]
        await busy
        await gatherResults(calls)
        resumed = await store.resume(b"w" * 32, 6.0)
        assert [t.content for t in resumed.turns] == [t.content for t in many] + ["u7", "a7"]
    finally:
        await store.close()
