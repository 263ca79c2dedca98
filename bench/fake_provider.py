"""
A fake OpenAI-compatible chat-completions server for benchmarks, on 127.0.0.1.

It answers ``POST .../chat/completions`` after a fixed latency, with a fixed reply, so what a
benchmark measures is the server in front of it. Written as a bare HTTP/1.1 keep-alive
``Protocol`` rather than ``twisted.web`` so the provider costs as little CPU as possible on a
2-core machine it shares with the server under test and the load generator.

Options: ``--latency-ms``, ``--stream`` (answer as server-sent events, as ``"stream": true``
requests also get), ``--stream-chunks N --stream-ms T`` (a streamed answer is N content chunks
written over T ms after the latency, as a model writes; without them all chunks go at once),
``--stamp`` (a timed stream's first content chunk starts with ``[t=W r=R]``: W is
``time.monotonic_ns()`` at the moment that chunk is written, R when the request was read;
CLOCK_MONOTONIC is one clock for every process on Linux, so the load generator can tell how
long after the provider's first chunk the user's first byte came, and how long the request took
to reach the provider, whatever server relays it; see :data:`STAMP`), ``--fault-rate``
(this fraction of requests get a 503), ``--duration`` (stop by itself after this many seconds).
Prints ``listening PORT`` on stdout once ready.

    python -m bench.fake_provider --port 0 --latency-ms 200
    python -m bench.fake_provider --port 0 --latency-ms 0 --stream-chunks 40 --stream-ms 400
    python -m bench.fake_provider --port 0 --latency-ms 200 --stream-chunks 40 --stream-ms 400 \
        --stamp
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from twisted.internet.protocol import Factory, Protocol

REPLY = "Te escucho. Contame un poco mas de eso, estoy aca con vos."
HEADER_END = b"\r\n\r\n"
# The first chunk's stamp: plain text with no line break, no "<" and no reasoning field, so no
# think-tag filter, line folding or crisis layer changes it; bench/loadgen.py reads it back.
STAMP = "[t={} r={}]"


def completion_body(text: str) -> bytes:
    return json.dumps({
        "id": "bench", "object": "chat.completion", "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }).encode("utf-8")


def response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode("ascii")
            + b"\r\nConnection: keep-alive\r\n\r\n" + body)


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")


def _chunked(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def content_event(content: str) -> bytes:
    """One SSE content delta in its own HTTP chunk."""
    delta = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return _chunked(b"data: " + json.dumps(delta).encode("utf-8") + b"\n\n")


def timed_pieces(text: str, chunks: int) -> list[str]:
    """``text`` in ``chunks`` content pieces (by words; each after the first starts with its
    space)."""
    words = text.split(" ")
    pieces = [" ".join(words[i * len(words) // chunks:(i + 1) * len(words) // chunks])
              for i in range(chunks)]
    return [piece if index == 0 else " " + piece for index, piece in enumerate(pieces)]


def timed_stream(text: str, chunks: int) -> list[bytes]:
    """The writes of a streamed answer in ``chunks`` content pieces: the first carries the
    headers, the last the finish chunk, ``[DONE]`` and the end of the body."""
    writes = [content_event(piece) for piece in timed_pieces(text, chunks)]
    writes[0] = STREAM_HEAD + writes[0]
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    writes[-1] += (_chunked(b"data: " + json.dumps(finish).encode("utf-8") + b"\n\n")
                   + _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return writes


def stream_response(text: str) -> bytes:
    """Server-sent events in chunked encoding: one chunk per word, then ``[DONE]``."""
    events = []
    for word in text.split(" "):
        delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
        events.append(b"data: " + json.dumps(delta).encode("utf-8") + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + chunks + b"0\r\n\r\n")


class ProviderProtocol(Protocol):
    """One keep-alive HTTP connection; requests on it are answered in order."""

    def __init__(self, factory: "ProviderFactory") -> None:
        self.factory = factory
        self._buffer = b""
        self._read_ns = 0
        self._queue: list = []  # [ready, bytes] per request, answered in order

    def dataReceived(self, data: bytes) -> None:
        self._read_ns = time.monotonic_ns()  # when the request (its last bytes) was read
        self._buffer += data
        while True:
            end = self._buffer.find(HEADER_END)
            if end == -1:
                return
            head = self._buffer[:end]
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            start = end + 4
            if chunked:
                body_end = self._buffer.find(b"\r\n0\r\n\r\n", start)
                if body_end == -1 and not self._buffer[start:].startswith(b"0\r\n\r\n"):
                    return
                if body_end == -1:
                    body, rest = b"", self._buffer[start + 5:]
                else:
                    body, rest = self._buffer[start:body_end], self._buffer[body_end + 7:]
            else:
                if len(self._buffer) < start + length:
                    return
                body, rest = self._buffer[start:start + length], self._buffer[start + length:]
            self._buffer = rest
            self._request(head, body)

    def _request(self, head: bytes, body: bytes) -> None:
        factory = self.factory
        factory.requests += 1
        if head.startswith(b"GET /stats "):
            answer = response(b"200 OK", b"application/json", factory.take_stats())
        elif not head.startswith(b"POST ") or b"/chat/completions" not in head.split(b"\r\n", 1)[0]:
            answer = response(b"404 Not Found", b"text/plain", b"not found")
        elif factory.fault_rate and factory.random() < factory.fault_rate:
            factory.faults += 1
            answer = response(b"503 Service Unavailable", b"application/json",
                              b'{"error": {"message": "injected fault"}}')
        elif factory.stream or b'"stream": true' in body or b'"stream":true' in body:
            answer = factory.stream_answer
        else:
            answer = factory.answer
        slot = [False, answer, factory.reactor.seconds() + factory.latency, self._read_ns]
        self._queue.append(slot)
        if factory.latency:
            factory.reactor.callLater(factory.latency, self._ready, slot)
        else:
            self._ready(slot)

    def _ready(self, slot: list) -> None:
        slot[0] = True
        while self._queue and self._queue[0][0]:
            answer = self._queue[0][1]
            if isinstance(answer, list):  # a timed stream: the next answers wait for its end
                self._queue[0][0] = False
                # How late the first chunk goes out against its schedule (a busy machine).
                self.factory.first_chunk_late.append(
                    self.factory.reactor.seconds() - self._queue[0][2])
                self._write_stream(answer, 0, self._queue[0][3])
                return
            self.transport.write(self._queue.pop(0)[1])

    def _write_stream(self, writes: list, index: int, read_ns: int = 0) -> None:
        if self.transport is None or self.transport.disconnected:
            return
        if index == 0 and self.factory.stamp_first is not None:
            # Stamped as late as possible: the write's own system call comes right after.
            content = STAMP.format(time.monotonic_ns(), read_ns) + self.factory.stamp_first
            self.transport.write(STREAM_HEAD + content_event(content))
        else:
            self.transport.write(writes[index])
        if index + 1 < len(writes):
            self.factory.reactor.callLater(self.factory.chunk_interval, self._write_stream,
                                           writes, index + 1)
            return
        self._queue.pop(0)
        if self._queue and self._queue[0][0]:
            self._ready(self._queue[0])


class ProviderFactory(Factory):
    noisy = False

    def __init__(self, reactor, latency_s: float, stream: bool, fault_rate: float,
                 seed: int = 1, stream_chunks: int = 0, stream_ms: float = 0.0,
                 stamp: bool = False) -> None:
        self.reactor = reactor
        self.latency = latency_s
        self.stream = stream
        self.fault_rate = fault_rate
        self.random = random.Random(seed).random
        self.answer = response(b"200 OK", b"application/json", completion_body(REPLY))
        self.stream_answer = stream_response(REPLY)
        self.stamp_first = None  # a timed stream's first content, when --stamp
        if stream_chunks > 0:
            text = " ".join([REPLY] * 4)
            self.stream_answer = timed_stream(text, stream_chunks)
            self.chunk_interval = stream_ms / 1000.0 / max(1, stream_chunks - 1)
            if stamp:
                self.stamp_first = timed_pieces(text, stream_chunks)[0]
        self.requests = 0
        self.faults = 0
        self.first_chunk_late: list[float] = []  # seconds, per timed stream since take_stats

    def take_stats(self) -> bytes:
        """``GET /stats``: the median lateness of timed streams' first chunks since the last
        call (ms; null when none), then forgotten. bench/run subtracts it in (t)."""
        late = sorted(self.first_chunk_late)
        self.first_chunk_late = []
        p50 = round(late[len(late) // 2] * 1000, 3) if late else None
        return json.dumps({"first_chunk_late_p50_ms": p50, "streams": len(late)}).encode()

    def buildProtocol(self, addr):
        return ProviderProtocol(self)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="127.0.0.1 port (0: ephemeral)")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--stream", action="store_true", help="answer every request as SSE")
    parser.add_argument("--stream-chunks", type=int, default=0,
                        help="streamed answers: this many content chunks (0: all at once)")
    parser.add_argument("--stream-ms", type=float, default=0.0,
                        help="streamed answers: spread the chunks over this many ms")
    parser.add_argument("--stamp", action="store_true",
                        help="timed streams: the first chunk's content starts with [t=W r=R], "
                             "time.monotonic_ns() when it is written and when the request "
                             "was read")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction answered 503")
    parser.add_argument("--duration", type=float, default=3600.0,
                        help="stop by itself after this many seconds")
    args = parser.parse_args(argv)

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    factory = ProviderFactory(reactor, args.latency_ms / 1000.0, args.stream, args.fault_rate,
                              stream_chunks=args.stream_chunks, stream_ms=args.stream_ms,
                              stamp=args.stamp)
    port = reactor.listenTCP(args.port, factory, backlog=1024, interface="127.0.0.1")
    sys.stdout.write(f"listening {port.getHost().port}\n")
    sys.stdout.flush()
    reactor.callLater(args.duration, reactor.stop)
    reactor.run()
    sys.stderr.write(f"fake provider: {factory.requests} requests, {factory.faults} faults\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
