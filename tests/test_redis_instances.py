"""Several instances as one service on a real redis-server (issue 18), over real sockets on
127.0.0.1: a global cap on provider calls, numbers unique across instances, /retomar on another
instance with the old connection closed, and Redis stopped and started mid-load."""

from __future__ import annotations

import re

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, gatherResults

from psicoia import texts
from tests.fake_provider import FakeProvider, serve
from tests.helpers import connect_line_client, make_config, port_of, start_service
from tests.redis_support import eventually, pause, redis_server  # noqa: F401 (fixture)

GREETING_LINES = 3 + len(texts.GREETING_BODY)


def completions(provider: FakeProvider) -> list:
    """The chat-completion calls (not the start-up probe of the models list)."""
    return [r for r in provider.requests if r.get("method", "POST") == "POST"]


def slow(provider: FakeProvider, seconds: float) -> None:
    original = provider._answer
    provider._answer = lambda request, step: reactor.callLater(seconds, original, request, step)


def redis_config(url: str, provider_url: str, **llm):
    return make_config(llm={"base_url": provider_url, **llm},
                       storage={"backend": "redis", "redis_url": url, "lease_seconds": 2.0})


async def start_instances(count: int, config):
    services = [await start_service(config) for _ in range(count)]
    ports = [await port_of(service, "tcp") for service in services]
    return services, ports


async def stop_all(services, provider_port) -> None:
    await gatherResults([service.stopService() for service in services], consumeErrors=True)
    await provider_port.stopListening()


def user_of(greeting: list[str]) -> str:
    return greeting[0].split()[0]


def code_of(greeting: list[str]) -> str:
    line = next(line for line in greeting if "/retomar " in line)
    return re.search(r"/retomar (\S+)", line).group(1)


@pytest_twisted.ensureDeferred
async def test_three_instances_twelve_users_three_calls_at_once(redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    slow(provider, 0.2)
    services, ports = await start_instances(3, redis_config(redis_server.url, url,
                                                            max_in_flight=3))
    try:
        clients = [await connect_line_client(ports[n % 3]) for n in range(12)]
        greetings = await gatherResults([c.wait_lines(GREETING_LINES) for c in clients])
        users = [user_of(g) for g in greetings]
        assert len(set(users)) == 12, users  # unique across the three instances
        for index, client in enumerate(clients):
            client.say(f"mensaje {index}")
        results = await DeferredList([c.wait_lines(GREETING_LINES + 1, timeout=20)
                                      for c in clients], fireOnOneErrback=True)
        for _, lines in results:
            assert lines[-1].startswith("Te escucho."), lines[-1]
        assert len(completions(provider)) == 12
        assert provider.max_in_flight == 3  # the global cap, reached and never passed
        for client in clients:
            client.transport.loseConnection()
    finally:
        await stop_all(services, provider_port)


@pytest_twisted.ensureDeferred
async def test_retomar_on_another_instance_continues_and_closes_the_old_connection(
        redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    services, ports = await start_instances(2, redis_config(redis_server.url, url))
    try:
        first = await connect_line_client(ports[0])
        greeting = await first.wait_lines(GREETING_LINES)
        user, code = user_of(greeting), code_of(greeting)
        first.say("me peleé con mi hermana")
        await first.wait_lines(GREETING_LINES + 1)
        await pause(0.2)  # the history write is not awaited by the reply

        second = await connect_line_client(ports[1])
        await second.wait_lines(GREETING_LINES)
        second.say(f"/retomar {code}")
        lines = await second.wait_lines(GREETING_LINES + 1)
        assert lines[-1] == texts.RESUMED.format(number=user.split("-")[1])
        # The first instance closes its connection, with the notice.
        old = await first.wait_lines(GREETING_LINES + 2)
        assert old[-1] == texts.TAKEN_OVER
        await first.closed
        second.say("sigo triste")
        await second.wait_lines(GREETING_LINES + 2)
        seen = [m["content"] for m in completions(provider)[-1]["json"]["messages"]]
        assert "me peleé con mi hermana" in seen and seen[-1] == "sigo triste"
        second.transport.loseConnection()
    finally:
        await stop_all(services, provider_port)


@pytest_twisted.ensureDeferred
async def test_redis_stopped_and_started_mid_load_no_reply_lost_or_doubled(redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    slow(provider, 0.05)
    services, ports = await start_instances(3, redis_config(redis_server.url, url,
                                                            max_in_flight=3))
    try:
        clients = [await connect_line_client(ports[n % 3]) for n in range(6)]
        await gatherResults([c.wait_lines(GREETING_LINES) for c in clients])
        sent = 0

        async def round_(label: str) -> None:
            nonlocal sent
            for index, client in enumerate(clients):
                client.say(f"{label} {index}")  # lengths differ: replies name them
            sent += 1
            await gatherResults([c.wait_lines(GREETING_LINES + sent, timeout=20)
                                 for c in clients])

        await round_("antes")
        redis_server.stop()
        await round_("durante")  # whether or not the instances noticed yet
        await eventually(lambda: all(s.manager.store.health == "degraded" for s in services),
                         timeout=5)
        await round_("caido")
        redis_server.start()
        await eventually(lambda: all(s.manager.store.health == "ok" for s in services),
                         timeout=20)
        await round_("despues")
        await pause(0.3)  # nothing more arrives
        for index, client in enumerate(clients):
            replies = client.lines[GREETING_LINES:]
            assert len(replies) == 4, replies  # exactly one reply per message
            for label, reply in zip(("antes", "durante", "caido", "despues"), replies):
                assert reply.endswith(f"({len(f'{label} {index}')})"), (label, reply)
        assert len(completions(provider)) == 24
        for client in clients:
            client.transport.loseConnection()
    finally:
        await stop_all(services, provider_port)
