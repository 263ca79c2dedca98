"""
``storage.backend: redis``: one instance's pieces on a shared Redis, made and closed together.

:meth:`RedisBackend.open` makes the link (:mod:`~psicoia.storage.redis_link`), the
conversation store (:mod:`~psicoia.storage.redis`), the global provider slots
(:mod:`~psicoia.storage.redis_slots`), the shared provider health
(:mod:`~psicoia.storage.redis_health`) and the pub/sub bus (:mod:`~psicoia.storage.redis_bus`).
The app layer hands the store and the slots to the core, and the bus's claims to
``SessionManager.evict``.

What stays local to each instance, by design: the per-user rate window (a user's messages all
come over one connection, so one instance sees them all). The wrong-code throttle for
``/retomar`` is counted by every instance (:mod:`~psicoia.storage.redis_throttle`); the shared
provider health is handed to the breaker and the pacer (``psicoia.app.core``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime

from psicoia.config import Config
from psicoia.ops.instruments import Instruments
from psicoia.storage.crypto import TextCipher, parse_keys
from psicoia.storage.redis import RedisStore
from psicoia.storage.redis_bus import HEALTH, SLOTS, WRONG, RedisBus
from psicoia.storage.redis_health import RedisHealth
from psicoia.storage.redis_link import RedisLink
from psicoia.storage.redis_slots import RedisSlots
from psicoia.storage.redis_throttle import SharedWrongCodes


def local_share(config: Config) -> int:
    """Slots one instance uses alone while Redis is down: ``storage.local_share``, or half of
    ``llm.max_in_flight`` (at least 1) when that is 0."""
    return config.storage.local_share or max(1, config.llm.max_in_flight // 2)


@dataclass
class RedisBackend:
    """One instance's Redis pieces. ``health`` is "ok" or "degraded" (Redis unreachable)."""

    link: RedisLink
    store: RedisStore
    slots: RedisSlots
    bus: RedisBus
    shared_health: RedisHealth
    throttle: SharedWrongCodes

    @classmethod
    def open(cls, config: Config, clock: IReactorTime,
             instruments: Optional[Instruments] = None, cipher: Any = None) -> "RedisBackend":
        """Connect (lazily: returns at once) to ``storage.redis_url``. Turn text is sealed at
        rest with ``cipher``, by default a ``TextCipher`` of the keys in the variable named by
        ``storage.encryption_key_env`` (none set: plain text). Raises ConfigError for a
        malformed key, like the sqlite store."""
        instruments = instruments or Instruments()
        storage = config.storage
        if cipher is None:
            keys = parse_keys(storage.encryption_key_env, config.storage_key)
            cipher = TextCipher(keys) if keys else None
        link = RedisLink(storage.redis_url, clock)
        # The same gauge and counter as the sqlite store: psicoia_storage_degraded and
        # psicoia_storage_faults{reason="unreachable"}.
        link.subscribe(lambda up: instruments.storage_changed(
            "ok" if up else "degraded", "" if up else "unreachable"))
        store = RedisStore(link, storage.retention_hours * 3600.0, cipher=cipher)
        slots = RedisSlots(link, clock, config.llm.max_in_flight, config.llm.max_waiting,
                           local_share(config), storage.lease_seconds,
                           on_change=instruments.semaphore_changed)
        bus = RedisBus(storage.redis_url, link.instance)
        bus.on(SLOTS, slots.wake)
        shared_health = RedisHealth(link, clock)
        bus.on(HEALTH, shared_health.heard)
        throttle = SharedWrongCodes(clock, link)
        bus.on(WRONG, throttle.heard)
        return cls(link, store, slots, bus, shared_health, throttle)

    @property
    def health(self) -> str:
        return self.store.health

    def on_claimed(self, evict: Callable[[str], None]) -> None:
        """``evict(conversation_id)`` when another instance resumes a conversation."""
        self.bus.on_claimed(evict)

    def close(self) -> Deferred:
        self.slots.stop()
        self.shared_health.stop()
        return gatherResults([self.bus.close(), self.link.close()], consumeErrors=True)
