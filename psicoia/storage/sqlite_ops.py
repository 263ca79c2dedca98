"""
The SQL of each :class:`~psicoia.storage.sqlite.SqliteStore` operation, run in the database
thread inside a group-commit transaction (:mod:`psicoia.storage.batches`).

Each function takes the connection first; none touches the reactor or the store's state, so a
batch can run them again after a rollback.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from psicoia.chat.ports import Conversation, Turn
from psicoia.storage.crypto import TextCipher, UnreadableText

NUMBER_BLOCK = 32
PROBE_BYTES = 8192  # more than a page, so a full database cannot absorb it in free space


class TurnNumbers:
    """Where each stored turn goes in its conversation's order, without a read per message.

    A turn's ``seq`` only has to grow within its conversation, so one counter serves the whole
    file: read once per connection (the largest ``seq`` stored), then counted in memory. Used
    only from the database thread; :meth:`reset` when the connection is (re)opened. One file,
    one process (docs/operations.md), so nothing else writes turns behind its back.
    """

    def __init__(self) -> None:
        self._last: Optional[int] = None

    def reset(self) -> None:
        self._last = None

    def take(self, connection: Any, count: int) -> int:
        """Reserve ``count`` numbers; the first of them."""
        if self._last is None:
            (self._last,) = connection.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM turns").fetchone()
        first = self._last + 1
        self._last += count
        return first


def reserve_block(connection: Any) -> tuple[int, int]:
    """Move the counter one block on; the block [start, start + NUMBER_BLOCK) is ours."""
    (start,) = connection.execute("SELECT value FROM meta WHERE key = 'next_number'").fetchone()
    connection.execute("UPDATE meta SET value = ? WHERE key = 'next_number'",
                       (start + NUMBER_BLOCK,))
    return start, start + NUMBER_BLOCK


def give_back(connection: Any, next_number: int, limit: int) -> None:
    """Return the unused rest of the reserved block (a clean stop)."""
    if next_number < limit:
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'next_number' AND value = ?",
            (next_number, limit))


INSERT_ROW = ("INSERT INTO conversations (id, number, secret_hash, created_at, updated_at) "
              "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")


def insert_row(connection: Any, row: tuple) -> None:
    """The conversation's row, once (a second write of the same id is a no-op; a clashing
    secret hash is an IntegrityError)."""
    connection.execute(INSERT_ROW, row)


def with_row(connection: Any, row: Optional[tuple], work: Callable[..., Any],
             *args: Any) -> Any:
    """``work(connection, *args)``, after the conversation's ``row`` if it may be missing."""
    if row is not None:
        insert_row(connection, row)
    return work(connection, *args)


def resume(connection: Any, secret_hash: bytes, oldest: float,
           cipher: Optional[TextCipher]) -> Optional[Conversation]:
    """The conversation with ``secret_hash`` last touched at or after ``oldest``, or None."""
    row = connection.execute(
        "SELECT id, number, created_at, updated_at, risk FROM conversations "
        "WHERE secret_hash = ? AND updated_at >= ?", (secret_hash, oldest)).fetchone()
    if row is None:
        return None
    cid, number, created_at, updated_at, risk = row
    turns = [Turn(role, _open(content, key, cid, cipher)) for role, key, content in
             connection.execute("SELECT role, key_id, content FROM turns "
                                "WHERE conversation_id = ? ORDER BY seq", (cid,))]
    return Conversation(id=cid, number=number, created_at=created_at,
                        updated_at=updated_at, turns=turns, risk=json.loads(risk))


def _open(content: Any, key: Optional[bytes], cid: str, cipher: Optional[TextCipher]) -> str:
    if key is None:
        return content
    if cipher is None:
        raise UnreadableText("encrypted text and no key")
    return cipher.open(content, cid)


def append(connection: Any, row: Optional[tuple], cid: str, rows: list, keep: int,
           now: float, cipher: Optional[TextCipher], numbers: TurnNumbers,
           risk: Optional[str] = None) -> None:
    """Add ``rows`` ((role, text) pairs) to ``cid`` (after its conversation ``row`` if that
    may be missing), keep its newest ``keep`` turns and, if ``risk`` (its JSON), replace its
    crisis state; an unknown (forgotten) conversation is left alone."""
    append_many(connection, [(row, cid, rows, keep, now, cipher, numbers, risk)])


def append_many(connection: Any, calls: list) -> list:
    """Several :func:`append` calls (their argument tuples, in order) as one INSERT into the
    ``appends`` view per :data:`CHUNK` (its trigger, :data:`APPEND_VIEW`, inserts each turn,
    touches the conversation and trims it). Each ``sqlite3`` call lets go of the GIL and must
    take it back from a busy reactor thread (bench/analysis.md "(s)"), so the count of calls
    per batch is what this saves. One result (None) per call."""
    conversation_rows = [call[0] for call in calls if call[0] is not None]
    if conversation_rows:
        connection.executemany(INSERT_ROW, conversation_rows)
    chunk: list = []
    rows = 0
    for call in calls:
        size = max(1, len(call[2]))
        if chunk and rows + size > CHUNK:
            _append_chunk(connection, chunk)
            chunk, rows = [], 0
        chunk.append(call)
        rows += size
    if chunk:
        _append_chunk(connection, chunk)
    return [None] * len(calls)


