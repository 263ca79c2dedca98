"""
The benchmark harness still works: ``bench/run --smoke`` runs every scenario at tiny sizes.

No timing is asserted (speed is measured only by ``bench/run`` itself, never in tests); this
checks that each scenario ran to the end with no errors, so a change that breaks the benchmark
tools (or the server under load) is caught in CI. Everything runs on 127.0.0.1 and stops by
itself; the report goes to a temporary folder, never over docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-smoke")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run"), "--smoke", "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    summary = json.loads((out / "benchmarks.json").read_text())
    return done, summary, out


def test_smoke_run_exits_cleanly(smoke):
    done, summary, _ = smoke
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary["problems"] == []


def test_every_scenario_ran_without_errors(smoke):
    _, summary, _ = smoke
    results = summary["results"]
    overhead, throughput = results["overhead"]["rounds"], results["throughput"]["rounds"]
    for name, runs in [*overhead.items(), *throughput.items()]:
        assert runs, f"{name} did not run"
        for run in runs:
            assert run["errors"] == 0, (name, run["error_examples"])
            assert run["ok"] == run["clients"] * run["messages_per_client"], name
    idle = results["idle"]["result"]
    assert idle["open"] == idle["connections"]
    assert idle["failed"] == idle["closed_early"] == 0
    assert idle["rss_bytes_per_connection"] is not None
    saturation = results["saturation"]
    run = saturation["result"]
    assert run["errors"] == 0, run["error_examples"]
    assert run["ok"] + run["busy"] == saturation["params"]["users"] * saturation["params"][
        "messages"]
    # The tiny saturation scenario is built to overflow the queue: the busy path ran.
    assert run["busy"] > 0
    assert saturation["busy_counted_by_server"] == run["busy"]
    assert saturation["queue_wait"]["count"] == run["ok"]


def test_report_names_all_scenarios_and_targets(smoke):
    _, summary, out = smoke
    report = (out / "benchmarks.md").read_text()
    for heading in ("(a) overhead", "(b) throughput", "(c) WebSocket", "(d) idle",
                    "(e) saturation", "(f) floor", "## Targets", "## Machine"):
        assert heading in report
    assert {"(a)", "(b)", "(c)", "(d)", "(l)", "(h)"} <= {line["name"][:3]
                                                         for line in summary["targets"]}
    assert summary["results"]["idle_chatted"]["result"]["open"] == summary["results"]["idle"][
        "result"]["connections"]


def test_fake_provider_injects_faults_and_streams():
    """The benchmark provider's fault injection and streaming answer like an OpenAI server."""
    import http.client

    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_provider", "--latency-ms", "0", "--fault-rate", "0.5",
         "--duration", "30"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        line = provider.stdout.readline().decode()
        assert line.startswith("listening "), line
        connection = http.client.HTTPConnection("127.0.0.1", int(line.split()[1]), timeout=10)
        statuses = []
        for _ in range(40):  # one keep-alive connection, as the server's pool uses
            connection.request("POST", "/v1/chat/completions", body=b'{"messages": []}',
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            body = response.read()
            statuses.append(response.status)
            if response.status == 200:
                assert json.loads(body)["choices"][0]["message"]["content"]
        assert 0 < statuses.count(503) < 40 and statuses.count(200) + statuses.count(503) == 40
        streamed = None
        for _ in range(20):  # until one is not a fault
            connection.request("POST", "/v1/chat/completions", body=b'{"stream": true}')
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                streamed = (response.getheader("Content-Type"), body)
                break
        assert streamed is not None
        assert streamed[0] == "text/event-stream"
        assert streamed[1].rstrip().endswith(b"data: [DONE]")
        connection.close()
    finally:
        provider.terminate()
        provider.wait(10)


def test_hostile_scenario_runs_its_attackers_and_reports(smoke):
    """(h): polite clients answered with and without the HTTP attackers and the flooder."""
    _, summary, out = smoke
    hostile = summary["results"]["hostile"]
    for key in ("calm", "attacked"):
        assert hostile[key]["errors"] == 0 and hostile[key]["ok"] == 9, hostile[key]
    assert hostile["attack"]["slow_opened"] >= hostile["params"]["slow_headers"]
    assert hostile["attack"]["range_requests"] > 0
    [flood] = hostile["flood"]
    assert flood["opened"] >= 1 and flood["lines_sent"] > 0
    assert "(h) hostile" in (out / "benchmarks.md").read_text()


def test_loaded_scenario_ran_every_level_on_both_sides(smoke):
    """(l): closed loop and open loop, PsicoIA and the same-work floor, each message answered
    once, with CPU per message and first-byte times recorded (values are not checked)."""
    _, summary, out = smoke
    loaded = summary["results"]["loaded"]
    levels = [level for level, _ in loaded["levels"]]
    assert levels[0] == "closed" and len(levels) == 1 + len(loaded["params"]["open_factors"])
    for level in levels:
        for who in ("psicoia", "floor"):
            runs = loaded["rounds"][f"{level}-{who}"]
            assert len(runs) == loaded["params"]["rounds"]
            for run in runs:
                assert run["errors"] == 0, (level, who, run["error_examples"])
                assert run["ok"] == run["clients"] * run["messages_per_client"]
                assert run["server_cpu_ms_per_message"] is not None
                assert run["first_byte"]["count"] == run["ok"]
    assert "(l) loaded" in (out / "benchmarks.md").read_text()
    assert any(line["name"].startswith("(l) CPU per message") for line in summary["targets"])


def test_feature_scenarios_ran_or_say_why_not(smoke):
    """(s) sqlite, (t) streaming, (r) Redis: each ran without errors, or the report says it
    was skipped and why (the feature is not in this version)."""
    _, summary, out = smoke
    results, report = summary["results"], (out / "benchmarks.md").read_text()
    for key, name in (("s", "storage"), ("t", "streaming"), ("r", "redis")):
        if key in results["skipped"]:
            assert f"({key}) skipped: " in report
            assert any(line["verdict"] == "SKIPPED" and line["name"].startswith(f"({key})")
                       for line in summary["targets"])
            continue
        for runs in results[name]["rounds"].values():
            for run in runs:
                assert run["errors"] == 0, (name, run["error_examples"])
                assert run["ok"] == run["clients"] * run["messages_per_client"], name
    for key, runs in results.get("streaming", {}).get("rounds", {}).items():
        if key != "plain":  # every streamed reply began with the provider's stamp, verbatim
            assert all(run["after_chunk"]["count"] == run["ok"] for run in runs), key
    if "streaming" in results:  # the wire tap saw each light stream leave both relays
        streaming = results["streaming"]
        light = streaming["params"]["light_clients"] * streaming["params"]["light_messages"]
        for wire in streaming["wire"]:
            if "error" in wire:  # no raw socket on this machine: said in the report
                assert "not measured on the wire" in report
                continue
            assert wire["stream"]["count"] == light and wire["floor"]["count"] == light, wire
        assert streaming["wake_floor"]["relay_added"]["count"] > 0


def test_two_instances_behind_haproxy_ran_or_say_why_not(smoke):
    """(m): one and two instances on Redis behind HAProxy answered every message, with each
    process's CPU read, and the report has its table (bench/scale.py)."""
    _, summary, out = smoke
    results, report = summary["results"], (out / "benchmarks.md").read_text()
    if "m" in results["skipped"]:
        assert "(m) skipped: " in report
        return
    for key in ("one", "two"):
        for run in results["scale"]["rounds"][key]:
            assert run["errors"] == 0, (key, run["error_examples"])
            assert run["ok"] == run["clients"] * run["messages_per_client"], key
            assert set(run["cpu_s"]) == {"instance_1", "instance_2", "haproxy", "redis",
                                         "provider"}
    assert "## (m) two instances on Redis behind HAProxy" in report


def test_fake_provider_streams_n_chunks_over_time_and_keeps_the_connection():
    """``--stream-chunks N --stream-ms T``: N content events, a finish chunk and [DONE], in
    order on a keep-alive connection (no timing asserted: the spacing is bench/run's to show)."""
    import http.client

    from psicoia.provider.sse import SSEParser

    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_provider", "--latency-ms", "0", "--stream-chunks",
         "5", "--stream-ms", "50", "--duration", "30"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        line = provider.stdout.readline().decode()
        assert line.startswith("listening "), line
        connection = http.client.HTTPConnection("127.0.0.1", int(line.split()[1]), timeout=10)
        for _ in range(2):
            connection.request("POST", "/v1/chat/completions", body=b'{"stream": true}')
            response = connection.getresponse()
            assert response.getheader("Content-Type") == "text/event-stream"
            parser = SSEParser()
            events = parser.feed(response.read())
            assert [e.data for e in events][-1] == "[DONE]"
            chunks = [json.loads(e.data) for e in events[:-1]]
            texts = [c["choices"][0]["delta"].get("content") for c in chunks]
            assert len(texts) == 6 and all(texts[:5]) and texts[5] is None
            assert chunks[5]["choices"][0]["finish_reason"] == "stop"
        connection.request("POST", "/v1/chat/completions", body=b"{}")
        assert json.loads(connection.getresponse().read())["choices"][0]["message"]["content"]
        connection.close()
    finally:
        provider.terminate()
        provider.wait(10)
