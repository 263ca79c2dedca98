"""Turn bench/run's results into docs/benchmarks.md: machine, commands, tables, targets."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Optional

TARGETS = {
    "throughput": 0.8,    # PsicoIA messages/s >= 0.8 x the floor's, scenario (b)
    "added_p50": 1.1,     # PsicoIA added p50 <= 1.1 x the floor's, scenario (a)
    "websocket_p50": 1.2,  # WebSocket p50 <= 1.2 x TCP p50, scenario (c) vs (a)
    "idle_bytes": 4096,   # RSS per idle connection with session state, scenario (d)
    "hostile_p99": 2.0,   # polite p99 under the HTTP attackers <= 2 x without, scenario (h)
    "loaded_cpu": 1.1,    # PsicoIA CPU per message <= 1.1 x the same-work floor's, (l)
    "loaded_p50_ratio": 1.1,  # PsicoIA added p50 <= 1.1 x the floor's + 5 ms, (l) closed loop
    "loaded_p50_ms": 5.0,
    "sqlite_cpu": 1.15,   # CPU per message with sqlite <= 1.15 x memory, (s)
    "stream_ttfb_ms": 2.0,  # first byte added over the provider's first chunk, p50, (t)
    "stream_cpu": 2.0,    # CPU per message streaming <= 2 x not streaming, (t)
    "redis_cpu": 1.3,     # CPU per message on Redis <= 1.3 x memory, (r)
}


def median(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _lat(run: dict, key: str) -> Optional[float]:
    return (run.get("latency") or {}).get(key)


def side(runs: list[dict], provider_ms: float) -> dict:
    """Medians over rounds of one side (PsicoIA TCP, floor, PsicoIA WebSocket)."""
    if not runs:
        return {}
    row = {key: median(_lat(run, key) for run in runs)
           for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    row["added_p50_ms"] = None if row["p50_ms"] is None else row["p50_ms"] - provider_ms
    row["added_p99_ms"] = None if row["p99_ms"] is None else row["p99_ms"] - provider_ms
    row["messages_per_s"] = median(run.get("messages_per_s") for run in runs)
    row["cpu_ms_per_message"] = median(run.get("server_cpu_ms_per_message") for run in runs)
    row["rss_mib"] = median((run.get("server_rss_kib") or 0) / 1024 or None for run in runs)
    row["errors"] = sum(run.get("errors", 0) for run in runs)
    row["messages"] = sum(run.get("ok", 0) + run.get("busy", 0) for run in runs)
    row["rounds"] = len(runs)
    return row


def _ratio(a, b) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def targets(results: dict, websocket_available: Optional[bool]) -> list[dict]:
    lines = []
    overhead = results.get("overhead")
    throughput = results.get("throughput")
    if throughput:
        ms = throughput["params"]["latency_ms"]
        ours, floor = (side(throughput["rounds"][k], ms) for k in ("psicoia", "floor"))
        ratio = _ratio(ours.get("messages_per_s"), floor.get("messages_per_s"))
        lines.append(_line("(b) throughput, PsicoIA / floor", ratio, ">=", TARGETS["throughput"],
                           f"{_f(ours.get('messages_per_s'))} vs "
                           f"{_f(floor.get('messages_per_s'))} messages/s"))
    if overhead:
        ms = overhead["params"]["latency_ms"]
        ours, floor = (side(overhead["rounds"][k], ms) for k in ("psicoia", "floor"))
        ratio = _ratio(ours.get("added_p50_ms"), floor.get("added_p50_ms"))
        lines.append(_line("(a) added p50 latency, PsicoIA / floor", ratio, "<=",
                           TARGETS["added_p50"],
                           f"{_f(ours.get('added_p50_ms'), 2)} vs "
                           f"{_f(floor.get('added_p50_ms'), 2)} ms over the provider's {ms} ms"))
        ws = side(overhead["rounds"].get("websocket", []), ms)
        if ws:
            ratio = _ratio(ws.get("p50_ms"), ours.get("p50_ms"))
            lines.append(_line("(c) p50 latency, WebSocket / TCP", ratio, "<=",
                               TARGETS["websocket_p50"],
                               f"{_f(ws.get('p50_ms'), 2)} vs {_f(ours.get('p50_ms'), 2)} ms"))
        else:
            lines.append({"name": "(c) p50 latency, WebSocket / TCP", "value": "n/a",
                          "target": f"<= {TARGETS['websocket_p50']}", "verdict": "NOT RUN",
                          "detail": "no WebSocket listener answered"
                          if websocket_available is False else "not run"})
    for key, label in (("idle", "(d) RSS per idle connection, greeted (bytes)"),
                       ("idle_chatted", "(d) RSS per idle connection, after 1 message (bytes)")):
        scenario = results.get(key)
        if not scenario:
            continue
        result = scenario["result"]
        lines.append(_line(label, result.get("rss_bytes_per_connection"), "<=",
                           TARGETS["idle_bytes"],
                           f"{result.get('open')} connections in "
                           f"{_f(result.get('accept_s'), 2)} s", digits=0))
    hostile = results.get("hostile")
    if hostile:
        calm, attacked = hostile["calm"]["latency"], hostile["attacked"]["latency"]
        lines.append(_line("(h) polite p99 under attack / without", _ratio(
            attacked.get("p99_ms"), calm.get("p99_ms")), "<=", TARGETS["hostile_p99"],
            f"{_f(attacked.get('p99_ms'), 2)} vs {_f(calm.get('p99_ms'), 2)} ms"))
    return lines


def _line(name, value, op, target, detail, digits=2) -> dict:
    if value is None:
        verdict = "NOT MEASURED"
    elif (op == ">=" and value >= target) or (op == "<=" and value <= target):
        verdict = "MET"
    else:
        verdict = "MISSED"
    return {"name": name, "value": _f(value, digits), "target": f"{op} {target}",
            "verdict": verdict, "detail": detail}


def _f(value, digits=1) -> str:
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def render(results: dict, summary: list[dict], machine: dict, commands: list[str],
           loadgen: list[str], plot, problems: list[str], smoke: bool, seconds: float,
           analysis: str, invocation: str = "bench/run",
           sections: Optional[Callable[[dict, Callable[[str], None]], None]] = None) -> str:
    out: list[str] = []
    add = out.append
    add("# Benchmarks")
    add("")
    add(f"Generated by `{invocation}`" + (" (tiny sizes: these numbers mean nothing)"
                                         if smoke else "") + f" in {seconds:.0f} s. "
        "Do not edit by hand: edit `bench/analysis.md` (included at the end) or the scenarios "
        "in `bench/orchestrate.py`, then run it again.")
    add("")
    add("Numbers were taken on a **shared 2-core machine** (other developers' test suites may "
        "have been running at the same time; the load averages below say how busy it was). "
        "The fake provider, the server under test and the load generator share those 2 cores, "
        "so absolute numbers are pessimistic; the ratios compare PsicoIA with the floor server "
        "measured in interleaved rounds of the same run, under the same conditions.")
    add("")
    add("## Machine")
    add("")
    add(f"- date: {machine['date']}")
    add(f"- cores (nproc): {machine['nproc']}; CPU: {machine['cpu']}; kernel {machine['kernel']}")
    add(f"- Python {machine['python']}, Twisted {machine['twisted']}, treq {machine['treq']}, "
        f"Autobahn {machine['autobahn']}")
    add(f"- load average before / after the run: {machine['loadavg_before']} / "
        f"{machine['loadavg_after']}")
    add("")
    add("## How to run it")
    add("")
    add("```sh")
    add(".venv/bin/pip install -e '.[bench]'   # matplotlib, for the plot")
    add("bench/run            # everything, under 12 minutes; rewrites this page and the plot")
    add("bench/run --smoke    # tiny sizes, what CI runs (tests/test_bench_smoke.py)")
    add("bench/run --profile  # also profiles PsicoIA and the floor under (l), closed loop")
    add("bench/run --only l,s # some scenarios: l a b s t r h d e (c, f run with a, b)")
    add("```")
    add("")
    add("## Targets")
    add("")
    add("| target | measured | wanted | verdict | detail |")
    add("| --- | --- | --- | --- | --- |")
    for line in summary:
        add(f"| {line['name']} | {line['value']} | {line['target']} | **{line['verdict']}** | "
            f"{line.get('detail', '')} |")
    add("")
    if sections is not None:  # bench/report_features.py: (l), (s), (t), (r)
        sections(results, add)
    _chat_tables(results, add)
    _idle_table(results, add)
    _saturation_table(results, add)
    _hostile_table(results, add)
    if plot:
        add("## Latency distribution")
        add("")
        add(f"![latency distribution]({plot})")
        add("")
        add("Cumulative distribution of every answered message's latency (all rounds), as the "
            "load generator saw it: from writing the line to reading its reply.")
        add("")
    if results.get("profile"):
        add(f"Profiles of PsicoIA and the floor under "
            f"{results.get('profile_scenario', 'scenario (b)')}, side by side, per module: "
            f"[{results['profile']}]({results['profile']}) (`bench/run --profile`).")
        add("")
    if problems:
        add("## Problems in this run")
        add("")
        for problem in problems:
            add(f"- {problem}")
        add("")
    add("## Exact commands")
    add("")
    add("Processes started (ports are ephemeral 127.0.0.1 ports chosen at run time; the "
        "server's config is generated in a temporary folder):")
    add("")
    add("```sh")
    out.extend(sorted(set(commands), key=commands.index))
    add("```")
    add("")
    add("Load generator runs, in order:")
    add("")
    add("```sh")
    out.extend(loadgen)
    add("```")
    add("")
    if analysis:
        out.append(analysis.rstrip())
        add("")
    return "\n".join(out)


def _chat_tables(results: dict, add) -> None:
    overhead = results.get("overhead")
    throughput = results.get("throughput")
    header = ("| side | p50 ms | p90 ms | p99 ms | max ms | added p50 ms | added p99 ms | "
              "messages/s | server CPU ms/message | server RSS MiB | errors |")
    rule = "| --- " * 11 + "|"
    if overhead:
        p = overhead["params"]
        add("## (a) overhead, (c) WebSocket, (f) floor")
        add("")
        add(f"Provider latency {p['latency_ms']} ms; {p['clients']} clients x {p['messages']} "
            f"messages each, closed loop (next message when the reply arrives), think time "
            f"{p['think_ms']} ms; {p['rounds']} interleaved rounds, medians shown. "
            "`max_in_flight` 200 and rate limits raised so neither queues anything.")
        add("")
        add(header)
        add(rule)
        for label, key in (("PsicoIA, TCP", "psicoia"), ("floor, TCP", "floor"),
                           ("PsicoIA, WebSocket", "websocket")):
            _row(add, label, side(overhead["rounds"].get(key, []), p["latency_ms"]))
        add("")
    if throughput:
        p = throughput["params"]
        add("## (b) throughput, (f) floor")
        add("")
        add(f"Provider latency {p['latency_ms']} ms; {p['clients']} clients x {p['messages']} "
            f"messages, closed loop, no think time; {p['rounds']} interleaved rounds, medians.")
        add("")
        add(header)
        add(rule)
        for label, key in (("PsicoIA, TCP", "psicoia"), ("floor, TCP", "floor")):
            _row(add, label, side(throughput["rounds"].get(key, []), p["latency_ms"]))
        add("")


def _row(add, label: str, row: dict) -> None:
    if not row:
        add(f"| {label} | not run |" + " |" * 9)
        return
    add(f"| {label} | {_f(row['p50_ms'], 2)} | {_f(row['p90_ms'], 2)} | {_f(row['p99_ms'], 2)} "
        f"| {_f(row['max_ms'], 2)} | {_f(row['added_p50_ms'], 2)} | {_f(row['added_p99_ms'], 2)} "
        f"| {_f(row['messages_per_s'])} | {_f(row['cpu_ms_per_message'], 3)} "
        f"| {_f(row['rss_mib'])} | {row['errors']} |")


def _idle_table(results: dict, add) -> None:
    variants = [(label, results[key]) for key, label in (
        ("idle", "greeted, then silent"), ("idle_chatted", "1 message each, then silent"),
        ("idle_chatted_sqlite", "1 message each, then silent, sqlite storage"))
        if key in results]
    if not variants:
        return
    params = variants[0][1]["params"]
    add("## (d) idle connections")
    add("")
    add(f"{params['connections']:,} TCP connections from the load generator (at most "
        f"{params['connect_concurrency']} connecting at once), each reads the whole greeting "
        "(so its session, idle timer and registry entry exist) and then stays silent; in the "
        "second variant each first sends one message and reads its reply (so it also has "
        "history and rate-limit state). A fresh server for each. RSS is the server's VmRSS "
        "from /proc before connecting and 2 s after the last connection is ready; accept time "
        "is from the first connect to the last connection ready.")
    add("")
    add("| variant | connections open | failed | accept all (s) | RSS before (MiB) | "
        "RSS open (MiB) | RSS after close (MiB) | bytes per connection |")
    add("| --- | --- | --- | --- | --- | --- | --- | --- |")

    def mib(value: Any) -> str:
        return "n/a" if value is None else f"{value / 1024:.1f}"

    for label, scenario in variants:
        r = scenario["result"]
        label = f"{label} (storage: {scenario.get('storage', 'memory')})"
        add(f"| {label} | {r.get('open')} | {r.get('failed', 0) + r.get('closed_early', 0)} | "
            f"{_f(r.get('accept_s'), 2)} | {mib(r.get('server_rss_before_kib'))} | "
            f"{mib(r.get('server_rss_open_kib'))} | {mib(r.get('server_rss_after_close_kib'))} "
            f"| {_f(r.get('rss_bytes_per_connection'), 0)} |")
    add("")


def _saturation_table(results: dict, add) -> None:
    sat = results.get("saturation")
    if not sat:
        return
    p, r, q = sat["params"], sat["result"], sat["queue_wait"]
    capacity = p["max_in_flight"] * 1000 / p["latency_ms"]
    add("## (e) saturation")
    add("")
    add(f"`max_in_flight` {p['max_in_flight']}, `max_waiting` {p['max_waiting']}, provider "
        f"{p['latency_ms']} ms, so the server can complete at most {capacity:.0f} messages/s. "
        f"{p['users']} users send {p['messages']} messages each, open loop at {p['rate']} "
        "messages/s in all (round robin), about twice that capacity: the semaphore queue "
        "fills, and once it holds `max_waiting` callers new messages get the busy notice at "
        "once. (`max_waiting` is lowered from its default 500 for this scenario: a user's "
        "next message waits for their previous reply, so 500 users never queue more than 500 "
        "calls and would never see the notice.)")
    add("")
    add("| messages | answered | busy notices (client / server count) | errors | "
        "answered p50 / p90 / p99 / max ms | busy notice p50 / p99 ms | "
        "queue wait p50 / p90 / p99 (server histogram, upper bound) |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    lat, busy = r.get("latency", {}), r.get("busy_latency", {})

    def bound(value) -> str:
        return "n/a" if value is None else f"<= {value:g} s"

    add(f"| {p['users'] * p['messages']} | {r.get('ok')} | {r.get('busy')} / "
        f"{sat.get('busy_counted_by_server')} | {r.get('errors')} | "
        f"{_f(lat.get('p50_ms'))} / {_f(lat.get('p90_ms'))} / {_f(lat.get('p99_ms'))} / "
        f"{_f(lat.get('max_ms'))} | {_f(busy.get('p50_ms'), 2)} / {_f(busy.get('p99_ms'), 2)} | "
        f"{bound(q.get('p50_le_s'))} / {bound(q.get('p90_le_s'))} / {bound(q.get('p99_le_s'))} |")
    add("")
    add("Queue wait (time a message waited for a provider slot), from the server's "
        "`psicoia_semaphore_wait_seconds` histogram over the run:")
    add("")
    add("| wait <= s | " + " | ".join(
        "inf" if b == float("inf") else f"{b:g}" for b, _ in q["buckets"]) + " |")
    add("| --- " * (len(q["buckets"]) + 1) + "|")
    add("| messages | " + " | ".join(str(c) for _, c in q["buckets"]) + " |")
    add("")


def _hostile_table(results: dict, add) -> None:
    hostile = results.get("hostile")
    if not hostile:
        return
    p, attack = hostile["params"], hostile.get("attack", {})
    add("## (h) hostile: polite clients while the HTTP attackers run")
    add("")
    add(f"Provider latency {p['latency_ms']} ms; {p['clients']} polite TCP clients x "
        f"{p['messages']} messages, closed loop, think time {p['think_ms']} ms, in "
        f"{p.get('rounds', 1)} interleaved rounds (medians below; each round: alone, "
        f"then while {p['slow_headers']} connections trickle one header byte every "
        f"{p['trickle_ms']} ms (dropped at `server.http_header_timeout_seconds` and reopened) "
        f"and {p['range_workers']} loops send six-range `GET /app.js` requests back to back. "
        "Caps are raised so that the attackers (also on 127.0.0.1) are not simply refused: this "
        "measures what the attack costs the reactor. With them, "
        f"{p.get('flooders', 0)} chat flooder(s) write `a\\n` on the TCP listener as fast as "
        "the socket takes it (reconnecting when closed); this server keeps the shipped rate "
        "limits, which the polite clients stay under.)")
    add("")
    add("| polite clients | p50 ms | p99 ms | max ms | messages/s | errors |")
    add("| --- | --- | --- | --- | --- | --- |")
    for label, key in (("without attackers", "calm"), ("with attackers", "attacked")):
        run = hostile[key]
        latency = run["latency"]
        add(f"| {label} | {_f(latency.get('p50_ms'), 2)} | {_f(latency.get('p99_ms'), 2)} | "
            f"{_f(latency.get('max_ms'), 2)} | {_f(run.get('messages_per_s'))} | "
            f"{run.get('errors')} |")
    add("")
    rounds = hostile.get("rounds") or {}
    rounds = [{"calm": calm, "attacked": attacked} for calm, attacked in
              zip(rounds.get("calm", []), rounds.get("attacked", []))]
    if rounds:
        add("| round | p99 alone ms | p99 attacked ms | ratio | server CPU s alone / attacked "
            "| load average (attacked) |")
        add("| --- | --- | --- | --- | --- | --- |")
        for number, one in enumerate(rounds, 1):
            calm_p99 = one["calm"]["latency"].get("p99_ms")
            attacked_p99 = one["attacked"]["latency"].get("p99_ms")
            add(f"| {number} | {_f(calm_p99, 2)} | {_f(attacked_p99, 2)} | "
                f"{_f(_ratio(attacked_p99, calm_p99), 2)} | "
                f"{_f(one['calm'].get('server_cpu_s'), 2)} / "
                f"{_f(one['attacked'].get('server_cpu_s'), 2)} | "
                f"{one['attacked'].get('load', '')} |")
        add("")
    if attack:
        add(f"Attackers: {attack.get('slow_opened')} slow-header connections opened, "
            f"{attack.get('slow_dropped')} dropped by the server, "
            f"{attack.get('range_requests')} range requests answered "
            f"({_f((attack.get('range_bytes') or 0) / 1048576, 1)} MiB read).")
        add("")
    for number, flood in enumerate(hostile.get("flood") or []):
        add(f"Flooder {number + 1}: {_f(flood.get('bytes_sent', 0) / 1048576, 1)} MiB of `a\\n` "
            f"sent ({flood.get('lines_sent', 0):,} lines), "
            f"{_f(flood.get('bytes_read', 0) / 1024, 1)} KiB read back, "
            f"{flood.get('opened', 0)} connections opened, "
            f"{flood.get('closed_by_server', 0)} closed by the server.")
        add("")

