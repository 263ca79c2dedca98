"""ScriptBatch against a real redis-server: the scripts asked for in one reactor turn go in one
round trip, in order, each answered on its own (one failing script fails only its caller), and
all fail with StorageUnavailable when Redis is down."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList

from psicoia.chat.ports import StorageUnavailable, Turn
from psicoia.storage.redis import RedisStore
from psicoia.storage.redis_link import RedisLink
from psicoia.storage.redis_slots import RedisSlots
from tests.redis_support import eventually, redis_server  # noqa: F401 (fixture)


@pytest_twisted.ensureDeferred
async def test_one_turns_scripts_share_one_round_trip(redis_server):
    link = RedisLink(redis_server.url, reactor, timeout=1.0, probe_seconds=0.1)
    store = RedisStore(link, 3600.0)
    slots = RedisSlots(link, reactor, 10, 10, 1, 2.0)
    try:
        made = [await store.create(bytes([n]) * 32, 1000.0) for n in range(5)]
        before = link.batch.round_trips
        # One reactor turn: five messages' writes and five slots, as under load.
        asked = [store.append(c.id, [Turn("user", f"hola {c.number}"), Turn("assistant", "sí")],
                              10, 1001.0) for c in made]
        asked += [slots.acquire_slot(lambda position: None) for _ in made]
        results = await DeferredList(asked, fireOnOneErrback=True)
        assert link.batch.round_trips == before + 1
        held = [value for _, value in results[5:]]
        assert all(slot is not None and slot.member for slot in held)
        assert redis_server.command("ZCARD", "psicoia:slots:held") == b":5\r\n"
        for slot in held:
            slots.release_slot(slot)
        found = await store.resume(bytes([3]) * 32, 1002.0)
        assert [t.content for t in found.turns] == [f"hola {made[3].number}", "sí"]
        await eventually(lambda: redis_server.command("ZCARD", "psicoia:slots:held")
                         == b":0\r\n")
    finally:
        slots.stop()
        await link.close()


@pytest_twisted.ensureDeferred
async def test_a_failing_script_fails_only_its_caller(redis_server):
    link = RedisLink(redis_server.url, reactor, timeout=1.0, probe_seconds=0.1)
    link.batch.define("boom", "return redis.call('INCRBY', KEYS[1], 'not a number')")
    link.batch.define("count", "return redis.call('INCR', KEYS[1])")
    try:
        first = link.batch.run("count", ["psicoia:test:n"], [])
        broken = link.batch.run("boom", ["psicoia:test:n"], [])
        second = link.batch.run("count", ["psicoia:test:n"], [])
        assert await first == 1 and await second == 2  # in order, around the failure
        with pytest.raises(StorageUnavailable):
            await broken
        assert link.up  # a script's error is not Redis being down
        with pytest.raises(KeyError):
            link.batch.run("unknown", [], [])
        with pytest.raises(ValueError):  # fields travel NUL-separated
            link.batch.run("count", ["psicoia:test:\x00n"], [])
        link.batch.define("echo", "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3], #ARGV}")
        assert await link.batch.run("echo", ["k"], ["", "ñandú ✓", 7]) == [
            "k", "", "ñandú ✓", "7", 3]
    finally:
        await link.close()


@pytest_twisted.ensureDeferred
async def test_every_caller_of_a_batch_fails_when_redis_is_down(redis_server):
    link = RedisLink(redis_server.url, reactor, timeout=0.5, probe_seconds=0.1)
    link.batch.define("count", "return redis.call('INCR', KEYS[1])")
    try:
        assert await link.batch.run("count", ["psicoia:test:n"], []) == 1
        redis_server.stop()
        asked = [link.batch.run("count", ["psicoia:test:n"], []) for _ in range(3)]
        results = await DeferredList(asked, consumeErrors=True)
        assert all(not ok and failure.check(StorageUnavailable) for ok, failure in results)
    finally:
        await link.close()
