"""
The global provider semaphore: ``llm.max_in_flight`` slots shared by every instance on Redis.

Keys (all changed only by the Lua scripts below, each atomic in Redis; the time is Redis's own
``TIME``, so the instances' clocks do not matter):

- ``psicoia:slots:held``: a sorted set, slot holder -> lease end (ms). A lease not renewed
  within ``storage.lease_seconds`` is dropped: a killed instance frees its slots that fast.
- ``psicoia:slots:queue``: a sorted set, waiting ticket -> ticket number (``psicoia:slots:
  ticket`` counts them): one FIFO queue for all instances, so none starves, and a queue
  position means the same thing everywhere. At most ``llm.max_waiting`` tickets: a full queue
  is the busy notice.
- ``psicoia:slots:alive``: waiting ticket -> end of its own lease, renewed by its instance's
  poll; a dead instance's tickets leave the queue within the lease.

Every script first expires stale leases and tickets and grants the head of the queue while
fewer than ``max_in_flight`` slots are held. Grants made for other instances are announced on
``psicoia:slots`` (:mod:`psicoia.storage.redis_bus`); each instance also runs one batched
script per ``poll_seconds`` while it has tickets waiting or slots held (renewing its leases),
so Redis traffic is at most a few commands per second per instance beyond the two scripts per
call (and those share their round trip with whatever else this instance asked for in the same
reactor turn: :mod:`psicoia.storage.redis_batch`).

While Redis is unreachable the instance runs on :class:`~psicoia.storage.memory.LocalSlots`
with its share (``storage.local_share``) and waiting callers move there; when Redis is back new
calls take global slots again. Slots held across a change are released where they were taken.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from psicoia.chat.ports import ISharedState, StorageUnavailable
from psicoia.storage.memory import LocalSlots
from psicoia.storage.redis_bus import SLOTS
from psicoia.storage.redis_link import RedisLink

_KEYS = ["psicoia:slots:held", "psicoia:slots:queue", "psicoia:slots:alive",
         "psicoia:slots:ticket"]

# Shared by every script. ARGV[1] = max_in_flight, ARGV[2] = lease (ms).
_PRELUDE = """
local held, queue, alive = KEYS[1], KEYS[2], KEYS[3]
local limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
for _, stale in ipairs(redis.call('ZRANGEBYSCORE', alive, '-inf', now)) do
  redis.call('ZREM', queue, stale)
  redis.call('ZREM', alive, stale)
end
local granted = 0
while redis.call('ZCARD', held) < limit do
  local head = redis.call('ZRANGE', queue, 0, 0)
  if #head == 0 then break end
  redis.call('ZREM', queue, head[1])
  redis.call('ZREM', alive, head[1])
  redis.call('ZADD', held, now + lease, head[1])
  granted = granted + 1
end
"""

# ARGV[3] = max_waiting, ARGV[4] = member, ARGV[5] = channel.
# Returns {1, 0} granted, {0, position} queued, {-1, 0} queue full.
_ACQUIRE = _PRELUDE + """
if granted > 0 then redis.call('PUBLISH', ARGV[5], granted) end
if redis.call('ZCARD', queue) == 0 and redis.call('ZCARD', held) < limit then
  redis.call('ZADD', held, now + lease, ARGV[4])
  return {1, 0}
end
if redis.call('ZCARD', queue) >= tonumber(ARGV[3]) then return {-1, 0} end
redis.call('ZADD', queue, redis.call('INCR', KEYS[4]), ARGV[4])
redis.call('ZADD', alive, now + lease, ARGV[4])
return {0, redis.call('ZCARD', queue)}
"""

# ARGV[3] = how many held members follow (renewed), then the waiting members.
# Returns, per waiting member: 0 granted, N > 0 its queue position, -1 gone (expired).
_TICK = _PRELUDE + """
local nheld = tonumber(ARGV[3])
for i = 4, 3 + nheld do
  redis.call('ZADD', held, 'XX', now + lease, ARGV[i])
