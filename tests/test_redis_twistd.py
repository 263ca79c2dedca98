"""Real ``twistd psicoia`` processes on one redis-server: ``kill -9`` of an instance that holds
every provider slot gives them back to the others within the lease."""

from __future__ import annotations

import time

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.fake_provider import FakeProvider, Scripted, serve
from tests.redis_support import redis_server  # noqa: F401 (fixture)
from tests.test_launch import Twistd, child_env, greeted_client, local_config

LEASE = 1.5


def completions(provider: FakeProvider) -> list:
    """The chat-completion calls (not the start-up probe of the models list)."""
    return [r for r in provider.requests if r.get("method", "POST") == "POST"]


@pytest_twisted.ensureDeferred
async def test_kill_9_of_an_instance_holding_slots_frees_them_within_the_lease(
        tmp_path, redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    provider.push(*[Scripted(hang=True) for _ in range(3)])
    extra = (f"llm:\n  base_url: \"{url}\"\n  max_in_flight: 3\n"
             f"storage:\n  backend: redis\n  redis_url: \"{redis_server.url}\"\n"
             f"  lease_seconds: {LEASE}\n")
    processes = []
    try:
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            processes.append(Twistd.start(["--config", local_config(workdir, extra)], workdir,
                                          child_env(GROQ_API_KEY="sk-test")))
        doomed, survivor = processes
        doomed_port = await doomed.port()
        holders = [await greeted_client(doomed_port) for _ in range(3)]
        for client, _ in holders:
            client.say("hola")
        for _ in range(500):  # bounded: 10 s
            if provider.in_flight == 3:
                break
            await deferLater(reactor, 0.02, lambda: None)
        assert provider.in_flight == 3
        waiter, greeting = await greeted_client(await survivor.port())
        waiter.say("¿hay alguien?")
        await deferLater(reactor, 0.5, lambda: None)
        assert len(completions(provider)) == 3  # waits: the slots are all held on the other one
        killed_at = time.monotonic()
        doomed.kill()  # SIGKILL: no release, no goodbye
        lines = await waiter.wait_lines(greeting + 1, timeout=LEASE + 5)
        waited = time.monotonic() - killed_at
        print(f"slots back after kill -9: {waited:.2f} s (lease {LEASE} s)")
        assert lines[-1].startswith("Te escucho."), lines
        assert waited < LEASE + 1.0, waited  # the lease plus one poll, not the 30 s timeout
        survivor.signal("TERM")
        assert await survivor.exit_code() == 0
    finally:
        for process in processes:
            process.kill()
        await provider_port.stopListening()
