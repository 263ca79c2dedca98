"""
The TCP line protocol of CONTRACT.md, driven through StringTransport on a task.Clock.

The session manager is the real one; only the provider is replaced (tests/provider_stub.py), so
each test decides when and in which order the model answers.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from psicoia import texts
from psicoia.ops.metrics import Metrics
from psicoia.ops.connections import ConnectionRegistry
from psicoia.transports.tcp import ChatLineFactory

from tests.helpers import fired, make_manager  # noqa: F401
from tests.helpers import captured_logs, make_config
from tests.provider_stub import ControlledProvider

IAC, SB, SE, WILL, DO, DONT = 0xFF, 0xFA, 0xF0, 0xFB, 0xFD, 0xFE


class Connection:
    """One client on a StringTransport; ``lines`` are what the server wrote, decoded."""

    def __init__(self, factory: ChatLineFactory, host: str, port: int) -> None:
        address = IPv4Address("TCP", host, port)
        self.protocol = factory.buildProtocol(address)
        self.transport = StringTransportWithDisconnection(peerAddress=address)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    @property
    def raw_lines(self) -> list[str]:
        data = self.transport.value()
        assert data == b"" or data.endswith(b"\r\n"), "every line ends with CRLF"
        return [line.decode("utf-8") for line in data.split(b"\r\n")[:-1]]

    @property
    def greeting(self) -> list[str]:
        lines = self.raw_lines
        last = next(i for i, line in enumerate(lines) if "salir" in line)
        return lines[: last + 1]

    @property
    def replies(self) -> list[str]:
        """Lines after the greeting."""
        return self.raw_lines[len(self.greeting):]

    @property
    def connected(self) -> bool:
        return self.transport.connected

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def say(self, text: str) -> None:
        self.send(text.encode("utf-8") + b"\r\n")


class Harness:
    def __init__(self, online: bool = True, **sections) -> None:
        self.clock = Clock()
        self.provider = ControlledProvider(online=online)
        self.config = make_config(**sections)
        self.metrics = Metrics()
        self.manager = make_manager(self.config, self.provider, self.clock,
                                    system_prompt="Sos un acompañante breve.",
                                    instruments=self.metrics)
        self.registry = ConnectionRegistry(self.config.server.max_connections,
                                           self.config.server.max_connections_per_ip,
                                           self.metrics)
        self.factory = ChatLineFactory(self.manager, self.registry, self.clock)
        self._ports = iter(range(40000, 50000))

    def connect(self, host: str = "10.0.0.1") -> Connection:
        return Connection(self.factory, host, next(self._ports))

    @property
    def texts(self) -> list[str]:
        """The user text of every provider call, in call order."""
        return [call.text for call in self.provider.calls]


@pytest.fixture
def harness() -> Harness:
    return Harness()


# --- greeting ---------------------------------------------------------------------------------

def test_greeting_starts_with_user_number_and_only_its_last_line_says_salir(harness):
    client = harness.connect()
    greeting = client.greeting
    assert len(greeting) >= 2
    assert greeting[0] == "Usuario-1 conectado."
    assert "salir" in greeting[-1]
    assert not any("salir" in line for line in greeting[:-1])
    assert client.replies == []


def test_users_are_numbered_from_one_in_connection_order(harness):
    first, second, third = harness.connect(), harness.connect(), harness.connect("10.0.0.2")
    assert [c.greeting[0] for c in (first, second, third)] == [
        "Usuario-1 conectado.", "Usuario-2 conectado.", "Usuario-3 conectado."]


# --- line framing -----------------------------------------------------------------------------

def test_crlf_and_lf_both_end_a_line_and_neither_reaches_the_message(harness):
    client = harness.connect()
    client.send(b"uno\r\n")
    harness.provider.answer_all()
    client.send(b"dos\n")
    harness.provider.answer_all()
    assert harness.texts == ["uno", "dos"]
    assert client.replies == ["re: uno", "re: dos"]


def test_telnet_negotiation_is_answered_and_never_reaches_a_message(harness):
    client = harness.connect()
    before = client.transport.value()
    client.send(bytes([IAC, DO, 1, IAC, WILL, 3, IAC, DONT, 34]) + b"hola" + bytes([IAC, 0xF1])
                + b" che\r\n")
    assert harness.texts == ["hola che"]
    answer = client.transport.value()[len(before):]
    # WILL ECHO, DO SUPPRESS-GO-AHEAD; then, echoing, what the user typed.
    assert answer == bytes([IAC, 0xFB, 1, IAC, DO, 3]) + b"hola che\r\n"
    client.transport.clear()
    harness.provider.answer_all()
    assert client.transport.value() == "re: hola che\r\n".encode()


def test_telnet_sequence_split_across_reads_is_stripped(harness):
    client = harness.connect()
    data = b"ho" + bytes([IAC, WILL, 31]) + b"la" + bytes([IAC, SB, 24, 0]) + b"xterm" \
        + bytes([IAC, SE]) + b"!\r\n"
    for index in range(len(data)):
        client.send(data[index:index + 1])
    assert harness.texts == ["hola!"]


def test_telnet_subnegotiation_content_never_reaches_a_message(harness):
    client = harness.connect()
    client.send(bytes([IAC, SB, 31, 0, 80, 0, 24]))  # NAWS, window size
    client.send(b"\n" + bytes([IAC, SE]) + b"hola\n")  # a newline inside SB is not a line end
    assert harness.texts == ["hola"]


# --- too-long lines ---------------------------------------------------------------------------

def test_too_long_line_gets_notice_and_keeps_connection():
    harness = Harness(limits={"max_line_bytes": 64})
    client = harness.connect()
    client.send(b"x" * 65 + b"\r\n")
    assert client.replies == [texts.TOO_LONG.format(limit=64)]
    assert "64" in client.replies[0]
    assert client.connected
    assert harness.provider.calls == []
    client.say("sigo acá")
    assert harness.texts == ["sigo acá"]
    harness.provider.answer_all()
    assert client.replies[1:] == ["re: sigo acá"]


def test_too_long_line_in_many_chunks_gets_one_notice_and_next_line_is_handled():
    harness = Harness(limits={"max_line_bytes": 64})
    client = harness.connect()
    for _ in range(50):
        client.send(b"y" * 10)
    client.send(b"fin del largo\r\nbreve\r\n")
    assert client.replies == [texts.TOO_LONG.format(limit=64)]
    assert client.connected
    assert harness.texts == ["breve"]


def test_too_long_line_followed_by_more_lines_in_the_same_read():
    harness = Harness(limits={"max_line_bytes": 64})
    client = harness.connect()
    client.send(b"z" * 200 + b"\nuno\n" + b"w" * 70 + b"\ndos\n")
    notice = texts.TOO_LONG.format(limit=64)
    assert harness.texts == ["uno"]
    harness.provider.answer_all()
    assert harness.texts == ["uno", "dos"]
    harness.provider.answer_all()
    assert client.replies == [notice, "re: uno", notice, "re: dos"]


def test_line_of_exactly_the_limit_is_accepted_with_crlf_or_lf():
    harness = Harness(limits={"max_line_bytes": 64})
    client = harness.connect()
    client.send(b"a" * 64 + b"\r\n")
    harness.provider.answer_all()
    client.send(b"b" * 64 + b"\n")
    harness.provider.answer_all()
    client.send(b"c" * 65 + b"\n")
    assert harness.texts == ["a" * 64, "b" * 64]
    assert client.replies[-1] == texts.TOO_LONG.format(limit=64)


def test_limit_counts_bytes_not_characters():
    harness = Harness(limits={"max_line_bytes": 64})
    client = harness.connect()
    client.say("ñ" * 33)  # 66 bytes, 33 characters
    assert client.replies == [texts.TOO_LONG.format(limit=64)]
    assert harness.provider.calls == []


# --- bad bytes and empty lines ----------------------------------------------------------------

def test_invalid_utf8_never_crashes_and_gets_one_reply(harness):
    client = harness.connect()
    client.send(b"hola \xc3\x28 \xe2\x82 mundo\r\n")
    assert len(harness.texts) == 1
    assert "\ufffd" in harness.texts[0] and harness.texts[0].startswith("hola")
    harness.provider.answer_all()
    assert len(client.replies) == 1
    assert client.connected


def test_empty_lines_get_no_reply(harness):
    client = harness.connect()
    client.send(b"\r\n\n   \r\n\t\n")
    assert client.replies == []
    assert harness.provider.calls == []
    client.say("ahora sí")
    harness.provider.answer_all()
    assert client.replies == ["re: ahora sí"]


# --- salir ------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [b"salir\n", b"SALIR\r\n", b"  Salir  \r\n", b"\tsAlIr\n"])
def test_salir_in_any_case_with_spaces_gets_goodbye_then_close(harness, line):
    client = harness.connect()
    client.send(line)
    assert client.replies == [texts.GOODBYE]
    assert not client.connected
    assert harness.provider.calls == []


def test_salir_waits_for_the_earlier_reply_then_says_goodbye(harness):
    client = harness.connect()
    client.send(b"una cosa\nsalir\n")
    assert client.connected
    harness.provider.answer_all()
    assert client.replies == ["re: una cosa", texts.GOODBYE]
    assert not client.connected


def test_lines_after_salir_in_the_same_read_are_not_handled(harness):
    client = harness.connect()
    client.send(b"salir\nalgo mas\n")
    assert client.replies == [texts.GOODBYE]
    assert harness.provider.calls == []


def test_salir_is_not_blocked_by_the_rate_limit():
    harness = Harness(online=False, limits={"rate_max_messages": 1, "rate_window_seconds": 60})
    client = harness.connect()
    client.say("hola")
    client.say("otra")
    client.say("salir")
    assert len(client.replies) == 3 and client.replies[0]  # the offline reply
    assert client.replies[1].startswith(texts.RATE_LIMITED.split("{")[0])
    assert client.replies[2:] == [texts.GOODBYE]
    assert not client.connected


# --- connection caps --------------------------------------------------------------------------

def test_total_connection_cap_gets_a_notice_line_then_close():
    harness = Harness(server={"max_connections": 2, "max_connections_per_ip": 2})
    admitted = [harness.connect("10.0.0.1"), harness.connect("10.0.0.2")]
    refused = harness.connect("10.0.0.3")
    assert refused.raw_lines == [texts.SERVER_FULL]
    assert not refused.connected
    assert all(c.connected for c in admitted)
    admitted[0].say("salir")
    again = harness.connect("10.0.0.3")
    assert again.connected and again.greeting[0] == "Usuario-3 conectado."


def test_per_address_cap_gets_a_notice_line_then_close_and_other_addresses_still_connect():
    harness = Harness(server={"max_connections": 10, "max_connections_per_ip": 2})
    first, _ = harness.connect("10.0.0.1"), harness.connect("10.0.0.1")
    refused = harness.connect("10.0.0.1")
    assert refused.raw_lines == [texts.TOO_MANY_FROM_ADDRESS]
    assert not refused.connected
    assert harness.connect("10.0.0.2").connected
    first.transport.loseConnection()
    assert harness.connect("10.0.0.1").connected


def test_refused_connection_does_not_use_a_user_number_or_a_session():
    harness = Harness(server={"max_connections": 1, "max_connections_per_ip": 1})
    harness.connect()
    harness.connect()
    assert len(harness.manager.holders) == 1
    assert len(harness.registry) == 1
    assert fired(harness.manager.store.create(b"next", 0.0)).number == 2, "no number was spent"


# --- idle timeout -----------------------------------------------------------------------------

def test_idle_timeout_closes_with_a_notice_on_the_clock():
    harness = Harness(limits={"idle_timeout_seconds": 60})
    client = harness.connect()
    harness.clock.advance(59)
    assert client.connected
    client.say("hola")
    harness.provider.answer_all()
    harness.clock.advance(59)
    assert client.connected, "a line resets the idle timer"
    harness.clock.advance(1)
    # The notice repeats the resume code (the greeting's line): a terminal keeps nothing.
    code = next(line for line in client.greeting if "/retomar " in line).rsplit(" ", 1)[1]
    assert client.replies == ["re: hola", texts.IDLE_TIMEOUT_RESUME.format(code=code)]
    assert not client.connected
    assert harness.manager.holders == {}
    sample = harness.metrics.registry.get_sample_value
    assert sample("psicoia_idle_timeouts_total", {"transport": "tcp"}) == 1
    assert sample("psicoia_reply_seconds_count", {"transport": "tcp"}) == 1


# --- replies: exactly one per line, in order --------------------------------------------------

def test_exactly_one_reply_per_line_in_order_and_next_message_waits_for_the_reply(harness):
    client = harness.connect()
    harness.provider.on_call = lambda call: setattr(call, "snapshot", list(client.replies))
    client.send(b"uno\r\ndos\r\ntres\r\n")
    assert harness.texts == ["uno"], "the second message waits for the first reply"
    for expected in ("uno", "dos", "tres"):
        harness.provider.pending[0].answer(f"re: {expected}")
    assert harness.texts == ["uno", "dos", "tres"]
    assert client.replies == ["re: uno", "re: dos", "re: tres"]
    # When each call started, every earlier reply had already been written.
    assert [call.snapshot for call in harness.provider.calls] == [
        [], ["re: uno"], ["re: uno", "re: dos"]]


def test_replies_completing_out_of_order_reach_each_user_in_order(harness):
    users = [harness.connect(f"10.0.0.{n}") for n in range(1, 4)]
    for index, client in enumerate(users):
        client.say(f"u{index} a")
        client.say(f"u{index} b")
    assert sorted(harness.texts) == ["u0 a", "u1 a", "u2 a"]
    while harness.provider.pending:
        harness.provider.pending[-1].answer(f"re: {harness.provider.pending[-1].text}")
    for index, client in enumerate(users):
        assert client.replies == [f"re: u{index} a", f"re: u{index} b"]


def test_reply_with_line_breaks_is_folded_into_one_line(harness):
    client = harness.connect()
    client.say("hola")
    harness.provider.calls[0].answer("Te leo.\n\nContame más.\r\n¿Sí?")
    assert client.replies == ["Te leo. Contame más. ¿Sí?"]


def test_provider_failure_gets_exactly_one_fallback_line(harness):
    client = harness.connect()
    client.say("hola")
    harness.provider.calls[0].fail("timeout", None)
    client.say("otra")
    harness.provider.calls[1].crash(RuntimeError("bug"))
    assert len(client.replies) == 2
    assert client.replies[0].strip()  # the fallback (the offline companion's words)
    assert client.replies[1] == texts.ERROR
    assert client.connected


def test_offline_mode_answers_every_line_with_the_offline_notice():
    harness = Harness(online=False)
    client = harness.connect()
    client.send(b"uno\ndos\n")
    assert len(client.replies) == 2 and all(line.strip() for line in client.replies)
    assert harness.provider.calls == []


def test_disconnect_with_replies_pending_writes_nothing_more_and_frees_the_slot():
    harness = Harness(llm={"max_in_flight": 1})
    client = harness.connect()
    client.send(b"uno\ndos\n")
    call = harness.provider.calls[0]
    client.transport.loseConnection()
    assert call.cancelled
    assert harness.manager.slots.semaphore.tokens == 1
    assert harness.texts == ["uno"], "the queued message is dropped, not sent"
    assert client.replies == []
    other = harness.connect("10.0.0.9")
    other.say("hola")
    assert harness.texts == ["uno", "hola"]


def test_shutdown_notice_is_one_line(harness):
    client = harness.connect()
    client.protocol.notify_shutdown()
    assert client.replies == [texts.SHUTTING_DOWN]


def test_a_pasted_flood_is_read_as_replies_go_out_not_queued_without_bound():
    # The test answers one line per 10 s of clock: no reply deadline in the way here.
    harness = Harness(llm={"reply_deadline_seconds": 10_000})
    client = harness.connect()
    lines = 200
    client.send(b"".join(b"linea %d\n" % n for n in range(lines)))
    backlog = client.protocol.backlog.limit
    assert client.transport.producerState == "paused"
    assert len(client.protocol.session._pending or ()) == backlog
    while harness.clock.advance(0) or harness.provider.pending:  # a turn: more lines go on
        call = harness.provider.pending[0]
        harness.clock.advance(10)  # keep clear of the rate limit
        call.answer(f"re: {call.text}")
        assert len(client.protocol.session._pending or ()) <= backlog
    assert client.transport.producerState == "producing"
    assert len(client.replies) == lines
    answered = [r for r in client.replies if r.startswith("re: ")]
    assert answered == sorted(answered, key=lambda r: int(r.rsplit(" ", 1)[1]))
    assert answered[0] == "re: linea 0"


def test_a_connection_flooding_far_past_its_limit_is_told_and_closed():
    from psicoia.chat.session import FLOOD_FACTOR

    harness = Harness(online=False, limits={"rate_max_messages": 2})
    client = harness.connect()
    with captured_logs() as logs:
        client.send(b"a\n" * (2 + FLOOD_FACTOR * 2 + 50))
    replies = client.replies
    # Two answered, then one notice per refused line, then the sanction; nothing after it.
    assert len(replies) == 2 + FLOOD_FACTOR * 2 + 1
    assert all(r.startswith("Vamos más despacio") for r in replies[2:-1])
    assert replies[-1] == texts.FLOODING
    assert not client.connected
    # Only the first notice of the run is logged, and the sanction once.
    lines = [line for line in logs.getvalue().splitlines() if "rate_limited" in line]
    assert len(lines) == 1
    assert logs.getvalue().count("flooding") == 1
