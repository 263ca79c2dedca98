"""The WebSocket section of CONTRACT.md and docs/protocol.md, on both listeners, over real sockets.

``ws://HOST:8765/`` is the ``websocket`` listener, ``ws://HOST:8000/ws`` the ``http`` one; every
promise is checked on both with a real Autobahn client on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher

from psicoia import texts
from psicoia.chat.session import FLOOD_FACTOR
from psicoia.ops.connections import ConnectionRegistry
from psicoia.transports.chat_socket import chat_socket_factory
from psicoia.transports.origins import OriginPolicy
from psicoia.transports.websocket import HARD_CAP_MIN_BYTES, JSON_PROTOCOL, ChatSocket
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import fired, make_manager  # noqa: F401
from tests.helpers import LOCAL, connect_line_client, make_config, port_of, start_service
from tests.wsclient import (
    GREETING_LINES,
    FrameClient,
    HandshakeFailed,
    connect_ws,
    handshake_status,
)

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


# --- line mode (no subprotocol) -------------------------------------------------------------


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
async def test_each_text_frame_gets_exactly_one_reply_frame_in_order(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        for text in ("uno", "dos dos", "tres tres tres"):
            client.say(text)
        frames = await client.wait_frames(GREETING_LINES + 3)
        assert frames[GREETING_LINES:] == [
            "Te escucho. ¿Qué sentís? (3)", "Te escucho. ¿Qué sentís? (7)",
            "Te escucho. ¿Qué sentís? (14)"]
        assert [r["json"]["messages"][-1]["content"] for r in server.provider.requests] == [
            "uno", "dos dos", "tres tres tres"]
        await client.hang_up()
        assert len(client.frames) == GREETING_LINES + 3
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_line_breaks_inside_a_frame_are_folded_into_one_message(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        client.say("me siento\nmuy\r\nsolo")
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (18)"
        assert len(server.provider.requests) == 1
        assert server.provider.requests[0]["json"]["messages"][-1]["content"] == "me siento muy solo"
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_a_reply_with_line_breaks_arrives_as_one_frame(listener, path):
    server = await start(provider=FakeProvider(default_reply="línea uno\nlínea dos"))
    try:
        client = await greeted(server, listener, path)
        client.say("hola")
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "línea uno línea dos (4)"
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_empty_frames_get_no_reply(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        client.say("")
        client.say("  \n ")
        client.say("hola")
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (4)"
        await client.hang_up()
        assert len(client.frames) == GREETING_LINES + 1
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_binary_frames_get_a_notice_and_change_nothing(listener, path):
    server = await start(limits={"rate_max_messages": 1})
    try:
        client = await greeted(server, listener, path)
        client.sendMessage(b"\x00\x01hola", isBinary=True)
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.BINARY_FRAME
        # Not sent to the model, not counted by the rate limit (one message allowed).
        assert server.provider.requests == []
        client.say("hola")
        frames = await client.wait_frames(GREETING_LINES + 2)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (4)"
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_salir_gets_the_goodbye_frame_then_the_server_closes(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        client.say("  SALIR ")
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.GOODBYE
        assert await client.closed == 1000
        assert len(server.service.registry) == 0
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_too_long_message_gets_the_notice_and_the_connection_stays(listener, path):
    server = await start(limits={"max_line_bytes": 64})
    try:
        client = await greeted(server, listener, path)
        client.say("ñ" * 33)  # 66 bytes in UTF-8, 33 characters
        client.say("x" * 200_000)  # far over: discarded as it arrives, still one notice
        client.say("x" * 64)  # exactly the limit: accepted
        frames = await client.wait_frames(GREETING_LINES + 3)
        too_long = texts.TOO_LONG.format(limit=64)
        assert frames[GREETING_LINES:] == [too_long, too_long, "Te escucho. ¿Qué sentís? (64)"]
        assert len(server.provider.requests) == 1
        assert client.close_code is None
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


@both_listeners
@pytest_twisted.ensureDeferred
async def test_invalid_utf8_in_a_text_frame_is_replaced_not_fatal(listener, path):
    server = await start()
    try:
        client = await greeted(server, listener, path)
        client.sendMessage(b"hola \xff\xfe", isBinary=False)
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1].startswith("Te escucho.")
        assert server.provider.requests[0]["json"]["messages"][-1]["content"] == "hola \ufffd\ufffd"
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_escaped_lone_surrogates_are_replaced_not_fatal(listener, path):
    server = await start()
    try:
        client, _ = await json_client(server, listener, path)
        client.say('{"type": "message", "text": "hola \\ud800", "ref": "r\\udc00"}')
        client.send_event(type="message", text="otra", ref="b")
        reply = await client.wait_event(type="reply", ref="b")
        assert reply["text"] == "Te escucho. ¿Qué sentís? (4)"
        assert [r["json"]["messages"][-1]["content"] for r in server.provider.requests] == [
            "hola \ufffd", "otra"]
        assert (await client.wait_event(type="reply", ref="r\ufffd"))["trace_id"] == "Usuario-1:m1"
        await client.hang_up()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_user_numbers_are_shared_with_tcp():
    server = await start()
    try:
        tcp = await connect_line_client(await port_of(server.service, "tcp"))
        first = (await tcp.wait_lines(GREETING_LINES))[0]
        standalone = await greeted(server, "websocket", "/")
        on_http = await greeted(server, "http", "/ws")
        assert [first, standalone.frames[0], on_http.frames[0]] == [
            "Usuario-1 conectado.", "Usuario-2 conectado.", "Usuario-3 conectado."]
        tcp.transport.loseConnection()
        await standalone.hang_up()
        await on_http.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_connection_caps_are_shared_with_tcp(listener, path):
    server = await start(server={"max_connections": 2, "max_connections_per_ip": 1})
    try:
        tcp = await connect_line_client(await port_of(server.service, "tcp"))
        await tcp.wait_lines(GREETING_LINES)
        if listener == "http":
            # The HTTP listener counts the connection before any upgrade: refused with 503.
            with pytest.raises(HandshakeFailed, match="503"):
                await server.connect(listener, path)
        else:
            refused = await server.connect(listener, path)
            assert await refused.wait_frames(1) == [texts.TOO_MANY_FROM_ADDRESS]
            assert await refused.closed == 1013
        assert len(server.service.registry) == 1
        tcp.transport.loseConnection()
        await tcp.closed
        await server.service.registry.when_empty()  # the server side has let it go too
        admitted = await greeted(server, listener, path)
        assert len(server.service.registry) == 1
        await admitted.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_idle_timeout_runs_on_the_injected_clock(listener, path):
    clock = Clock()
    server = await start(clock=clock, limits={"idle_timeout_seconds": 60})
    try:
        client = await greeted(server, listener, path)
        clock.advance(59)
        client.say("hola")
        await client.wait_frames(GREETING_LINES + 1)
        clock.advance(59)  # the message reset the timer
        assert client.close_code is None and len(client.frames) == GREETING_LINES + 1
        clock.advance(2)
        frames = await client.wait_frames(GREETING_LINES + 2)
        assert frames[-1] == texts.IDLE_TIMEOUT
        assert await client.closed == 1000
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


@both_listeners
@pytest_twisted.ensureDeferred
async def test_message_text_and_replies_never_reach_the_logs(listener, path):
    events = []
    globalLogPublisher.addObserver(events.append)
    server = await start()
    try:
        client = await greeted(server, listener, path)
        client.say("mi secreto triste")
        await client.wait_frames(GREETING_LINES + 1)
        await client.hang_up()
    finally:
        await server.stop()
        globalLogPublisher.removeObserver(events.append)
    dumped = repr(events)
    assert "websocket" in dumped
    assert "secreto" not in dumped and "Te escucho" not in dumped


# --- keepalive --------------------------------------------------------------------------------


class PingClient(FrameClient):
    """Records the server's pings and, unless told not to, answers them (Autobahn's default)."""

    answer_pings = True

    def __init__(self) -> None:
        super().__init__()
        self.pinged: list[Deferred] = [Deferred() for _ in range(3)]

    def onPing(self, payload: bytes) -> None:
        self.pinged.pop(0).callback(None)
        if self.answer_pings:
            super().onPing(payload)


class PongServerProtocol(ChatSocket):
    def onPong(self, payload: bytes) -> None:
        self.factory.ponged.pop(0).callback(None)


async def keepalive_server(answer_pings: bool, timers: Clock):
    """A chat socket factory whose keepalive runs on ``timers`` (30 s pings, 10 s timeout)."""
    from autobahn.twisted.websocket import WebSocketClientFactory
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from psicoia.provider.client import ChatProvider
    from psicoia.chat.manager import SessionManager

    config = make_config(api_key=None)
    manager = make_manager(config, ChatProvider(config.llm, None, reactor, None), reactor)
    registry = ConnectionRegistry(10, 10)
    factory = chat_socket_factory(manager, registry, reactor, OriginPolicy(), reactor=reactor,
                                   ping_interval=30, ping_timeout=10, timers_clock=timers)
    factory.protocol = PongServerProtocol
    factory.ponged = [Deferred() for _ in range(3)]
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    client_factory = WebSocketClientFactory(f"ws://127.0.0.1:{port.getHost().port}/")
    client_factory.protocol = type("Client", (PingClient,), {"answer_pings": answer_pings})
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=5)
    client = await endpoint.connect(client_factory)
    await client.opened
    await client.wait_frames(GREETING_LINES)
    return port, registry, factory, client


def soon(deferred: Deferred) -> Deferred:
    return deferred.addTimeout(5, reactor)


@pytest_twisted.ensureDeferred
async def test_server_pings_and_a_client_that_answers_stays_connected():
    timers = Clock()
    port, registry, factory, client = await keepalive_server(True, timers)
    try:
        assert not client.pinged[0].called
        timers.advance(30)
        await soon(client.pinged[0])
        await soon(factory.ponged[0])
        timers.advance(10)  # the ping timeout would have passed: the pong cancelled it
        timers.advance(20)
        await soon(client.pinged[0])  # the next ping, 30 s after the pong
        await soon(factory.ponged[0])
        assert client.close_code is None and len(registry) == 1
        await client.hang_up()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_answering_pings_is_disconnected():
    timers = Clock()
    port, registry, factory, client = await keepalive_server(False, timers)
    try:
        timers.advance(30)
        await soon(client.pinged[0])
        assert client.close_code is None
        timers.advance(10)
        await soon(client.closed)
        assert len(registry) == 0
    finally:
        await port.stopListening()


# --- JSON subprotocol psicoia.v1 -------------------------------------------------------------


async def json_client(server: Server, listener: str, path: str) -> tuple[FrameClient, dict]:
    client = await server.connect(listener, path, protocols=[JSON_PROTOCOL])
    [greeting] = await client.wait_events(1)
    return client, greeting


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_greeting_event_carries_lines_user_limit_and_trace_id(listener, path):
    server = await start(limits={"max_line_bytes": 500})
    try:
        client, greeting = await json_client(server, listener, path)
        assert client.subprotocol == JSON_PROTOCOL
        assert greeting["type"] == "greeting"
        assert greeting["protocol"] == JSON_PROTOCOL
        assert greeting["user"] == "Usuario-1" == greeting["trace_id"]
        assert greeting["lines"][0] == "Usuario-1 conectado."
        assert "salir" in greeting["lines"][-1]
        assert greeting["max_message_bytes"] == 500
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


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_queued_event_tells_the_position(listener, path):
    provider = FakeProvider()
    provider.push(Scripted(body=completion("primera respuesta"), delay=0.5))
    server = await start(provider=provider, llm={"max_in_flight": 1})
    try:
        first, _ = await json_client(server, listener, path)
        first.send_event(type="message", text="primero", ref=1)
        await first.wait_event(type="waiting")  # holds the only slot for 0.5 s
        second, _ = await json_client(server, listener, path)
        second.send_event(type="message", text="segundo", ref=2)
        events = (await second.wait_events(3))[1:]
        assert [e["type"] for e in events] == ["accepted", "queued"]
        assert events[1]["position"] == 1 and events[1]["ref"] == 2
        assert events[1]["trace_id"] == events[0]["trace_id"] == "Usuario-2:m1"
        assert (await first.wait_event(type="reply"))["text"] == "primera respuesta"
        events = (await second.wait_events(5))[3:]
        assert [e["type"] for e in events] == ["waiting", "reply"]
        assert events[1]["ref"] == 2 and events[1]["trace_id"] == "Usuario-2:m1"
        await first.hang_up()
        await second.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_notices_say_their_kind(listener, path):
    server = await start(limits={"max_line_bytes": 10, "rate_max_messages": 1})
    try:
        client, _ = await json_client(server, listener, path)
        client.send_event(type="message", text="ñ" * 6, ref="a")  # 12 bytes > 10
        too_long = await client.wait_event(type="notice", ref="a")
        assert too_long["kind"] == "too_long"
        assert too_long["text"] == texts.TOO_LONG.format(limit=10)
        assert too_long["trace_id"] == "Usuario-1:m1"
        client.sendMessage(b"\x01\x02", isBinary=True)
        binary = await client.wait_event(type="notice", kind="binary")
        assert binary["text"] == texts.BINARY_FRAME
        assert binary["ref"] is None and binary["trace_id"] == "Usuario-1"

        other, _ = await json_client(server, listener, path)
        other.send_event(type="message", text="hola", ref="b")
        other.send_event(type="message", text="otra", ref="c")
        limited = await other.wait_event(type="notice", ref="c")
        assert limited["kind"] == "rate_limited"
        assert limited["trace_id"] == "Usuario-2:m2"
        assert (await other.wait_event(type="reply"))["ref"] == "b"
        await client.hang_up()
        await other.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_bad_frames_get_an_error_event_and_change_nothing(listener, path):
    server = await start()
    try:
        client, _ = await json_client(server, listener, path)
        for bad in ("no es json", "[1, 2]", json.dumps({"type": "message"}),
                    json.dumps({"type": "otro", "text": "x"}), "[" * 5000):
            client.say(bad)
        events = await client.wait_events(6)
        assert [e["type"] for e in events[1:]] == ["error"] * 5
        assert {e["code"] for e in events[1:]} == {"bad_request"}
        assert events[1]["text"] == texts.BAD_REQUEST
        assert server.provider.requests == []
        client.send_event(type="message", text="hola")
        events = await client.wait_events(9)
        assert events[-1]["type"] == "reply" and events[-1]["ref"] is None
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_salir_gets_a_goodbye_notice_then_close(listener, path):
    server = await start()
    try:
        client, _ = await json_client(server, listener, path)
        client.send_event(type="message", text="Salir", ref=9)
        events = await client.wait_events(3)
        assert events[-1]["type"] == "notice" and events[-1]["kind"] == "goodbye"
        assert events[-1]["text"] == texts.GOODBYE
        assert await client.closed == 1000
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_offline_reply_is_a_notice(listener, path):
    offline = await start_service(make_config(api_key=None,
                                              server={"websocket": LOCAL, "http": LOCAL}))
    try:
        client = await connect_ws(await port_of(offline, listener), path,
                                  protocols=[JSON_PROTOCOL])
        await client.wait_events(1)
        client.send_event(type="message", text="hola")
        events = await client.wait_events(3)
        assert events[-1]["type"] == "notice" and events[-1]["kind"] == "offline"
        assert events[-1]["text"] and events[-1]["ref"] is None
        await client.hang_up()
    finally:
        await offline.stopService()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_events_say_crisis_when_the_reply_carries_the_resources(listener, path):
    server = await start(safety={"resources": ("Línea de prueba 135", "Emergencias 911")})
    try:
        client, _ = await json_client(server, listener, path)
        client.send_event(type="message", text="hola, hoy estoy cansada", ref="n")
        normal = await client.wait_event(type="reply", ref="n")
        assert normal["crisis"] is False
        assert normal["text"] == "Te escucho. ¿Qué sentís? (23)"
        client.send_event(type="message", text="me quiero morir", ref="r")
        risk = await client.wait_event(type="reply", ref="r")
        assert risk["crisis"] is True and risk["final"] is True
        resources = texts.CRISIS_RESOURCES.format(
            resources="Línea de prueba 135; Emergencias 911")
        assert risk["text"] == f"Te escucho. ¿Qué sentís? (15) {resources}"
        # The next reply carries only the reminder: not a crisis reply.
        client.send_event(type="message", text="gracias", ref="after")
        after = await client.wait_event(type="reply", ref="after")
        assert after["crisis"] is False and after["text"].endswith(texts.CRISIS_REMINDER)
        await client.hang_up()
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_crisis_flag_on_notices_and_not_in_line_mode(listener, path):
    offline = await start_service(make_config(api_key=None,
                                              server={"websocket": LOCAL, "http": LOCAL}))
    try:
        port = await port_of(offline, listener)
        client = await connect_ws(port, path, protocols=[JSON_PROTOCOL])
        await client.wait_events(1)
        client.send_event(type="message", text="hola", ref="a")
        calm = await client.wait_event(type="notice", ref="a")
        assert calm["kind"] == "offline" and calm["crisis"] is False
        client.send_event(type="message", text="me quiero morir", ref="b")
        risk = await client.wait_event(type="notice", ref="b")
        assert risk["kind"] == "offline" and risk["crisis"] is True
        resources = texts.CRISIS_RESOURCES.format(
            resources="; ".join(offline.config.safety.resources))
        assert risk["text"] == f"{texts.CRISIS_SUPPORT} {resources}"
        await client.hang_up()

        line = await connect_ws(port, path)
        await line.wait_frames(GREETING_LINES)
        line.say("me quiero morir")
        frames = await line.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == f"{texts.CRISIS_SUPPORT} {resources}"  # plain text, no JSON
        await line.hang_up()
    finally:
        await offline.stopService()


# --- Origin -----------------------------------------------------------------------------------


@both_listeners
@pytest_twisted.ensureDeferred
async def test_origin_rules_by_default(listener, path):
    server = await start()
    try:
        port = await port_of(server.service, listener)
        http_port = await port_of(server.service, "http")
        assert await handshake_status(port, path) == 101  # no Origin: wscat, scripts
        assert await handshake_status(port, path, origin=f"http://127.0.0.1:{port}") == 101
        assert await handshake_status(port, path, origin=f"http://127.0.0.1:{http_port}") == 101
        assert await handshake_status(port, path, origin="http://evil.example") == 403
        assert await handshake_status(port, path, origin="http://127.0.0.1:1") == 403
        assert await handshake_status(port, path, origin=f"http://localhost:{port}") == 101
        assert await handshake_status(port, path, origin=f"http://localhost:{port + 1}") == 403
        assert await handshake_status(port, path, origin="null") == 403
        # A name is never "own" because Host agrees with it (the DNS-rebinding shape): names
        # must be listed in server.allowed_origins.
        for origin, host in [("http://chat.example:8080", "chat.example:8080"),
                             ("https://chat.example", "chat.example"),
                             (f"http://evil.example:{port}", f"evil.example:{port}")]:
            assert await handshake_status(port, path, origin=origin, host=host) == 403
        # An IP literal cannot be re-pointed: the one the browser used (its Host) is own.
        assert await handshake_status(port, path, origin=f"http://10.9.8.7:{port}",
                                      host=f"10.9.8.7:{port}") == 101
        assert await handshake_status(port, path, origin=f"http://10.9.8.7:{port}") == 403
    finally:
        await server.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_allowed_origins_adds_listed_origins(listener, path):
    server = await start(server={"allowed_origins": ("https://chat.example.org",)})
    try:
        port = await port_of(server.service, listener)
        assert await handshake_status(port, path, origin="https://chat.example.org") == 101
        assert await handshake_status(port, path, origin="https://CHAT.example.org:443") == 101
        assert await handshake_status(port, path, origin="http://chat.example.org") == 403
        assert await handshake_status(port, path, origin="https://other.example.org") == 403
        assert await handshake_status(port, path, origin=f"http://127.0.0.1:{port}") == 101
        client = await server.connect(listener, path, origin="https://chat.example.org")
        assert len(await client.wait_frames(GREETING_LINES)) == GREETING_LINES
        await client.hang_up()
    finally:
        await server.stop()


def test_origin_policy_star_and_null():
    assert OriginPolicy(("*",)).allows("http://anything.example", "10.0.0.1", 1)
    assert not OriginPolicy().allows("null", "10.0.0.1", 1)
    assert OriginPolicy(("null",)).allows("null", "10.0.0.1", 1)
    assert not OriginPolicy().allows("http://x:1", None)


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


@pytest_twisted.ensureDeferred
async def test_json_resume_and_forget_events_carry_the_conversation():
    server = await start()
    try:
        first, greeting = await json_client(server, "http", "/ws")
        token = greeting["resume_token"]
        assert "taken_over" in greeting["kinds"] and "answered" in greeting["conversational"]
        first.send_event(type="message", text="me llamo Ana", ref="m1")
        await first.wait_events(4)  # greeting, accepted, waiting, reply
        second, _ = await json_client(server, "http", "/ws")
        second.send_event(type="resume", token=token, ref="r1")
        events = await second.wait_events(4)  # greeting, accepted, conversation, notice
        assert [e["type"] for e in events] == ["greeting", "accepted", "conversation", "notice"]
        conversation, notice = events[2], events[3]
        assert conversation["resume_token"] == token and conversation["ref"] == "r1"
        assert conversation["type"] == "conversation" and conversation["user"] == "Usuario-1"
        assert [turn["role"] for turn in conversation["transcript"]] == ["user", "assistant"]
        assert conversation["transcript"][0]["text"] == "me llamo Ana"
        assert notice["kind"] == "command" and notice["ref"] == "r1"
        taken = await first.wait_events(5)
        assert taken[4]["kind"] == "taken_over"
        assert await first.closed == 1000
        second.send_event(type="forget", ref="f1")
        events = await second.wait_events(7)
        assert events[5]["type"] == "conversation" and events[5]["transcript"] == []
        assert events[5]["resume_token"] != token and events[6]["ref"] == "f1"
        second.send_event(type="resume", token=token)
        events = await second.wait_events(9)
        assert events[8]["text"] == texts.RESUME_UNKNOWN, "a forgotten token stops working"
        await second.hang_up()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_page_with_20_queued_messages_keeps_answering_pings_and_gets_20_replies():
    """Held back by its backlog, the socket still reads control frames (issue 16, item 4)."""
    from autobahn.twisted.websocket import WebSocketClientFactory
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from tests.provider_stub import ControlledProvider

    timers = Clock()
    provider = ControlledProvider()
    config = make_config(limits={"rate_max_messages": 100})
    manager = make_manager(config, provider, reactor, system_prompt="s")
    registry = ConnectionRegistry(10, 10)
    factory = chat_socket_factory(manager, registry, reactor, OriginPolicy(), reactor=reactor,
                                   ping_interval=30, ping_timeout=10, timers_clock=timers)
    factory.protocol = PongServerProtocol
    factory.ponged = [Deferred() for _ in range(3)]
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    try:
        client_factory = WebSocketClientFactory(f"ws://127.0.0.1:{port.getHost().port}/")
        client_factory.protocol = PingClient
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=5)
        client = await endpoint.connect(client_factory)
        await client.opened
        await client.wait_frames(GREETING_LINES)
        for number in range(20):
            client.say(f"mensaje {number}")
        for _ in range(100):  # bounded: until the first call is out (1 s)
            if provider.calls:
                break
            await deferLater(reactor, 0.01, lambda: None)
        socket = registry.connections()[0]
        for _ in range(100):  # until all 20 were read: 16 unanswered, 4 held
            if len(socket.backend._waiting) == 4:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert socket.backend.backlog.paused and len(socket.backend._waiting) == 4
        timers.advance(30)
        await soon(client.pinged[0])
        await soon(factory.ponged[0])  # the pong was read although messages are held
        timers.advance(15)
        assert client.close_code is None, "not dropped by the keepalive"
        for _ in range(40):
            provider.answer_all()
            await deferLater(reactor, 0, lambda: None)
            if len(client.frames) >= GREETING_LINES + 20:
                break
        frames = await client.wait_frames(GREETING_LINES + 20)
        assert frames[GREETING_LINES:] == [f"re: mensaje {n}" for n in range(20)]
        await client.hang_up()
    finally:
        await port.stopListening()
