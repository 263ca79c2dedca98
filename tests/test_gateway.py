"""Gateway mode end to end: core server + gateway + WebSocket client, all on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.python import usage

from psicoia import texts
from psicoia.app import gateway_tap
from psicoia.app.gateway import build_gateway, classify, read_line
from psicoia.transports.websocket import JSON_PROTOCOL
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import LOCAL, make_config, port_of, start_service
from tests.wsclient import GREETING_LINES, connect_ws

LISTENERS = [("websocket", "/"), ("http", "/ws")]
both_listeners = pytest.mark.parametrize("listener, path", LISTENERS, ids=["standalone", "http-ws"])


async def eventually(predicate, timeout: float = 5.0) -> None:
    """Wait (on the reactor, in small steps) until ``predicate()`` holds."""
    waited = 0.0
    while not predicate():
        assert waited < timeout, "condition not reached in time"
        await deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


class Topology:
    def __init__(self) -> None:
        self.provider = FakeProvider()
        self.provider_port = None
        self.core = None
        self.gateway = None

    async def start(self, core_limits=None, gateway_limits=None, upstream=None,
                    gateway_server=None, clock=None):
        self.provider_port, url = await serve(self.provider)
        self.core = await start_service(make_config(llm={"base_url": url},
                                                    limits=core_limits or {}))
        if upstream is None:
            upstream = f"tcp:127.0.0.1:{await port_of(self.core, 'tcp')}"
        server = {"tcp": None, "websocket": LOCAL, "http": LOCAL}
        server.update(gateway_server or {})
        config = make_config(server=server, limits=gateway_limits or {})
        self.gateway = build_gateway(config, upstream, reactor, clock=clock)
        self.gateway.startService()
        return self

    async def connect(self, listener, path, **kwargs):
        return await connect_ws(await port_of(self.gateway, listener), path, **kwargs)

    async def stop(self):
        for service in (self.gateway, self.core):
            if service is not None and service.running:
                await service.stopService()
        await self.provider_port.stopListening()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_line_mode_bridges_greeting_messages_and_goodbye(listener, path):
    topology = await Topology().start()
    try:
        client = await topology.connect(listener, path)
        greeting = await client.wait_frames(GREETING_LINES)
        assert greeting[0] == "Usuario-1 conectado." and "salir" in greeting[-1]
        assert len(topology.core.registry) == 1  # its own TCP connection upstream
        client.say("hola\ncómo va")
        client.say("segundo")
        frames = await client.wait_frames(GREETING_LINES + 2)
        assert frames[GREETING_LINES:] == ["Te escucho. ¿Qué sentís? (12)",
                                           "Te escucho. ¿Qué sentís? (7)"]
        assert topology.provider.requests[0]["json"]["messages"][-1]["content"] == "hola cómo va"
        client.say("salir")
        frames = await client.wait_frames(GREETING_LINES + 3)
        assert frames[-1] == texts.GOODBYE
        assert await client.closed == 1000
        await eventually(lambda: len(topology.core.registry) == 0)
        assert len(topology.gateway.registry) == 0
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_each_browser_gets_its_own_upstream_connection_and_closing_closes_it():
    topology = await Topology().start()
    try:
        clients = [await topology.connect("http", "/ws") for _ in range(3)]
        for client in clients:
            await client.wait_frames(GREETING_LINES)
        assert len(topology.core.registry) == 3
        assert sorted(c.frames[0] for c in clients) == [
            "Usuario-1 conectado.", "Usuario-2 conectado.", "Usuario-3 conectado."]
        await clients[0].hang_up()
        await eventually(lambda: len(topology.core.registry) == 2)
        for client in clients[1:]:
            await client.hang_up()
        await eventually(lambda: len(topology.core.registry) == 0)
    finally:
        await topology.stop()


@both_listeners
@pytest_twisted.ensureDeferred
async def test_json_mode_turns_upstream_lines_into_events(listener, path):
    topology = await Topology().start(core_limits={"rate_max_messages": 1})
    try:
        client = await topology.connect(listener, path, protocols=[JSON_PROTOCOL])
        greeting = await client.wait_event(type="greeting")
        assert greeting["user"] == "Usuario-1" and greeting["protocol"] == JSON_PROTOCOL
        assert greeting["lines"][0] == "Usuario-1 conectado." and "salir" in greeting["lines"][-1]
        assert greeting["max_message_bytes"] == 4096
        client.send_event(type="message", text="hola", ref="a")
        client.send_event(type="message", text="otra", ref="b")
        reply = await client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Te escucho. ¿Qué sentís? (4)" and reply["final"] is True
        assert reply["trace_id"] == "Usuario-1:m1"
        limited = await client.wait_event(type="notice", ref="b")
        assert limited["kind"] == "rate_limited" and limited["trace_id"] == "Usuario-1:m2"
        accepted = [json.loads(f) for f in client.frames if json.loads(f)["type"] == "accepted"]
        assert [a["ref"] for a in accepted] == ["a", "b"]
        client.send_event(type="message", text="salir")
        goodbye = await client.wait_event(type="notice", kind="goodbye")
        assert goodbye["text"] == texts.GOODBYE
        assert await client.closed == 1000
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_too_long_and_binary_are_answered_by_the_gateway_in_order():
    topology = await Topology().start(gateway_limits={"max_line_bytes": 16})
    try:
        client = await topology.connect("http", "/ws")
        await client.wait_frames(GREETING_LINES)
        client.say("primero")
        client.say("x" * 17)
        client.say("tercero")
        frames = await client.wait_frames(GREETING_LINES + 3)
        assert frames[GREETING_LINES:] == ["Te escucho. ¿Qué sentís? (7)",
                                           texts.TOO_LONG.format(limit=16),
                                           "Te escucho. ¿Qué sentís? (7)"]
        client.sendMessage(b"\x00", isBinary=True)
        frames = await client.wait_frames(GREETING_LINES + 4)
        assert frames[-1] == texts.BINARY_FRAME
        assert len(topology.provider.requests) == 2
        await client.hang_up()
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_upstream_down_tells_the_user_and_closes_try_again_later():
    # A port that was listening and is not any more: connection refused.
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory())
    dead = port.getHost().port
    await port.stopListening()
    topology = await Topology().start(upstream=f"tcp:127.0.0.1:{dead}")
    try:
        line = await topology.connect("websocket", "/")
        assert await line.wait_frames(1) == [texts.UPSTREAM_DOWN]
        assert await line.closed == 1013
        events = await topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        [notice] = await events.wait_events(1)
        assert notice["type"] == "notice" and notice["kind"] == "upstream_down"
        assert notice["text"] == texts.UPSTREAM_DOWN
        assert await events.closed == 1013
        assert len(topology.gateway.registry) == 0
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_upstream_closing_before_its_greeting_is_reported():
    class Silent(Protocol):
        pass

    # Accepts TCP but never greets, then goes away: the user is told, not left hanging.
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        Factory.forProtocol(Silent))
    topology = await Topology().start(upstream=f"tcp:127.0.0.1:{port.getHost().port}")
    try:
        client = await topology.connect("http", "/ws")
        client.say("hola")
        [bridge] = topology.gateway.registry.connections()
        await eventually(lambda: bridge.backend.upstream is not None)
        bridge.backend.upstream.transport.loseConnection()
        assert await client.wait_frames(1) == [texts.UPSTREAM_LOST]
        assert await client.closed == 1013
    finally:
        await topology.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_upstream_dropping_mid_conversation_is_reported():
    topology = await Topology().start()
    try:
        client = await topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        await client.wait_event(type="greeting")
        for connection in topology.core.registry.connections():
            connection.transport.abortConnection()
        lost = await client.wait_event(type="notice", kind="upstream_lost")
        assert lost["text"] == texts.UPSTREAM_LOST
        assert await client.closed == 1013
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_core_shutdown_reaches_the_browser_as_going_away():
    topology = await Topology().start()
    try:
        client = await topology.connect("websocket", "/")
        await client.wait_frames(GREETING_LINES)
        await topology.core.stopService()
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert await client.closed == 1001
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_gateway_shutdown_closes_browsers_and_upstreams():
    topology = await Topology().start()
    try:
        client = await topology.connect("websocket", "/")
        await client.wait_frames(GREETING_LINES)
        await topology.gateway.stopService()
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert await client.closed == 1001
        await eventually(lambda: len(topology.core.registry) == 0)
    finally:
        await topology.stop()


async def hanging_request(topology: Topology, client, ref: str, text: str):
    """Send ``text`` through the gateway; return the provider request it is held at."""
    topology.provider.push(Scripted(hang=True))
    client.send_event(type="message", text=text, ref=ref)
    await eventually(lambda: len(topology.provider.hanging) == 1)
    return topology.provider.hanging.pop()


@pytest_twisted.ensureDeferred
async def test_gateway_shutdown_lets_replies_requested_upstream_arrive_within_the_grace():
    grace = Clock()
    topology = await Topology().start(gateway_server={"shutdown_grace_seconds": 10}, clock=grace)
    try:
        client = await topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        await client.wait_event(type="greeting")
        held = await hanging_request(topology, client, "a", "hola")
        stopped = topology.gateway.stopService()
        done = []
        stopped.addBoth(lambda result: done.append(True) or result)
        notice = await client.wait_event(type="notice", kind="shutting_down")
        assert notice["ref"] is None and notice["text"] == texts.SHUTTING_DOWN
        # During the grace: a new message is answered by the gateway, not sent upstream.
        client.send_event(type="message", text="otra", ref="b")
        grace.advance(9)
        assert not done and client.close_code is None
        topology.provider._answer(held, Scripted(body=completion("Llegó a tiempo.")))
        reply = await client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Llegó a tiempo." and reply["crisis"] is False
        late = await client.wait_event(type="notice", ref="b")
        assert late["kind"] == "shutting_down"
        assert await client.closed == 1001
        await stopped
        assert len(topology.provider.requests) == 1
        await eventually(lambda: len(topology.core.registry) == 0)
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_gateway_shutdown_closes_when_the_grace_is_over():
    grace = Clock()
    topology = await Topology().start(gateway_server={"shutdown_grace_seconds": 10}, clock=grace)
    try:
        client = await topology.connect("websocket", "/")
        await client.wait_frames(GREETING_LINES)
        topology.provider.push(Scripted(hang=True))
        client.say("hola")
        await eventually(lambda: len(topology.provider.hanging) == 1)
        stopped = topology.gateway.stopService()
        done = []
        stopped.addBoth(lambda result: done.append(True) or result)
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        grace.advance(9.9)
        await deferLater(reactor, 0.05, lambda: None)
        assert not done and client.close_code is None
        grace.advance(0.2)
        assert await client.closed == 1001
        await stopped
        assert len(client.frames) == GREETING_LINES + 1  # the reply never came
        await eventually(lambda: len(topology.core.registry) == 0)
    finally:
        topology.provider.hanging.clear()
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_core_shutdown_notice_does_not_take_a_pending_reply_s_place():
    topology = await Topology().start()
    try:
        client = await topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        await client.wait_event(type="greeting")
        held = await hanging_request(topology, client, "a", "hola")
        stopped = topology.core.stopService()
        notice = await client.wait_event(type="notice", kind="shutting_down")
        assert notice["ref"] is None
        topology.provider._answer(held, Scripted(body=completion("Igual te respondo.")))
        reply = await client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Igual te respondo." and reply["trace_id"] == "Usuario-1:m1"
        assert await client.closed == 1001
        await stopped
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_crisis_replies_are_flagged_through_the_gateway():
    topology = await Topology().start()
    try:
        client = await topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        await client.wait_event(type="greeting")
        client.send_event(type="message", text="hola", ref="a")
        client.send_event(type="message", text="me quiero morir", ref="b")
        client.send_event(type="message", text="salir", ref="c")
        calm = await client.wait_event(type="reply", ref="a")
        risk = await client.wait_event(type="reply", ref="b")
        goodbye = await client.wait_event(type="notice", ref="c")
        resources = texts.CRISIS_RESOURCES.format(
            resources="; ".join(topology.core.config.safety.resources))
        assert calm["crisis"] is False
        assert risk["crisis"] is True
        assert risk["text"] == f"Te escucho. ¿Qué sentís? (15) {resources}"
        # In the reminder window the goodbye carries the resources, but it is the goodbye.
        assert goodbye["kind"] == "goodbye" and goodbye["crisis"] is False
        assert goodbye["text"] == f"{texts.GOODBYE} {resources}"
        assert await client.closed == 1000
    finally:
        await topology.stop()


@pytest_twisted.ensureDeferred
async def test_gateway_serves_the_page_and_says_it_is_a_gateway_in_healthz():
    topology = await Topology().start()
    try:
        base = f"http://127.0.0.1:{await port_of(topology.gateway, 'http')}"
        page = await treq.get(base + "/", persistent=False)
        assert page.code == 200 and b"<html" in (await page.content())
        health = await treq.get(base + "/healthz", persistent=False)
        body = json.loads(await health.content())
        assert health.code == 200
        assert body["mode"] == "gateway" and body["status"] == "ok"
        assert body["connections"] == 0
        ready = await treq.get(base + "/readyz", persistent=False)
        assert ready.code == 200
        await ready.content()
    finally:
        await topology.stop()


def test_gateway_options_need_a_valid_upstream():
    options = gateway_tap.Options()
    options.parseOptions(["--upstream", "tcp:127.0.0.1:5001", "--config", "x.yaml"])
    assert options["upstream"] == "tcp:127.0.0.1:5001" and options["config"] == "x.yaml"
    with pytest.raises(usage.UsageError, match="--upstream is required"):
        gateway_tap.Options().parseOptions([])
    with pytest.raises(usage.UsageError, match="--upstream"):
        gateway_tap.Options().parseOptions(["--upstream", "nonsense:1:2:3"])


def test_gateway_plugin_is_registered():
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    names = {plugin.tapname: plugin for plugin in getPlugins(IServiceMaker)}
    assert names["psicoia-gateway"].module == "psicoia.app.gateway_tap"


def test_known_notices_are_classified_and_replies_are_not():
    assert classify(texts.GOODBYE) == "goodbye"
    assert classify(texts.RATE_LIMITED.format(seconds=7)) == "rate_limited"
    assert classify(texts.TOO_LONG.format(limit=4096)) == "too_long"
    assert classify(texts.ERROR) == "error"
    assert classify("Te escucho. ¿Qué sentís?") == "answered"


def test_what_the_crisis_layer_appends_does_not_hide_the_kind():
    resources = texts.CRISIS_RESOURCES.format(resources="Línea 135; Emergencias 911")
    assert read_line(f"Te escucho. {resources}") == ("answered", True)
    assert read_line(f"{texts.CRISIS_SUPPORT} {resources}") == ("fallback", True)
    assert read_line(f"{texts.GOODBYE} {resources}") == ("goodbye", False)
    rate = texts.RATE_LIMITED.format(seconds=3)
    assert read_line(f"{rate} {texts.CRISIS_REMINDER}") == ("rate_limited", False)
    assert read_line(f"Te escucho. {texts.CRISIS_REMINDER}") == ("answered", False)
    # Commands are "command" notices, as the core's own JSON mode says.
    assert read_line(texts.RESOURCES_REPLY.format(resources="Línea 135")) == (
        "command", False)


def test_the_gateway_knows_every_notice_kind_from_the_one_table():
    from psicoia.chat.vocabulary import Kind

    table = {kind for kind, _ in texts.NOTICES}
    assert table <= {kind.value for kind in Kind}
    core_notices = set(Kind) - {Kind.ANSWERED, Kind.BINARY, Kind.UPSTREAM_DOWN,
                                Kind.UPSTREAM_LOST}
    assert core_notices <= table, "every notice the core sends over TCP has its text"
    for kind, text in texts.NOTICES:
        line = text.format(seconds=5, limit=4096, resources="135", number=7, code="AAAAA-BBBBB")
        assert read_line(line)[0] == kind, kind
