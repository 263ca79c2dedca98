"""The WebSocket section of CONTRACT.md and docs/protocol.md, on both listeners, in memory.

``ws://HOST:8765/`` is the ``websocket`` listener, ``ws://HOST:8000/ws`` the ``http`` one; every
promise is checked on both with a real Autobahn client, over ``autobahn.twisted.testing``'s
in-memory transports, against the real service on a ``MemoryReactorClock`` (tests/wsmemory.py).
A few end-to-end checks over real sockets on 127.0.0.1 are in tests/test_websocket_sockets.py.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from zope.interface.verify import verifyClass

from psicoia import texts
from psicoia.app.gateway import GatewayBridge
from psicoia.ops.connections import ConnectionRegistry
from psicoia.provider.client import ChatProvider
from psicoia.transports.chat_socket import ChatBackend, chat_socket_factory
from psicoia.transports.origins import OriginPolicy
from psicoia.transports.websocket import (
    JSON_PROTOCOL,
    ChatSocket,
    IChatBackend,
    IChatSocket,
)
from tests.fake_provider import FakeProvider, Scripted, completion
from tests.helpers import make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.wsclient import GREETING_LINES, HandshakeFailed
from tests.wsmemory import PORTS, MemoryClient, World

LISTENERS = [("websocket", "/"), ("http", "/ws")]
both_listeners = pytest.mark.parametrize("listener, path", LISTENERS, ids=["standalone", "http-ws"])


class Server:
    """The real service with both browser listeners, in a world of its own."""

    def __init__(self, world: World, service) -> None:
        self.world = world
        self.service = service
        self.provider = world.provider

    def connect(self, listener: str, path: str, **kwargs) -> MemoryClient:
        return self.world.connect(self.service, listener, path, **kwargs)

    def stop(self) -> None:
        self.world.stop()


def start(provider=None, **sections) -> Server:
    world = World(provider)
    world.provider.clock = world.reactor  # scripted delays run on the world's clock
    return Server(world, world.service(**sections))


def greeted(server: Server, listener: str, path: str) -> MemoryClient:
    client = server.connect(listener, path)
    client.wait_frames(GREETING_LINES)
    return client


def test_the_socket_and_its_backends_keep_to_their_declared_interfaces():
    assert verifyClass(IChatSocket, ChatSocket)
    assert verifyClass(IChatBackend, ChatBackend)
    assert verifyClass(IChatBackend, GatewayBridge)


# --- line mode (no subprotocol) -------------------------------------------------------------


@both_listeners
def test_greeting_lines_arrive_one_per_frame_and_only_the_last_says_salir(listener, path):
    server = start()
    try:
        client = server.connect(listener, path)
        greeting = client.wait_frames(GREETING_LINES)
        assert client.subprotocol is None
        assert greeting[0].startswith("Usuario-") and greeting[0].endswith(" conectado.")
        assert "salir" in greeting[-1]
        assert not any("salir" in line for line in greeting[:-1])
        assert all("\n" not in frame for frame in greeting)
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_each_text_frame_gets_exactly_one_reply_frame_in_order(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        for text in ("uno", "dos dos", "tres tres tres"):
            client.say(text)
        frames = client.wait_frames(GREETING_LINES + 3)
        assert frames[GREETING_LINES:] == [
            "Te escucho. ¿Qué sentís? (3)", "Te escucho. ¿Qué sentís? (7)",
            "Te escucho. ¿Qué sentís? (14)"]
        assert [r["json"]["messages"][-1]["content"] for r in server.provider.requests] == [
            "uno", "dos dos", "tres tres tres"]
        client.hang_up()
        assert len(client.frames) == GREETING_LINES + 3
    finally:
        server.stop()


@both_listeners
def test_line_breaks_inside_a_frame_are_folded_into_one_message(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        client.say("me siento\nmuy\r\nsolo")
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (18)"
        assert len(server.provider.requests) == 1
        assert server.provider.requests[0]["json"]["messages"][-1]["content"] == "me siento muy solo"
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_a_reply_with_line_breaks_arrives_as_one_frame(listener, path):
    server = start(provider=FakeProvider(default_reply="línea uno\nlínea dos"))
    try:
        client = greeted(server, listener, path)
        client.say("hola")
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "línea uno línea dos (4)"
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_empty_frames_get_no_reply(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        client.say("")
        client.say("  \n ")
        client.say("hola")
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (4)"
        client.hang_up()
        assert len(client.frames) == GREETING_LINES + 1
    finally:
        server.stop()


@both_listeners
def test_binary_frames_get_a_notice_and_change_nothing(listener, path):
    server = start(limits={"rate_max_messages": 1})
    try:
        client = greeted(server, listener, path)
        client.sendMessage(b"\x00\x01hola", isBinary=True)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.BINARY_FRAME
        # Not sent to the model, not counted by the rate limit (one message allowed).
        assert server.provider.requests == []
        client.say("hola")
        frames = client.wait_frames(GREETING_LINES + 2)
        assert frames[-1] == "Te escucho. ¿Qué sentís? (4)"
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_salir_gets_the_goodbye_frame_then_the_server_closes(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        client.say("  SALIR ")
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.GOODBYE
        assert client.wait_closed() == 1000
        assert len(server.service.registry) == 0
    finally:
        server.stop()


@both_listeners
def test_too_long_message_gets_the_notice_and_the_connection_stays(listener, path):
    server = start(limits={"max_line_bytes": 64})
    try:
        client = greeted(server, listener, path)
        client.say("ñ" * 33)  # 66 bytes in UTF-8, 33 characters
        client.say("x" * 200_000)  # far over: discarded as it arrives, still one notice
        client.say("x" * 64)  # exactly the limit: accepted
        frames = client.wait_frames(GREETING_LINES + 3)
        too_long = texts.TOO_LONG.format(limit=64)
        assert frames[GREETING_LINES:] == [too_long, too_long, "Te escucho. ¿Qué sentís? (64)"]
        assert len(server.provider.requests) == 1
        assert client.close_code is None
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_invalid_utf8_in_a_text_frame_is_replaced_not_fatal(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        client.sendMessage(b"hola \xff\xfe", isBinary=False)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1].startswith("Te escucho.")
        assert server.provider.requests[0]["json"]["messages"][-1]["content"] == "hola \ufffd\ufffd"
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_escaped_lone_surrogates_are_replaced_not_fatal(listener, path):
    server = start()
    try:
        client, _ = json_client(server, listener, path)
        client.say('{"type": "message", "text": "hola \\ud800", "ref": "r\\udc00"}')
        client.send_event(type="message", text="otra", ref="b")
        reply = client.wait_event(type="reply", ref="b")
        assert reply["text"] == "Te escucho. ¿Qué sentís? (4)"
        assert [r["json"]["messages"][-1]["content"] for r in server.provider.requests] == [
            "hola \ufffd", "otra"]
        assert client.wait_event(type="reply", ref="r\ufffd")["trace_id"] == "Usuario-1:m1"
        client.hang_up()
    finally:
        server.stop()


def test_user_numbers_are_shared_with_tcp():
    server = start()
    try:
        tcp = server.world.connect_line(server.service)
        first = tcp.lines[0]
        standalone = greeted(server, "websocket", "/")
        on_http = greeted(server, "http", "/ws")
        assert [first, standalone.frames[0], on_http.frames[0]] == [
            "Usuario-1 conectado.", "Usuario-2 conectado.", "Usuario-3 conectado."]
        tcp.transport.loseConnection()
        standalone.hang_up()
        on_http.hang_up()
    finally:
        server.stop()


@both_listeners
def test_connection_caps_are_shared_with_tcp(listener, path):
    server = start(server={"max_connections": 2, "max_connections_per_ip": 1})
    try:
        tcp = server.world.connect_line(server.service)
        assert len(tcp.lines) >= GREETING_LINES
        if listener == "http":
            # The HTTP listener counts the connection before any upgrade: refused with 503.
            with pytest.raises(HandshakeFailed, match="503"):
                server.connect(listener, path)
        else:
            refused = server.connect(listener, path)
            assert refused.wait_frames(1) == [texts.TOO_MANY_FROM_ADDRESS]
            assert refused.wait_closed() == 1013
        assert len(server.service.registry) == 1
        tcp.transport.loseConnection()
        server.world.flush()
        assert tcp.closed.called
        # The server side has let it go too.
        server.world.fired(server.service.registry.when_empty())
        admitted = greeted(server, listener, path)
        assert len(server.service.registry) == 1
        admitted.hang_up()
    finally:
        server.stop()


@both_listeners
def test_idle_timeout_runs_on_the_injected_clock(listener, path):
    server = start(limits={"idle_timeout_seconds": 60})
    world = server.world
    try:
        client = greeted(server, listener, path)
        world.advance(59)
        client.say("hola")
        client.wait_frames(GREETING_LINES + 1)
        world.advance(59)  # the message reset the timer
        assert client.close_code is None and len(client.frames) == GREETING_LINES + 1
        world.advance(2)
        frames = client.wait_frames(GREETING_LINES + 2)
        assert frames[-1] == texts.IDLE_TIMEOUT
        assert client.wait_closed() == 1000
    finally:
        server.stop()


@both_listeners
def test_shutdown_tells_websocket_users_then_closes_going_away(listener, path):
    server = start()
    try:
        client = greeted(server, listener, path)
        server.world.stop(server.service)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert client.wait_closed() == 1001
    finally:
        server.stop()


@both_listeners
def test_message_text_and_replies_never_reach_the_logs(listener, path):
    events = []
    globalLogPublisher.addObserver(events.append)
    server = start()
    try:
        client = greeted(server, listener, path)
        client.say("mi secreto triste")
        client.wait_frames(GREETING_LINES + 1)
        client.hang_up()
    finally:
        server.stop()
        globalLogPublisher.removeObserver(events.append)
    dumped = repr(events)
    assert "websocket" in dumped
    assert "secreto" not in dumped and "Te escucho" not in dumped


# --- keepalive --------------------------------------------------------------------------------


class PingClient(MemoryClient):
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


def keepalive_server(world: World, answer_pings: bool, timers: Clock, provider=None,
                     **limits):
    """A chat socket factory whose keepalive runs on ``timers`` (30 s pings, 10 s timeout),
    listening at the ``websocket`` port, and a greeted client."""
    config = make_config(api_key=None, limits=limits)
    if provider is None:
        provider = ChatProvider(config.llm, None, world.reactor, None)
    manager = make_manager(config, provider, world.reactor, system_prompt="s")
    registry = ConnectionRegistry(10, 10)
    factory = chat_socket_factory(manager, registry, world.reactor, OriginPolicy(),
                                  reactor=world.reactor, ping_interval=30, ping_timeout=10,
                                  timers_clock=timers)
    factory.protocol = PongServerProtocol
    factory.ponged = [Deferred() for _ in range(3)]
    client_class = type("Client", (PingClient,), {"answer_pings": answer_pings})
    client = world.fired(world.open_factory(factory, PORTS["websocket"], client=client_class))
    client.wait_frames(GREETING_LINES)
    return registry, factory, client


def keepalive_advance(world: World, timers: Clock, seconds: float) -> None:
    timers.advance(seconds)
    world.flush()


def test_server_pings_and_a_client_that_answers_stays_connected():
    world, timers = World(), Clock()
    registry, factory, client = keepalive_server(world, True, timers)
    pings, pongs = list(client.pinged), list(factory.ponged)  # in the order they will fire
    assert not pings[0].called
    keepalive_advance(world, timers, 29.9)
    assert not pings[0].called
    keepalive_advance(world, timers, 0.1)
    world.fired(pings[0])
    world.fired(pongs[0])
    keepalive_advance(world, timers, 10)  # the ping timeout would have passed: the pong
    assert not pings[1].called            # cancelled it
    keepalive_advance(world, timers, 20)
    world.fired(pings[1])  # the next ping, 30 s after the pong
    world.fired(pongs[1])
    assert client.close_code is None and len(registry) == 1
    client.hang_up()


def test_a_client_that_stops_answering_pings_is_disconnected():
    world, timers = World(), Clock()
    registry, factory, client = keepalive_server(world, False, timers)
    ping = client.pinged[0]
    keepalive_advance(world, timers, 30)
    world.fired(ping)
    assert client.close_code is None
    keepalive_advance(world, timers, 9.9)
    assert client.close_code is None
    keepalive_advance(world, timers, 0.1)
    client.wait_closed()
    assert len(registry) == 0


def test_a_page_with_20_queued_messages_keeps_answering_pings_and_gets_20_replies():
    """Held back by its backlog, the socket still reads control frames (issue 16, item 4)."""
    world, timers = World(), Clock()
    provider = ControlledProvider()
    registry, factory, client = keepalive_server(world, True, timers, provider,
                                                 rate_max_messages=100)
    for number in range(20):
        client.say(f"mensaje {number}")
    world.flush()
    assert provider.calls, "the first call is out"
    socket = registry.connections()[0]
    # All 20 were read: 16 unanswered, 4 held.
    assert socket.backend.backlog.paused and len(socket.backend._waiting) == 4
    ping, pong = client.pinged[0], factory.ponged[0]
    keepalive_advance(world, timers, 30)
    world.fired(ping)
    world.fired(pong)  # the pong was read although messages are held
    keepalive_advance(world, timers, 15)
    assert client.close_code is None, "not dropped by the keepalive"
    for _ in range(40):
        provider.answer_all()
        world.flush()
        if len(client.frames) >= GREETING_LINES + 20:
            break
    frames = client.wait_frames(GREETING_LINES + 20)
    assert frames[GREETING_LINES:] == [f"re: mensaje {n}" for n in range(20)]
    client.hang_up()


# --- JSON subprotocol psicoia.v1 -------------------------------------------------------------


def json_client(server: Server, listener: str, path: str) -> tuple[MemoryClient, dict]:
    client = server.connect(listener, path, protocols=[JSON_PROTOCOL])
    [greeting] = client.wait_events(1)
    return client, greeting


@both_listeners
def test_json_greeting_event_carries_lines_user_limit_and_trace_id(listener, path):
    server = start(limits={"max_line_bytes": 500})
    try:
        client, greeting = json_client(server, listener, path)
        assert client.subprotocol == JSON_PROTOCOL
        assert greeting["type"] == "greeting"
        assert greeting["protocol"] == JSON_PROTOCOL
        assert greeting["user"] == "Usuario-1" == greeting["trace_id"]
        assert greeting["lines"][0] == "Usuario-1 conectado."
        assert "salir" in greeting["lines"][-1]
        assert greeting["max_message_bytes"] == 500
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_message_gets_accepted_waiting_and_a_final_reply_with_one_trace_id(
        listener, path):
    server = start()
    try:
        client, _ = json_client(server, listener, path)
        client.send_event(type="message", text="hola\nmundo", ref="c1")
        events = client.wait_events(4)[1:]
        assert [e["type"] for e in events] == ["accepted", "waiting", "reply"]
        assert {e["trace_id"] for e in events} == {"Usuario-1:m1"}
        assert {e["ref"] for e in events} == {"c1"}
        assert events[-1]["text"] == "Te escucho. ¿Qué sentís? (10)"
        assert events[-1]["final"] is True
        assert server.provider.requests[0]["headers"]["x-request-id"].endswith("Usuario-1:m1")
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_queued_event_tells_the_position(listener, path):
    provider = FakeProvider()
    provider.push(Scripted(body=completion("primera respuesta"), delay=0.5))
    server = start(provider=provider, llm={"max_in_flight": 1})
    try:
        first, _ = json_client(server, listener, path)
        first.send_event(type="message", text="primero", ref=1)
        first.wait_event(type="waiting")  # holds the only slot for 0.5 s
        second, _ = json_client(server, listener, path)
        second.send_event(type="message", text="segundo", ref=2)
        events = second.wait_events(3)[1:]
        assert [e["type"] for e in events] == ["accepted", "queued"]
        assert events[1]["position"] == 1 and events[1]["ref"] == 2
        assert events[1]["trace_id"] == events[0]["trace_id"] == "Usuario-2:m1"
        assert len(second.frames) == 3, "nothing more until the first reply"
        server.world.advance(0.5)
        assert first.wait_event(type="reply")["text"] == "primera respuesta"
        events = second.wait_events(5)[3:]
        assert [e["type"] for e in events] == ["waiting", "reply"]
        assert events[1]["ref"] == 2 and events[1]["trace_id"] == "Usuario-2:m1"
        first.hang_up()
        second.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_notices_say_their_kind(listener, path):
    server = start(limits={"max_line_bytes": 10, "rate_max_messages": 1})
    try:
        client, _ = json_client(server, listener, path)
        client.send_event(type="message", text="ñ" * 6, ref="a")  # 12 bytes > 10
        too_long = client.wait_event(type="notice", ref="a")
        assert too_long["kind"] == "too_long"
        assert too_long["text"] == texts.TOO_LONG.format(limit=10)
        assert too_long["trace_id"] == "Usuario-1:m1"
        client.sendMessage(b"\x01\x02", isBinary=True)
        binary = client.wait_event(type="notice", kind="binary")
        assert binary["text"] == texts.BINARY_FRAME
        assert binary["ref"] is None and binary["trace_id"] == "Usuario-1"

        other, _ = json_client(server, listener, path)
        other.send_event(type="message", text="hola", ref="b")
        other.send_event(type="message", text="otra", ref="c")
        limited = other.wait_event(type="notice", ref="c")
        assert limited["kind"] == "rate_limited"
        assert limited["trace_id"] == "Usuario-2:m2"
        assert other.wait_event(type="reply")["ref"] == "b"
        client.hang_up()
        other.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_bad_frames_get_an_error_event_and_change_nothing(listener, path):
    server = start()
    try:
        client, _ = json_client(server, listener, path)
        for bad in ("no es json", "[1, 2]", json.dumps({"type": "message"}),
                    json.dumps({"type": "otro", "text": "x"}), "[" * 5000):
            client.say(bad)
        events = client.wait_events(6)
        assert [e["type"] for e in events[1:]] == ["error"] * 5
        assert {e["code"] for e in events[1:]} == {"bad_request"}
        assert events[1]["text"] == texts.BAD_REQUEST
        assert server.provider.requests == []
        client.send_event(type="message", text="hola")
        events = client.wait_events(9)
        assert events[-1]["type"] == "reply" and events[-1]["ref"] is None
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_salir_gets_a_goodbye_notice_then_close(listener, path):
    server = start()
    try:
        client, _ = json_client(server, listener, path)
        client.send_event(type="message", text="Salir", ref=9)
        events = client.wait_events(3)
        assert events[-1]["type"] == "notice" and events[-1]["kind"] == "goodbye"
        assert events[-1]["text"] == texts.GOODBYE
        assert client.wait_closed() == 1000
    finally:
        server.stop()


@both_listeners
def test_json_offline_reply_is_a_notice(listener, path):
    offline = start(api_key=None)
    try:
        client = offline.connect(listener, path, protocols=[JSON_PROTOCOL])
        client.wait_events(1)
        client.send_event(type="message", text="hola")
        events = client.wait_events(3)
        assert events[-1]["type"] == "notice" and events[-1]["kind"] == "offline"
        assert events[-1]["text"] and events[-1]["ref"] is None
        client.hang_up()
    finally:
        offline.stop()


@both_listeners
def test_json_events_say_crisis_when_the_reply_carries_the_resources(listener, path):
    server = start(safety={"resources": ("Línea de prueba 135", "Emergencias 911")})
    try:
        client, _ = json_client(server, listener, path)
        client.send_event(type="message", text="hola, hoy estoy cansada", ref="n")
        normal = client.wait_event(type="reply", ref="n")
        assert normal["crisis"] is False
        assert normal["text"] == "Te escucho. ¿Qué sentís? (23)"
        client.send_event(type="message", text="me quiero morir", ref="r")
        risk = client.wait_event(type="reply", ref="r")
        assert risk["crisis"] is True and risk["final"] is True
        resources = texts.CRISIS_RESOURCES.format(
            resources="Línea de prueba 135; Emergencias 911")
        assert risk["text"] == f"Te escucho. ¿Qué sentís? (15) {resources}"
        # The next reply carries only the reminder: not a crisis reply.
        client.send_event(type="message", text="gracias", ref="after")
        after = client.wait_event(type="reply", ref="after")
        assert after["crisis"] is False and after["text"].endswith(texts.CRISIS_REMINDER)
        client.hang_up()
    finally:
        server.stop()


@both_listeners
def test_json_crisis_flag_on_notices_and_not_in_line_mode(listener, path):
    offline = start(api_key=None)
    try:
        client = offline.connect(listener, path, protocols=[JSON_PROTOCOL])
        client.wait_events(1)
        client.send_event(type="message", text="hola", ref="a")
        calm = client.wait_event(type="notice", ref="a")
        assert calm["kind"] == "offline" and calm["crisis"] is False
        client.send_event(type="message", text="me quiero morir", ref="b")
        risk = client.wait_event(type="notice", ref="b")
        assert risk["kind"] == "offline" and risk["crisis"] is True
        resources = texts.CRISIS_RESOURCES.format(
            resources="; ".join(offline.service.config.safety.resources))
        assert risk["text"] == f"{texts.CRISIS_SUPPORT} {resources}"
        client.hang_up()

        line = offline.connect(listener, path)
        line.wait_frames(GREETING_LINES)
        line.say("me quiero morir")
        frames = line.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == f"{texts.CRISIS_SUPPORT} {resources}"  # plain text, no JSON
        line.hang_up()
    finally:
        offline.stop()


# --- Origin -----------------------------------------------------------------------------------


@both_listeners
def test_origin_rules_by_default(listener, path):
    server = start()
    world = server.world
    try:
        def status(**kwargs) -> int:
            return world.handshake_status(server.service, listener, path, **kwargs)

        port, http_port = PORTS[listener], PORTS["http"]
        assert status() == 101  # no Origin: wscat, scripts
        assert status(origin=f"http://127.0.0.1:{port}") == 101
        assert status(origin=f"http://127.0.0.1:{http_port}") == 101
        assert status(origin="http://evil.example") == 403
        assert status(origin="http://127.0.0.1:1") == 403
        assert status(origin=f"http://localhost:{port}") == 101
        assert status(origin=f"http://localhost:{port + 1}") == 403
        assert status(origin="null") == 403
        # A name is never "own" because Host agrees with it (the DNS-rebinding shape): names
        # must be listed in server.allowed_origins.
        for origin, host in [("http://chat.example:8080", "chat.example:8080"),
                             ("https://chat.example", "chat.example"),
                             (f"http://evil.example:{port}", f"evil.example:{port}")]:
            assert status(origin=origin, host=host) == 403
        # An IP literal cannot be re-pointed: the one the browser used (its Host) is own.
        assert status(origin=f"http://10.9.8.7:{port}", host=f"10.9.8.7:{port}") == 101
        assert status(origin=f"http://10.9.8.7:{port}") == 403
    finally:
        server.stop()


@both_listeners
def test_allowed_origins_adds_listed_origins(listener, path):
    server = start(server={"allowed_origins": ("https://chat.example.org",)})
    world = server.world
    try:
        def status(**kwargs) -> int:
            return world.handshake_status(server.service, listener, path, **kwargs)

        port = PORTS[listener]
        assert status(origin="https://chat.example.org") == 101
        assert status(origin="https://CHAT.example.org:443") == 101
        assert status(origin="http://chat.example.org") == 403
        assert status(origin="https://other.example.org") == 403
        assert status(origin=f"http://127.0.0.1:{port}") == 101
        client = server.connect(listener, path, origin="https://chat.example.org")
        assert len(client.wait_frames(GREETING_LINES)) == GREETING_LINES
        client.hang_up()
    finally:
        server.stop()


def test_origin_policy_star_and_null():
    assert OriginPolicy(("*",)).allows("http://anything.example", "10.0.0.1", 1)
    assert not OriginPolicy().allows("null", "10.0.0.1", 1)
    assert OriginPolicy(("null",)).allows("null", "10.0.0.1", 1)
    assert not OriginPolicy().allows("http://x:1", None)


# --- resume and forget --------------------------------------------------------------------------


def test_json_resume_and_forget_events_carry_the_conversation():
    server = start()
    try:
        first, greeting = json_client(server, "http", "/ws")
        token = greeting["resume_token"]
        assert "taken_over" in greeting["kinds"] and "answered" in greeting["conversational"]
        first.send_event(type="message", text="me llamo Ana", ref="m1")
        first.wait_events(4)  # greeting, accepted, waiting, reply
        second, _ = json_client(server, "http", "/ws")
        second.send_event(type="resume", token=token, ref="r1")
        events = second.wait_events(4)  # greeting, accepted, conversation, notice
        assert [e["type"] for e in events] == ["greeting", "accepted", "conversation", "notice"]
        conversation, notice = events[2], events[3]
        assert conversation["resume_token"] == token and conversation["ref"] == "r1"
        assert conversation["type"] == "conversation" and conversation["user"] == "Usuario-1"
        assert [turn["role"] for turn in conversation["transcript"]] == ["user", "assistant"]
        assert conversation["transcript"][0]["text"] == "me llamo Ana"
        assert notice["kind"] == "command" and notice["ref"] == "r1"
        taken = first.wait_events(5)
        assert taken[4]["kind"] == "taken_over"
        assert first.wait_closed() == 1000
        second.send_event(type="forget", ref="f1")
        events = second.wait_events(7)
        assert events[5]["type"] == "conversation" and events[5]["transcript"] == []
        assert events[5]["resume_token"] != token and events[6]["ref"] == "f1"
        second.send_event(type="resume", token=token)
        events = second.wait_events(9)
        assert events[8]["text"] == texts.RESUME_UNKNOWN, "a forgotten token stops working"
        second.hang_up()
    finally:
        server.stop()