end
local status = {}
for i = 4 + nheld, #ARGV do
  if redis.call('ZSCORE', held, ARGV[i]) then
    table.insert(status, 0)
  else
    local rank = redis.call('ZRANK', queue, ARGV[i])
    if rank then
      redis.call('ZADD', alive, now + lease, ARGV[i])
      table.insert(status, rank + 1)
    else
      table.insert(status, -1)
    end
  end
end
if granted > 0 then redis.call('PUBLISH', KEYS[5], granted) end  -- KEYS[5]: the channel
return status
"""

# ARGV[3] = channel, ARGV[4...] = members to drop (held or waiting).
_RELEASE = """
for i = 4, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
""" + _PRELUDE + """
if granted > 0 then redis.call('PUBLISH', ARGV[3], granted) end
return granted
"""


class RedisSlot:
    """A provider slot: a global lease (``member`` in Redis) or, while Redis was down, a
    local one (``local``). Released once."""

    __slots__ = ("member", "local", "released")

    def __init__(self, member: Optional[str] = None, local: object = None) -> None:
        self.member = member
        self.local = local
        self.released = False


@implementer(ISharedState)
class RedisSlots:
    """``limit`` provider slots for all instances together (module docstring).

    ``link``: this instance's :class:`RedisLink`; ``local_share``: the slots used alone while
    Redis is down; ``lease_seconds``: how long a dead instance keeps its slots at most;
    ``poll_seconds``: the period of the batched renew-and-check script while anything is held
    or waiting; ``on_change(in_flight, waiting)`` feeds the gauges (this instance's counts).
    """

    def __init__(self, link: RedisLink, clock: IReactorTime, limit: int, max_waiting: int,
                 local_share: int, lease_seconds: float, poll_seconds: float = 0.1,
                 on_change: Optional[Callable[[int, int], None]] = None) -> None:
        self.link = link
        self.clock = clock
        self.limit = limit
        self.max_waiting = max_waiting
        self.lease_ms = int(lease_seconds * 1000)
        self.local = LocalSlots(max(1, local_share), max_waiting)
        self._on_change = on_change or (lambda in_flight, waiting: None)
        self._names = (f"{link.instance}:{n}" for n in itertools.count(1))
        self._held: set[str] = set()
        self._waiting: dict[str, tuple[Deferred, Callable[[int], None]]] = {}
        self._ticking = False
        self._again = False
        self._loop = LoopingCall(self.tick)
        self._loop.clock = clock
        self._poll_seconds = min(poll_seconds, lease_seconds / 3)
        link.subscribe(self._link_changed)
        for name, body in (("acquire", _ACQUIRE), ("release", _RELEASE), ("tick", _TICK)):
            link.batch.define(name, body)

    # --- ISharedState -----------------------------------------------------------------------

    def acquire_slot(self, on_queued: Callable[[int], None],
                     room: Optional[int] = None) -> Deferred:
        """``room``: the global queue's length at which this caller gets the busy notice
        (default ``max_waiting``)."""
        once = _Once(on_queued)
        room = self.max_waiting if room is None else room
        if not self.link.up:
            return self._local(once, room)
        member = next(self._names)
        asked = self.link.batch.run("acquire", _KEYS,
                               [self.limit, self.lease_ms, room, member, SLOTS])
        result: Deferred = Deferred(lambda _: self._cancel(member))
        asked.addCallbacks(self._answered, self._unavailable, callbackArgs=(member, once, result),
                           errbackArgs=(once, room, result))
        return result

    def release_slot(self, slot: RedisSlot) -> None:
        if slot.released:
            return
        slot.released = True
        if slot.local is not None:
            self.local.release_slot(slot.local)
        elif slot.member in self._held:
            self._held.discard(slot.member)
            self._drop([slot.member])
        self._changed()

    def in_flight(self) -> int:
        return len(self._held) + self.local.in_flight()

    def waiting(self) -> int:
        return len(self._waiting) + self.local.waiting()

    # --- Redis ------------------------------------------------------------------------------

    def _answered(self, reply: list, member: str, once: "_Once", result: Deferred) -> None:
        granted, position = int(reply[0]), int(reply[1])
        if result.called:  # cancelled meanwhile
            if granted >= 0:
                self._drop([member])
            return
        if granted == 1:
            self._held.add(member)
            self._ensure_loop()
            self._changed()
            result.callback(RedisSlot(member))
        elif granted < 0:
            result.callback(None)
        else:
            self._waiting[member] = (result, once)
            once(position)
            self._ensure_loop()
            self._changed()

    def _unavailable(self, failure, once: "_Once", room: int, result: Deferred) -> None:
        failure.trap(StorageUnavailable)
        if not result.called:
            self._hand_over(self._local(once, room), result)

    def _local(self, once: "_Once", room: Optional[int] = None) -> Deferred:
        got = self.local.acquire_slot(once, room)
        self._changed()
        return got.addCallback(self._local_slot)

    def _local_slot(self, slot) -> Optional[RedisSlot]:
        self._changed()
        return None if slot is None else RedisSlot(local=slot)

    def _hand_over(self, got: Deferred, result: Deferred) -> None:
        """Fire ``result`` with the local slot ``got`` brings, or give it back if the caller
        has cancelled meanwhile."""
        def arrived(slot: Optional[RedisSlot]) -> None:
            if result.called:
                if slot is not None:
                    self.release_slot(slot)
            else:
                result.callback(slot)

        got.addCallback(arrived)

    def _cancel(self, member: str) -> None:
        if self._waiting.pop(member, None) is not None:
            self._drop([member])
            self._changed()

    def _drop(self, members: list[str]) -> None:
        if not self.link.up:
            return  # the leases expire by themselves
        dropped = self.link.batch.run("release", _KEYS,
                                 [self.limit, self.lease_ms, SLOTS, *members])
        dropped.addErrback(lambda failure: failure.trap(StorageUnavailable))

    def wake(self, _message: str = "") -> None:
        """Slots were granted somewhere (``psicoia:slots``): check our tickets now."""
        if self._waiting:
            self.tick()

    def tick(self) -> Optional[Deferred]:
        """One batched script: renew our leases, learn which of our tickets were granted."""
        if self._ticking:
            self._again = True
            return None
        if not self._held and not self._waiting:
            if self._loop.running:
                self._loop.stop()
            return None
        if not self.link.up:
            return None  # the probe notices when Redis is back; nothing to renew meanwhile
        self._ticking = True
        held, waiting = sorted(self._held), list(self._waiting)
        asked = self.link.batch.run("tick", _KEYS + [SLOTS],
                               [self.limit, self.lease_ms, len(held), *held, *waiting])
        asked.addCallback(self._ticked, waiting)
        asked.addErrback(lambda failure: failure.trap(StorageUnavailable))
        return asked.addBoth(self._tick_done)

    def _ticked(self, status: list, waiting: list[str]) -> None:
        for member, state in zip(waiting, status):
            entry = self._waiting.get(member)
            if entry is None:
                continue
            state = int(state)
            if state == 0:
                del self._waiting[member]
                self._held.add(member)
                entry[0].callback(RedisSlot(member))
            elif state < 0:  # our ticket expired (a long stall): wait locally instead
                del self._waiting[member]
                self._hand_over(self._local(entry[1]), entry[0])
        self._changed()

    def _tick_done(self, _) -> None:
        self._ticking = False
        if self._again:
            self._again = False
            self.tick()

    def _ensure_loop(self) -> None:
        if not self._loop.running:
            self._loop.start(self._poll_seconds, now=False)

    def _link_changed(self, up: bool) -> None:
        if up:
            return
        # Redis went away: whoever waits for a global slot waits for a local one instead.
        waiting, self._waiting = self._waiting, {}
        for result, once in waiting.values():
            self._hand_over(self._local(once), result)
        # Slots held stay held: their calls go on, and their leases lapse in Redis unless
        # it is back (and they are released there) first.
        self._changed()

    def _changed(self) -> None:
        self._on_change(self.in_flight(), self.waiting())

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


class _Once:
    """``on_queued`` called at most once, whichever queue the caller ends up in."""

    __slots__ = ("hook", "done")

    def __init__(self, hook: Callable[[int], None]) -> None:
        self.hook = hook
        self.done = False

    def __call__(self, position: int) -> None:
        if not self.done:
            self.done = True
            self.hook(position)


__all__ = ["RedisSlot", "RedisSlots"]
