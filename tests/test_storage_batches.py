"""Group commit (psicoia/storage/batches.py) on a real SQLite file and Twisted's adbapi pool:
writes of one window share one transaction and one thread hop, each caller hears only after
the commit, faults reach every caller of the batch, bad input fails only its own operation,
and the durability settings the docs promise."""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted
from twisted.enterprise import adbapi
from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock

from psicoia.chat.ports import StorageUnavailable, Turn
from psicoia.storage.batches import GroupCommit
from psicoia.storage.sqlite_file import PrivateConnection, classify
from tests.storage_support import open_sqlite

WINDOW = 0.02


class Counted:
    """The real pool, counting the batches handed to its thread."""

    def __init__(self, pool: adbapi.ConnectionPool) -> None:
        self.pool, self.calls = pool, 0

    def runWithConnection(self, *args, **kwargs):
        self.calls += 1
        return self.pool.runWithConnection(*args, **kwargs)


def make(path, clock, window=WINDOW, timeout=0.05):
    pool = adbapi.ConnectionPool(
        "sqlite3", str(path), timeout=timeout, check_same_thread=False, isolation_level=None,
        factory=PrivateConnection, cp_min=1, cp_max=1, cp_reactor=reactor,
        cp_openfun=lambda c: c.execute("PRAGMA journal_mode=WAL").fetchall())
    outcomes = []
    counted = Counted(pool)
    batches = GroupCommit(counted, classify, lambda reason, wrote: outcomes.append(reason),
                          clock, window)
    return pool, counted, batches, outcomes


def setup_table(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    db.close()


def put(connection, key, value):
    connection.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
    return key


def put_twice(connection, key):
    """Two statements, the second a duplicate key: all or nothing."""
    connection.execute("INSERT INTO t (k, v) VALUES (?, 1)", (key + "-first",))
    connection.execute("INSERT INTO t (k, v) VALUES (?, 1)", (key,))


def committed(path):
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT k, v FROM t"))
    finally:
        db.close()


@pytest_twisted.ensureDeferred
async def test_writes_within_the_window_share_one_transaction_and_hop(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()
    pool, counted, batches, _ = make(path, clock)
    try:
        calls = [batches.submit(put, f"k{i}", i) for i in range(10)]
        assert counted.calls == 0 and not any(d.called for d in calls)  # waiting for others
        clock.advance(WINDOW)
        assert counted.calls == 1
        assert await gatherResults(calls) == [f"k{i}" for i in range(10)]
        assert committed(path) == {f"k{i}": i for i in range(10)}
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_each_caller_hears_only_after_its_write_is_committed(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()
    pool, _, batches, _ = make(path, clock)
    seen = []
    try:
        calls = [batches.submit(put, f"k{i}", i).addCallback(
            lambda key: seen.append(key in committed(path))) for i in range(3)]
        clock.advance(WINDOW)
        await gatherResults(calls)
        assert seen == [True, True, True]  # another connection already sees every row
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_an_urgent_operation_starts_the_batch_at_once_with_what_waits(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()  # never advanced: only the urgent operation can start the batch
    pool, counted, batches, _ = make(path, clock)
    try:
        waiting = batches.submit(put, "behind", 1)
        read = batches.submit(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0],
                              write=False, urgent=True)
        assert await read == 1  # the write queued before it went first, in the same batch
        assert await waiting == "behind"
        assert counted.calls == 1
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_what_is_asked_while_a_batch_runs_goes_in_the_next_one(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    pool, counted, batches, _ = make(path, reactor, window=0)
    try:
        first = batches.submit(put, "a", 1)
        later = [batches.submit(put, f"b{i}", i) for i in range(5)]
        await gatherResults([first, *later])
        assert counted.calls == 2  # one batch for "a", one for everything queued behind it
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_a_storage_fault_reaches_every_caller_of_the_batch(tmp_path):
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()
    pool, _, batches, outcomes = make(path, clock)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        await batches.submit(put, "before", 0, urgent=True)
        other.execute("BEGIN EXCLUSIVE")
        calls = [batches.submit(put, f"k{i}", i) for i in range(4)]
        clock.advance(WINDOW)
        for call in calls:
            with pytest.raises(StorageUnavailable, match="locked"):
                await call
        assert outcomes[-1] == "locked"
        other.execute("ROLLBACK")
        assert committed(path) == {"before": 0}
    finally:
        other.close()
        pool.close()


@pytest_twisted.ensureDeferred
async def test_bad_input_fails_only_its_own_operation_and_leaves_nothing_of_it(tmp_path):
    """The batch runs straight through first; a duplicate key sends it round again with a
    savepoint per operation, so the others commit once and the bad one leaves no half."""
    path = tmp_path / "b.db"
    setup_table(path)
    clock = Clock()
    pool, _, batches, outcomes = make(path, clock)
    try:
        await batches.submit(put, "taken", 0, urgent=True)
        good = [batches.submit(put, f"k{i}", i) for i in range(3)]
        bad = batches.submit(put_twice, "taken")
        last = batches.submit(put, "last", 9)
        clock.advance(WINDOW)
        assert await gatherResults([*good, last]) == ["k0", "k1", "k2", "last"]
        with pytest.raises(sqlite3.IntegrityError):
            await bad
        assert committed(path) == {"taken": 0, "k0": 0, "k1": 1, "k2": 2, "last": 9}
        assert outcomes[-1] is None  # bad input is not a storage fault
    finally:
        pool.close()


@pytest_twisted.ensureDeferred
async def test_the_store_keeps_wal_normal_sync_and_secure_delete_on_its_connection(tmp_path):
    """Durability as docs/operations.md says: WAL with synchronous=NORMAL (a crashed process
    loses nothing committed), secure_delete on."""
    store = open_sqlite(tmp_path / "p.db")
    try:
        settings = await store._pool.runWithConnection(lambda c: [
            c.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "secure_delete")])
        assert settings == ["wal", 1, 1]  # synchronous 1 is NORMAL
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_turn_order_and_the_window_hold_across_a_restart_and_a_reset(tmp_path):
    """Turn numbers are counted in memory from the largest stored one: after a restart and
    after /reset, new turns still come after the old ones and the window keeps the newest."""
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    c = await store.create(b"r" * 32, 1.0)
    other = await store.create(b"o" * 32, 1.0)
    for i in range(6):
        await store.append(c.id, [Turn("user", f"a{i}"), Turn("assistant", f"b{i}")], 4, 2.0 + i)
    await store.append(other.id, [Turn("user", "otra")], 4, 3.0)
    await store.close()
    store = open_sqlite(path)
    try:
        await store.append(c.id, [Turn("user", "a6")], 4, 10.0)
        resumed = await store.resume(b"r" * 32, 11.0)
        assert [t.content for t in resumed.turns] == ["b4", "a5", "b5", "a6"]
        await store.clear(c.id, 12.0)
        await store.append(c.id, [Turn("user", "nuevo")], 4, 13.0)
        resumed = await store.resume(b"r" * 32, 14.0)
        assert [t.content for t in resumed.turns] == ["nuevo"]
        assert [t.content for t in (await store.resume(b"o" * 32, 14.0)).turns] == ["otra"]
    finally:
        await store.close()
