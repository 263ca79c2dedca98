"""Every implementation of a port, real or fake, checked against its declared interface."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyClass, verifyObject

from psicoia.chat.ports import (
    IConversationStore,
    ISessionListener,
    ISharedState,
    SessionListener,
)
from psicoia.storage.memory import LocalSlots, MemoryStore
from psicoia.transports.tcp import ChatLineProtocol
from psicoia.transports.chat_socket import ChatBackend
from tests.helpers import fired


def test_memory_store_is_a_conversation_store():
    assert verifyObject(IConversationStore, MemoryStore())


def test_local_slots_are_shared_state():
    assert verifyObject(ISharedState, LocalSlots(2, 5))


@pytest.mark.parametrize("listener", [SessionListener, ChatLineProtocol, ChatBackend])
def test_transports_are_session_listeners(listener):
    assert verifyClass(ISessionListener, listener)


def test_local_slots_queue_then_refuse_and_release_once():
    changes = []
    slots = LocalSlots(1, 1, lambda in_flight, waiting: changes.append((in_flight, waiting)))
    first = fired(slots.acquire_slot(lambda position: None))
    positions = []
    second = slots.acquire_slot(positions.append)
    assert positions == [1] and not second.called
    assert fired(slots.acquire_slot(positions.append)) is None, "the queue is full: busy"
    slots.release_slot(first)
    slots.release_slot(first)  # idempotent: the slot is not given twice
    assert slots.in_flight() == 1 and slots.waiting() == 0
    slots.release_slot(fired(second))
    assert slots.in_flight() == 0
    assert changes[-1] == (0, 0)


def test_a_cancelled_wait_leaves_the_queue():
    slots = LocalSlots(1, 5)
    held = fired(slots.acquire_slot(lambda position: None))
    waiting = slots.acquire_slot(lambda position: None)
    waiting.cancel()
    waiting.addErrback(lambda failure: None)
    assert slots.waiting() == 0
    slots.release_slot(held)
    assert slots.in_flight() == 0


def test_memory_store_numbers_forget_and_purge():
    store = MemoryStore()
    clock = Clock()
    first = fired(store.create(b"a", clock.seconds()))
    second = fired(store.create(b"b", clock.seconds()))
    assert (first.number, second.number) == (1, 2)
    fired(store.forget(first.id))
    assert fired(store.resume(b"a", 0)) is None
    assert fired(store.purge(older_than=1.0)) == 1
    assert fired(store.resume(b"b", 0)) is None
