"""Gateway mode end to end over real sockets on 127.0.0.1: core server + gateway + a real
Autobahn client, a few checks beside the in-memory ones (tests/test_gateway.py).

A browser bridged through real TCP connections on both listeners, an upstream that refuses
connections (the operating system says so), and the page and /healthz served by the gateway.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater

from psicoia import texts
from psicoia.app.gateway import build_gateway
from psicoia.transports.websocket import JSON_PROTOCOL
from tests.fake_provider import FakeProvider, serve
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
