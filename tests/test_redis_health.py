"""Shared provider health (ISharedHealth) on a real redis-server, the in-process LocalHealth,
one log line per change of the Redis link's state, and SessionManager.evict (the hook claims
from other instances use)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from treq.testing import StubTreq
from twisted.internet.task import Clock

from psicoia.chat.ports import ISharedHealth, SessionListener
from psicoia.provider.client import ChatProvider
from psicoia.storage.health import LocalHealth
from psicoia.storage.redis_bus import HEALTH, RedisBus
from psicoia.storage.redis_health import RedisHealth
from psicoia.storage.redis_link import RedisLink
from tests.fake_provider import FakeProvider
from tests.helpers import captured_logs, fired, make_config, make_manager
from tests.redis_support import eventually, redis_server  # noqa: F401 (fixture)


def test_local_health_keeps_the_latest_report_per_kind():
    health = LocalHealth()
    assert verifyObject(ISharedHealth, health)
    assert health.blocked_until("breaker") == 0.0
    health.report("breaker", 100.0)
    health.report("breaker", 50.0)  # an earlier end does not shorten it
    health.report("pacing", 7.0)
    assert (health.blocked_until("breaker"), health.blocked_until("pacing")) == (100.0, 7.0)
    with pytest.raises(ValueError):
        health.report("other", 1.0)


@pytest_twisted.ensureDeferred
async def test_a_report_on_one_instance_is_seen_by_the_others(redis_server):
    links = [RedisLink(redis_server.url, reactor, probe_seconds=0.1) for _ in range(2)]
    healths = [RedisHealth(link, reactor, refresh_seconds=0.2) for link in links]
    buses = [RedisBus(redis_server.url, link.instance) for link in links]
    for bus, health in zip(buses, healths):
        bus.on(HEALTH, health.heard)
    try:
        assert verifyObject(ISharedHealth, healths[0])
        await links[1].call("ping")
        until = reactor.seconds() + 30
        healths[0].report("breaker", until)
        assert healths[0].blocked_until("breaker") == until  # at once, locally
        await eventually(lambda: healths[1].blocked_until("breaker") == until)
        # A newcomer (no announcement heard) reads it from Redis within its refresh period.
        late_link = RedisLink(redis_server.url, reactor, probe_seconds=0.1)
        late = RedisHealth(late_link, reactor, refresh_seconds=0.1)
        await eventually(lambda: late.blocked_until("breaker") == until)
        late.stop()
        await late_link.close()
    finally:
        for health in healths:
            health.stop()
        for bus in buses:
            await bus.close()
        for link in links:
            await link.close()


@pytest_twisted.ensureDeferred
async def test_one_log_line_per_change_of_the_links_state(redis_server):
    with captured_logs() as output:
        link = RedisLink(redis_server.url, reactor, probe_seconds=0.05)
        try:
            await link.call("ping")
            redis_server.stop()
            await eventually(lambda: not link.up, timeout=3)
            for _ in range(5):  # more failures: no more lines
                await link.call("ping").addErrback(lambda f: None)
            redis_server.start()
            # txredisapi retries with backoff up to ~11 s (jittered), and may be mid-wait when the
            # server is back: one full backoff plus margin, still bounded.
            await eventually(lambda: link.up, timeout=30)
        finally:
            await link.close()
    events = [json.loads(line) for line in output.getvalue().splitlines()]
    mine = [e["event"] for e in events if e.get("namespace") == "psicoia.storage"]
    assert len(mine) == 2, mine
    assert "unreachable" in mine[0] and "reachable again" in mine[1]


class Told(SessionListener):
    def __init__(self) -> None:
        self.taken_over = 0

    def on_taken_over(self) -> None:
        self.taken_over += 1


def test_evict_closes_the_local_connection_that_carries_the_conversation():
    clock = Clock()
    config = make_config(llm={"pacing": False})
    client = ChatProvider(config.llm, "test-key", clock, StubTreq(FakeProvider(clock=clock)))
    manager = make_manager(config, client, clock, system_prompt="sistema")
    kept, evicted = Told(), Told()
    sessions = [fired(manager.open("tcp", "127.0.0.1", listener)) for listener in (kept, evicted)]
    manager.evict("not-carried-here")
    manager.evict(sessions[1].conversation_id)
    manager.evict(sessions[1].conversation_id)  # told once
    assert (kept.taken_over, evicted.taken_over) == (0, 1)
    assert sessions[1].closed and not sessions[0].closed
    assert sessions[1].conversation_id not in manager.holders


@pytest_twisted.ensureDeferred
async def test_one_instance_wins_the_probe_until_it_clears_or_the_claim_lapses(redis_server):
    links = [RedisLink(redis_server.url, reactor, probe_seconds=0.1) for _ in range(2)]
    healths = [RedisHealth(link, reactor, refresh_seconds=5) for link in links]
    try:
        assert await healths[0].claim_probe("breaker", 30) is True
        assert await healths[1].claim_probe("breaker", 30) is False
        healths[0].clear("breaker")  # its probe succeeded: the claim goes with the report
        await eventually(lambda: redis_server.command(
            "EXISTS", "psicoia:health:breaker:probe") == b":0\r\n")
        assert await healths[1].claim_probe("breaker", 0.2) is True
        await eventually(lambda: redis_server.command(
            "EXISTS", "psicoia:health:breaker:probe") == b":0\r\n")  # lapsed
        assert await healths[0].claim_probe("breaker", 30) is True
        redis_server.stop()
        assert await healths[1].claim_probe("breaker", 30) is True  # alone: decide locally
    finally:
        for health in healths:
            health.stop()
        for link in links:
            await link.close()
