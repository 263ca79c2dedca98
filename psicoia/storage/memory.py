"""
The ``memory`` backend: conversations and provider slots in this process only.

Nothing outlives the process. It is also the test double for the core: every method answers
with an already-fired Deferred, so tests that use it run synchronously, and
:meth:`MemoryStore.set_available` makes the store fail like a broken disk (``health``
"degraded", StorageUnavailable) so the core's fallback can be tested.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from numbers import Real
from typing import Any, Callable, Optional, Sequence

from twisted.internet.defer import Deferred, DeferredSemaphore, fail, succeed
from zope.interface import implementer

from psicoia.chat.ports import (Conversation, IConversationStore, ISharedState,
                                StorageUnavailable, Turn)


_PLAIN = frozenset((bool, int, float, type(None)))  # checked by type first: no ABC lookup


def check_risk(value: Any, depth: int = 0) -> None:
    """Raise ValueError unless ``value`` (the crisis state) holds only numbers, booleans and
    None, in dicts with str keys and lists, at most four levels deep: never text."""
    if type(value) in _PLAIN or isinstance(value, Real):
        return
    if depth < 4 and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        for item in value.values():
            if type(item) not in _PLAIN:
                check_risk(item, depth + 1)
        return
    if depth < 4 and isinstance(value, (list, tuple)):
        for item in value:
            check_risk(item, depth + 1)
        return
    raise ValueError("risk state must hold only numbers, never text")


def _plain_copy(value: Any) -> Any:
    """A copy of a checked crisis state (:func:`check_risk`) as a JSON round trip gives it
    (tuples become lists), without encoding it: this runs for every message."""
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(item) for item in value]
    return value


def _copy(conversation: Conversation) -> Conversation:
    return replace(conversation, turns=list(conversation.turns), risk=dict(conversation.risk))


@implementer(IConversationStore)
class MemoryStore:
    """Conversations in dicts. ``retention_seconds`` (None: never) makes :meth:`resume`
    ignore conversations last touched longer ago, like the durable backends."""

    def __init__(self, first_number: int = 1, *,
                 retention_seconds: Optional[float] = None) -> None:
        self.health = "ok"
        self._retention = retention_seconds
        self._next_number = first_number
        self._by_id: dict[str, Conversation] = {}
        self._by_hash: dict[bytes, str] = {}
        self._hash_of: dict[str, bytes] = {}

    def set_available(self, available: bool) -> None:
        """Test switch: False makes every call fail with StorageUnavailable."""
        self.health = "ok" if available else "degraded"

    def _check(self) -> Optional[Deferred]:
        if self.health != "ok":
            return fail(StorageUnavailable("memory store switched off"))
        return None

    def create(self, secret_hash: bytes, now: float) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        if secret_hash in self._by_hash:
            return fail(ValueError("secret hash already in use"))
        conversation = Conversation(id=secrets.token_hex(16), number=self._next_number,
                                    created_at=now, updated_at=now)
        self._next_number += 1
        self._by_id[conversation.id] = conversation
        self._by_hash[secret_hash] = conversation.id
        self._hash_of[conversation.id] = secret_hash
        return succeed(_copy(conversation))

    def resume(self, secret_hash: bytes, now: float) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        conversation = self._by_id.get(self._by_hash.get(secret_hash, ""))
        if conversation is None or (
                self._retention is not None and conversation.updated_at < now - self._retention):
            return succeed(None)
        return succeed(_copy(conversation))

    def append(self, conversation_id: str, turns: Sequence[Turn], keep: int,
               now: float, risk: Optional[dict] = None) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        if risk is not None:
            try:
                check_risk(risk)
            except ValueError as error:
                return fail(error)
        conversation = self._by_id.get(conversation_id)
        if conversation is not None:
            if risk is not None:
                conversation.risk = _plain_copy(risk)
            conversation.turns.extend(turns)
            del conversation.turns[: max(0, len(conversation.turns) - keep)]
            conversation.updated_at = now
        return succeed(None)

    def save_risk(self, conversation_id: str, risk: dict, now: float) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        try:
            check_risk(risk)
        except ValueError as error:
            return fail(error)
        conversation = self._by_id.get(conversation_id)
        if conversation is not None:
            conversation.risk = _plain_copy(risk)
            conversation.updated_at = now
        return succeed(None)

    def clear(self, conversation_id: str, now: float) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        conversation = self._by_id.get(conversation_id)
        if conversation is not None:
            conversation.turns = []
            conversation.updated_at = now
        return succeed(None)

    def forget(self, conversation_id: str) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        self._drop(conversation_id)
        return succeed(None)

    def purge(self, older_than: float) -> Deferred:
        broken = self._check()
        if broken:
            return broken
        expired = [cid for cid, c in self._by_id.items() if c.updated_at < older_than]
        for cid in expired:
            self._drop(cid)
        return succeed(len(expired))

    def close(self) -> Deferred:
        return succeed(None)

    def _drop(self, conversation_id: str) -> None:
        self._by_id.pop(conversation_id, None)
        secret_hash = self._hash_of.pop(conversation_id, None)
        if secret_hash is not None:
            self._by_hash.pop(secret_hash, None)


class Slot:
    """A provider slot held by this process; released once."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


@implementer(ISharedState)
class LocalSlots:
    """``llm.max_in_flight`` provider slots with a bounded wait queue, in this process.

    A ``DeferredSemaphore``: when a slot is free, ``acquire_slot`` has fired before it returns,
    so the request goes out in the same call (docs/benchmarks.md). ``on_change(in_flight,
    waiting)`` feeds the gauges.
    """

    def __init__(self, limit: int, max_waiting: int,
                 on_change: Optional[Callable[[int, int], None]] = None) -> None:
        self.semaphore = DeferredSemaphore(limit)
        self.max_waiting = max_waiting
        self._on_change = on_change or (lambda in_flight, waiting: None)

    def acquire_slot(self, on_queued: Callable[[int], None],
                     room: Optional[int] = None) -> Deferred:
        semaphore = self.semaphore
        if semaphore.tokens == 0:
            if len(semaphore.waiting) >= (self.max_waiting if room is None else room):
                return succeed(None)
            # Before acquire(): a hook that raises must not leave an acquire nobody releases.
            on_queued(len(semaphore.waiting) + 1)
        acquired = semaphore.acquire()
        self._changed()
        if acquired.called:  # a free slot, already ours: nothing waited
            return succeed(Slot())
        return acquired.addBoth(self._acquired)

    def _acquired(self, result):
        self._changed()
        return Slot() if result is self.semaphore else result

    def release_slot(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self.semaphore.release()
        self._changed()

    def in_flight(self) -> int:
        return self.semaphore.limit - self.semaphore.tokens

    def waiting(self) -> int:
        return len(self.semaphore.waiting)

    def _changed(self) -> None:
        self._on_change(self.in_flight(), self.waiting())


__all__ = ["LocalSlots", "MemoryStore", "Slot", "Turn", "check_risk"]
