"""Faults: locked, unwritable, full, corrupt. The store says "degraded", fails with
StorageUnavailable (the core keeps answering from memory), logs one line per change of state,
shows it in a metric, and recovers when the disk does."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from psicoia.chat.ports import StorageUnavailable, Turn
from psicoia.ops.metrics import Metrics
from tests.storage_support import CapturedLog, eventually, open_sqlite


def probe_idle(store):
    """The periodic probe finished its last run (LoopingCall reschedules only then)."""
    return store._probe.call is not None or not store._probe.running


def _state_lines(log):
    return [e for e in log.events if e["log_level"].name in ("warn", "info")
            and ("degraded" in e["log_format"] or "ok again" in e["log_format"])]


def _degraded_gauge(metrics):
    return metrics.registry.get_sample_value("psicoia_storage_degraded")


@pytest_twisted.ensureDeferred
async def test_locked_database_degrades_then_recovers(tmp_path):
    path = tmp_path / "p.db"
    clock, metrics = Clock(), Metrics()
    with CapturedLog() as log:
        store = open_sqlite(path, clock, instruments=metrics, probe_seconds=5.0)
        try:
            c = await store.create(b"l" * 32, 1.0)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            for i in range(3):
                with pytest.raises(StorageUnavailable, match="locked"):
                    await store.append(c.id, [Turn("user", f"m{i}")], 10, 2.0)
            assert store.health == "degraded" and _degraded_gauge(metrics) == 1
            assert len(_state_lines(log)) == 1  # one line, however many failures

            clock.advance(5.0)  # a probe while still locked: still degraded
            await eventually(lambda: probe_idle(store))
            assert store.health == "degraded"

            other.execute("ROLLBACK")
            other.close()
            clock.advance(5.0)  # the periodic probe notices the disk is back
            await eventually(lambda: store.health == "ok")
            assert _degraded_gauge(metrics) == 0
            await store.append(c.id, [Turn("user", "de vuelta")], 10, 3.0)
            assert [t.content for t in (await store.resume(b"l" * 32, 4.0)).turns] == [
                "de vuelta"]
        finally:
            await store.close()
    lines = _state_lines(log)
    assert [e["log_level"].name for e in lines] == ["warn", "info"]
    assert metrics.registry.get_sample_value(
        "psicoia_storage_faults_total", {"reason": "locked"}) == 1


@pytest_twisted.ensureDeferred
async def test_unwritable_directory_starts_degraded_and_recovers(tmp_path):
    # Tests run as root, which ignores chmod: the "directory" is a regular file instead.
    parent = tmp_path / "data"
    parent.write_bytes(b"not a directory")
    clock = Clock()
    with CapturedLog() as log:
        store = open_sqlite(parent / "p.db", clock)  # does not raise: the server starts
        try:
            assert store.health == "degraded" and store.reason == "unwritable"
            with pytest.raises(StorageUnavailable):
                await store.create(b"u" * 32, 1.0)
            assert len(_state_lines(log)) == 1

            parent.unlink()
            parent.mkdir()
            clock.advance(5.0)
            await eventually(lambda: store.health == "ok")
            c = await store.create(b"u" * 32, 2.0)
            assert (await store.resume(b"u" * 32, 3.0)).number == c.number
        finally:
            await store.close()
    assert [e["log_level"].name for e in _state_lines(log)] == ["warn", "info"]


@pytest_twisted.ensureDeferred
async def test_missing_parent_directory_starts_degraded(tmp_path):
    store = open_sqlite(tmp_path / "nowhere" / "p.db")
    try:
        assert store.health == "degraded"
        with pytest.raises(StorageUnavailable):
            await store.resume(b"x" * 32, 1.0)
    finally:
        await store.close()
    assert not (tmp_path / "nowhere").exists()


async def _set_max_pages(store, pages):
    def limit(connection):
        return connection.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0]
    return await store._pool.runWithConnection(limit)


@pytest_twisted.ensureDeferred
async def test_disk_full_degrades_and_recovers_when_space_returns(tmp_path):
    path = tmp_path / "p.db"
    clock = Clock()
    store = open_sqlite(path, clock)
    try:
        c = await store.create(b"f" * 32, 1.0)
        used = await store._pool.runWithConnection(
            lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await _set_max_pages(store, used)  # the "disk" is full now
        with pytest.raises(StorageUnavailable, match="full"):
            await store.append(c.id, [Turn("user", "x" * 20000)], 10, 2.0)
        assert store.health == "degraded" and store.reason == "full"
        clock.advance(5.0)
        await eventually(lambda: probe_idle(store))
        assert store.health == "degraded"  # the probe's write does not fit either

        await _set_max_pages(store, 1_000_000)
        clock.advance(5.0)
        await eventually(lambda: store.health == "ok")
        await store.append(c.id, [Turn("user", "x" * 20000)], 10, 3.0)
        assert len((await store.resume(b"f" * 32, 4.0)).turns) == 1
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_corrupt_file_starts_degraded_untouched_and_recovers_when_replaced(tmp_path):
    path = tmp_path / "p.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    clock = Clock()
    with CapturedLog() as log:
        store = open_sqlite(path, clock)
        try:
            assert store.health == "degraded" and store.reason == "corrupt"
            with pytest.raises(StorageUnavailable, match="corrupt"):
                await store.create(b"c" * 32, 1.0)
            clock.advance(5.0)
            await eventually(lambda: probe_idle(store))
            assert path.read_bytes() == garbage  # never overwritten or removed
            assert len(_state_lines(log)) == 1

            # The operator restores a good file (here: a fresh one from a backup tool).
            shutil.move(str(path), str(tmp_path / "p.db.broken"))
            clock.advance(5.0)
            await eventually(lambda: store.health == "ok")
            assert (await store.create(b"c" * 32, 2.0)).number == 1
        finally:
            await store.close()


@pytest_twisted.ensureDeferred
async def test_the_log_lines_carry_no_text(tmp_path):
    path = tmp_path / "p.db"
    with CapturedLog() as log:
        store = open_sqlite(path)
        try:
            c = await store.create(b"t" * 32, 1.0)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StorageUnavailable):
                await store.append(c.id, [Turn("user", "MENSAJE-PRIVADO")], 10, 2.0)
            other.execute("ROLLBACK")
            other.close()
            await store.append(c.id, [Turn("user", "MENSAJE-PRIVADO")], 10, 3.0)
        finally:
            await store.close()
    assert log.events and "MENSAJE-PRIVADO" not in log.text()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 512 KiB filesystem (tmpfs), so "disk full" is a genuine ENOSPC. Needs root and
    mount(2); skipped (with a reason) where the sandbox forbids it."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs",
                              str(mountpoint)], capture_output=True, timeout=10)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=10)


@pytest_twisted.ensureDeferred
async def test_a_really_full_disk_degrades_and_recovers_when_space_is_freed(tiny_disk):
    path = tiny_disk / "p.db"
    clock = Clock()
    store = open_sqlite(path, clock)
    try:
        c = await store.create(b"d" * 32, 1.0)
        filler = tiny_disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:  # take every free byte
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        with pytest.raises(StorageUnavailable):
            for i in range(20):  # the WAL grows until the filesystem refuses
                await store.append(c.id, [Turn("user", "x" * 8000)], 100, 2.0 + i)
        assert store.health == "degraded" and store.reason in ("full", "io")

        filler.unlink()
        clock.advance(5.0)
        await eventually(lambda: store.health == "ok")
        await store.append(c.id, [Turn("user", "hay lugar")], 100, 30.0)
        assert (await store.resume(b"d" * 32, 31.0)).turns[-1] == Turn("user", "hay lugar")
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_conversation_started_while_locked_is_written_when_the_disk_recovers(tmp_path):
    path = tmp_path / "p.db"
    clock = Clock()
    store = open_sqlite(path, clock)
    try:
        await store.create(b"0" * 32, 1.0)  # a block of numbers is reserved
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        c = await store.create(b"w" * 32, 2.0)  # answered from the reserved block
        with pytest.raises(StorageUnavailable):
            await store.append(c.id, [Turn("user", "durante el bloqueo")], 10, 3.0)
        assert store.health == "degraded"
        other.execute("ROLLBACK")
        other.close()
        clock.advance(5.0)
        await eventually(lambda: store.health == "ok")
        await store.append(c.id, [Turn("user", "después")], 10, 4.0)
        resumed = await store.resume(b"w" * 32, 5.0)
        assert resumed.number == c.number == 2
        assert resumed.turns == [Turn("user", "después")]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_first_message_sent_while_its_row_failed_is_still_stored(tmp_path):
    """The row of a new conversation is written behind. If that write fails and the disk is
    back by the time the first message is written, the message brings the row with it."""
    path = tmp_path / "p.db"
    store = open_sqlite(path, busy_timeout=1.0)
    try:
        await store.create(b"0" * 32, 1.0)  # a block of numbers is reserved
        await store.resume(b"0" * 32, 1.0)  # and the store is idle
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        other.execute("BEGIN EXCLUSIVE")
        c = await store.create(b"w" * 32, 2.0)  # its row waits for the lock, then fails
        await eventually(lambda: store.health == "degraded")  # the row's write failed
        first = store.append(c.id, [Turn("user", "primer mensaje")], 10, 3.0)
        assert not first.called  # the message's write now waits for the lock...
        other.execute("ROLLBACK")  # ...which goes before it gives up
        other.close()
        await first
        resumed = await store.resume(b"w" * 32, 4.0)
        assert resumed.number == c.number and resumed.turns == [Turn("user", "primer mensaje")]
        assert store.health == "ok"
    finally:
        await store.close()
