"""
The ``memory`` backend: conversations and provider slots in this process only.

Nothing outlives the process. It is also the test double for the core: every method answers
with an already-fired Deferred, so tests that use it run synchronously.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredSemaphore, succeed
from zope.interface import implementer

from psicoia.chat.ports import Conversation, IConversationStore, ISharedState, Turn


@implementer(IConversationStore)
class MemoryStore:
    """Conversations in a dict, keyed by id; secrets by their hash."""

    health = "ok"

    def __init__(self, first_number: int = 1) -> None:
        self._numbers = itertools.count(first_number)
        self._ids = itertools.count(1)
        self._conversations: dict[str, Conversation] = {}
        self._by_secret: dict[bytes, str] = {}

    def create(self, secret_hash: bytes, now: float) -> Deferred:
        conversation = Conversation(id=f"c{next(self._ids)}", number=next(self._numbers),
                                    created_at=now, updated_at=now)
        self._conversations[conversation.id] = conversation
        self._by_secret[secret_hash] = conversation.id
        return succeed(_copy(conversation))

    def resume(self, secret_hash: bytes, now: float) -> Deferred:
        conversation = self._conversations.get(self._by_secret.get(secret_hash, ""))
        return succeed(_copy(conversation) if conversation is not None else None)

    def append(self, conversation_id: str, turns, keep: int, now: float) -> Deferred:
        conversation = self._conversations.get(conversation_id)
        if conversation is not None:
            conversation.turns.extend(turns)
            del conversation.turns[:max(0, len(conversation.turns) - keep)]
            conversation.updated_at = now
        return succeed(None)

    def save_risk(self, conversation_id: str, risk: dict, now: float) -> Deferred:
        conversation = self._conversations.get(conversation_id)
        if conversation is not None:
            conversation.risk = dict(risk)
            conversation.updated_at = now
        return succeed(None)

    def clear(self, conversation_id: str, now: float) -> Deferred:
        conversation = self._conversations.get(conversation_id)
        if conversation is not None:
            conversation.turns.clear()
            conversation.updated_at = now
        return succeed(None)

    def forget(self, conversation_id: str) -> Deferred:
        self._conversations.pop(conversation_id, None)
        for secret, known in list(self._by_secret.items()):
            if known == conversation_id:
                del self._by_secret[secret]
        return succeed(None)

    def purge(self, older_than: float) -> Deferred:
        old = [c.id for c in self._conversations.values() if c.updated_at < older_than]
        for conversation_id in old:
            self.forget(conversation_id)
        return succeed(len(old))

    def close(self) -> Deferred:
        return succeed(None)


def _copy(conversation: Conversation) -> Conversation:
    """The store's copy stays the store's: callers get their own lists."""
    return Conversation(conversation.id, conversation.number, conversation.created_at,
                        conversation.updated_at, list(conversation.turns),
                        dict(conversation.risk))


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


__all__ = ["LocalSlots", "MemoryStore", "Slot", "Turn"]
