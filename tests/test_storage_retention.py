"""Stored conversations expire retention_hours after their last message: a LoopingCall on
the injected clock purges them, and their text leaves the files."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.task import Clock

from psicoia.chat.ports import Turn
from psicoia.storage.memory import MemoryStore
from psicoia.storage.retention import RetentionService
from tests.storage_support import eventually, files_containing, marker, open_sqlite

HOUR = 3600.0


@pytest_twisted.ensureDeferred
async def test_retention_purges_expired_conversations_from_the_files(tmp_path):
    path = tmp_path / "p.db"
    clock = Clock()
    clock.advance(1_000_000)
    store = open_sqlite(path, clock)
    old_text, new_text = marker(), marker()
    service = RetentionService(store, clock, retention_hours=168, interval_seconds=600)
    try:
        old = await store.create(b"o" * 32, clock.seconds())
        await store.append(old.id, [Turn("user", old_text)], 10, clock.seconds())
        service.startService()  # purges once at start: nothing is old yet
        clock.advance(100 * HOUR)
        new = await store.create(b"n" * 32, clock.seconds())
        await store.append(new.id, [Turn("user", new_text)], 10, clock.seconds())
        assert files_containing(path, old_text)

        clock.advance(68 * HOUR + 600)  # the old one is now past 168 h; the loop ticks
        await eventually(lambda: not files_containing(path, old_text))
        assert await store.resume(b"o" * 32, clock.seconds()) is None
        assert (await store.resume(b"n" * 32, clock.seconds())).turns == [
            Turn("user", new_text)]
    finally:
        service.stopService()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_retention_keeps_ticking_when_the_storage_is_down():
    clock = Clock()
    store = MemoryStore()
    service = RetentionService(store, clock, retention_hours=1, interval_seconds=60)
    c = await store.create(b"a" * 32, 0.0)
    store.set_available(False)
    service.startService()
    clock.advance(2 * HOUR)  # ticks fail quietly: the store is down
    assert service._loop.running
    store.set_available(True)
    clock.advance(60)
    assert await store.resume(b"a" * 32, 0.0) is None
    service.stopService()
    assert not clock.getDelayedCalls()
    assert c.number == 1


@pytest_twisted.ensureDeferred
async def test_purge_once_counts_what_it_deleted():
    clock = Clock()
    clock.advance(10 * HOUR)
    store = MemoryStore()
    for i in range(3):
        await store.create(bytes([i]) * 32, 0.0)
    await store.create(b"z" * 32, 10 * HOUR)
    service = RetentionService(store, clock, retention_hours=5)
    assert await service.purge_once() == 3
