"""
What one streamed chunk costs the server, split between Twisted's HTTP client and PsicoIA.

Runs in one process, no sockets: a Twisted ``HTTP11ClientProtocol`` on a ``StringTransport``
sends a request and is fed the bytes ``bench/fake_provider.py --stream-chunks 40`` writes (the
headers with the first chunk, then one HTTP chunk per read, the last with the finish chunk,
``[DONE]`` and the body's end), one ``dataReceived`` per write, as the server reads them. The
response body goes to, in turn:

- ``twisted``: a body protocol that does nothing (Twisted's part: HTTP/1.1 response and
  chunked-encoding parsing, the ``Response`` and its body delivery);
- ``reading``: :class:`psicoia.provider.streaming.StreamBody` (SSE parsing, JSON decoding of
  each event, the think filter, the visible text) with an ``on_delta`` that does nothing;
- ``relay``: the same, with ``on_delta`` feeding a :class:`psicoia.chat.deltas.DeltaRelay`
  (line folding, grouping; its ``show`` does nothing) on a ``task.Clock`` that the feed moves
  10 ms per chunk, as the stream's 400 ms over 40 chunks does: one chunk per read.
- ``twisted-batched`` and ``relay-batched``: the same bytes in reads of 8 chunks, the clock
  moved by ``INTERVAL_SECONDS`` between reads: how the server reads a flowing stream since it
  pauses reading between batches (psicoia/provider/streaming.py).

Reports process CPU time (user + system, ``getrusage``) per stream and per chunk, best of
``--repeat`` rounds; the difference between rows is what each layer adds. CPU time, not wall
time, so it holds on a busy machine. Not run by the test suite; no timing is asserted.

    .venv/bin/python -m bench.chunk_cost [--streams 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

from twisted.internet import task
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.web._newclient import HTTP11ClientProtocol, Request
from twisted.web.http_headers import Headers

from bench.fake_provider import REPLY, timed_stream
from psicoia.chat.deltas import INTERVAL_SECONDS, DeltaRelay
from psicoia.ops.instruments import Instruments
from psicoia.provider.reasoning import ReasoningStyle
from psicoia.provider.streaming import StreamReading

CHUNKS = 40
STEP_SECONDS = 0.4 / (CHUNKS - 1)


class Sink(Protocol):
    """Twisted's part alone: the body bytes are dropped."""

    def connectionLost(self, reason=None) -> None:
        pass


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_stream(writes: list[bytes], mode: str, clock: task.Clock, instruments,
               style: ReasoningStyle) -> None:
    batched = mode.endswith("-batched")
    mode = mode.replace("-batched", "")
    if batched:  # the headers and first chunk alone (the first text), then 8 chunks a read
        writes = [writes[0]] + [b"".join(writes[i:i + 8]) for i in range(1, len(writes), 8)]
    protocol = HTTP11ClientProtocol()
    protocol.makeConnection(StringTransport())
    request = Request(b"POST", b"/v1/chat/completions",
                      Headers({b"host": [b"127.0.0.1"]}), None, persistent=True)
    received = []
    protocol.request(request).addCallback(received.append)
    if mode == "twisted":
        body = Sink()
        feed = None
    else:
        relay = DeltaRelay(clock, lambda text: None) if mode == "relay" else None
        reading = StreamReading(clock, 30.0, 10 ** 7, style,
                                relay.feed if relay else (lambda text: None), instruments, "b")
        feed = reading
    for index, data in enumerate(writes):
        protocol.dataReceived(data)
        if index == 0:
            response = received[0]
            if feed is None:
                response.deliverBody(body)
            else:
                feed.read(response, lambda: None)
        if mode == "relay":
            clock.advance(INTERVAL_SECONDS if batched else STEP_SECONDS)
        else:
            clock.advance(0)
    if mode == "relay":
        relay.finish()


def measure(mode: str, streams: int, writes: list[bytes]) -> float:
    clock = task.Clock()
    instruments = Instruments()
    style = ReasoningStyle()
    one_stream(writes, mode, clock, instruments, style)  # the style learns: as in a server
    start = cpu_seconds()
    for _ in range(streams):
        one_stream(writes, mode, clock, instruments, style)
    return (cpu_seconds() - start) / streams


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    writes = timed_stream(" ".join([REPLY] * 4), CHUNKS)
    modes = ("twisted", "reading", "relay", "twisted-batched", "relay-batched")
    best = {mode: float("inf") for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:  # interleaved, so drift on a busy machine hits all alike
            best[mode] = min(best[mode], measure(mode, args.streams, writes))
    events = CHUNKS + 2  # the content chunks, the finish chunk and [DONE]
    result = {"chunks_per_stream": CHUNKS, "events_per_stream": events,
              "streams": args.streams, "repeat": args.repeat}
    for mode in modes:
        result[mode] = {"us_per_stream": round(best[mode] * 1e6, 1),
                        "us_per_chunk": round(best[mode] * 1e6 / CHUNKS, 2)}
    result["ours_us_per_chunk"] = round((best["relay"] - best["twisted"]) * 1e6 / CHUNKS, 2)
    result["ours_us_per_chunk_batched"] = round(
        (best["relay-batched"] - best["twisted-batched"]) * 1e6 / CHUNKS, 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
