"""
Group commit: operations on one database connection, in order, many to a transaction.

Operations queue in the reactor thread and go to the database thread together, in one
transaction: one thread hop (and one wake-up of the reactor when it comes back) and one commit
for many messages. A batch starts ``window`` seconds after the first operation that found the
queue empty, at once when an operation is ``urgent`` (someone waits for it: a read, a
reservation, a delete the user asked for), and while a batch runs the next one gathers. So a
write is committed at most about ``window`` plus one batch after it was asked, and nobody who
waits on the result waits for the window. A write with a ``key`` (the conversation it writes
to) that finds another write of the same key still waiting in the queue starts the batch at
once too: whatever the window, a key never has more than one write waiting (and one in the
batch being committed), so a crash loses at most that much of each conversation.

Each operation's effects are all or nothing. The batch first runs every operation straight
through (a run of operations whose ``work`` has a ``many`` attribute, ``many(connection,
[args, ...])`` -> one result per call, goes to it in one call: fewer statements, and each
``sqlite3`` call lets go of the GIL; a batch that is one such run and one statement, as its
``work.alone`` says, needs no BEGIN and COMMIT either); only if one fails with bad input (a duplicate key, a message that does not decrypt)
is the transaction rolled back and run again with each operation inside its own ``SAVEPOINT``,
so the bad one fails alone. A storage fault (see ``classify``) fails the whole batch.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.enterprise.adbapi import ConnectionPool
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
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


def _runs(batch: list[_Item]) -> list[list[_Item]]:
    """The batch cut into runs: consecutive operations of one ``work`` that has ``many``
    together, every other operation alone."""
    runs: list[list[_Item]] = []
    for item in batch:
        if runs and item.work is runs[-1][0].work and hasattr(item.work, "many"):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


class _BadItem(Exception):
    """The straight run met bad input: run the batch again, one savepoint per operation."""


class GroupCommit:
    """Runs operations on ``pool``'s single connection (an SQLite pool with ``cp_max=1`` in
    autocommit mode: ``isolation_level=None``).

    ``classify(exception)`` names a storage fault (or None for bad input or a bug);
    ``on_outcome(reason, wrote)`` hears about each batch before its callers do: the fault that
    sank it, or None and whether it committed a write. ``clock`` (the pool's reactor) times the
    ``window`` (seconds; 0: a batch starts at once).
    """

    def __init__(self, pool: ConnectionPool, classify: Callable[[BaseException], Optional[str]],
                 on_outcome: Callable[[Optional[str], bool], None], clock: IReactorTime,
                 window: float = 0.0) -> None:
        self._pool = pool
        self._classify = classify
        self._on_outcome = on_outcome
        self._clock = clock
        self._window = window
        self._queue: list[_Item] = []
        self._timer: Optional[IDelayedCall] = None
        self._busy = False
        self._urgent = False  # an operation in the queue is waited for
        self._keys: set = set()  # the keys of the writes waiting in the queue
        self._reopen = False  # read by the database thread at the start of a batch
        self._checkpoint_due = False  # database thread only

    def submit(self, work: Callable[..., Any], *args: Any, write: bool = True,
               checkpoint: bool = False, urgent: bool = False,
               key: Optional[str] = None) -> Deferred:
        """Queue ``work(connection, *args)`` (run in the database thread, possibly twice: it
        must only touch the database); Deferred[its result], fired once its transaction is
        committed. ``write`` False: a read (it takes no write lock, and its success says
        nothing about the disk's health). ``checkpoint``: after the commit, copy the WAL into
        the database and truncate it, so deleted text leaves both files. ``urgent``: start the
        batch now instead of after the window; ``key`` (hashable): so does a second write of
        the same key while the first still waits. Faults fail the Deferred with
        StorageUnavailable(reason); a message that does not decrypt, with
        StorageUnavailable("unreadable"); bad input, with its own exception."""
        d = Deferred()
        self._queue.append(_Item(work, args, d, write, checkpoint))
        if key is not None:
            if key in self._keys:
                urgent = True
            else:
                self._keys.add(key)
        self._urgent = self._urgent or urgent
        if not self._busy:
            self._schedule()
        return d

    def _schedule(self) -> None:
        """The connection is free and the queue not empty: start the batch now or later."""
        if self._urgent or self._window <= 0:
            self._flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(self._window, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        self._busy, self._urgent = True, False
        if self._keys:
            self._keys = set()
        d = self._pool.runWithConnection(self._run_batch, batch)
        d.addBoth(self._batch_done, batch)

    def _run_batch(self, connection: Any, batch: list[_Item]) -> list:
        """Database thread: one transaction for the whole batch; returns one
        ``(ok, value_or_exception)`` per item, or raises the fault that sank the batch."""
        if self._reopen:
            self._reopen = False
            connection.reconnect()
        begin = "BEGIN IMMEDIATE" if any(item.write for item in batch) else "BEGIN"
        try:
            outcomes = self._alone(connection, batch)
            if outcomes is None:
                outcomes = self._transaction(connection, batch, begin, careful=False)
        except _BadItem:
            outcomes = self._transaction(connection, batch, begin, careful=True)
        if self._checkpoint_due or any(item.checkpoint for item in batch):
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            self._checkpoint_due = bool(busy)  # a reader (a backup) held it: next batch
        return outcomes

    def _alone(self, connection: Any, batch: list[_Item]) -> Optional[list]:
        """A batch that is one run of a ``work`` whose ``alone(args_list)`` says its ``many``
        is a single statement runs without BEGIN and COMMIT (SQLite makes the statement its
        own transaction: all or nothing); the outcomes, or None when that does not apply."""
        work = batch[0].work
        alone = getattr(work, "alone", None)
        if alone is None or any(item.work is not work for item in batch):
            return None
        calls = [item.args for item in batch]
        if not alone(calls):
            return None
        try:
            values = work.many(connection, calls)
        except Exception as error:
            if self._classify(error) is not None:
                raise
            raise _BadItem() from error
        return [(True, value) for value in values]

    def _transaction(self, connection: Any, batch: list[_Item], begin: str,
                     careful: bool) -> list:
        """Run the batch in one transaction. Not ``careful``: straight through (runs of one
        ``work.many`` in one call), and the first operation that fails with bad input rolls
        it all back (:class:`_BadItem`); ``careful``: each operation alone in its own
        savepoint, bad input fails that one alone."""
        connection.execute(begin)
        try:
            if careful:
                outcomes = [self._careful(connection, item) for item in batch]
            else:
                outcomes = []
                try:
                    for run in _runs(batch):
                        if len(run) == 1:
                            outcomes.append((True, run[0].work(connection, *run[0].args)))
                        else:
                            values = run[0].work.many(connection, [item.args for item in run])
                            outcomes.extend((True, value) for value in values)
                except Exception as error:
                    if self._classify(error) is not None or not connection.in_transaction:
                        raise
                    raise _BadItem() from error
            connection.execute("COMMIT")
        except BaseException:
            connection.rollback()
            raise
        return outcomes

    def _careful(self, connection: Any, item: _Item) -> tuple:
        connection.execute("SAVEPOINT item")
        try:
            value = item.work(connection, *item.args)
        except Exception as error:
            if self._classify(error) is not None or not connection.in_transaction:
                raise
            connection.execute("ROLLBACK TO item")
            connection.execute("RELEASE item")
            return (False, error)
        connection.execute("RELEASE item")
        return (True, value)

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
            self._schedule()
