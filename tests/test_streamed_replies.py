"""
Streamed replies reach the user as they are written (CONTRACT.md "Streaming"): the real service
on 127.0.0.1 against the fake provider streaming real SSE.

- TCP: the first words of the reply line arrive before the provider has finished, and it is
  still exactly one line, the crisis resources at its end; a stream cut after text was shown
  ends that same line with a short notice.
- WebSocket JSON mode: ``reply_delta`` events whose texts join to the final ``reply``; line
  mode: one frame per reply.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from psicoia import texts
from psicoia.transports.websocket import JSON_PROTOCOL
from tests.fake_provider import FakeProvider, Streamed, serve, stream_frames
from tests.helpers import LOCAL, connect_line_client, make_config, port_of, start_service
from tests.wsclient import GREETING_LINES, connect_ws

PIECES = ["Hola, ", "te ", "escucho.\n", "¿Qué ", "pasó ", "hoy?"]
WHOLE = "Hola, te escucho. ¿Qué pasó hoy?"


async def streaming_service(provider, **server):
    port, url = await serve(provider)
    config = make_config(llm={"base_url": url, "stream": True, "max_retries": 0,
                              "stream_stall_seconds": 2},
                         server={"http": LOCAL, **server})
    return port, await start_service(config)


async def received_bytes(client, needle: bytes, timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.01)):
        if needle in client.raw:
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"never saw {needle!r} in {client.raw!r}")


@pytest_twisted.ensureDeferred
async def test_tcp_shows_the_first_words_before_the_provider_has_finished():
    provider = FakeProvider()
    provider.push(Streamed(frames=stream_frames(PIECES), interval=0.3))
    provider_port, service = await streaming_service(provider)
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        client.raw = b""
        original = client.dataReceived

        def keep(data: bytes) -> None:
            client.raw += data
            original(data)

        client.dataReceived = keep
        await client.wait_lines(GREETING_LINES)
        client.say("hola")
        await received_bytes(client, "Hola, te".encode())
        assert provider.in_flight == 1, "the provider is still writing"
        assert len(client.lines) == GREETING_LINES, "no line end yet"
        lines = await client.wait_lines(GREETING_LINES + 1)
        assert lines[-1] == WHOLE, "one line, line breaks folded"
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_tcp_a_stream_cut_after_text_ends_the_same_line_with_a_notice():
    provider = FakeProvider()
    provider.push(Streamed(frames=stream_frames(PIECES[:3], finish=None, done=False),
                           interval=0.05, drop=True))
    provider_port, service = await streaming_service(provider)
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.say("hola")
        lines = await client.wait_lines(GREETING_LINES + 1)
        # What had arrived (however much of it), then the notice, on the same one line.
        assert lines[-1].startswith("Hola, te") and lines[-1].endswith(f" {texts.REPLY_CUT}")
        client.say("¿seguís?")
        lines = await client.wait_lines(GREETING_LINES + 2)
        assert len(lines) == GREETING_LINES + 2, "exactly one line per message"
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_tcp_a_crisis_reply_streams_and_ends_with_the_resources():
    provider = FakeProvider()
    provider.push(Streamed(frames=stream_frames(["Estoy ", "acá ", "con vos."]), interval=0.05))
    provider_port, service = await streaming_service(provider)
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.say("quiero morirme")
        lines = await client.wait_lines(GREETING_LINES + 1)
        assert lines[-1].startswith("Estoy acá con vos. ")
        assert "135" in lines[-1] and "\r" not in lines[-1]
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_websocket_json_sends_deltas_that_join_to_the_final_reply():
    provider = FakeProvider()
    provider.push(Streamed(frames=stream_frames(PIECES), interval=0.05))
    provider_port, service = await streaming_service(provider)
    try:
        client = await connect_ws(await port_of(service, "http"), "/ws",
                                  protocols=[JSON_PROTOCOL])
        await client.wait_events(1)
        client.send_event(type="message", text="hola", ref="m1")
        events = []
        for count in range(2, 40):
            events = await client.wait_events(count)
            if events[-1]["type"] == "reply":
                break
        kinds = [e["type"] for e in events[1:]]
        assert kinds[:2] == ["accepted", "waiting"] and kinds[-1] == "reply"
        deltas = [e for e in events if e["type"] == "reply_delta"]
        assert len(deltas) >= 2 and all(e["ref"] == "m1" for e in deltas)
        assert "".join(e["text"] for e in deltas) == events[-1]["text"] == WHOLE
        await client.hang_up()
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_websocket_line_mode_still_gets_one_frame_per_reply():
    provider = FakeProvider()
    provider.push(Streamed(frames=stream_frames(PIECES), interval=0.05))
    provider_port, service = await streaming_service(provider)
    try:
        client = await connect_ws(await port_of(service, "http"), "/ws")
        await client.wait_frames(GREETING_LINES)
        client.sendMessage(b"hola")
        frames = await client.wait_frames(GREETING_LINES + 1)
        assert frames[-1] == WHOLE
        await deferLater(reactor, 0.2, lambda: None)
        assert len(client.frames) == GREETING_LINES + 1
        await client.hang_up()
    finally:
        await service.stopService()
        await provider_port.stopListening()
