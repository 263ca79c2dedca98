"""Commands on both transports (/ayuda, /recursos, /reset, salir) and the greeting that lists them.

Commands are handled by the session manager, so every transport gets them; the manager is
tested through the Session API, then the TCP protocol (StringTransport) and the WebSocket (real
socket) are each checked once.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from psicoia import texts
from psicoia.ops.connections import ConnectionRegistry
from psicoia.provider.client import ChatProvider
from psicoia.transports.tcp import ChatLineFactory
from psicoia.chat.vocabulary import Kind

from tests.fake_provider import FakeProvider
from tests.helpers import make_manager  # noqa: F401
from tests.helpers import LOCAL, fired, history_of, make_config, port_of, start_service

GREETING_LINES = 3 + len(texts.GREETING_BODY)


class Stack:
    def __init__(self, **sections) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(clock=self.clock, default_reply="ok")
        self.stub = StubTreq(self.fake)
        llm = {"pacing": False, **sections.pop("llm", {})}
        self.config = make_config(llm=llm, **sections)
        client = ChatProvider(self.config.llm, "test-key", self.clock, self.stub)
        self.manager = make_manager(self.config, client, self.clock, system_prompt="sistema")
        self.session = fired(self.manager.open("tcp", "127.0.0.1"))

    def say(self, text: str):
        result = self.session.submit(text).reply
        self.stub.flush()
        return fired(result)


# --- greeting -----------------------------------------------------------------------------


def test_greeting_lists_the_commands_and_only_its_last_line_says_salir():
    greeting = Stack().session.greeting()
    assert greeting[0] == "Usuario-1 conectado."
    assert "salir" in greeting[-1]
    assert not any("salir" in line.lower() for line in greeting[:-1])
    listed = " ".join(greeting)
    for command in ("/ayuda", "/recursos", "/reset"):
        assert command in listed


def test_greeting_discloses_an_automatic_assistant_not_a_person_nor_a_professional():
    body = " ".join(Stack().session.greeting()[1:-1]).lower()
    assert "asistente automático" in body
    assert "no soy una persona" in body and "profesional" in body


# --- each command -------------------------------------------------------------------------


def test_ayuda_lists_every_command_and_calls_no_model():
    stack = Stack()
    reply = stack.say("/ayuda")
    assert reply.outcome == Kind.COMMAND and reply.text == texts.HELP
    for command in ("/ayuda", "/recursos", "/reset", "salir"):
        assert command in reply.text
    assert stack.fake.requests == []


def test_recursos_shows_every_configured_resource():
    stack = Stack(safety={"resources": ("Línea uno 111", "Línea dos 222")})
    reply = stack.say("/recursos")
    assert reply.outcome == Kind.COMMAND
    assert "Línea uno 111" in reply.text and "Línea dos 222" in reply.text
    assert "\n" not in reply.text


def test_recursos_by_default_has_the_argentine_and_spanish_lines():
    text = Stack().say("/recursos").text
    for number in ("135", "(011) 5275-1135", "0800-999-0091", "024", "911", "112"):
        assert number in text


def test_reset_forgets_the_conversation_before_the_next_message():
    stack = Stack()
    stack.say("me llamo Ana")
    assert len(stack.fake.requests[-1]["json"]["messages"]) == 2
    stack.say("hoy estoy mejor")
    assert len(stack.fake.requests[-1]["json"]["messages"]) == 4
    reply = stack.say("/reset")
    assert reply.outcome == Kind.COMMAND and reply.text == texts.RESET_DONE
    assert history_of(stack.session) == []
    stack.say("hola de nuevo")
    sent = stack.fake.requests[-1]["json"]["messages"]
    assert [m["content"] for m in sent] == ["sistema", "hola de nuevo"]


def test_reset_also_makes_the_offline_companion_forget_the_theme():
    manager = make_manager(make_config(api_key=None), type("Off", (), {"online": False})(),
                             Clock(), system_prompt="sistema")
    session = fired(manager.open("tcp", "a"))
    fired(session.submit("tengo mucha ansiedad").reply)
    assert texts.COMPANION_THEMES["ansiedad"] in fired(session.submit("ok").reply).text
    fired(session.submit("/reset").reply)
    assert texts.COMPANION_THEMES["ansiedad"] not in fired(session.submit("ok").reply).text


@pytest.mark.parametrize("typed", ["/AYUDA", "  /ayuda  ", "/Ayuda"])
def test_commands_ignore_case_and_surrounding_spaces(typed):
    assert Stack().say(typed).text == texts.HELP


def test_unknown_command_gets_a_hint_and_a_slash_sentence_goes_to_the_model():
    stack = Stack()
    assert stack.say("/hola").text == texts.UNKNOWN_COMMAND
    assert stack.fake.requests == []
    assert stack.say("/ me siento raro hoy").outcome == Kind.ANSWERED


def test_commands_are_answered_even_when_rate_limited():
    stack = Stack(limits={"rate_max_messages": 1, "rate_window_seconds": 60})
    stack.say("hola")
    assert stack.say("charlemos").outcome == Kind.RATE_LIMITED
    for command in ("/recursos", "/ayuda", "/reset"):
        assert stack.say(command).outcome == Kind.COMMAND
    assert stack.say("salir").outcome == Kind.GOODBYE


# --- on the transports ----------------------------------------------------------------------


def test_commands_over_tcp():
    stack = Stack()
    factory = ChatLineFactory(stack.manager, ConnectionRegistry(10, 10), stack.clock)
    address = IPv4Address("TCP", "10.0.0.1", 40000)
    protocol = factory.buildProtocol(address)
    transport = StringTransportWithDisconnection(peerAddress=address)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    protocol.dataReceived("/ayuda\r\n/recursos\r\nsalir\r\n".encode("utf-8"))
    lines = transport.value().decode("utf-8").split("\r\n")[:-1]
    assert lines[GREETING_LINES:GREETING_LINES + 2] == [
        texts.HELP, texts.RESOURCES_REPLY.format(resources=stack.manager.resources_text())]
    assert lines[-1] == texts.GOODBYE
    assert not transport.connected


@pytest_twisted.ensureDeferred
async def test_commands_over_the_websocket():
    from tests.wsclient import connect_ws

    service = await start_service(make_config(api_key=None, server={"websocket": LOCAL}))
    try:
        client = await connect_ws(await port_of(service, "websocket"), "/")
        greeting = await client.wait_frames(GREETING_LINES)
        assert any("/recursos" in frame for frame in greeting)
        client.sendMessage(b"/ayuda")
        client.sendMessage(b"/recursos")
        frames = await client.wait_frames(GREETING_LINES + 2)
        assert frames[GREETING_LINES] == texts.HELP
        assert "0800-999-0091" in frames[GREETING_LINES + 1]
        client.sendMessage(b"salir")
        await client.wait_frames(GREETING_LINES + 3)
        await client.closed
    finally:
        await service.stopService()
