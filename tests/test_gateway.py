"""Gateway mode: core server + gateway + WebSocket client, in memory.

The real core (``build_service``) and the real gateway (``build_gateway``) run on one
``MemoryReactorClock`` (tests/wsmemory.py): browsers are Autobahn clients over
``autobahn.twisted.testing``'s in-memory transports, each bridge's upstream TCP connection
reaches the core's line listener over ``twisted.test.iosim``, the provider answers through
``treq.testing.StubTreq``. tests/test_gateway_sockets.py keeps a few checks over real sockets.
"""

from __future__ import annotations

import json

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.protocol import Factory, Protocol
from twisted.plugin import getPlugins
from twisted.python import usage

from psicoia import texts
from psicoia.app import gateway_tap
from psicoia.app.gateway import classify, read_line
from psicoia.chat.vocabulary import Kind
from psicoia.transports.websocket import JSON_PROTOCOL
from tests.fake_provider import Scripted, completion
from tests.wsclient import GREETING_LINES
from tests.wsmemory import PORTS, MemoryClient, World

LISTENERS = [("websocket", "/"), ("http", "/ws")]
both_listeners = pytest.mark.parametrize("listener, path", LISTENERS, ids=["standalone", "http-ws"])
CORE = f"tcp:127.0.0.1:{PORTS['tcp']}"


class Topology:
    """A core and a gateway bridging to it, in one world."""

    def __init__(self) -> None:
        self.world = World()
        self.world.provider.clock = self.world.reactor
        self.provider = self.world.provider
        self.core = None
        self.gateway = None

    def start(self, core_limits=None, gateway_limits=None, upstream=None,
              gateway_server=None) -> "Topology":
        self.core = self.world.service(limits=core_limits or {},
                                       server={"websocket": None, "http": None})
        self.gateway = self.world.gateway(upstream or CORE, server=gateway_server or {},
                                          limits=gateway_limits or {})
        return self

    def connect(self, listener, path, **kwargs) -> MemoryClient:
        return self.world.connect(self.gateway, listener, path, **kwargs)

    def eventually(self, predicate) -> None:
        """Once everything due has happened, ``predicate()`` holds."""
        self.world.flush()
        assert predicate(), "condition not reached"

    def stop(self) -> None:
        self.world.stop()


@both_listeners
def test_line_mode_bridges_greeting_messages_and_goodbye(listener, path):
    topology = Topology().start()
    try:
        client = topology.connect(listener, path)
        greeting = client.wait_frames(GREETING_LINES)
        assert greeting[0] == "Usuario-1 conectado." and "salir" in greeting[-1]
        assert len(topology.core.registry) == 1  # its own TCP connection upstream
        client.say("hola\ncómo va")
        client.say("segundo")
        frames = client.wait_frames(GREETING_LINES + 2)
        assert frames[GREETING_LINES:] == ["Te escucho. ¿Qué sentís? (12)",
                                           "Te escucho. ¿Qué sentís? (7)"]
        assert topology.provider.requests[0]["json"]["messages"][-1]["content"] == "hola cómo va"
        client.say("salir")
        frames = client.wait_frames(GREETING_LINES + 3)
        assert frames[-1] == texts.GOODBYE
        assert client.wait_closed() == 1000
        topology.eventually(lambda: len(topology.core.registry) == 0)
        assert len(topology.gateway.registry) == 0
    finally:
        topology.stop()


def test_each_browser_gets_its_own_upstream_connection_and_closing_closes_it():
    topology = Topology().start()
    try:
        clients = [topology.connect("http", "/ws") for _ in range(3)]
        for client in clients:
            client.wait_frames(GREETING_LINES)
        assert len(topology.core.registry) == 3
        assert sorted(c.frames[0] for c in clients) == [
            "Usuario-1 conectado.", "Usuario-2 conectado.", "Usuario-3 conectado."]
        clients[0].hang_up()
        topology.eventually(lambda: len(topology.core.registry) == 2)
        for client in clients[1:]:
            client.hang_up()
        topology.eventually(lambda: len(topology.core.registry) == 0)
    finally:
        topology.stop()


@both_listeners
def test_json_mode_turns_upstream_lines_into_events(listener, path):
    topology = Topology().start(core_limits={"rate_max_messages": 1})
    try:
        client = topology.connect(listener, path, protocols=[JSON_PROTOCOL])
        greeting = client.wait_event(type="greeting")
        assert greeting["user"] == "Usuario-1" and greeting["protocol"] == JSON_PROTOCOL
        assert greeting["lines"][0] == "Usuario-1 conectado." and "salir" in greeting["lines"][-1]
        assert greeting["max_message_bytes"] == 4096
        client.send_event(type="message", text="hola", ref="a")
        client.send_event(type="message", text="otra", ref="b")
        reply = client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Te escucho. ¿Qué sentís? (4)" and reply["final"] is True
        assert reply["trace_id"] == "Usuario-1:m1"
        limited = client.wait_event(type="notice", ref="b")
        assert limited["kind"] == "rate_limited" and limited["trace_id"] == "Usuario-1:m2"
        accepted = [json.loads(f) for f in client.frames if json.loads(f)["type"] == "accepted"]
        assert [a["ref"] for a in accepted] == ["a", "b"]
        client.send_event(type="message", text="salir")
        goodbye = client.wait_event(type="notice", kind="goodbye")
        assert goodbye["text"] == texts.GOODBYE
        assert client.wait_closed() == 1000
    finally:
        topology.stop()


