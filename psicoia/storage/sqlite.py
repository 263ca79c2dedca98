"""
The ``sqlite`` backend (the default): one file, through ``twisted.enterprise.adbapi``.

Every read and write runs on the pool's single thread (``cp_min = cp_max = 1``: SQLite takes
one writer at a time anyway, and one thread keeps the operations in the order they were asked),
so the reactor never waits on the disk. The file is created with mode 0600 (SQLite gives its
``-wal`` and ``-shm`` files the same mode), runs in WAL mode with ``synchronous=NORMAL`` (a
process crash loses nothing that was committed; a power cut can lose the last commits) and
``secure_delete=ON`` (deleted text is overwritten, not just unlinked).

What is written when (docs/operations.md, "Data and privacy"):

- ``create``: one row (number, secret hash, times), written behind: the Deferred fires at once
  with a number from a block of :data:`NUMBER_BLOCK` reserved in the ``meta`` table, so a
  connect waits for the disk only once per block; a crash skips the rest of the block (numbers
  are never reused), a clean :meth:`SqliteStore.close` gives it back. A row the disk refused
  is written when it recovers (or with the conversation's first message).
- ``append`` (an answered message: its two turns and, in the same write, the crisis state
  its arrival changed) / ``save_risk`` (only when no turns follow) / ``clear``: when the core
  calls them, grouped (group commit, :mod:`psicoia.storage.batches`): a write waits up to
  :data:`WINDOW` for others, and whatever is asked while a batch runs goes in the next one, in
  one transaction and one thread hop. A conversation's second write while its first still
  waits starts the batch at once (the writes are keyed by conversation), so each conversation
  has at most one write waiting and one being committed: a crash loses at most the message
  being answered and the last answered exchange of each conversation, never more of one
  user's conversation. Reads, reservations and deletes the user asked for (``resume``,
  ``forget``) start their batch at once. A batch's appends are one INSERT into a TEMP view
  whose trigger writes, touches and trims (:data:`~psicoia.storage.sqlite_ops.APPEND_VIEW`):
  few ``sqlite3`` calls, each of which lets go of the GIL and must take it back from the
  reactor thread (bench/analysis.md "(s)"). Turn numbers are counted in memory
  (:class:`~psicoia.storage.sqlite_ops.TurnNumbers`), so an append reads nothing; the
  ``sqlite3`` module keeps each statement prepared (its statement cache).
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
from psicoia.storage.batches import GroupCommit
from psicoia.storage import sqlite_ops as sql
from psicoia.storage.crypto import TextCipher
from psicoia.storage.memory import check_risk
from psicoia.storage.sqlite_file import (SCHEMA_VERSION, PrivateConnection, StoreRefused,
                                         classify, prepare)
from psicoia.storage.sqlite_ops import NUMBER_BLOCK

# How long (seconds) a write waits for others to share its transaction and thread hop; a
# conversation's second write does not wait (see the module docstring). bench/analysis.md
# "(s)": 0, 5, 10 and 20 ms measured.
WINDOW = 0.02
_encode_risk = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode

__all__ = ["NUMBER_BLOCK", "SCHEMA_VERSION", "WINDOW", "SqliteStore", "StoreRefused"]

@implementer(IConversationStore)
class SqliteStore:
    """Conversations in one SQLite file; build it with :meth:`open`.

    ``cipher`` (None: text stored as written) seals message text; ``retention_seconds``
    makes :meth:`resume` ignore expired conversations even before the purge runs; ``window``
    (seconds, 0: none) is how long a write waits for others to share its transaction. The
    window runs on ``reactor`` (the pool's, which also delivers the results), not ``clock``.
    """

    log = Logger()

    def __init__(self, path: str, clock: IReactorTime, reactor: Any,
                 cipher: Optional[TextCipher] = None,
                 retention_seconds: Optional[float] = None,
                 key_env: str = "STORAGE_ENCRYPTION_KEY",
                 busy_timeout: float = 1.0, probe_seconds: float = 5.0,
                 instruments: Optional[Instruments] = None, window: float = WINDOW) -> None:
        self.path = os.path.abspath(path)
        self.health = "ok"
        self.reason: Optional[str] = None  # the last fault, for /readyz details
        self._cipher = cipher
        self._retention = retention_seconds
        self._key_env = key_env
        self._instruments = instruments or Instruments()
        # Numbers: the block [next, limit) reserved on disk, and who waits for the next one.
        self._next_number = self._number_limit = 0
        self._number_waiters: list[Deferred] = []
        self._reserving = False
        # Rows of conversations handed out but not yet known to be on disk (written behind,
        # or refused by a failing disk): every write to such a conversation carries its row,
        # and they are written again when the disk recovers.
        self._unconfirmed: dict[str, tuple] = {}
        self._closed = False
        self._probe = LoopingCall(self.probe)
        self._probe.clock = clock
        self._probe_seconds = probe_seconds
        self._pool = adbapi.ConnectionPool(
            "sqlite3", self.path, timeout=busy_timeout, check_same_thread=False,
            isolation_level=None, factory=PrivateConnection,
            cp_min=1, cp_max=1, cp_openfun=self._prepare, cp_reactor=reactor)
        self._numbers = sql.TurnNumbers()  # database thread only
        self._batches = GroupCommit(self._pool, classify, self._batch_outcome, reactor, window)

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
        self._numbers.reset()

    # -- running operations (psicoia.storage.batches: group commit) --------------------------

    def _submit(self, work: Callable[..., Any], *args: Any, write: bool = True,
                checkpoint: bool = False, urgent: bool = False,
                key: Optional[str] = None) -> Deferred:
        """Queue ``work(connection, *args)``; Deferred[its result]. Faults become
        StorageUnavailable and update ``health`` (a committed write restores it). ``key``:
        the conversation written to (see :class:`~psicoia.storage.batches.GroupCommit`)."""
        if self._closed:
            return fail(StorageUnavailable("closed"))
        return self._batches.submit(work, *args, write=write, checkpoint=checkpoint,
                                    urgent=urgent, key=key)

    def _batch_outcome(self, reason: Optional[str], wrote: bool) -> None:
        if reason is not None:
            self._set_health("degraded", reason)
        elif wrote and self.health != "ok":
            self._set_health("ok", None)

    def _set_health(self, state: str, reason: Optional[str]) -> None:
        if state == self.health and (state == "ok" or reason == self.reason):
            return
        self.health, self.reason = state, reason
        if state == "ok":
            self.log.info("storage ok again: {path}", path=self.path)
            if self._probe.running:
                self._probe.stop()
            for cid, row in list(self._unconfirmed.items()):
                self._write_row(cid, row)
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

        d = self._submit(sql.probe).addErrback(still_down)
        return d.addCallback(lambda _: self.health)

    # -- IConversationStore -----------------------------------------------------------------

    def create(self, secret_hash: bytes, now: float) -> Deferred:
        """A new conversation with a never-reused number; Deferred[Conversation].

        Usually fires at once: the number comes from a block reserved on disk, and the row is
        written behind (in the next batch). Waits for the disk only when a new block must be
        reserved (one connect in :data:`NUMBER_BLOCK`); fails with StorageUnavailable only if
        that reservation fails. A row that cannot be written is kept and written when the disk
        recovers or with the conversation's first message.
        """
        if self._closed:
            return fail(StorageUnavailable("closed"))
        number = self._take_number()
        if number is not None:
            return succeed(self._new(number, bytes(secret_hash), float(now)))
        waiter = Deferred()
        self._number_waiters.append(waiter)
        self._reserve()
        return waiter.addCallback(self._new, bytes(secret_hash), float(now))

    def _take_number(self) -> Optional[int]:
        if self._next_number < self._number_limit and not self._number_waiters:
            self._next_number += 1
            return self._next_number - 1
        return None

    def _reserve(self) -> None:
        """Reserve the next block on disk, then hand numbers to the waiters in order."""
        if self._reserving:
            return
        self._reserving = True

        def reserved(block: tuple[int, int]) -> None:
            self._reserving = False
            self._next_number, self._number_limit = block
            while self._number_waiters and self._next_number < self._number_limit:
                self._next_number += 1
                self._number_waiters.pop(0).callback(self._next_number - 1)
            if self._number_waiters:
                self._reserve()

        def failed(failure: Failure) -> None:
            self._reserving = False
            waiters, self._number_waiters = self._number_waiters, []
            for waiter in waiters:
                waiter.errback(failure)

        self._submit(sql.reserve_block, urgent=True).addCallbacks(reserved, failed)

    def _new(self, number: int, secret_hash: bytes, now: float) -> Conversation:
        conversation = Conversation(id=secrets.token_hex(16), number=number,
                                    created_at=now, updated_at=now)
        self._write_row(conversation.id, (conversation.id, number, secret_hash, now, now))
        return conversation

    def _write_row(self, cid: str, row: tuple) -> None:
        self._unconfirmed[cid] = row
        self._submit(sql.insert_row, row).addCallbacks(
            lambda _: self._confirmed(cid), self._row_refused, errbackArgs=(cid,))

    def _confirmed(self, cid: str, result: Any = None) -> Any:
        self._unconfirmed.pop(cid, None)
        return result

    def _confirmed_result(self, result: Any, cid: str) -> Any:
        return self._confirmed(cid, result)

    def _row_refused(self, failure: Failure, cid: str) -> None:
        if not failure.check(StorageUnavailable):  # a duplicate secret hash: a caller's bug
            self._unconfirmed.pop(cid, None)
            self.log.failure("conversation row not written", failure)

    def _write(self, work: Callable[..., Any], cid: str, *args: Any) -> Deferred:
        """A write to conversation ``cid``: ``work(connection, cid, *args)``, after its row
        if that may not be on disk yet (the row's own write may still be in flight, or
        have failed)."""
        row = self._unconfirmed.get(cid)
        d = self._submit(sql.with_row, row, work, cid, *args, key=cid)
        if row is not None:
            d.addCallback(lambda result: self._confirmed(cid, result))
        return d

    def resume(self, secret_hash: bytes, now: float) -> Deferred:
        """Deferred[Conversation or None]; expired ones (older than the retention) are None."""
        oldest = float("-inf") if self._retention is None else float(now) - self._retention
        return self._submit(sql.resume, bytes(secret_hash), oldest, self._cipher,
                            write=False, urgent=True)

    def append(self, conversation_id: str, turns: Sequence[Turn], keep: int,
               now: float, risk: Optional[dict] = None) -> Deferred:
        """Add ``turns``, keep the newest ``keep``, and replace the crisis state if ``risk``
        (numbers only: ValueError otherwise, nothing written); Deferred[None]. An unknown
        (forgotten) conversation is ignored."""
        encoded = None
        if risk is not None:
            try:
                check_risk(risk)
            except ValueError as error:
                return fail(error)
            encoded = _encode_risk(risk)
        rows = [(t.role, t.content) for t in turns]
        row = self._unconfirmed.get(conversation_id)
        d = self._submit(sql.append, row, conversation_id, rows, int(keep), float(now),
                         self._cipher, self._numbers, encoded, key=conversation_id)
        if row is not None:
            d.addCallback(self._confirmed_result, conversation_id)
        return d

    def save_risk(self, conversation_id: str, risk: dict, now: float) -> Deferred:
        """Replace the crisis state (numbers only: ValueError otherwise); Deferred[None]."""
        try:
            check_risk(risk)
        except ValueError as error:
            return fail(error)
        encoded = _encode_risk(risk)
        return self._write(sql.save_risk, conversation_id, encoded, float(now))

    def clear(self, conversation_id: str, now: float) -> Deferred:
        """Delete the history, keep the conversation (number, code, risk); Deferred[None]."""
        return self._write(sql.clear, conversation_id, float(now))

    def forget(self, conversation_id: str) -> Deferred:
        """Delete the conversation and checkpoint, so its text is gone from the files;
        Deferred[None]."""
        self._unconfirmed.pop(conversation_id, None)
        return self._submit(sql.forget, conversation_id, checkpoint=True, urgent=True)

    def purge(self, older_than: float) -> Deferred:
        """Delete conversations last touched before ``older_than`` (epoch seconds) and
        checkpoint; Deferred[int], how many."""
        for cid, row in list(self._unconfirmed.items()):
            if row[4] < older_than:
                del self._unconfirmed[cid]
        return self._submit(sql.purge, float(older_than), checkpoint=True, urgent=True)

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
        d = self._submit(sql.give_back, self._next_number, self._number_limit, urgent=True)
        self._closed = True
        d.addErrback(lambda failure: None)  # a failed give-back only leaves a gap
        d.addBoth(lambda _: self._pool.close())
        return d
