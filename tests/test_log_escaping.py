"""Text and JSON log lines never carry a client's control characters raw (issue 16, item 8)."""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel, globalLogPublisher

from psicoia.config import LogConfig
from psicoia.ops.logsetup import escape_text, format_json_line, format_text_line, make_observer

HOSTILE = "a\x1b[2J\x1b]0;owned\x07b\r\nfake line\x9b31m\u202eevil\x7f"


def event(**fields) -> dict:
    base = {"log_format": "refused {value}", "log_level": LogLevel.info, "log_time": 0.0,
            "log_namespace": "test"}
    base.update(fields)
    return base


def test_text_lines_spell_out_every_control_character():
    line = format_text_line(event(value=HOSTILE))
    assert line.endswith("\n") and line.count("\n") == 1  # one event, one line
    body = line[:-1]
    for raw in ("\x1b", "\x07", "\r", "\n", "\x9b", "\u202e", "\x7f"):
        assert raw not in body
    assert "\\x1b[2J" in body and "\\u202e" in body
    assert "\\x0d\\x0a\tfake line" in body  # Twisted indents what follows a line break


def test_json_lines_escape_what_json_leaves_raw():
    line = format_json_line(event(value=HOSTILE))
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\x7f"):
        assert raw not in line
    assert json.loads(line)["event"] == "refused " + HOSTILE  # still the same text, decoded


def test_ordinary_text_is_unchanged():
    assert escape_text("Usuario-1 conectado: ñandú\tok") == "Usuario-1 conectado: ñandú\tok"


def test_the_configured_text_observer_escapes():
    output = io.StringIO()
    observer = make_observer(LogConfig(format="text", level="info"), output)
    globalLogPublisher.addObserver(observer)
    try:
        Logger(namespace="test").info("header {value}", value=HOSTILE)
    finally:
        globalLogPublisher.removeObserver(observer)
    assert "\x1b" not in output.getvalue() and "\\x1b" in output.getvalue()
