"""Helpers for the storage tests: real SQLite files in tmp dirs, the real reactor's thread
pool, a task.Clock for probes and retention, and raw-bytes checks of the files."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Callable

from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher

from psicoia.storage.crypto import TextCipher
from psicoia.storage.sqlite import SqliteStore

SUFFIXES = ("", "-wal", "-shm")


def new_key() -> bytes:
    return secrets.token_bytes(32)


def key_text(*keys: bytes) -> str:
    return ",".join(base64.urlsafe_b64encode(k).decode() for k in keys)


def open_sqlite(path: Path, clock: Clock | None = None, keys: tuple = (), **options):
    cipher = TextCipher(keys) if keys else None
    options.setdefault("busy_timeout", 0.05)
    return SqliteStore.open(str(path), clock or Clock(), reactor, cipher=cipher, **options)


def file_bytes(path: Path) -> dict[str, bytes]:
    """The raw bytes of the database and its -wal/-shm files (missing ones: empty)."""
    out = {}
    for suffix in SUFFIXES:
        name = str(path) + suffix
        out[suffix or "db"] = Path(name).read_bytes() if os.path.exists(name) else b""
    return out


def files_containing(path: Path, needle: str) -> list[str]:
    """Which of the files hold ``needle`` (UTF-8 or UTF-16, as SQLite may store text)."""
    forms = (needle.encode("utf-8"), needle.encode("utf-16-le"), needle.encode("utf-16-be"))
    return [name for name, data in file_bytes(path).items() if any(f in data for f in forms)]


def marker() -> str:
    return "MARCA" + secrets.token_hex(8)


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait (bounded) for work on the pool thread to land; fails the test on timeout."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not met in time")


class CapturedLog:
    """Log events emitted while in use (namespace starts with ``psicoia.storage``)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        if str(event.get("log_namespace", "")).startswith("psicoia.storage"):
            self.events.append(event)

    def __enter__(self) -> "CapturedLog":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc) -> None:
        globalLogPublisher.removeObserver(self)

    def levels(self) -> list[str]:
        return [event["log_level"].name for event in self.events]

    def text(self) -> str:
        from twisted.logger import formatEvent
        return "\n".join(formatEvent(event) for event in self.events)
