"""The hot-path changes made for docs/benchmarks.md keep behaviour: what is logged, what is sent."""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel

from psicoia.llm import BytesBody, _body_producer
from psicoia.logsetup import LevelLogger


def test_level_logger_builds_every_event_until_the_service_sets_a_level():
    events: list[dict] = []
    log = LevelLogger(namespace="psicoia.test", observer=events.append)
    try:
        log.debug("a")
        log.info("b")
        LevelLogger.drop_below("warn")
        log.debug("c")
        log.info("d")
        log.warn("e")
        log.error("f")
    finally:
        LevelLogger.dropped = frozenset()
    assert [event["log_format"] for event in events] == ["a", "b", "e", "f"]
    assert events[-1]["log_level"] is LogLevel.error


def test_bytes_body_writes_the_whole_body_at_once_with_its_length():
    body = b'{"model": "x", "messages": []}'
    producer = _body_producer(body)
    assert isinstance(producer, BytesBody) and producer.length == len(body)
    consumer = StringTransport()
    finished = producer.startProducing(consumer)
    assert consumer.value() == body
    assert finished.called
