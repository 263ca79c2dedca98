"""
The server-sent events parser (psicoia.provider.sse) against the WHATWG rules, fed in pieces.
"""

from __future__ import annotations

import pytest

from psicoia.provider.sse import Event, SSEParser


def parse(*reads: bytes) -> tuple[list[Event], SSEParser]:
    parser = SSEParser()
    events: list[Event] = []
    for data in reads:
        events += parser.feed(data)
    parser.close()
    return events, parser


def data_of(*reads: bytes) -> list[str]:
    return [event.data for event in parse(*reads)[0]]


STREAM = (
    "\ufeff: a comment, then a multi-line event\r\n"
    "data: {\"choices\": [{\"delta\": {\"content\": \"¿Qué tal?\"}}]}\r\n"
    "\r\n"
    "event: ping\n"
    "data\n"
    "data:  two spaces\n"
    "\n"
    "id: 7\r"
    "data:sin espacio 🌱\r"
    "\r"
    "data: [DONE]\n\n"
).encode("utf-8")
EXPECTED = [
    Event('{"choices": [{"delta": {"content": "¿Qué tal?"}}]}', "message", ""),
    Event("\n two spaces", "ping", ""),
    Event("sin espacio 🌱", "message", "7"),
    Event("[DONE]", "message", "7"),
]


def test_a_whole_stream_gives_its_events_in_order():
    assert parse(STREAM)[0] == EXPECTED


def test_the_same_events_whatever_the_reads_split_byte_by_byte():
    assert parse(*[STREAM[i:i + 1] for i in range(len(STREAM))])[0] == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_the_same_events_wherever_one_read_ends(cut):
    """Every cut: inside a field name, between CR and LF, inside a UTF-8 character..."""
    assert parse(STREAM[:cut], STREAM[cut:])[0] == EXPECTED


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_each_kind_of_line_end(line_end):
    text = f"data: a{line_end}data: b{line_end}{line_end}data: c{line_end}{line_end}"
    assert data_of(text.encode()) == ["a\nb", "c"]


def test_a_cr_at_the_end_of_a_read_and_an_lf_at_the_start_of_the_next_are_one_line_end():
    # Were they two, the empty line between would dispatch "a" alone.
    assert data_of(b"data: a\r", b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_comments_and_unknown_fields_are_ignored():
    assert data_of(b": ping\n\nfoo: bar\ndata: x\n:\n\n") == ["x"]


def test_a_blank_line_with_no_data_dispatches_nothing():
    assert data_of(b"\n\nevent: x\n\n\n") == []


def test_only_one_space_after_the_colon_is_removed():
    assert data_of(b"data:   x\n\n") == ["  x"]


def test_an_empty_data_field_is_an_event_with_empty_data():
    assert data_of(b"data\n\n", b"data:\n\n") == ["", ""]


def test_the_event_type_resets_after_each_event_and_the_id_persists():
    events, _ = parse(b"event: a\nid: 1\ndata: x\n\ndata: y\n\nid\ndata: z\n\n")
    assert [(e.event, e.id) for e in events] == [("a", "1"), ("message", "1"), ("message", "")]


def test_an_id_with_nul_is_ignored_and_retry_needs_digits():
    events, parser = parse(b"id: 5\nid: a\x00b\nretry: 12x\ndata: x\n\nretry: 3000\n\n")
    assert events[0].id == "5"
    assert parser.retry == 3000


def test_an_event_not_ended_by_a_blank_line_is_discarded_at_the_end():
    events, parser = parse(b"data: a\n\ndata: [DONE]\n")
    assert [e.data for e in events] == ["a"] and parser.truncated
    assert parse(b"data: a\n\n")[1].truncated is False


def test_invalid_utf8_becomes_replacement_characters_never_an_error():
    assert data_of(b"data: \xff\xfe ok\n\n", b"data: \xe2\x82\n\n") == ["\ufffd\ufffd ok", "\ufffd"]


def test_only_a_leading_byte_order_mark_is_dropped():
    assert data_of(b"\xef\xbb\xbfdata: a\n\n", b"data: \xef\xbb\xbfb\n\n") == ["a", "\ufeffb"]
