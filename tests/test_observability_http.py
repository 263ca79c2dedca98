"""/metrics, /healthz and /readyz over real HTTP on ephemeral 127.0.0.1 ports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest_twisted
import treq
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from psicoia import texts
from psicoia.ops.metrics import Metrics
from tests.fake_provider import FakeProvider, Scripted, serve
from tests.helpers import LOCAL, connect_line_client, make_config, port_of, start_service

GREETING_LINES = 3 + len(texts.GREETING_BODY)
OPERATIONS_MD = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


async def get(service, path: str) -> tuple[int, bytes, str]:
    port = await port_of(service, "http")
    response = await treq.get(f"http://127.0.0.1:{port}{path}", persistent=False)
    body = await response.content()
    content_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0].decode()
    return response.code, body, content_type


def samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def talk(service, *lines: str) -> list[str]:
    client = await connect_line_client(await port_of(service, "tcp"))
    await client.wait_lines(GREETING_LINES)
    for line in lines:
        client.say(line)
    received = await client.wait_lines(GREETING_LINES + len(lines))
    client.transport.loseConnection()
    await client.closed
    return received[GREETING_LINES:]


@pytest_twisted.ensureDeferred
async def test_metrics_endpoint_serves_psicoia_metrics_of_a_conversation():
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    provider.push(Scripted(status=503, body=b"{}"))
    config = make_config(server={"http": LOCAL},
                         llm={"base_url": url, "backoff_initial_seconds": 0.01,
                              "backoff_max_seconds": 0.01})
    service = await start_service(config)
    try:
        replies = await talk(service, "hola")
        assert replies[0].startswith("Te escucho.")
        status, body, content_type = await get(service, "/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        text = body.decode()
        names = {f.name for f in text_string_to_metric_families(text)}
        # PsicoIA's own families, and prometheus_client's process and platform collectors.
        assert names and all(name.startswith(("psicoia_", "process_", "python_"))
                             for name in names)
        assert {"psicoia_build_info", "psicoia_reply_seconds", "psicoia_provider_online",
                "psicoia_idle_timeouts", "psicoia_websocket_closes",
                "process_resident_memory_bytes", "process_cpu_seconds",
                "python_info"} <= names
        assert "_created" not in text, "no per-series creation timestamps"
        found = samples(text)
        assert found[("psicoia_reply_seconds_count", (("transport", "tcp"),))] == 1
        assert found[("psicoia_provider_online", ())] == 1
        build = [labels for (name, labels) in found if name == "psicoia_build_info"]
        assert build and dict(build[0])["version"]
        assert found[("psicoia_messages_total",
                      (("outcome", "answered"), ("transport", "tcp")))] == 1
        assert found[("psicoia_connections_accepted_total", (("transport", "tcp"),))] == 1
        assert found[("psicoia_connections_open", (("transport", "tcp"),))] == 0
        assert found[("psicoia_provider_attempts_total", (("status", "503"),))] == 1
        assert found[("psicoia_provider_attempts_total", (("status", "200"),))] == 1
        assert found[("psicoia_provider_retries_total", ())] == 1
        assert found[("psicoia_semaphore_wait_seconds_count", ())] == 1
        assert found[("psicoia_semaphore_in_flight", ())] == 0
        assert found[("psicoia_breaker_state", (("state", "closed"),))] == 1
        buckets = {dict(labels).get("le") for (name, labels) in found
                   if name == "psicoia_provider_request_duration_seconds_bucket"}
        assert {"0.05", "30.0", "+Inf"} <= buckets
    finally:
        await service.stopService()
        await provider_port.stopListening()


def test_metrics_live_on_the_service_registry_not_the_global_one():
    first, second = Metrics(), Metrics()
    first.message_handled("tcp", "answered")
    assert second.registry.get_sample_value(
        "psicoia_messages_total", {"transport": "tcp", "outcome": "answered"}) is None
    assert not [name for name in REGISTRY._names_to_collectors if name.startswith("psicoia")]


def test_every_metric_is_documented_in_operations_md():
    documented = OPERATIONS_MD.read_text(encoding="utf-8")
    metrics = Metrics()
    for family in metrics.registry.collect():
        if not family.name.startswith("psicoia_"):
            continue  # prometheus_client's process_* and python_* collectors
        name = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        assert re.search(rf"`{name}`", documented), f"{name} is not in docs/operations.md"


@pytest_twisted.ensureDeferred
async def test_healthz_answers_without_calling_the_provider():
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    service = await start_service(make_config(server={"http": LOCAL}, llm={"base_url": url}))
    try:
        status, body, content_type = await get(service, "/healthz")
        assert status == 200 and content_type == "application/json"
        assert json.loads(body)["status"] == "ok"
        assert provider.requests == []
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_readyz_is_200_when_listeners_are_up_and_the_breaker_is_closed():
    service = await start_service(make_config(server={"http": LOCAL}))
    try:
        await port_of(service, "tcp")
        status, body, _ = await get(service, "/readyz")
        report = json.loads(body)
        assert status == 200
        assert report["status"] == "ready" and report["reasons"] == []
        assert report["listeners"] == {"tcp": "up", "http": "up"}
        assert report["breaker"] == "closed"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_readyz_is_503_and_says_why_while_the_breaker_is_open():
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    provider.push(Scripted(status=500, body=b"{}"))
    config = make_config(server={"http": LOCAL},
                         llm={"base_url": url, "max_retries": 0,
                              "breaker_failure_threshold": 1})
    service = await start_service(config)
    try:
        replies = await talk(service, "hola")
        assert len(replies) == 1 and replies[0].startswith(texts.COMPANION_LIMITED)
        status, body, _ = await get(service, "/readyz")
        report = json.loads(body)
        assert status == 503
        assert report["status"] == "not_ready" and report["breaker"] == "open"
        assert report["reasons"] == ["provider circuit breaker is open"]
        status, _, _ = await get(service, "/healthz")
        assert status == 200
    finally:
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_readyz_is_503_while_shutting_down():
    service = await start_service(make_config(server={"http": LOCAL}))
    try:
        await port_of(service, "tcp")
        service.manager.closing = True
        status, body, _ = await get(service, "/readyz")
        assert status == 503 and "shutting down" in json.loads(body)["reasons"]
    finally:
        await service.stopService()
