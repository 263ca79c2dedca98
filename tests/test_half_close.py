"""
Half-close over real 127.0.0.1 sockets: a client that sends its lines and then shuts its
sending side (``printf 'hola\\n' | ncat``, ``nc -N``) gets every line answered, in order, and
then the server closes.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from psicoia import texts
from tests.fake_provider import FakeProvider, serve
from tests.helpers import connect_line_client, make_config, port_of, start_service
from tests.test_protocol_tcp import Harness

GREETING_LINES = 3 + len(texts.GREETING_BODY)  # first, body, resume code, last
SLOW_SECONDS = 0.1


async def slow_provider():
    provider = FakeProvider()
    original = provider._answer
    provider._answer = lambda request, step: reactor.callLater(SLOW_SECONDS, original,
                                                               request, step)
    port, url = await serve(provider)
    return provider, port, url


@pytest_twisted.ensureDeferred
async def test_lines_sent_before_fin_are_all_answered_in_order_then_the_server_closes():
    provider, provider_port, url = await slow_provider()
    service = await start_service(make_config(llm={"base_url": url}))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        # The last line has no line end: the FIN ends it.
        client.transport.write(b"a\nbb\r\nccc\r\x00dddd")
        client.transport.loseWriteConnection()
        await client.closed.addTimeout(10, reactor)
        assert client.lines[GREETING_LINES:] == [
            "Te escucho. ¿Qué sentís? (1)", "Te escucho. ¿Qué sentís? (2)",
            "Te escucho. ¿Qué sentís? (3)", "Te escucho. ¿Qué sentís? (4)"]
        assert len(provider.requests) == 4
        assert len(service.registry) == 0
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_fin_with_nothing_pending_closes_at_once():
    service = await start_service(make_config(api_key=None))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.transport.loseWriteConnection()
        await client.closed.addTimeout(5, reactor)
        assert client.lines[GREETING_LINES:] == []
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_salir_before_fin_says_goodbye_and_answers_nothing_after_it():
    service = await start_service(make_config(api_key=None))
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.transport.write(b"salir\nhola\n")
        client.transport.loseWriteConnection()
        await client.closed.addTimeout(5, reactor)
        assert client.lines[GREETING_LINES:] == [texts.GOODBYE]
    finally:
        await service.stopService()


def test_a_pasted_flood_then_fin_is_answered_whole_as_replies_go_out():
    # In memory: the FIN arrives while reading is paused by the backlog (200 lines pending).
    harness = Harness(limits={"rate_max_messages": 1000})
    client = harness.connect()
    client.send(b"".join(b"linea %d\n" % n for n in range(200)) + b"ultima")
    client.protocol.readConnectionLost()
    while harness.clock.advance(0) or harness.provider.pending:  # a turn: more lines go on
        assert client.connected
        call = harness.provider.pending[0]
        call.answer(f"re: {call.text}")
    assert harness.texts == [f"linea {n}" for n in range(200)] + ["ultima"]
    assert client.replies[-1] == "re: ultima" and len(client.replies) == 201
    assert not client.connected
