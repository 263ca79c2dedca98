"""
Terminals as they are in the wild (issue 14): line ends, character mode, telnet negotiation.

The bytes are what real clients send (netkit telnet in ``mode character``, Windows telnet,
PuTTY, ConnectBot, nc), fed to the real TCP protocol and the real SessionManager over a
StringTransport; only the provider is replaced (tests/provider_stub.py).
"""

from __future__ import annotations

import pytest

from psicoia import texts
from psicoia.transports.lineedit import TOO_LONG, LineEditor
from tests.test_protocol_tcp import Harness

IAC, DONT, DO, WONT, WILL, SB, SE = 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF0
ECHO, SGA, NAWS, LINEMODE, TTYPE = 1, 3, 31, 34, 24
BS, DEL = b"\x08", b"\x7f"
UP, LEFT, F1_SS3, F5 = b"\x1b[A", b"\x1b[D", b"\x1bOP", b"\x1b[15~"
AT_RISK = "no quiero vivir mas"


def iac(*codes: int) -> bytes:
    return bytes([IAC, *codes])


# netkit telnet, "mode character": DO SUPPRESS-GO-AHEAD, DO ECHO.
CHARACTER_MODE = iac(DO, SGA) + iac(DO, ECHO)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def keys(client, data: bytes) -> None:
    """One read per key, as a character-mode client sends them."""
    for index in range(len(data)):
        client.send(data[index:index + 1])


def after_greeting(client) -> bytes:
    data = client.transport.value()
    marker = texts.GREETING_LAST.encode("utf-8") + b"\r\n"
    return data[data.index(marker) + len(marker):]


# --- 1. line ends ------------------------------------------------------------------------------

@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r\x00", b"\r"],
                         ids=["LF", "CRLF", "CR-NUL", "bare-CR"])
def test_each_line_end_ends_exactly_one_line_and_never_reaches_the_message(harness, end):
    client = harness.connect()
    for text in (b"uno", b"dos", b"tres"):
        client.send(text + end)
        harness.provider.answer_all()
    assert harness.texts == ["uno", "dos", "tres"]
    assert client.replies == ["re: uno", "re: dos", "re: tres"]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r\x00", b"\r"],
                         ids=["LF", "CRLF", "CR-NUL", "bare-CR"])
def test_three_lines_in_one_read_are_three_messages(harness, end):
    client = harness.connect()
    client.send(end.join([b"uno", b"dos", b"tres"]) + end)
    harness.provider.answer_all()
    harness.provider.answer_all()
    harness.provider.answer_all()
    assert harness.texts == ["uno", "dos", "tres"]
    assert all("\r" not in t and "\x00" not in t for t in harness.texts)


@pytest.mark.parametrize("second", [b"\n", b"\x00"])
def test_cr_then_lf_or_nul_split_across_reads_is_one_line_end(harness, second):
    client = harness.connect()
    client.send(b"uno\r")
    assert harness.texts == ["uno"], "a bare CR is a line end at once, not held back"
    harness.provider.answer_all()
    client.send(second + b"dos\r")
    client.send(second)
    harness.provider.answer_all()
    assert harness.texts == ["uno", "dos"]
    assert client.replies == ["re: uno", "re: dos"], "no empty line, no extra reply"


def test_cr_cr_is_one_line_and_one_empty_line(harness):
    client = harness.connect()
    client.send(b"hola\r\rche\r")
    harness.provider.answer_all()
    harness.provider.answer_all()
    assert harness.texts == ["hola", "che"]


def test_nul_and_controls_inside_a_line_never_reach_the_message(harness):
    client = harness.connect()
    client.send(b"ho\x00la\x03 c\x07he\tsi\n")
    assert harness.texts == ["hola che\tsi"]


def test_line_end_split_inside_telnet_traffic(harness):
    client = harness.connect()
    client.send(b"uno\r" + iac(WILL, NAWS))
    client.send(b"\x00dos\r" + iac(SB, NAWS, 0, 80, 0, 13) + iac(SE) + b"\n")
    harness.provider.answer_all()
    harness.provider.answer_all()
    assert harness.texts == ["uno", "dos"]


# --- 2. character mode: editing, escape sequences, echo ----------------------------------------

def test_backspace_and_delete_erase_the_previous_whole_utf8_character(harness):
    client = harness.connect()
    keys(client, "corazón".encode() + BS + DEL + "ñn".encode() + BS + b"\r\x00")
    assert harness.texts == ["corazñ"]


def test_erasing_more_than_was_typed_is_harmless(harness):
    client = harness.connect()
    keys(client, b"a" + BS * 5 + b"hola\r\n")
    assert harness.texts == ["hola"]


def test_ctrl_u_erases_the_whole_line(harness):
    client = harness.connect()
    keys(client, b"no esto\x15esto\r\n")
    assert harness.texts == ["esto"]


@pytest.mark.parametrize("sequence", [UP, LEFT, F1_SS3, F5, b"\x1b[1;5C", b"\x1bx"])
def test_escape_sequences_are_dropped(harness, sequence):
    client = harness.connect()
    keys(client, b"ho" + sequence + b"la\r\x00")
    assert harness.texts == ["hola"]


