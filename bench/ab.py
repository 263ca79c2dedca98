"""
A/B runs of one scenario: the server of this checkout ("B") against another checkout ("A",
e.g. a worktree of main) and the floor, interleaved rounds, medians of the server's CPU per
message (/proc). For the hand-made measurements in bench/analysis.md, not part of bench/run.

    python -m bench.ab --base /path/to/other/checkout --scenario b --rounds 5 \\
        --config '{"storage": {"backend": "memory"}, "llm": {"stream": false}}'

Scenarios: ``b`` (provider 0 ms, 50 clients x 40 messages), ``l`` (provider 200 ms, 100
clients x 5 messages, no think time), ``t`` (provider streams 40 chunks over 400 ms after
200 ms, 100 clients x 3 messages). ``--config`` is merged into both servers' configuration;
the floor streams when the configuration streams (``llm.stream``, default on) and sends the
classification call when the second opinion is on (``safety.classifier``, default auto).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from .common import log
from .orchestrate import FULL, Bench
from .scenarios import LOADED_LIMITS, OPEN_LIMITS, loadavg

SHAPES = {
    "b": ({"clients": 50, "messages": 40}, 0, OPEN_LIMITS),
    "l": ({"clients": 100, "messages": 5}, 200, LOADED_LIMITS),
    "t": ({"clients": 100, "messages": 3}, 200, OPEN_LIMITS),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="the other checkout (A); without it, B and the floor only")
    parser.add_argument("--code", help="the checkout B runs (default: this one)")
    parser.add_argument("--scenario", choices=sorted(SHAPES), default="b")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", default="{}", help="JSON merged into both configs")
    parser.add_argument("--a-config", default="{}",
                        help="JSON merged into A's config only (e.g. the (s) A/B: "
                             "--base . --a-config '{\"storage\": {\"backend\": \"memory\"}}')")
    parser.add_argument("--clients", type=int, help="instead of the scenario's")
    parser.add_argument("--messages", type=int, help="instead of the scenario's")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--drop", default="",
                        help="config sections left out on both sides, comma-separated (for "
                             "checkouts older than them: --drop storage,safety)")
    parser.add_argument("--profile", help="run B alone under cProfile, stats to this file")
    args = parser.parse_args(argv)
    extra = json.loads(args.config)
    shape, latency, limits = SHAPES[args.scenario]
    shape = {"clients": args.clients or shape["clients"],
             "messages": args.messages or shape["messages"]}
    stream = extra.get("llm", {}).get("stream", True)
    classify = extra.get("safety", {}).get("classifier", "auto") == "auto"
    storage = extra.pop("storage", None)
    bench = Bench(argparse.Namespace(smoke=False, rounds=None, profile=False, log_level="warn",
                                     max_process_seconds=1800.0))
    bench.params = json.loads(json.dumps(FULL))
    try:
        if args.scenario == "t":
            _, url = bench.stream_provider(latency, 40, 400)
        else:
            _, url = bench.provider(latency)
        sides = {}
        for name, code in (("A", args.base), ("B", args.code)):
            if name == "A" and not code:
                continue
            mine = json.loads(json.dumps(extra))
            if name == "A":
                for section, values in json.loads(args.a_config).items():
                    mine.setdefault(section, {}).update(values)
            store = mine.pop("storage", None) or storage or bench.sqlite(f"ab-{name}")
            server = bench.server(f"ab-{name}", url, dict(limits), websocket=False,
                                  storage=store, extra=mine,
                                  profile=Path(args.profile).resolve() if args.profile else None,
                                  code=Path(code).resolve() if code else None,
                                  drop=tuple(filter(None, args.drop.split(","))))
            sides[name] = (server["ports"]["tcp"], server["pid"])
        if not args.no_floor and not args.profile:
            floor, port = bench.floor(url, limits["max_in_flight"], stream=stream,
                                      classify=classify)
            sides["floor"] = (port, floor.pid)
        for port, pid in sides.values():
            bench.warm(port, pid)
        before = loadavg()
        rounds: dict[str, list] = {name: [] for name in sides}
        for number in range(args.rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for name in order:
                port, pid = sides[name]
                rounds[name].append(bench.chat(port, pid, shape))
        after = loadavg()
    finally:
        bench.procs.stop_all()
    print(f"scenario {args.scenario} config {json.dumps(extra)} storage {storage or 'sqlite'} "
          f"floor stream={stream} classify={classify}; load before {before} after {after}")
    for name, runs in rounds.items():
        cpu = [r.get("server_cpu_ms_per_message") for r in runs]
        rate = [r.get("messages_per_s") for r in runs]
        p50 = [r.get("latency", {}).get("p50_ms") for r in runs]
        first = [r.get("first_byte", {}).get("p50_ms") for r in runs]
        chunk = [r.get("after_chunk", {}).get("p50_ms") for r in runs]
        chunk = [c for c in chunk if c is not None]
        errors = sum(r.get("errors", 0) for r in runs)
        print(f"{name:6} cpu ms/msg median {statistics.median(cpu):.3f} {cpu} | msg/s "
              f"{statistics.median(rate):.1f} | p50 {statistics.median(p50):.2f} | first byte "
              f"p50 {statistics.median(first):.2f} | after the provider's first chunk p50 "
              f"{statistics.median(chunk) if chunk else float('nan'):.2f} | errors {errors}")
    sys.stdout.flush()
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
