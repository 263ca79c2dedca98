"""
The SQLite file itself: created private (0600), set up per connection, migrated forward,
checked against the encryption keys, and what its errors mean (:func:`classify`).

:class:`~psicoia.storage.sqlite.SqliteStore` runs on top of this; the schema (one row per
conversation, one per turn, a ``meta`` table for the number counter and key check values, and
``schema_version``) is documented in docs/operations.md, "Data and privacy".
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Optional

from psicoia.config import ConfigError
from psicoia.storage.crypto import TextCipher, WrongKey
from psicoia.storage.sqlite_ops import APPEND_VIEW

# Forward migrations: MIGRATIONS[n] takes the schema from version n to n + 1. Never edit a
# released entry; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value)",
        "INSERT INTO meta (key, value) VALUES ('next_number', 1)",
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            number INTEGER NOT NULL UNIQUE,
            secret_hash BLOB NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            risk TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX conversations_by_update ON conversations (updated_at)",
        """CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            key_id BLOB,
            content NOT NULL,
            PRIMARY KEY (conversation_id, seq))""",
        "CREATE INDEX turns_by_key ON turns (key_id) WHERE key_id IS NOT NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreRefused(ConfigError):
    """The database file is one this code must not touch (a newer schema)."""


class PrivateConnection(sqlite3.Connection):
    """An sqlite3 connection whose file is created (or tightened) to mode 0600 first."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        fd = os.open(database, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        super().__init__(database, *args, **kwargs)


def classify(error: BaseException) -> Optional[str]:
    """The fault behind ``error`` as a short reason for logs and metrics (``locked``,
    ``full``, ``unwritable``, ``corrupt``, ``io``, ``wrong_key``, ``newer_schema``), or None
    when it is not a storage fault (a bug, or bad input to one operation: it propagates as it
    is)."""
    if isinstance(error, WrongKey):
        return "wrong_key"
    if isinstance(error, StoreRefused):
        return "newer_schema"
    if isinstance(error, (sqlite3.IntegrityError, sqlite3.ProgrammingError,
                          sqlite3.InterfaceError)):
        return None
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return "locked"
        if name == "SQLITE_FULL":
            return "full"
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM",
                            "SQLITE_AUTH")):
            return "unwritable"
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return "corrupt"
        return "io"
    if isinstance(error, OSError):
        return "full" if error.errno == 28 else "unwritable"  # ENOSPC
    return None


def prepare(connection: sqlite3.Connection, path: str, cipher: Optional[TextCipher],
            key_env: str) -> None:
    """Set up one connection to the file at ``path``: WAL, ``synchronous=NORMAL``,
    ``secure_delete``, foreign keys; apply the forward migrations; check the encryption keys
    (:func:`check_keys`); keep the ``-wal`` and ``-shm`` files at mode 0600. Raises WrongKey
    or StoreRefused (the file is left as it was), or sqlite3/OS errors (see :func:`classify`).
    """
    connection.execute("PRAGMA journal_mode=WAL").fetchall()
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA secure_delete=ON")
    connection.execute("PRAGMA foreign_keys=ON")
    migrate(connection, path)
    for statement in APPEND_VIEW:
        connection.execute(statement)
    check_keys(connection, path, cipher, key_env)
    for suffix in ("-wal", "-shm"):
        try:
            os.chmod(path + suffix, 0o600)
        except FileNotFoundError:
            pass

def migrate(connection: sqlite3.Connection, path: str) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, in one transaction; refuse a newer one."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = connection.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            connection.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0
        else:
            version = row[0]
        if version > SCHEMA_VERSION:
            raise StoreRefused(
                f"storage.sqlite_path: {path} has schema version {version}, newer than "
                f"this PsicoIA understands ({SCHEMA_VERSION}); upgrade PsicoIA")
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                connection.execute(statement)
            connection.execute("UPDATE schema_version SET version = ?", (step + 1,))
        connection.execute("COMMIT")
    except BaseException:
        connection.rollback()
        raise

def check_keys(connection: sqlite3.Connection, path: str, cipher: Optional[TextCipher],
               key_env: str) -> None:
    """Refuse a key that does not fit the file, before writing anything.

    The ``meta`` table records the id of every key that has sealed text here (its check
    value), and each sealed message carries its key's id. Refused: encrypted data (or a
    file that has been encrypted) and no key; configured keys none of which was ever used
    here (a wrong key); text sealed with a key that is no longer configured.
    """
    env = f"{key_env} (storage.encryption_key_env)"
    recorded = {bytes.fromhex(name[4:]) for (name,) in connection.execute(
        "SELECT key FROM meta WHERE key LIKE 'key:%'")}
    used = {bytes(row[0]) for row in connection.execute(
        "SELECT DISTINCT key_id FROM turns WHERE key_id IS NOT NULL")}
    if cipher is None:
        if recorded or used:
            raise WrongKey(
                f"{env}: {path} was written with encryption on but no key is set; "
                "set the key it was written with (nothing was changed)")
        return
    configured = cipher.key_ids
    if recorded and not recorded & configured:
        raise WrongKey(
            f"{env}: none of the configured keys was ever used with {path} (wrong "
            "key?); nothing was changed")
    missing = used - configured
    if missing:
        raise WrongKey(
            f"{env}: {path} holds text encrypted with {len(missing)} key(s) not in "
            "the configured list (wrong key?); nothing was changed")
    if cipher.current_id not in recorded:
        connection.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, NULL)",
                           ("key:" + cipher.current_id.hex(),))
