"""
The ``sqlite`` backend (the default): one file, through ``twisted.enterprise.adbapi``.

Every read and write runs on the pool's single thread (``cp_min = cp_max = 1``: SQLite takes
one writer at a time anyway, and one thread keeps the operations in the order they were asked),
so the reactor never waits on the disk. The file is created with mode 0600 (SQLite gives its
``-wal`` and ``-shm`` files the same mode), runs in WAL mode with ``synchronous=NORMAL`` (a
process crash loses nothing that was committed; a power cut can lose the last commits) and
``secure_delete=ON`` (deleted text is overwritten, not just unlinked).

What is written when (docs/operations.md, "Data and privacy"):

- ``create``: one row (number, secret hash, times). Numbers come from blocks of
  :data:`NUMBER_BLOCK` reserved in the ``meta`` table, so most connects cost one insert and no
  counter update; a crash skips the rest of the block (numbers are never reused), a clean
  :meth:`SqliteStore.close` gives them back.
- ``append`` / ``save_risk`` / ``clear``: when the core calls them; whatever is queued while
  the thread is busy goes in one transaction (group commit, see ``_submit``).
- ``forget`` and ``purge``: delete, then ``PRAGMA wal_checkpoint(TRUNCATE)`` so the text is gone
  from the database and WAL files.

Faults (locked, full, unwritable, corrupt) fail the Deferred with StorageUnavailable and set
``health`` to "degraded"; one line is logged per change of state, and a probe every
``probe_seconds`` (plus every later write) brings it back to "ok" when the disk recovers. A file
that cannot be opened at start leaves the store degraded instead of stopping the server; only
:class:`~psicoia.storage.crypto.WrongKey` (or a schema newer than this code) stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from typing import Any, Callable, Optional, Sequence

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from psicoia.chat.ports import Conversation, IConversationStore, StorageUnavailable, Turn
from psicoia.config import ConfigError
from psicoia.ops.instruments import Instruments
from psicoia.storage.crypto import TextCipher, UnreadableText
from psicoia.storage.memory import check_risk
from psicoia.storage.sqlite_file import (SCHEMA_VERSION, PrivateConnection, StoreRefused,
                                         classify, prepare)

NUMBER_BLOCK = 32
PROBE_BYTES = 8192  # more than a page, so a full database cannot absorb it in free space

__all__ = ["NUMBER_BLOCK", "SCHEMA_VERSION", "SqliteStore", "StoreRefused"]

@implementer(IConversationStore)
class SqliteStore:
    """Conversations in one SQLite file; build it with :meth:`open`.

    ``cipher`` (None: text stored as written) seals message text; ``retention_seconds``
    makes :meth:`resume` ignore expired conversations even before the purge runs.
    """

    log = Logger()

    def __init__(self, path: str, clock: IReactorTime, reactor: Any,
                 cipher: Optional[TextCipher] = None,
                 retention_seconds: Optional[float] = None,
                 key_env: str = "STORAGE_ENCRYPTION_KEY",
                 busy_timeout: float = 1.0, probe_seconds: float = 5.0,
                 instruments: Optional[Instruments] = None) -> None:
        self.path = os.path.abspath(path)
        self.health = "ok"
        self.reason: Optional[str] = None  # the last fault, for /readyz details
        self._clock = clock
        self._cipher = cipher
        self._retention = retention_seconds
        self._key_env = key_env
        self._instruments = instruments or Instruments()
        # Database-thread state: the reserved block of numbers [next, limit) as committed,
        # and as used by the transaction in progress.
        self._next_number = self._number_limit = 0
        self._pending_next = self._pending_limit = 0
        self._reconnect = False
        self._checkpoint_due = False
        # Reactor-thread state: the group-commit queue.
        self._queue: list[_Item] = []
        self._busy = False
        self._closed = False
        self._probe = LoopingCall(self.probe)
        self._probe.clock = clock
        self._probe_seconds = probe_seconds
        self._pool = adbapi.ConnectionPool(
            "sqlite3", self.path, timeout=busy_timeout, check_same_thread=False,
            isolation_level=None, factory=PrivateConnection,
            cp_min=1, cp_max=1, cp_openfun=self._prepare, cp_reactor=reactor)

    @classmethod
    def open(cls, path: str, clock: IReactorTime, reactor: Any, **options: Any) -> "SqliteStore":
        """Build the store and check its file now, before the service starts.

        Runs once in the calling thread (start-up, before the reactor serves anyone): creates
        the file (0600), applies the migrations and checks the encryption keys. Raises WrongKey
        or StoreRefused (ConfigError subclasses: the server must not start); any other fault
        returns a store that starts "degraded" and keeps probing.
        """
        store = cls(path, clock, reactor, **options)
        try:
            connection = PrivateConnection(store.path, timeout=options.get("busy_timeout", 1.0),
                                           isolation_level=None)
            try:
                store._prepare(connection)
            finally:
                connection.close()
        except ConfigError:
            store._pool.close()
            raise
        except Exception as error:
            reason = classify(error)
            if reason is None:
                store._pool.close()
                raise
            store._set_health("degraded", reason)
        return store

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Every new connection (the pool's, or the check in :meth:`open`)."""
        prepare(connection, self.path, self._cipher, self._key_env)

    # -- running operations -----------------------------------------------------------------
    #
    # Group commit: operations queue in the reactor thread; while the database thread works
    # on one batch, the next ones wait, and then all of them go in one transaction (one thread
    # hop and one commit for many messages under load; no added wait when idle). Each
    # operation runs inside its own SAVEPOINT, so bad input to one (a duplicate secret hash,
    # text in the risk state) fails only that one. A storage fault fails the whole batch.

    def _submit(self, work: Callable[..., Any], *args: Any, write: bool = True,
                checkpoint: bool = False) -> Deferred:
        """Queue ``work(connection, *args)``; Deferred[its result]. Faults become
        StorageUnavailable and update ``health`` (a committed write restores it)."""
        if self._closed:
            return fail(StorageUnavailable("closed"))
        d = Deferred()
        self._queue.append(_Item(work, args, d, write, checkpoint))
        if not self._busy:
            self._flush()
        return d

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        self._busy = True
        d = self._pool.runWithConnection(self._run_batch, batch)
        d.addBoth(self._batch_done, batch)

    def _run_batch(self, connection: Any, batch: list["_Item"]) -> list:
        """Database thread: one transaction for the whole batch; returns one
        ``(ok, value_or_exception)`` per item, or raises the fault that sank the batch."""
        if self._reconnect:
            self._reconnect = False
            connection.reconnect()
        writes = any(item.write for item in batch)
        connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        outcomes: list = []
        try:
            for item in batch:
                connection.execute("SAVEPOINT item")
                numbers = self._pending_next, self._pending_limit
                try:
                    value = item.work(connection, *item.args)
                except Exception as error:
                    if classify(error) is not None or not connection.in_transaction:
                        raise
                    connection.execute("ROLLBACK TO item")
                    connection.execute("RELEASE item")
                    self._pending_next, self._pending_limit = numbers
                    outcomes.append((False, error))
                else:
                    connection.execute("RELEASE item")
                    outcomes.append((True, value))
            connection.execute("COMMIT")
        except BaseException:
            connection.rollback()
            # Only what was committed before counts: reservations in this batch are undone.
            self._pending_next, self._pending_limit = self._next_number, self._number_limit
            raise
        self._commit_numbers()
        if self._checkpoint_due or any(item.checkpoint for item in batch):
            # Copy the WAL into the database and truncate it: deleted text leaves both files.
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            self._checkpoint_due = bool(busy)  # a reader (a backup) held it: next batch
        return outcomes

    def _batch_done(self, result: Any, batch: list["_Item"]) -> None:
        self._busy = False
        if isinstance(result, Failure):
            reason = classify(result.value)
            if reason is None:  # a bug: surface it to every caller as it is
                outcomes = [(False, result.value)] * len(batch)
            else:
                if reason in ("corrupt", "wrong_key", "newer_schema", "io"):
                    self._reconnect = True  # the file may be replaced: open it afresh
                self._set_health("degraded", reason)
                outcomes = [(False, StorageUnavailable(reason))] * len(batch)
        else:
            outcomes = result
            if self.health != "ok" and any(item.write for item in batch):
                self._set_health("ok", None)
        for item, (ok, value) in zip(batch, outcomes):
            if ok:
                item.deferred.callback(value)
            elif isinstance(value, UnreadableText):
                item.deferred.errback(StorageUnavailable("unreadable"))
            else:
                item.deferred.errback(value)
        if self._queue and not self._busy:
            self._flush()

    def _set_health(self, state: str, reason: Optional[str]) -> None:
        if state == self.health and (state == "ok" or reason == self.reason):
            return
        self.health, self.reason = state, reason
        if state == "ok":
            self.log.info("storage ok again: {path}", path=self.path)
            if self._probe.running:
                self._probe.stop()
        else:
            self.log.warn("storage degraded ({reason}): {path}; conversations continue in "
                          "memory until it recovers", reason=reason, path=self.path)
            if not self._probe.running and not self._closed:
                self._probe.start(self._probe_seconds, now=False)
        self._instruments.storage_changed(state, reason or "")

    def probe(self) -> Deferred:
        """Try a small write now; Deferred[str], the health afterwards. Runs by itself every
        ``probe_seconds`` while degraded."""
        def still_down(failure: Failure) -> None:
            failure.trap(StorageUnavailable)  # already logged by the change of state

        d = self._submit(_probe).addErrback(still_down)
        return d.addCallback(lambda _: self.health)

    # -- IConversationStore -----------------------------------------------------------------

    def create(self, secret_hash: bytes, now: float) -> Deferred:
        """A new conversation with a never-reused number; Deferred[Conversation]. Fails with
        StorageUnavailable, or IntegrityError if ``secret_hash`` is already in use."""
        return self._submit(self._create, bytes(secret_hash), secrets.token_hex(16), float(now))

    def _create(self, connection: Any, secret_hash: bytes, cid: str, now: float) -> Conversation:
        if self._pending_next >= self._pending_limit:
            (start,) = connection.execute(
                "SELECT value FROM meta WHERE key = 'next_number'").fetchone()
            connection.execute("UPDATE meta SET value = ? WHERE key = 'next_number'",
                               (start + NUMBER_BLOCK,))
            self._pending_next, self._pending_limit = start, start + NUMBER_BLOCK
        number = self._pending_next
        connection.execute(
            "INSERT INTO conversations (id, number, secret_hash, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", (cid, number, secret_hash, now, now))
        self._pending_next = number + 1
        return Conversation(id=cid, number=number, created_at=now, updated_at=now)

    def _commit_numbers(self) -> None:
        """After a commit: the numbers used and reserved in it are now on disk."""
        self._next_number, self._number_limit = self._pending_next, self._pending_limit

    def resume(self, secret_hash: bytes, now: float) -> Deferred:
        """Deferred[Conversation or None]; expired ones (older than the retention) are None."""
        oldest = float("-inf") if self._retention is None else float(now) - self._retention
        return self._submit(self._resume, bytes(secret_hash), oldest, write=False)

    def _resume(self, connection: Any, secret_hash: bytes, oldest: float
                ) -> Optional[Conversation]:
        row = connection.execute(
            "SELECT id, number, created_at, updated_at, risk FROM conversations "
            "WHERE secret_hash = ? AND updated_at >= ?", (secret_hash, oldest)).fetchone()
        if row is None:
            return None
        cid, number, created_at, updated_at, risk = row
        turns = [Turn(role, self._open(content, key, cid)) for role, key, content in
                 connection.execute("SELECT role, key_id, content FROM turns "
                                    "WHERE conversation_id = ? ORDER BY seq", (cid,))]
        return Conversation(id=cid, number=number, created_at=created_at,
                            updated_at=updated_at, turns=turns, risk=json.loads(risk))

    def _open(self, content: Any, key: Optional[bytes], cid: str) -> str:
        if key is None:
            return content
        if self._cipher is None:
            raise UnreadableText("encrypted text and no key")
        return self._cipher.open(content, cid)

    def append(self, conversation_id: str, turns: Sequence[Turn], keep: int,
               now: float) -> Deferred:
        """Add ``turns``, keep the newest ``keep``; Deferred[None]. An unknown (forgotten)
        conversation is ignored."""
        rows = [(t.role, t.content) for t in turns]
        return self._submit(self._append, conversation_id, rows, int(keep), float(now))

    def _append(self, connection: Any, cid: str, rows: list, keep: int, now: float) -> None:
        cipher = self._cipher
        touched = connection.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid)).rowcount
        if not touched:
            return
        (last,) = connection.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM turns WHERE conversation_id = ?",
            (cid,)).fetchone()
        connection.executemany(
            "INSERT INTO turns (conversation_id, seq, role, key_id, content) "
            "VALUES (?, ?, ?, ?, ?)",
            [(cid, last + i, role,
              cipher.current_id if cipher else None,
              cipher.seal(content, cid) if cipher else content)
             for i, (role, content) in enumerate(rows, start=1)])
        connection.execute("DELETE FROM turns WHERE conversation_id = ? AND seq <= ?",
                           (cid, last + len(rows) - keep))

    def save_risk(self, conversation_id: str, risk: dict, now: float) -> Deferred:
        """Replace the crisis state (numbers only: ValueError otherwise); Deferred[None]."""
        try:
            check_risk(risk)
        except ValueError as error:
            return fail(error)
        encoded = json.dumps(risk, separators=(",", ":"), sort_keys=True)
        return self._submit(_execute, "UPDATE conversations SET risk = ?, updated_at = ? "
                            "WHERE id = ?", (encoded, float(now), conversation_id))

    def clear(self, conversation_id: str, now: float) -> Deferred:
        """Delete the history, keep the conversation (number, code, risk); Deferred[None]."""
        return self._submit(_clear, conversation_id, float(now))

    def forget(self, conversation_id: str) -> Deferred:
        """Delete the conversation and checkpoint, so its text is gone from the files;
        Deferred[None]."""
        return self._submit(_forget, conversation_id, checkpoint=True)

    def purge(self, older_than: float) -> Deferred:
        """Delete conversations last touched before ``older_than`` (epoch seconds) and
        checkpoint; Deferred[int], how many."""
        return self._submit(_purge, float(older_than), checkpoint=True)

    def close(self) -> Deferred:
        """Finish what is queued, give back the unused reserved numbers, release the file;
        Deferred[None]. Idempotent."""
        if self._closed:
            return succeed(None)
        if self._probe.running:
            self._probe.stop()
        if not self._pool.running:
            self._closed = True
            self._pool.close()
            return succeed(None)
        d = self._submit(self._give_back)
        self._closed = True
        d.addErrback(lambda failure: None)  # a failed give-back only leaves a gap
        d.addBoth(lambda _: self._pool.close())
        return d

    def _give_back(self, connection: Any) -> None:
        if self._pending_next < self._pending_limit:
            connection.execute(
                "UPDATE meta SET value = ? WHERE key = 'next_number' AND value = ?",
                (self._pending_next, self._pending_limit))
            self._pending_limit = self._pending_next


