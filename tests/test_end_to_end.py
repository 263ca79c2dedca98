"""The real service on ephemeral 127.0.0.1 ports, against the fake provider, over real sockets."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList

from psicoia import texts
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import connect_line_client, port_of, start_service, make_config

GREETING_LINES = 3 + len(texts.GREETING_BODY)


@pytest_twisted.ensureDeferred
async def test_chat_over_tcp_with_fake_provider():
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    service = await start_service(make_config(llm={"base_url": url}))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        greeting = await client.wait_lines(GREETING_LINES)
        assert greeting[0].startswith("Usuario-") and greeting[0].endswith(" conectado.")
        assert "salir" in greeting[-1]
        client.say("hola, me siento solo")
        lines = await client.wait_lines(GREETING_LINES + 1)
        assert lines[-1] == "Te escucho. ¿Qué sentís? (20)"
        request = provider.requests[0]
        assert request["headers"]["authorization"] == "Bearer test-key"
        assert request["headers"]["x-request-id"].endswith(":m1")
        client.say("salir")
        await client.wait_lines(GREETING_LINES + 2)
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_twelve_users_three_in_flight_all_answered():
    provider = FakeProvider()
    provider_port, url = await serve(provider)

    # Slow every answer a little so calls overlap.
    original = provider._answer
    provider._answer = lambda request, step: reactor.callLater(0.05, original, request, step)
    service = await start_service(make_config(llm={"base_url": url, "max_in_flight": 3}))
    try:
        port = await port_of(service, "tcp")
        clients = [await connect_line_client(port) for _ in range(12)]
        await DeferredList([c.wait_lines(GREETING_LINES) for c in clients])
        for index, client in enumerate(clients):
            client.say(f"mensaje {index}")
        results = await DeferredList(
            [c.wait_lines(GREETING_LINES + 1) for c in clients], fireOnOneErrback=True
        )
        for (_, lines) in results:
            assert lines[-1].startswith("Te escucho.")
        assert len(provider.requests) == 12
        assert provider.max_in_flight == 3
        for client in clients:
            client.transport.loseConnection()
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_reply_with_an_escaped_lone_surrogate_still_reaches_the_user():
    # JSON lets a provider send "\ud800", which no UTF-8 write can carry: it is replaced, and
    # neither that reply nor the next one is lost.
    provider = FakeProvider()
    provider.push(Scripted(body=completion("hola \ud800 che")))
    provider_port, url = await serve(provider)
    service = await start_service(make_config(llm={"base_url": url}))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.say("uno")
        client.say("dos")
        lines = await client.wait_lines(GREETING_LINES + 2)
        assert lines[GREETING_LINES:] == ["hola \ufffd che", "Te escucho. ¿Qué sentís? (3)"]
    finally:
        await service.stopService()
        await provider_port.stopListening()