def test_escape_sequence_split_across_reads_in_one_burst(harness):
    client = harness.connect()
    client.send(b"hola\x1b[")
    client.send(b"Ache\r\n")
    assert harness.texts == ["holache"]


def test_a_crisis_message_corrected_with_backspace_still_gets_the_crisis_resources(harness):
    client = harness.connect()
    client.send(CHARACTER_MODE)
    keys(client, b"no quiero vivir maz" + BS + b"s\r\x00")
    assert harness.texts == [AT_RISK]
    client.transport.clear()
    harness.provider.answer_all()
    reply = client.transport.value().decode("utf-8")
    assert reply.endswith("\r\n") and reply.count("\r\n") == 1
    assert reply.startswith(f"re: {AT_RISK}")
    resources = texts.CRISIS_RESOURCES.split("{")[0]
    assert resources in reply, "the crisis layer saw the corrected line"


def test_a_command_corrected_with_delete_is_that_command(harness):
    client = harness.connect()
    keys(client, b"/recursoz" + DEL + b"s\r\x00")
    assert harness.provider.calls == []
    assert client.replies[-1].startswith(texts.RESOURCES_REPLY.split("{")[0])


def test_salir_corrected_with_backspace_ends_the_chat(harness):
    client = harness.connect()
    keys(client, b"salix" + BS + b"r\r")
    assert client.replies == [texts.GOODBYE]
    assert not client.connected


def test_character_mode_client_sees_what_it_types_and_its_corrections(harness):
    client = harness.connect()
    client.send(CHARACTER_MODE)
    negotiated = after_greeting(client)
    assert negotiated == iac(WILL, SGA) + iac(WILL, ECHO)
    client.transport.clear()
    keys(client, "holá".encode() + DEL + b"a" + UP + b"\r\x00")
    assert client.transport.value() == "holá".encode() + b"\b \b" + b"a" + b"\r\n"
    assert harness.texts == ["hola"]


def test_wide_character_erase_takes_two_columns(harness):
    client = harness.connect()
    client.send(iac(DO, ECHO))
    client.transport.clear()
    keys(client, "心".encode() + BS)
    assert client.transport.value() == "心".encode() + b"\b \b" * 2


def test_a_reply_arriving_while_typing_keeps_the_typed_text_on_screen(harness):
    client = harness.connect()
    client.send(CHARACTER_MODE)
    keys(client, b"uno\r\x00")
    keys(client, b"do")
    client.transport.clear()
    harness.provider.answer_all()
    assert client.transport.value() == b"\r\x1b[Kre: uno\r\ndo"
    keys(client, b"s\r\x00")
    assert harness.texts == ["uno", "dos"]


def test_clients_that_did_not_ask_for_echo_get_no_echo(harness):
    client = harness.connect()
    before = client.transport.value()
    keys(client, b"hola" + BS + b"a\r\n")
    assert client.transport.value() == before
    assert harness.texts == ["hola"]


# --- telnet negotiation: only answered, never started -------------------------------------------

def test_an_nc_user_never_sees_a_negotiation_byte(harness):
    client = harness.connect()
    client.say("hola")
    harness.provider.answer_all()
    client.send(b"chau\r\n")
    harness.provider.answer_all()
    assert b"\xff" not in client.transport.value()
    assert client.replies == ["re: hola", "re: chau"]


def test_linemode_and_unknown_options_are_refused(harness):
    client = harness.connect()
    client.send(iac(WILL, LINEMODE) + iac(WILL, NAWS) + iac(WILL, TTYPE) + iac(DO, 0x27))
    assert after_greeting(client) == (iac(DONT, LINEMODE) + iac(DONT, NAWS) + iac(DONT, TTYPE)
                                      + iac(WONT, 0x27))


def test_the_client_can_turn_echo_off_again(harness):
    client = harness.connect()
    client.send(iac(DO, ECHO))
    client.send(iac(DONT, ECHO))
    assert after_greeting(client) == iac(WILL, ECHO) + iac(WONT, ECHO)
    client.transport.clear()
    keys(client, b"hola\r\n")
    assert client.transport.value() == b""


def test_unknown_telnet_command_and_literal_0xff_are_dropped_not_fatal(harness):
    client = harness.connect()
    client.send(b"ho" + iac(0x41) + b"la" + iac(IAC) + b"\r\n")
    assert client.connected
    assert len(harness.texts) == 1 and harness.texts[0].startswith("hola")
    assert "\x00" not in harness.texts[0] and "\r" not in harness.texts[0]


# --- the editor alone ----------------------------------------------------------------------------

def test_editor_reports_too_long_once_and_resumes_at_the_next_line_end():
    editor = LineEditor(8)
    lines, _ = editor.feed(b"123456789abc")
    assert lines == [TOO_LONG]
    lines, _ = editor.feed(b"def\r")
    assert lines == []
    lines, _ = editor.feed(b"\nok\r\x00")
    assert lines == [b"ok"]


def test_editor_limit_counts_the_line_after_editing():
    editor = LineEditor(4)
    lines, _ = editor.feed(b"abcd" + BS + BS + b"ef\n")
    assert lines == [b"abef"]


def test_editor_finish_gives_the_unterminated_last_line():
    editor = LineEditor(64)
    assert editor.feed(b"uno\ndos")[0] == [b"uno"]
    assert editor.finish() == [b"dos"]
    assert editor.finish() == []
