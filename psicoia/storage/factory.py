"""
Build the configured conversation store: what the app layer calls at start-up.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from psicoia.chat.ports import IConversationStore
from psicoia.config import Config, ConfigError
from psicoia.ops.instruments import Instruments
from psicoia.storage.crypto import TextCipher, parse_keys
from psicoia.storage.memory import MemoryStore
from psicoia.storage.sqlite import SqliteStore

log = Logger(namespace="psicoia.storage")


def open_store(config: Config, clock: IReactorTime, reactor: Any,
               instruments: Optional[Instruments] = None) -> IConversationStore:
    """The store ``config.storage`` asks for, opened and checked.

    Runs at start-up, before the reactor serves anyone (SQLite: creates or migrates the file
    in the calling thread). Raises ConfigError (one line) when the server must not start: a
    malformed encryption key, a key that does not fit the stored data, a database newer than
    this code, or a backend not built yet. A file that cannot be opened or written is not fatal: the store
    starts "degraded" and recovers by itself. Without an encryption key, logs one warning.
    """
    storage = config.storage
    retention = storage.retention_hours * 3600.0
    if storage.backend == "memory":
        return MemoryStore(retention_seconds=retention)
    if storage.backend == "redis":
        # Made with its shared provider slots by psicoia.storage.redis_backend (build_core).
        raise ConfigError("storage.backend: redis is opened by build_core, not open_store")
    keys = parse_keys(storage.encryption_key_env, config.storage_key)
    cipher = TextCipher(keys) if keys else None
    if cipher is None:
        log.warn("storage: message text is stored unencrypted in {path}; set "
                 "{env} to encrypt it (README, Data and privacy)",
                 path=storage.sqlite_path, env=storage.encryption_key_env)
    return SqliteStore.open(storage.sqlite_path, clock, reactor, cipher=cipher,
                            retention_seconds=retention,
                            key_env=storage.encryption_key_env, instruments=instruments)
