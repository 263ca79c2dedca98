"""The global provider semaphore against a real redis-server: a cap across instances, one FIFO
queue with real positions, the busy notice, leases that free a dead instance's slots, and the
local share while Redis is down."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from psicoia.chat.ports import ISharedState
from psicoia.storage.redis_bus import SLOTS, RedisBus
from psicoia.storage.redis_link import RedisLink
from psicoia.storage.redis_slots import RedisSlots
from tests.redis_support import eventually, pause, redis_server  # noqa: F401 (fixture)


class Instance:
    """One instance's link, bus and slots."""

    def __init__(self, url: str, limit: int = 3, max_waiting: int = 20, lease: float = 1.0,
                 local_share: int = 1) -> None:
        self.link = RedisLink(url, reactor, timeout=1.0, probe_seconds=0.1)
        self.slots = RedisSlots(self.link, reactor, limit, max_waiting, local_share, lease,
                                poll_seconds=0.1)
        self.bus = RedisBus(url, self.link.instance)
        self.bus.on(SLOTS, self.slots.wake)

    async def close(self) -> None:
        self.slots.stop()
        await self.bus.close()
        await self.link.close()


@pytest_twisted.ensureDeferred
async def test_three_instances_share_three_slots_in_one_fifo_queue(redis_server):
    instances = [Instance(redis_server.url) for _ in range(3)]
    try:
        assert verifyObject(ISharedState, instances[0].slots)
        positions, granted, order = [], [], []
        asks = []
        for n in range(9):
            instance = instances[n % 3]
            asked = instance.slots.acquire_slot(positions.append)
            asked.addCallback(lambda slot, i=instance: (order.append(slot.member),
                                                         granted.append((i, slot))))
            asks.append(asked)
            await asked if n < 3 else pause(0.01)
        await eventually(lambda: len(granted) == 3 and sum(
            i.slots.waiting() for i in instances) == 6)
        # Each ticket learns its place in the one queue (replies may arrive in any order).
        assert sorted(positions) == [1, 2, 3, 4, 5, 6]
        queue = [line.decode() for line in redis_server.command(
            "ZRANGE", "psicoia:slots:queue", "0", "-1").split(b"\r\n")[2::2]]
        assert len(queue) == 6
        assert redis_server.command("ZCARD", "psicoia:slots:held") == b":3\r\n"
        # Released one at a time: the queue's head (whatever its instance) gets the slot.
        while len(order) < 9:
            held_now = sum(i.slots.in_flight() for i in instances)
            assert held_now <= 3
            instance, slot = granted.pop(0)
            instance.slots.release_slot(slot)
            instance.slots.release_slot(slot)  # idempotent
            count = len(order)
            await eventually(lambda: len(order) == count + 1)
        assert order[3:] == queue  # granted in the order Redis queued them, whoever waits
        for instance, slot in granted:
            instance.slots.release_slot(slot)
        await eventually(lambda: redis_server.command(
            "ZCARD", "psicoia:slots:held") == b":0\r\n")
    finally:
        for instance in instances:
            await instance.close()


@pytest_twisted.ensureDeferred
async def test_a_full_global_queue_is_the_busy_notice(redis_server):
    a, b = Instance(redis_server.url, limit=1, max_waiting=2), Instance(redis_server.url,
                                                                      limit=1, max_waiting=2)
    try:
        held = await a.slots.acquire_slot(lambda p: None)
        waiting = [a.slots.acquire_slot(lambda p: None), b.slots.acquire_slot(lambda p: None)]
        await eventually(lambda: a.slots.waiting() + b.slots.waiting() == 2)
        assert await b.slots.acquire_slot(lambda p: None) is None
        # A cancelled wait leaves the queue: there is room again.
        waiting[0].cancel()
        waiting[0].addErrback(lambda f: None)
        await eventually(lambda: redis_server.command(
            "ZCARD", "psicoia:slots:queue") == b":1\r\n")
        a.slots.release_slot(held)
        slot = await waiting[1]
        b.slots.release_slot(slot)
    finally:
        await a.close()
        await b.close()


@pytest_twisted.ensureDeferred
async def test_a_dead_instances_slots_come_back_within_the_lease(redis_server):
    dead, alive = Instance(redis_server.url, lease=0.6), Instance(redis_server.url, lease=0.6)
    try:
        for _ in range(3):
            await dead.slots.acquire_slot(lambda p: None)
        dead.slots.stop()  # no more renewals: as if the process were killed
        await dead.link.close()
        start = reactor.seconds()
        got = await alive.slots.acquire_slot(lambda p: None)
        waited = reactor.seconds() - start
        assert got is not None and waited < 0.6 + 0.5, waited
        alive.slots.release_slot(got)
    finally:
        await alive.close()
        await dead.bus.close()


@pytest_twisted.ensureDeferred
async def test_leases_are_renewed_while_the_call_runs(redis_server):
    a, b = Instance(redis_server.url, limit=1, lease=0.45), Instance(redis_server.url, limit=1,
                                                                     lease=0.45)
    try:
        held = await a.slots.acquire_slot(lambda p: None)
        queued = b.slots.acquire_slot(lambda p: None)
        await pause(1.2)  # several leases long
        assert not queued.called
        a.slots.release_slot(held)
        b.slots.release_slot(await queued)
    finally:
        await a.close()
        await b.close()


@pytest_twisted.ensureDeferred
async def test_redis_down_the_local_share_serves_and_waiters_move(redis_server):
    a = Instance(redis_server.url, limit=3, local_share=1)
    try:
        held = [await a.slots.acquire_slot(lambda p: None) for _ in range(3)]
        positions = []
        moved = a.slots.acquire_slot(positions.append)
        await eventually(lambda: a.slots.waiting() == 1)
        redis_server.stop()
        await eventually(lambda: not a.link.up, timeout=3)
        # The waiter moved to the local queue (one slot): it gets it at once.
        slot = await moved
        assert slot is not None and slot.local is not None and positions == [1]
        # A new caller waits for the local slot.
        later = a.slots.acquire_slot(positions.append)
        assert not later.called and positions == [1, 1]
        a.slots.release_slot(slot)
        a.slots.release_slot(await later)
        for slot in held:
            a.slots.release_slot(slot)  # a no-op for Redis while it is down
        redis_server.start()
        await eventually(lambda: a.link.up, timeout=15)
        back = await a.slots.acquire_slot(lambda p: None)
        assert back.member is not None
        a.slots.release_slot(back)
    finally:
        await a.close()