def test_too_long_and_binary_are_answered_by_the_gateway_in_order():
    topology = Topology().start(gateway_limits={"max_line_bytes": 16})
    try:
        client = topology.connect("http", "/ws")
        client.wait_frames(GREETING_LINES)
        client.say("primero")
        client.say("x" * 17)
        client.say("tercero")
        frames = client.wait_frames(GREETING_LINES + 3)
        assert frames[GREETING_LINES:] == ["Te escucho. ¿Qué sentís? (7)",
                                           texts.TOO_LONG.format(limit=16),
                                           "Te escucho. ¿Qué sentís? (7)"]
        client.sendMessage(b"\x00", isBinary=True)
        frames = client.wait_frames(GREETING_LINES + 4)
        assert frames[-1] == texts.BINARY_FRAME
        assert len(topology.provider.requests) == 2
        client.hang_up()
    finally:
        topology.stop()


def test_upstream_down_tells_the_user_and_closes_try_again_later():
    # Nothing listens at that port: connection refused.
    topology = Topology().start(upstream="tcp:127.0.0.1:5999")
    try:
        line = topology.connect("websocket", "/")
        assert line.wait_frames(1) == [texts.UPSTREAM_DOWN]
        assert line.wait_closed() == 1013
        events = topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        [notice] = events.wait_events(1)
        assert notice["type"] == "notice" and notice["kind"] == "upstream_down"
        assert notice["text"] == texts.UPSTREAM_DOWN
        assert events.wait_closed() == 1013
        assert len(topology.gateway.registry) == 0
    finally:
        topology.stop()


def test_upstream_closing_before_its_greeting_is_reported():
    class Silent(Protocol):
        pass

    # Accepts TCP but never greets, then goes away: the user is told, not left hanging.
    topology = Topology()
    topology.world.listen(5999, Factory.forProtocol(Silent))
    topology.start(upstream="tcp:127.0.0.1:5999")
    try:
        client = topology.connect("http", "/ws")
        client.say("hola")
        [bridge] = topology.gateway.registry.connections()
        topology.eventually(lambda: bridge.backend.upstream is not None)
        bridge.backend.upstream.transport.loseConnection()
        assert client.wait_frames(1) == [texts.UPSTREAM_LOST]
        assert client.wait_closed() == 1013
    finally:
        topology.stop()


def test_upstream_dropping_mid_conversation_is_reported():
    topology = Topology().start()
    try:
        client = topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        client.wait_event(type="greeting")
        for connection in topology.core.registry.connections():
            connection.transport.abortConnection()
        lost = client.wait_event(type="notice", kind="upstream_lost")
        assert lost["text"] == texts.UPSTREAM_LOST
        assert client.wait_closed() == 1013
    finally:
        topology.stop()


def test_core_shutdown_reaches_the_browser_as_going_away():
    topology = Topology().start()
    try:
        client = topology.connect("websocket", "/")
        client.wait_frames(GREETING_LINES)
        topology.world.stop(topology.core)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert client.wait_closed() == 1001
    finally:
        topology.stop()


def test_gateway_shutdown_closes_browsers_and_upstreams():
    topology = Topology().start()
    try:
        client = topology.connect("websocket", "/")
        client.wait_frames(GREETING_LINES)
        topology.world.stop(topology.gateway)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        assert client.wait_closed() == 1001
        topology.eventually(lambda: len(topology.core.registry) == 0)
    finally:
        topology.stop()


def hanging_request(topology: Topology, client, ref: str, text: str):
    """Send ``text`` through the gateway; return the provider request it is held at."""
    topology.provider.push(Scripted(hang=True))
    client.send_event(type="message", text=text, ref=ref)
    topology.eventually(lambda: len(topology.provider.hanging) == 1)
    return topology.provider.hanging.pop()


