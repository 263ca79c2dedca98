"""The WebSocket end to end over real sockets on 127.0.0.1: a few checks that the in-memory tests
(tests/test_websocket.py, autobahn.twisted.testing) cannot make.

Both listeners greet and answer through a real Autobahn client; the hard frame cap and a flood
of frames are about what a real TCP connection does (Autobahn failing the connection, reading
paused so that TCP flow control holds the client back); shutdown goes through the real
reactor's listeners.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from psicoia import texts
from psicoia.chat.session import FLOOD_FACTOR
from psicoia.transports.websocket import HARD_CAP_MIN_BYTES, JSON_PROTOCOL
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import LOCAL, make_config, port_of, start_service
from tests.wsclient import GREETING_LINES, FrameClient, connect_ws

LISTENERS = [("websocket", "/"), ("http", "/ws")]
both_listeners = pytest.mark.parametrize("listener, path", LISTENERS, ids=["standalone", "http-ws"])


class Server:
    """The real service with both browser listeners, wired to a fake provider."""

    def __init__(self, provider, provider_port, service) -> None:
        self.provider = provider
        self.provider_port = provider_port
        self.service = service

    async def connect(self, listener: str, path: str, **kwargs) -> FrameClient:
        return await connect_ws(await port_of(self.service, listener), path, **kwargs)

    async def stop(self) -> None:
        if self.service.running:
            await self.service.stopService()
        await self.provider_port.stopListening()


async def start(clock=None, provider=None, **sections) -> Server:
    provider = provider or FakeProvider()
    provider_port, url = await serve(provider)
    server = {"websocket": LOCAL, "http": LOCAL}
    server.update(sections.pop("server", {}))
    llm = {"base_url": url}
    llm.update(sections.pop("llm", {}))
    config = make_config(server=server, llm=llm, **sections)
    kwargs = {"clock": clock} if clock is not None else {}
    return Server(provider, provider_port, await start_service(config, **kwargs))


async def greeted(server: Server, listener: str, path: str) -> FrameClient:
    client = await server.connect(listener, path)
    await client.wait_frames(GREETING_LINES)
    return client


async def json_client(server: Server, listener: str, path: str) -> tuple[FrameClient, dict]:
    client = await server.connect(listener, path, protocols=[JSON_PROTOCOL])
    [greeting] = await client.wait_events(1)
    return client, greeting


@both_listeners
@pytest_twisted.ensureDeferred
async def test_greeting_lines_arrive_one_per_frame_and_only_the_last_says_salir(listener, path):
    server = await start()
    try:
        client = await server.connect(listener, path)
        greeting = await client.wait_frames(GREETING_LINES)
        assert client.subprotocol is None
        assert greeting[0].startswith("Usuario-") and greeting[0].endswith(" conectado.")
        assert "salir" in greeting[-1]
        assert not any("salir" in line for line in greeting[:-1])
        assert all("\n" not in frame for frame in greeting)
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_message_gets_accepted_waiting_and_a_final_reply_with_one_trace_id(
        listener, path):
    server = await start()
    try:
        client, _ = await json_client(server, listener, path)
        client.send_event(type="message", text="hola\nmundo", ref="c1")
        events = (await client.wait_events(4))[1:]
        assert [e["type"] for e in events] == ["accepted", "waiting", "reply"]
        assert {e["trace_id"] for e in events} == {"Usuario-1:m1"}
        assert {e["ref"] for e in events} == {"c1"}
        assert events[-1]["text"] == "Te escucho. ¿Qué sentís? (10)"
        assert events[-1]["final"] is True
        assert server.provider.requests[0]["headers"]["x-request-id"].endswith("Usuario-1:m1")
        await client.hang_up()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_frame_over_the_hard_cap_drops_only_that_connection():
    server = await start()
    try:
        abuser = await greeted(server, "websocket", "/")
        neighbour = await greeted(server, "websocket", "/")
        abuser.say("x" * (HARD_CAP_MIN_BYTES * 8))
        assert await abuser.closed in (1006, 1009)
        neighbour.say("hola")
        assert (await neighbour.wait_frames(GREETING_LINES + 1))[-1].startswith("Te escucho.")
        assert len(server.service.registry) == 1
        await neighbour.hang_up()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_flood_of_frames_is_read_as_replies_go_out_not_queued_without_bound():
    provider = FakeProvider()
    provider.push(Scripted(hang=True))  # the first reply is pending while the flood arrives
    server = await start(provider=provider, limits={"rate_max_messages": 1})
    try:
        client = await greeted(server, "websocket", "/")
        frames = 3000
        for n in range(frames):
            client.say(f"linea {n} " + "x" * 1000)
        socket = server.service.registry.connections()[0]
        # Give the reactor time to read what the server is willing to read.
        for _ in range(20):
            await deferLater(reactor, 0.01, lambda: None)
        assert socket.backend.backlog.paused
        assert len(socket.backend.session._pending) < frames // 4
        provider.hanging[0].setResponseCode(200)
        provider.hanging[0].write(completion("primera"))
        provider.hanging[0].finish()
        # Answered in order: the reply, one notice per refused frame, then the flood is told
        # and closed (FLOOD_FACTOR x rate_max_messages refused in a row).
        await client.closed.addTimeout(30, reactor)
        replies = client.frames[GREETING_LINES:]
        assert replies[0] == "primera"
        assert all(r.startswith("Vamos más despacio") for r in replies[1:-1])
        assert replies[-1] == texts.FLOODING and len(replies) == 1 + FLOOD_FACTOR + 1
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_shutdown_tells_websocket_users_then_closes_going_away(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        await server.service.stopService()
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert await client.closed == 1001
    finally:
        await server.stop()
