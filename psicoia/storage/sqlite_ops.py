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


def insert_row(connection: Any, row: tuple) -> None:
    """The conversation's row, once (a second write of the same id is a no-op; a clashing
    secret hash is an IntegrityError)."""
    connection.execute(
        "INSERT INTO conversations (id, number, secret_hash, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", row)


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


def append(connection: Any, cid: str, rows: list, keep: int, now: float,
           cipher: Optional[TextCipher], numbers: TurnNumbers,
           risk: Optional[str] = None) -> None:
    """Add ``rows`` ((role, text) pairs) to ``cid``, keep its newest ``keep`` turns and, if
    ``risk`` (its JSON), replace its crisis state; an unknown (forgotten) conversation is left
    alone."""
    touched = connection.execute(
        "UPDATE conversations SET updated_at = ?, risk = COALESCE(?, risk) WHERE id = ?",
        (now, risk, cid)).rowcount
    if not touched:
        return
    first = numbers.take(connection, len(rows))
    if cipher is None:
        values = [(cid, seq, role, None, content)
                  for seq, (role, content) in enumerate(rows, start=first)]
    else:
        values = [(cid, seq, role, cipher.current_id, cipher.seal(content, cid))
                  for seq, (role, content) in enumerate(rows, start=first)]
    connection.executemany("INSERT INTO turns (conversation_id, seq, role, key_id, content) "
                           "VALUES (?, ?, ?, ?, ?)", values)
    if keep < 1:
        connection.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
        return
    # Older than the keep-th newest: the subquery is NULL (nothing goes) while fewer are kept.
    connection.execute(
        "DELETE FROM turns WHERE conversation_id = ?1 AND seq < (SELECT seq FROM turns "
        "WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)", (cid, keep - 1))


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
