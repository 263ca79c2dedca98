"""The sqlite backend on real files: what is on disk, what survives a restart, and that
forgotten text is gone from the bytes of the files."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
import pytest_twisted

from psicoia.chat.ports import Turn
from psicoia.storage.sqlite import NUMBER_BLOCK, SCHEMA_VERSION, SqliteStore, StoreRefused
from tests.storage_support import file_bytes, files_containing, marker, open_sqlite


@pytest_twisted.ensureDeferred
async def test_operations_run_off_the_reactor_thread(tmp_path):
    store = open_sqlite(tmp_path / "p.db")
    try:
        c = await store.create(b"a" * 32, 1.0)
        d = store.append(c.id, [Turn("user", "hola")], 10, 2.0)
        assert not d.called  # the pool thread does the work; the reactor only waits
        await d
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_files_are_private_0600(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    try:
        c = await store.create(b"a" * 32, 1.0)
        await store.append(c.id, [Turn("user", "hola")], 10, 2.0)
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(os.stat(str(path) + suffix).st_mode)
            assert mode == 0o600, (suffix, oct(mode))
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_an_existing_file_is_tightened_to_0600(tmp_path):
    path = tmp_path / "p.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    store = open_sqlite(path)
    await store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest_twisted.ensureDeferred
async def test_wal_secure_delete_and_schema_version(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        db.close()
    probe = await store_secure_delete(path)
    assert probe == 1


async def store_secure_delete(path):
    store = open_sqlite(path)
    try:
        return await store._pool.runWithConnection(
            lambda c: c.execute("PRAGMA secure_delete").fetchone()[0])
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_conversation_keeps_no_address_and_only_what_resuming_needs(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    await store.close()
    db = sqlite3.connect(path)
    try:
        columns = {table: [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                   for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    assert columns == {
        "schema_version": ["version"],
        "meta": ["key", "value"],
        "conversations": ["id", "number", "secret_hash", "created_at", "updated_at", "risk"],
        "turns": ["conversation_id", "seq", "role", "key_id", "content"],
    }


@pytest_twisted.ensureDeferred
async def test_conversation_survives_a_restart_and_numbers_keep_counting(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    first = await store.create(b"1" * 32, 1.0)
    await store.append(first.id, [Turn("user", "me llamo Ana"), Turn("assistant", "Hola Ana")],
                       10, 2.0)
    await store.save_risk(first.id, {"level": 1}, 3.0)
    second = await store.create(b"2" * 32, 4.0)
    await store.close()

    store = open_sqlite(path)
    try:
        resumed = await store.resume(b"1" * 32, 5.0)
        assert resumed.number == first.number
        assert resumed.turns == [Turn("user", "me llamo Ana"), Turn("assistant", "Hola Ana")]
        assert resumed.risk == {"level": 1}
        third = await store.create(b"3" * 32, 6.0)
        # A clean close gives the unused reserved numbers back: no gap.
        assert (first.number, second.number, third.number) == (1, 2, 3)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_after_a_crash_numbers_skip_ahead_and_are_never_reused(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    numbers = [(await store.create(bytes([i]) * 32, 1.0)).number for i in range(3)]
    store._pool.close()  # a crash: the reserved block is not given back

    store = open_sqlite(path)
    try:
        later = (await store.create(b"z" * 32, 2.0)).number
    finally:
        await store.close()
    assert numbers == [1, 2, 3]
    assert later == 1 + NUMBER_BLOCK


@pytest_twisted.ensureDeferred
async def test_numbers_are_reserved_in_blocks_not_per_connect(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    try:
        changes = []
        for i in range(NUMBER_BLOCK + 1):
            await store.create(i.to_bytes(32, "big"), 1.0)
            changes.append(await store._pool.runWithConnection(
                lambda c: c.execute("SELECT value FROM meta WHERE key='next_number'").fetchone()[0]))
        # The counter row changed twice (first block, second block), not 33 times.
        assert sorted(set(changes)) == [1 + NUMBER_BLOCK, 1 + 2 * NUMBER_BLOCK]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_forget_removes_the_text_from_the_database_files(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    secret, kept = marker(), marker()
    try:
        gone = await store.create(b"g" * 32, 1.0)
        other = await store.create(b"o" * 32, 1.0)
        await store.append(gone.id, [Turn("user", f"te cuento {secret} y más")] * 3, 10, 2.0)
        await store.append(other.id, [Turn("user", f"yo digo {kept}")], 10, 2.0)
        assert files_containing(path, secret)  # the check can see text when it is there

        await store.forget(gone.id)

        assert files_containing(path, secret) == []
        assert files_containing(path, kept)  # the other conversation is untouched
        assert (await store.resume(b"o" * 32, 3.0)).turns == [Turn("user", f"yo digo {kept}")]
    finally:
        await store.close()
    assert files_containing(path, secret) == []


@pytest_twisted.ensureDeferred
async def test_forget_also_erases_a_conversation_already_checkpointed_into_the_db(tmp_path):
    path = tmp_path / "p.db"
    secret = marker()
    store = open_sqlite(path)
    c = await store.create(b"g" * 32, 1.0)
    await store.append(c.id, [Turn("user", secret * 50)], 10, 2.0)
    await store.close()  # closing checkpoints the WAL into the main file
    assert "db" in files_containing(path, secret)

    store = open_sqlite(path)
    try:
        await store.forget(c.id)
    finally:
        await store.close()
    assert files_containing(path, secret) == []
    assert file_bytes(path)["db"]


@pytest_twisted.ensureDeferred
async def test_a_newer_schema_refuses_to_start_and_is_untouched(tmp_path):
    path = tmp_path / "p.db"
    await open_sqlite(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    before = file_bytes(path)["db"]
    with pytest.raises(StoreRefused) as raised:
        open_sqlite(path)
    assert "\n" not in str(raised.value) and "schema version" in str(raised.value)
    assert file_bytes(path)["db"] == before


@pytest_twisted.ensureDeferred
async def test_forward_migration_from_an_empty_version_table(tmp_path):
    path = tmp_path / "p.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (0)")
    db.commit()
    db.close()
    store = open_sqlite(path)
    try:
        assert isinstance(store, SqliteStore) and store.health == "ok"
        assert (await store.create(b"m" * 32, 1.0)).number == 1
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_numbers_are_never_reused_even_when_a_row_is_refused(tmp_path):
    from tests.storage_support import CapturedLog
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    try:
        with CapturedLog() as log:
            first = await store.create(b"a" * 32, 1.0)
            clash = await store.create(b"a" * 32, 1.0)  # the same secret hash: a caller's bug
            third = await store.create(b"b" * 32, 1.0)
            await store.resume(b"b" * 32, 2.0)  # after the rows' batch
        assert (first.number, clash.number, third.number) == (1, 2, 3)
        assert (await store.resume(b"a" * 32, 2.0)).id == first.id
        assert [e["log_level"].name for e in log.events] == ["critical"]
        assert "conversation row not written" in log.text()
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_connect_does_not_wait_for_the_disk_once_a_block_is_reserved(tmp_path):
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    try:
        first = store.create(b"0" * 32, 1.0)
        assert not first.called  # the first one reserves a block: it waits for the disk
        await first
        for i in range(1, NUMBER_BLOCK):
            d = store.create(i.to_bytes(32, "big"), 1.0)
            assert d.called, i  # the others fire at once; their rows are written behind
        assert not store.create(b"z" * 32, 1.0).called  # the next block
        assert (await store.resume((NUMBER_BLOCK - 1).to_bytes(32, "big"), 2.0)).number == (
            NUMBER_BLOCK)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_concurrent_operations_share_commits_and_keep_their_order(tmp_path):
    """Group commit: many callers at once, each answered exactly once, in order, and bad
    input to one of them fails only that one."""
    from twisted.internet.defer import gatherResults
    path = tmp_path / "p.db"
    store = open_sqlite(path)
    try:
        convs = await gatherResults([store.create(bytes([i]) * 32, 1.0) for i in range(20)])
        assert sorted(c.number for c in convs) == list(range(1, 21))
        calls = []
        for i in range(50):
            calls.append(store.append(convs[i % 20].id, [Turn("user", f"m{i}")], 100, 2.0 + i))
        calls.append(store.save_risk(convs[0].id, {"bad": "texto"}, 3.0))
        calls.append(store.save_risk(convs[1].id, {"level": 2}, 3.0))
        results = await gatherResults(calls[:50] + calls[51:])
        assert results == [None] * 51
        with pytest.raises(ValueError):
            await calls[50]
        for k in range(20):
            resumed = await store.resume(bytes([k]) * 32, 60.0)
            assert [t.content for t in resumed.turns] == [f"m{i}" for i in range(k, 50, 20)]
        assert (await store.resume(bytes([1]) * 32, 60.0)).risk == {"level": 2}
    finally:
        await store.close()
