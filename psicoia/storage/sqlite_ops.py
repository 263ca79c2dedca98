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
    """Several :func:`append` calls (their argument tuples, in order) in a few statements per
    :data:`CHUNK`: one UPDATE for every touch, one INSERT for every turn, one DELETE per
    ``keep`` for the trims, whatever the number of messages. Each ``sqlite3`` call lets go of
    the GIL and must take it back from a busy reactor thread (bench/analysis.md "(s)"), so
    the count of calls per batch is what this saves. One result (None) per call."""
    conversation_rows = [call[0] for call in calls if call[0] is not None]
    if conversation_rows:
        connection.executemany(INSERT_ROW, conversation_rows)
    for start in range(0, len(calls), CHUNK):
        _append_chunk(connection, calls[start:start + CHUNK])
    return [None] * len(calls)


def _append_chunk(connection: Any, calls: list) -> None:
    touches: dict = {}  # cid -> [now, risk]: the last time, the last crisis state given
    turns: list = []
    trims: dict = {}  # keep -> cids
    numbers = calls[0][6]
    seq = numbers.take(connection, sum(len(call[2]) for call in calls))
    for _, cid, rows, keep, now, cipher, _, risk in calls:
        touch = touches.get(cid)
        if touch is None:
            touches[cid] = [now, risk]
        else:
            touch[0] = now
            if risk is not None:
                touch[1] = risk
        for role, content in rows:
            if cipher is None:
                turns.append((cid, seq, role, None, content))
            else:
                turns.append((cid, seq, role, cipher.current_id, cipher.seal(content, cid)))
            seq += 1
        trims.setdefault(keep, {})[cid] = None
    connection.execute(*_padded(_TOUCH, [(cid, now, risk) for cid, (now, risk)
                                         in touches.items()], 3))
    if turns:
        connection.execute(*_padded(_INSERT_TURNS, turns, 5))
    for keep, cids in trims.items():
        if keep < 1:
            connection.execute(*_padded(_CLEAR_MANY, [(cid,) for cid in cids], 1))
        else:  # older than the keep-th newest: the cut is NULL while fewer are kept
            query, values = _padded(_TRIM_MANY, [(cid,) for cid in cids], 1)
            connection.execute(query, (keep - 1, *values))


# At most this many appends per statement; the row lists are padded with NULL rows (which
# match no conversation) to a power of two, so only a few statement texts exist and the
# ``sqlite3`` module keeps each prepared (its statement cache holds 128).
CHUNK = 64
_TOUCH = ("UPDATE conversations SET updated_at = v.column2, "
          "risk = COALESCE(v.column3, conversations.risk) "
          "FROM (VALUES {}) AS v WHERE conversations.id = v.column1")
_INSERT_TURNS = ("INSERT INTO turns (conversation_id, seq, role, key_id, content) "
                 "SELECT v.column1, v.column2, v.column3, v.column4, v.column5 "
                 "FROM (VALUES {}) AS v JOIN conversations ON conversations.id = v.column1")
_CLEAR_MANY = "DELETE FROM turns WHERE conversation_id IN ({})"
# Each conversation's cut (its keep-th newest seq) found once, then only the older rows
# visited: 8.2 -> 3.2 us per message against one subquery per row (bench/analysis.md "(s)").
_TRIM_MANY = ("WITH cut (cid, seq) AS MATERIALIZED (SELECT v.column1, (SELECT s.seq "
              "FROM turns AS s WHERE s.conversation_id = v.column1 ORDER BY s.seq DESC "
              "LIMIT 1 OFFSET ?) FROM (VALUES {}) AS v) "
              "DELETE FROM turns WHERE rowid IN (SELECT t.rowid FROM cut "
              "JOIN turns AS t ON t.conversation_id = cut.cid AND t.seq < cut.seq)")
_TEXTS: dict = {}


def _padded(template: str, rows: list, width: int) -> tuple[str, list]:
    """``template`` with room for ``rows`` (tuples of ``width``) rounded up to a power of
    two, and the flat parameters (the padding NULL)."""
    size = 1 << (len(rows) - 1).bit_length()
    text = _TEXTS.get((template, size))
    if text is None:
        group = "?" if template is _CLEAR_MANY else "(" + ", ".join("?" * width) + ")"
        text = _TEXTS[(template, size)] = template.format(", ".join([group] * size))
    values = [value for row in rows for value in row]
    values.extend([None] * ((size - len(rows)) * width))
    return text, values


append.many = append_many  # type: ignore[attr-defined]  # what a batch calls (batches.py)


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
