"""
Choose the log observer at start-up: text or JSON lines, filtered by level.

twistd starts logging after the plugin builds its service; the observer we attach to the
application as an ``ILogObserver`` component is the one it uses. ``--logfile`` (and ``-n`` for
stdout) keep their twistd meaning.

JSON lines are flat and built from a whitelist of fields (:data:`JSON_FIELDS`), never from the
whole event: an event can only leak what its own format string would show, and our format
strings carry ids, lengths, timings and outcomes, never message text, replies or keys. In both
formats a failure is shown as its type and frames, never its message (which could quote data).

Some events do carry strings a client chose (a path, a header value in Autobahn's or Twisted's
own lines). Every text line is therefore escaped: control characters (ESC, CR, LF, DEL, the C1
range) and the Unicode line and bidi controls are written as ``\\xNN``/``\\uNNNN``, so a client
can neither fake a log line nor send an operator's ``tail -f`` a terminal escape sequence. JSON
escapes C0 by itself; DEL, C1 and the Unicode controls get ``\\uNNNN`` there too.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from typing import IO, Any, Optional

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
)
from twisted.python.logfile import LogFile
from zope.interface import implementer

from psicoia.config import LogConfig


def open_log_file(logfile: Optional[str], nodaemon: bool) -> IO[str]:
    """Where twistd itself would log: stdout for ``-`` or ``-n`` without a file."""
    if logfile == "-" or (not logfile and nodaemon):
        return sys.stdout
    return LogFile.fromFullPath(logfile or "twistd.log")


# Event fields copied into JSON lines when present (all are ids, counts, timings or labels).
JSON_FIELDS = (
    "trace_id", "user", "transport", "latency_ms", "status", "attempt", "outcome", "error",
    "reason", "chars", "reply_chars", "delay_ms", "wait_ms", "position", "state", "kind",
    "name", "address", "count", "failures",
    # provider diagnostics (psicoia.provider.diagnosis): enumerated words and ids, never text
    "request_id", "error_type", "error_code", "hint", "limit",
)


def event_as_dict(event: dict) -> dict[str, Any]:
    """One flat dict per event: time, level, event (the rendered message), namespace, fields."""
    when = event.get("log_time")
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds")
        if when is not None else None,
        "level": level.name if level is not None else None,
        "event": formatEvent(event),
        "namespace": event.get("log_namespace"),
    }
    for name in JSON_FIELDS:
        value = event.get(name)
        if value is None:
            continue
        record[name] = value if isinstance(value, (int, float, bool)) else str(value)
    trace_id = record.get("trace_id")
    if "user" not in record and isinstance(trace_id, str) and ":" in trace_id:
        record["user"] = trace_id.split(":", 1)[0]
    failure = event.get("log_failure")
    if failure is not None:
        record.setdefault("error", getattr(failure.type, "__name__", str(failure.type)))
        # Frames only: an exception's message could quote data we must not log.
        record["traceback"] = [f"{frame[1]}:{frame[2]} in {frame[0]}" for frame in failure.frames]
    return record


# Characters a terminal or a log reader may act on. Tab stays (harmless, and Twisted's own
# multi-line text indents with it).
_TEXT_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw of those: it escapes C0 itself.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with every control character spelled out (``"\\x1b[2J"`` for ESC [2J)."""
    return _TEXT_UNSAFE.sub(_escaped, text)


def format_json_line(event: dict) -> str:
    line = json.dumps(event_as_dict(event), ensure_ascii=False)
    # Outside strings JSON has none of these characters, so \uNNNN is always valid here.
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n"


def json_lines_observer(output: IO[str]) -> ILogObserver:
    return FileLogObserver(output, format_json_line)


def format_text_line(event: dict) -> str:
    """twistd's classic text line; a failure adds its type and frames, not its message."""
    failure = event.get("log_failure")
    if failure is not None:
        event = dict(event)
        del event["log_failure"]
        event["failure_type"] = getattr(failure.type, "__name__", str(failure.type))
        event["failure_frames"] = "; ".join(
            f"{frame[1]}:{frame[2]} in {frame[0]}" for frame in failure.frames)
        shown = event.get("log_format")
        shown = shown if isinstance(shown, str) else ""
        event["log_format"] = shown + " ({failure_type} at {failure_frames})"
    line = formatEventAsClassicLogText(event, formatTime=formatTime)
    if line is None:
        return None
    # One event, one line: a newline inside it (a client's header, say) is escaped too.
    return escape_text(line[:-1] if line.endswith("\n") else line) + "\n"


def make_observer(config: LogConfig, output: IO[str]) -> ILogObserver:
    if config.format == "json":
        observer = json_lines_observer(output)
    else:
        observer = FileLogObserver(output, format_text_line)
    if not config.client_addresses:
        observer = without_addresses(observer)
    level = LogLevel.levelWithName(config.level)
    return LevelObserver(observer, level)


# Event fields that hold a client's address (transports log them as ``peer``).
ADDRESS_FIELDS = ("peer",)


def without_addresses(observer: ILogObserver) -> ILogObserver:
    """``log.client_addresses: false``: the same events, with every client address as "-"."""

    @implementer(ILogObserver)
    def hide(event: dict) -> None:
        if any(field in event for field in ADDRESS_FIELDS):
            event = dict(event)
            for field in ADDRESS_FIELDS:
                if field in event:
                    event[field] = "-"
        observer(event)

    return hide


class LevelLogger(Logger):
    """A ``Logger`` that does not build the events nobody will keep.

    Twisted builds every event (a dict, the time, a check of the level against all levels)
    before any observer can drop it; on the per-message path that costs more than the work it
    logs (docs/benchmarks.md). Nothing is dropped here unless :meth:`drop_below` was called,
    which the service does only when twistd logs through the service's own observer, with the
    configured level: the events skipped are exactly those that observer would discard.
    """

    dropped: frozenset = frozenset()

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = name

    def __get__(self, instance: object, owner: Optional[type] = None) -> Logger:
        """``Logger.__get__`` builds a new ``Logger`` at every ``self.log`` access (a few
        microseconds, several times per message); keep the one built for an instance in its
        ``__dict__``, which then shadows this descriptor, as ``functools.cached_property`` does.
        Same namespace and source as Twisted's."""
        logger = super().__get__(instance, owner)
        attribute = getattr(self, "_attribute", None)
        if instance is not None and attribute is not None and hasattr(instance, "__dict__"):
            instance.__dict__[attribute] = logger
        return logger

    @classmethod
    def drop_below(cls, level_name: str) -> None:
        level = LogLevel.levelWithName(level_name)
        cls.dropped = frozenset(
            candidate for candidate in LogLevel.iterconstants() if candidate < level
        )

    def emit(self, level: LogLevel, format: Optional[str] = None, **kwargs: Any) -> None:
        if level in LevelLogger.dropped:
            return
        super().emit(level, format, **kwargs)


@implementer(ILogObserver)
class LevelObserver:
    """Pass on events at ``level`` or above; a set lookup per event.

    Equivalent to ``FilteringLogObserver`` with a ``LogLevelFilterPredicate``, which resolves
    the level per namespace on every event: measurably slower on the hot path, where most
    events are below the configured level (docs/benchmarks.md).
    """

    def __init__(self, observer: ILogObserver, level: LogLevel) -> None:
        self.observer = observer
        self.levels = frozenset(
            candidate for candidate in LogLevel.iterconstants() if candidate >= level
        )

    def __call__(self, event: dict) -> None:
        if event.get("log_level") in self.levels:
            self.observer(event)