def test_gateway_shutdown_lets_replies_requested_upstream_arrive_within_the_grace():
    topology = Topology().start(gateway_server={"shutdown_grace_seconds": 10})
    world = topology.world
    try:
        client = topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        client.wait_event(type="greeting")
        held = hanging_request(topology, client, "a", "hola")
        stopped = topology.gateway.stopService()
        done = []
        stopped.addBoth(lambda result: done.append(True) or result)
        notice = client.wait_event(type="notice", kind="shutting_down")
        assert notice["ref"] is None and notice["text"] == texts.SHUTTING_DOWN
        # During the grace: a new message is answered by the gateway, not sent upstream.
        client.send_event(type="message", text="otra", ref="b")
        world.advance(9)
        assert not done and client.close_code is None
        topology.provider._answer(held, Scripted(body=completion("Llegó a tiempo.")))
        reply = client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Llegó a tiempo." and reply["crisis"] is False
        late = client.wait_event(type="notice", ref="b")
        assert late["kind"] == "shutting_down"
        assert client.wait_closed() == 1001
        world.fired(stopped)
        assert len(topology.provider.requests) == 1
        topology.eventually(lambda: len(topology.core.registry) == 0)
    finally:
        topology.stop()


def test_gateway_shutdown_closes_when_the_grace_is_over():
    topology = Topology().start(gateway_server={"shutdown_grace_seconds": 10})
    world = topology.world
    try:
        client = topology.connect("websocket", "/")
        client.wait_frames(GREETING_LINES)
        topology.provider.push(Scripted(hang=True))
        client.say("hola")
        topology.eventually(lambda: len(topology.provider.hanging) == 1)
        stopped = topology.gateway.stopService()
        done = []
        stopped.addBoth(lambda result: done.append(True) or result)
        frames = client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == texts.SHUTTING_DOWN
        world.advance(9.9)
        assert not done and client.close_code is None
        world.advance(0.2)
        assert client.wait_closed() == 1001
        world.advance(2)  # the flush allowance after hanging up
        world.fired(stopped)
        assert len(client.frames) == GREETING_LINES + 1  # the reply never came
        topology.eventually(lambda: len(topology.core.registry) == 0)
    finally:
        topology.provider.hanging.clear()
        topology.stop()


def test_core_shutdown_notice_does_not_take_a_pending_reply_s_place():
    topology = Topology().start()
    world = topology.world
    try:
        client = topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        client.wait_event(type="greeting")
        held = hanging_request(topology, client, "a", "hola")
        stopped = topology.core.stopService()
        notice = client.wait_event(type="notice", kind="shutting_down")
        assert notice["ref"] is None
        topology.provider._answer(held, Scripted(body=completion("Igual te respondo.")))
        reply = client.wait_event(type="reply", ref="a")
        assert reply["text"] == "Igual te respondo." and reply["trace_id"] == "Usuario-1:m1"
        assert client.wait_closed() == 1001
        world.advance(2)
        world.fired(stopped)
    finally:
        topology.stop()


def test_crisis_replies_are_flagged_through_the_gateway():
    topology = Topology().start()
    try:
        client = topology.connect("http", "/ws", protocols=[JSON_PROTOCOL])
        client.wait_event(type="greeting")
        client.send_event(type="message", text="hola", ref="a")
        client.send_event(type="message", text="me quiero morir", ref="b")
        client.send_event(type="message", text="salir", ref="c")
        calm = client.wait_event(type="reply", ref="a")
        risk = client.wait_event(type="reply", ref="b")
        goodbye = client.wait_event(type="notice", ref="c")
        resources = texts.CRISIS_RESOURCES.format(
            resources="; ".join(topology.core.config.safety.resources))
        assert calm["crisis"] is False
        assert risk["crisis"] is True
        assert risk["text"] == f"Te escucho. ¿Qué sentís? (15) {resources}"
        # In the reminder window the goodbye carries the resources, but it is the goodbye.
        assert goodbye["kind"] == "goodbye" and goodbye["crisis"] is False
        assert goodbye["text"] == f"{texts.GOODBYE} {resources}"
        assert client.wait_closed() == 1000
    finally:
        topology.stop()


def test_gateway_options_need_a_valid_upstream():
    options = gateway_tap.Options()
    options.parseOptions(["--upstream", "tcp:127.0.0.1:5001", "--config", "x.yaml"])
    assert options["upstream"] == "tcp:127.0.0.1:5001" and options["config"] == "x.yaml"
    with pytest.raises(usage.UsageError, match="--upstream is required"):
        gateway_tap.Options().parseOptions([])
    with pytest.raises(usage.UsageError, match="--upstream"):
        gateway_tap.Options().parseOptions(["--upstream", "nonsense:1:2:3"])


def test_gateway_plugin_is_registered():
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
    table = {kind for kind, _ in texts.NOTICES}
    assert table <= {kind.value for kind in Kind}
    core_notices = set(Kind) - {Kind.ANSWERED, Kind.BINARY, Kind.UPSTREAM_DOWN,
                                Kind.UPSTREAM_LOST}
    assert core_notices <= table, "every notice the core sends over TCP has its text"
    for kind, text in texts.NOTICES:
        line = text.format(seconds=5, limit=4096, resources="135", number=7, code="AAAAA-BBBBB")
        assert read_line(line)[0] == kind, kind