def alone(calls: list) -> bool:
    """The calls are one statement (no conversation row to write first, one chunk): a batch
    of only these needs no BEGIN and COMMIT of its own (psicoia/storage/batches.py)."""
    return (sum(max(1, len(call[2])) for call in calls) <= CHUNK
            and all(call[0] is None for call in calls))


def _append_chunk(connection: Any, calls: list) -> None:
    numbers = calls[0][6]
    seq = numbers.take(connection, sum(len(call[2]) for call in calls))
    rows: list = []
    for _, cid, turns, keep, now, cipher, _, risk in calls:
        last = len(turns) - 1
        if last < 0:  # no turn: touch and trim only
            rows.append((cid, None, None, None, None, now, risk, keep, 1))
        for index, (role, content) in enumerate(turns):
            key = None
            if cipher is not None:
                key, content = cipher.current_id, cipher.seal(content, cid)
            done = index == last
            rows.append((cid, seq, role, key, content, now, risk if done else None, keep,
                         int(done)))
            seq += 1
    size = -(-len(rows) // _STEP) * _STEP
    text = _TEXTS.get(size)
    if text is None:
        text = _TEXTS[size] = "INSERT INTO appends VALUES " + ", ".join(
            ["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * size)
    values = [value for row in rows for value in row]
    values.extend([None] * ((size - len(rows)) * 9))  # NULL rows: the trigger skips them
    connection.execute(text, values)


# About this many rows (turns) per statement (a call is never split; SQLite takes up to 32,766
# parameters, 9 a row); the rows are padded with NULL rows to a multiple of _STEP, so only 8
# statement texts exist and the ``sqlite3`` module keeps each prepared (its cache: 128). They
# hold about 0.47 MB together (1.1 MB with a step of 8: 16 texts; bench/analysis.md "(s)").
CHUNK = 128
_STEP = 16
_TEXTS: dict = {}
# Made on each connection (psicoia/storage/sqlite_file.py ``prepare``): TEMP, nothing in the
# file. One row per turn; ``last`` marks a call's last row, which touches the conversation
# (time, crisis state if given) and trims it to its newest ``keep`` turns (the cut is found
# once per call; NULL while fewer are kept). An unknown conversation gets nothing.
APPEND_VIEW = (
    "CREATE TEMP VIEW IF NOT EXISTS appends "
    "(cid, seq, role, key_id, content, now, risk, keep, last) AS "
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0",
    """CREATE TEMP TRIGGER IF NOT EXISTS appends_insert INSTEAD OF INSERT ON appends BEGIN
        INSERT INTO turns (conversation_id, seq, role, key_id, content)
            SELECT NEW.cid, NEW.seq, NEW.role, NEW.key_id, NEW.content
            WHERE NEW.role IS NOT NULL
            AND EXISTS (SELECT 1 FROM conversations WHERE id = NEW.cid);
        UPDATE conversations SET updated_at = NEW.now, risk = COALESCE(NEW.risk, risk)
            WHERE NEW.last AND id = NEW.cid;
        DELETE FROM turns WHERE NEW.last AND NEW.keep >= 1 AND conversation_id = NEW.cid
            AND seq < (SELECT seq FROM turns WHERE conversation_id = NEW.cid
                       ORDER BY seq DESC LIMIT 1 OFFSET NEW.keep - 1);
        DELETE FROM turns WHERE NEW.last AND NEW.keep < 1 AND conversation_id = NEW.cid;
    END""",
)


append.many = append_many  # type: ignore[attr-defined]  # what a batch calls (batches.py)
append.alone = alone  # type: ignore[attr-defined]


def save_risk(connection: Any, cid: str, encoded: str, now: float) -> None:
    connection.execute("UPDATE conversations SET risk = ?, updated_at = ? WHERE id = ?",
                       (encoded, now, cid))


def clear(connection: Any, cid: str, now: float) -> None:
    connection.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
    connection.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid))


def forget(connection: Any, cid: str) -> None:
    connection.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
    connection.execute("DELETE FROM conversations WHERE id = ?", (cid,))


def purge(connection: Any, older_than: float) -> int:
    connection.execute(
        "DELETE FROM turns WHERE conversation_id IN "
        "(SELECT id FROM conversations WHERE updated_at < ?)", (older_than,))
    return connection.execute(
        "DELETE FROM conversations WHERE updated_at < ?", (older_than,)).rowcount


def probe(connection: Any) -> None:
    """A write that needs a new page: fails while the disk is locked, full or read-only."""
    connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))",
                       (PROBE_BYTES,))
    connection.execute("DELETE FROM meta WHERE key = 'probe'")
