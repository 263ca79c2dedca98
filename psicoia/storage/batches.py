"""
Group commit: operations on one database connection, in order, many to a transaction.

Operations queue in the reactor thread. While the database thread works on one batch the next
ones wait, and then all of them go in one transaction: one thread hop and one commit for many
messages under load, and no added wait when idle. Each operation runs inside its own
``SAVEPOINT``, so bad input to one (a duplicate key, a message that does not decrypt) fails
only that one; a storage fault (see ``classify``) fails the whole batch.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.enterprise.adbapi import ConnectionPool
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from psicoia.chat.ports import StorageUnavailable
from psicoia.storage.crypto import UnreadableText

# Faults after which the file may have been replaced: open it afresh for the next batch.
REOPEN_AFTER = ("corrupt", "wrong_key", "newer_schema", "io")


class _Item:
    """One queued operation."""

    __slots__ = ("work", "args", "deferred", "write", "checkpoint")

    def __init__(self, work: Callable[..., Any], args: tuple, deferred: Deferred,
                 write: bool, checkpoint: bool) -> None:
        self.work, self.args, self.deferred = work, args, deferred
        self.write, self.checkpoint = write, checkpoint


class GroupCommit:
    """Runs operations on ``pool``'s single connection (an SQLite pool with ``cp_max=1`` in
    autocommit mode: ``isolation_level=None``).

    ``classify(exception)`` names a storage fault (or None for bad input or a bug);
    ``on_outcome(reason, wrote)`` hears about each batch before its callers do: the fault that
    sank it, or None and whether it committed a write.
    """

    def __init__(self, pool: ConnectionPool, classify: Callable[[BaseException], Optional[str]],
                 on_outcome: Callable[[Optional[str], bool], None]) -> None:
        self._pool = pool
        self._classify = classify
        self._on_outcome = on_outcome
        self._queue: list[_Item] = []
        self._busy = False
        self._reopen = False  # read by the database thread at the start of a batch
        self._checkpoint_due = False  # database thread only

    def submit(self, work: Callable[..., Any], *args: Any, write: bool = True,
               checkpoint: bool = False) -> Deferred:
        """Queue ``work(connection, *args)`` (run in the database thread); Deferred[its
        result]. ``write`` False: a read (it takes no write lock, and its success says nothing
        about the disk's health). ``checkpoint``: after the commit, copy the WAL into the
        database and truncate it, so deleted text leaves both files. Faults fail the Deferred
        with StorageUnavailable(reason); a message that does not decrypt, with
        StorageUnavailable("unreadable"); bad input, with its own exception."""
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

    def _run_batch(self, connection: Any, batch: list[_Item]) -> list:
        """Database thread: one transaction for the whole batch; returns one
        ``(ok, value_or_exception)`` per item, or raises the fault that sank the batch."""
        if self._reopen:
            self._reopen = False
            connection.reconnect()
        writes = any(item.write for item in batch)
        connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        outcomes: list = []
        try:
            for item in batch:
                connection.execute("SAVEPOINT item")
                try:
                    value = item.work(connection, *item.args)
                except Exception as error:
                    if self._classify(error) is not None or not connection.in_transaction:
                        raise
                    connection.execute("ROLLBACK TO item")
                    connection.execute("RELEASE item")
                    outcomes.append((False, error))
                else:
                    connection.execute("RELEASE item")
                    outcomes.append((True, value))
            connection.execute("COMMIT")
        except BaseException:
            connection.rollback()
            raise
        if self._checkpoint_due or any(item.checkpoint for item in batch):
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            self._checkpoint_due = bool(busy)  # a reader (a backup) held it: next batch
        return outcomes

    def _batch_done(self, result: Any, batch: list[_Item]) -> None:
        self._busy = False
        if isinstance(result, Failure):
            reason = self._classify(result.value)
            if reason is None:  # a bug: surface it to every caller as it is
                outcomes = [(False, result.value)] * len(batch)
            else:
                if reason in REOPEN_AFTER:
                    self._reopen = True
                self._on_outcome(reason, False)
                outcomes = [(False, StorageUnavailable(reason))] * len(batch)
        else:
            outcomes = result
            self._on_outcome(None, any(item.write for item in batch))
        for item, (ok, value) in zip(batch, outcomes):
            if ok:
                item.deferred.callback(value)
            elif isinstance(value, UnreadableText):
                item.deferred.errback(StorageUnavailable("unreadable"))
            else:
                item.deferred.errback(value)
        if self._queue and not self._busy:
            self._flush()
