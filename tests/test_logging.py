"""Logs: JSON lines and text, through twisted.logger; never message text, replies or keys."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import pytest
import pytest_twisted
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, globalLogPublisher

from psicoia import texts
from psicoia.config import LogConfig
from psicoia.ops.logsetup import make_observer
from psicoia.app.tap import Options, makeService
from tests.fake_provider import FakeProvider, Scripted, serve
from tests.helpers import LOCAL, connect_line_client, make_config, port_of, start_service

GREETING_LINES = 3 + len(texts.GREETING_BODY)
SECRET_KEY = "sk-test-PRIVATE-KEY-7f3a9c"
SECRET_MESSAGE = "me siento muy solo con mi secreto zorzal"
SECRET_REPLY = "RESPUESTA-PRIVADA-hornero"


@contextmanager
def captured_logs(fmt: str):
    output = io.StringIO()
    observer = make_observer(LogConfig(format=fmt, level="debug"), output)
    globalLogPublisher.addObserver(observer)
    try:
        yield output
    finally:
        globalLogPublisher.removeObserver(observer)


async def full_conversation() -> None:
    """Answered, retried after a 500, a fallback after exhausted retries, then salir."""
    provider = FakeProvider(default_reply=SECRET_REPLY)
    provider_port, url = await serve(provider)
    provider.push(Scripted(status=500, body=b"{}"))
    config = make_config(api_key=SECRET_KEY, server={"http": LOCAL},
                         llm={"base_url": url, "max_retries": 1,
                              "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.01})
    service = await start_service(config)
    try:
        client = await connect_line_client(await port_of(service, "tcp"))
        await client.wait_lines(GREETING_LINES)
        client.say(SECRET_MESSAGE)
        lines = await client.wait_lines(GREETING_LINES + 1)
        assert lines[-1].startswith(SECRET_REPLY)
        provider.push(Scripted(status=500, body=b"{}"), Scripted(status=500, body=b"{}"))
        client.say(SECRET_MESSAGE + " otra vez")
        lines = await client.wait_lines(GREETING_LINES + 2)
        assert lines[-1].startswith(texts.COMPANION_LIMITED)  # the offline companion
        client.say("salir")
        await client.wait_lines(GREETING_LINES + 3)
        await client.closed
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest_twisted.ensureDeferred
async def test_logs_of_a_full_conversation_never_contain_text_reply_or_key(fmt):
    with captured_logs(fmt) as output:
        await full_conversation()
    logged = output.getvalue()
    assert "Usuario-" in logged and "provider retry" in logged and "fallback" in logged
    for secret in (SECRET_MESSAGE, "zorzal", SECRET_REPLY, "hornero", SECRET_KEY, "PRIVATE-KEY"):
        assert secret not in logged, f"{secret!r} leaked into the {fmt} logs"


@pytest_twisted.ensureDeferred
async def test_json_logs_are_one_flat_object_per_line_with_the_documented_fields():
    with captured_logs("json") as output:
        await full_conversation()
    records = [json.loads(line) for line in output.getvalue().splitlines()]
    assert records
    for record in records:
        assert {"time", "level", "event", "namespace"} <= set(record)
        assert all(not isinstance(value, dict) for value in record.values())
        assert "T" in record["time"] and record["time"].endswith("+00:00")
    ok = [r for r in records if r["event"].startswith(f"[{r.get('trace_id')}] provider ok")]
    assert ok and ok[0]["status"] == 200 and ok[0]["attempt"] == 2
    assert isinstance(ok[0]["latency_ms"], int) and ok[0]["user"] == "Usuario-1"
    retry = next(r for r in records if "provider retry" in r["event"])
    assert retry["status"] == 500 and retry["error"] == "status" and retry["level"] == "warn"
    answered = next(r for r in records if r.get("outcome") == "fallback")
    assert answered["transport"] == "tcp" and answered["trace_id"] == "Usuario-1:m2"


def test_text_logs_keep_the_trace_id_prefix():
    output = io.StringIO()
    log = Logger(observer=make_observer(LogConfig(format="text"), output), namespace="psicoia")
    log.info("[{trace_id}] answered reply_chars={reply_chars}", trace_id="Usuario-3:m2",
             reply_chars=12)
    assert "[psicoia#info] [Usuario-3:m2] answered reply_chars=12" in output.getvalue()


def test_json_failure_events_carry_frames_but_not_the_exception_message():
    output = io.StringIO()
    log = Logger(observer=make_observer(LogConfig(format="json"), output), namespace="psicoia")
    try:
        raise KeyError(SECRET_MESSAGE)
    except KeyError:
        log.failure("[{trace_id}] unexpected error", trace_id="Usuario-1:m1")
    record = json.loads(output.getvalue())
    assert record["error"] == "KeyError" and record["traceback"]
    assert SECRET_MESSAGE not in output.getvalue()


def test_text_failure_events_carry_frames_but_not_the_exception_message():
    output = io.StringIO()
    log = Logger(observer=make_observer(LogConfig(format="text"), output), namespace="psicoia")
    try:
        raise KeyError(SECRET_MESSAGE)
    except KeyError:
        log.failure("[{trace_id}] unexpected error", trace_id="Usuario-1:m1")
    text = output.getvalue()
    assert "[Usuario-1:m1] unexpected error (KeyError at " in text
    assert "test_logging.py:" in text
    assert SECRET_MESSAGE not in text


def test_level_filter_drops_events_below_the_configured_level():
    output = io.StringIO()
    log = Logger(observer=make_observer(LogConfig(format="json", level="warn"), output))
    log.info("routine")
    log.warn("worth a look")
    assert [json.loads(line)["event"] for line in output.getvalue().splitlines()] == \
        ["worth a look"]


def test_twistd_logfile_option_receives_json_lines(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f'server: {{tcp: "{LOCAL}", websocket: null, http: null}}\nlog: {{format: json}}\n',
        encoding="utf-8",
    )
    logfile = tmp_path / "psicoia.log"
    options = Options()
    options.parseOptions(["--config", str(config_file)])
    options.parent = {"logfile": str(logfile), "nodaemon": True}
    service = makeService(options, reactor=MemoryReactorClock())
    log = Logger(observer=service.log_observer, namespace="psicoia.test")
    log.info("[{trace_id}] answered", trace_id="Usuario-1:m1", outcome="answered")
    record = json.loads(logfile.read_text(encoding="utf-8").splitlines()[-1])
    assert record["trace_id"] == "Usuario-1:m1" and record["outcome"] == "answered"


def test_client_addresses_can_be_kept_out_of_the_logs():
    import io

    from twisted.logger import Logger, globalLogPublisher

    for client_addresses, expected in ((True, "203.0.113.7"), (False, "peer=-")):
        output = io.StringIO()
        observer = make_observer(LogConfig(format="text", level="info",
                                           client_addresses=client_addresses), output)
        globalLogPublisher.addObserver(observer)
        try:
            Logger().info("[{user}] connection open transport=tcp peer={peer}",
                          user="Usuario-1", peer="203.0.113.7")
        finally:
            globalLogPublisher.removeObserver(observer)
        assert expected in output.getvalue()
        if not client_addresses:
            assert "203.0.113.7" not in output.getvalue()
