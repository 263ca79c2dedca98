"""
Where an idle connection's RSS goes, measured inside the real server.

    .venv/bin/python -m bench.idle_probe [--connections N] [--say 0|1]
        [--storage sqlite|memory] [--trace] [--top 25]

It starts ``bench.fake_provider`` (0 ms, as scenario (d) of ``bench/run``), builds the service
in this process from a config like the one ``bench/run`` writes (streaming on, the default
storage in a temp folder, rate limits lifted), and runs ``bench.loadgen idle`` against it on
127.0.0.1. Once every connection is in and settled, it reads this process's RSS and counts the
objects the garbage collector tracks, by type; then runs ``gc.collect()`` and reads them
again: what was still live per connection, and what was garbage waiting for the collector.
``--trace`` adds a ``tracemalloc`` diff by file (slower, and its own bookkeeping inflates the
RSS figures: read the RSS from a run without it). No timing assertions; one process.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

from .common import free_port, memory_kib

REPO = Path(__file__).resolve().parent.parent


def by_type() -> collections.Counter:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--say", type=int, choices=(0, 1), default=1)
    parser.add_argument("--storage", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--by", choices=("filename", "lineno", "traceback"),
                        default="filename", help="with --trace: group allocations by file, "
                        "by line, or by call chain (--depth frames)")
    parser.add_argument("--depth", type=int, default=1, help="frames kept by --trace")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--show-dicts", action="store_true",
                        help="count protocols and transports whose __dict__ was materialized")
    parser.add_argument("--gen0", type=int, default=0,
                        help="override the collector's young-generation threshold (0: keep)")
    args = parser.parse_args(argv)

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    from twisted.internet.task import deferLater
    from twisted.logger import globalLogBeginner

    from psicoia.app.tap import makeService

    # No log buffer may keep events (twistd begins logging before the service starts).
    globalLogBeginner.beginLoggingTo([lambda event: None], discardBuffer=True,
                                     redirectStandardIO=False)
    work = Path(tempfile.mkdtemp(prefix="psicoia-idle-probe-"))
    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_provider", "--port", "0", "--latency-ms", "0",
         "--duration", "600"], stdout=subprocess.PIPE, cwd=REPO)
    provider_port = int(provider.stdout.readline().split()[-1])
    tcp, http = free_port(), free_port()
    settings = {
        "server": {"tcp": f"tcp:{tcp}:interface=127.0.0.1:backlog=1024", "websocket": None,
                   "http": f"tcp:{http}:interface=127.0.0.1", "max_connections": 20000,
                   "max_connections_per_ip": 20000},
        "llm": {"base_url": f"http://127.0.0.1:{provider_port}/v1",
                "api_key_env": "BENCH_PROVIDER_KEY"},
        "limits": {"rate_max_messages": 1000000, "rate_window_seconds": 1},
        "safety": {"classifier_max_in_flight": 100000},
        "storage": ({"backend": "sqlite", "sqlite_path": str(work / "probe.db")}
                    if args.storage == "sqlite" else {"backend": "memory"}),
    }
    config = work / "probe.yaml"
    config.write_text(json.dumps(settings))
    os.environ["BENCH_PROVIDER_KEY"] = "bench-dummy-key"
    service = makeService({"config": str(config)}, reactor)
    if args.gen0:
        gc.set_threshold(args.gen0, *gc.get_threshold()[1:])
    n = args.connections
    report: dict = {}

    async def run() -> None:
        service.startService()
        await deferLater(reactor, 1.0, lambda: None)
        gc.collect()
        before_rss = memory_kib(os.getpid())["rss_kib"]
        before_types = by_type()
        if args.trace:
            tracemalloc.start(args.depth)
            before_trace = tracemalloc.take_snapshot()
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", "idle", "--port", str(tcp),
             "--connections", str(n), "--say", str(args.say), "--settle", "600",
             "--timeout", "600"], cwd=REPO, stdout=subprocess.DEVNULL)
        registry = service.registry if hasattr(service, "registry") else None
        waited = 0.0
        while True:  # every connection in, and the store idle for two seconds
            await deferLater(reactor, 1.0, lambda: None)
            waited += 1.0
            count = len(registry) if registry is not None else None
            if (count is None and waited > 20) or (count is not None and count >= n):
                await deferLater(reactor, 3.0, lambda: None)
                break
            if waited > 300:
                break
        rss = memory_kib(os.getpid())["rss_kib"]
        if registry is not None and args.show_dicts:
            connections = registry.connections()
            for label, objects in (("protocol", connections),
                                   ("transport", [c.transport for c in connections])):
                with_dict = [o for o in objects  # its own attributes in a dict object
                             if any(type(r) is dict and "connected" in r
                                    for r in gc.get_referents(o))]
                print(f"{label}s with a materialized __dict__: {len(with_dict)} of "
                      f"{len(objects)}; keys of one: {sorted(vars(objects[-1]))}")
        live_types = by_type()
        if args.trace:
            stats = tracemalloc.take_snapshot().compare_to(before_trace, args.by)
        collected = gc.collect()
        after_gc = memory_kib(os.getpid())["rss_kib"]
        gc_types = by_type()
        report.update(
            rss_per_connection=round((rss - before_rss) * 1024 / n),
            rss_per_connection_after_gc=round((after_gc - before_rss) * 1024 / n),
            garbage_objects_per_connection=round(collected / n, 2),
            tracked_objects_per_connection=round(
                (sum(gc_types.values()) - sum(before_types.values())) / n, 2))
        print(json.dumps(report))
        print("objects per connection, live after gc (and garbage before it), by type:")
        for name, count in (gc_types - before_types).most_common(args.top):
            garbage = (live_types[name] - gc_types[name]) / n
            print(f"  {count / n:6.2f} {name}  (+{garbage:.2f} garbage)")
        garbage_only = (live_types - gc_types)
        print("garbage types per connection:",
              ", ".join(f"{name} {c / n:.2f}" for name, c in garbage_only.most_common(12)))
        if args.trace:
            print("Python allocations per connection by file (before gc):")
            for stat in stats[:args.top]:
                where = stat.traceback.format() if args.by == "traceback" else [
                    str(stat.traceback[0])]
                print(f"  {stat.size_diff / n:7.0f} B {stat.count_diff / n:6.2f} blocks  "
                      + "\n      ".join(line.replace(str(REPO) + "/", "") for line in where))
        client.kill()
        client.wait()

    def done(result):
        provider.kill()
        provider.wait()
        if reactor.running:
            reactor.stop()
        return result

    reactor.callWhenRunning(lambda: ensureDeferred(run()).addBoth(done).addErrback(
        lambda f: f.printTraceback()))
    reactor.run()
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main())
