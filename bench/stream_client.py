"""
What streaming costs the provider client: CPU per call and the delay it adds to the first words.

Starts ``bench.fake_provider`` (40 chunks over 400 ms by default) on 127.0.0.1, then makes the
same number of calls through :class:`psicoia.provider.client.ChatProvider` two ways, with a
fixed number in flight: ``stream()`` (the provider streams: "stream": true) and ``complete()``
(the provider answers one JSON body). It reports, per mode, the process CPU time per call and
the wall time per call, and for streams the delay from the response's arrival (headers and
first chunk come in one write) to the first ``on_delta``: what the client adds before the user
could see anything.

    python -m bench.stream_client --calls 400 --concurrency 20

Numbers depend on the machine; docs/benchmarks.md has a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = [{"role": "system", "content": "Sos breve."}, {"role": "user", "content": "hola"}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--stream-ms", type=float, default=400.0)
    args = parser.parse_args(argv)

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.internet.defer import DeferredSemaphore, ensureDeferred, gatherResults

    from psicoia.config import replace, load
    from psicoia.provider import streaming
    from psicoia.provider.client import ChatProvider, make_http_client

    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_provider", "--port", "0", "--latency-ms", "0",
         "--stream-chunks", str(args.chunks), "--stream-ms", str(args.stream_ms),
         "--duration", "600"],
        cwd=REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    port = int(provider.stdout.readline().split()[1])
    config = replace(load(environ={}, cwd=REPO / "bench"),
                     llm={"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0})
    http, pool = make_http_client(reactor, args.concurrency)
    client = ChatProvider(config.llm, "bench-key", reactor, http=http)

    first_delta_delays: list[float] = []
    original_read = streaming.StreamReading.read

    def read(self, response, on_token):
        """Note when the response arrived; time the first on_delta from there."""
        arrived = time.perf_counter()
        inner = self.visible._on_delta
        if inner is not None and not self.visible.shown:
            def on_delta(text: str) -> None:
                if self.visible._on_delta is on_delta:
                    first_delta_delays.append(time.perf_counter() - arrived)
                    self.visible._on_delta = inner
                inner(text)

            self.visible._on_delta = on_delta
        return original_read(self, response, on_token)

    streaming.StreamReading.read = read

    async def one(mode: str) -> None:
        if mode == "complete":
            await client.complete(PROMPT, "bench")
        else:
            await client.stream(PROMPT, "bench", lambda text: None)

    async def run(mode: str) -> dict:
        semaphore = DeferredSemaphore(args.concurrency)
        await gatherResults([semaphore.run(lambda: ensureDeferred(one(mode)))
                             for _ in range(20)])  # warm the pool
        first_delta_delays.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        await gatherResults([semaphore.run(lambda: ensureDeferred(one(mode)))
                             for _ in range(args.calls)])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"cpu_ms_per_call": round(cpu / args.calls * 1000, 3),
                "wall_s": round(wall, 2), "calls": args.calls}

    results: dict = {}

    async def everything() -> None:
        try:
            results["complete"] = await run("complete")
            first_delta_delays.clear()
            results["stream"] = await run("stream")
            delays_ms = [d * 1000 for d in first_delta_delays]
            results["stream"]["first_delta_after_arrival_ms"] = {
                "p50": round(statistics.median(delays_ms), 3),
                "p95": round(percentile(delays_ms, 0.95), 3),
                "max": round(max(delays_ms), 3), "n": len(delays_ms)}
            results["cpu_ratio_stream_over_complete"] = round(
                results["stream"]["cpu_ms_per_call"] / results["complete"]["cpu_ms_per_call"], 2)
        finally:
            await pool.closeCachedConnections()
            reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(everything()))
    reactor.run()
    provider.terminate()
    provider.wait(10)
    print(json.dumps({"chunks": args.chunks, "stream_ms": args.stream_ms,
                      "concurrency": args.concurrency, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