class _Item:
    """One queued operation."""

    __slots__ = ("work", "args", "deferred", "write", "checkpoint")

    def __init__(self, work: Callable[..., Any], args: tuple, deferred: Deferred,
                 write: bool, checkpoint: bool) -> None:
        self.work, self.args, self.deferred = work, args, deferred
        self.write, self.checkpoint = write, checkpoint


def _execute(connection: Any, sql: str, params: tuple) -> None:
    connection.execute(sql, params)


def _clear(connection: Any, cid: str, now: float) -> None:
    connection.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
    connection.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid))


def _forget(connection: Any, cid: str) -> None:
    connection.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
    connection.execute("DELETE FROM conversations WHERE id = ?", (cid,))


def _purge(connection: Any, older_than: float) -> int:
    connection.execute(
        "DELETE FROM turns WHERE conversation_id IN "
        "(SELECT id FROM conversations WHERE updated_at < ?)", (older_than,))
    return connection.execute(
        "DELETE FROM conversations WHERE updated_at < ?", (older_than,)).rowcount


def _probe(connection: Any) -> None:
    """A write that needs a new page: fails while the disk is locked, full or read-only."""
    connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))",
                        (PROBE_BYTES,))
    connection.execute("DELETE FROM meta WHERE key = 'probe'")
