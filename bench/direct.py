"""
The provider asked directly: a few keep-alive HTTP clients each POST ``"stream": true``
requests to the fake provider (bench/fake_provider.py, on 127.0.0.1) one after the other and
time, per request, the write to the response's first byte (``first_byte``) and, when the
provider stamps its first chunk (``--stamp``), that chunk's stamp to its arrival here
(``after_chunk``: the loopback alone) and the write to the provider's read of the request
(``to_provider``). (t) reports PsicoIA's and the floor's first byte against
this one: the whole request path a server adds, not only its relay of the first chunk.

    python -m bench.direct --port PORT --clients 5 --requests 12

Prints one JSON line (the load generator's shape: ``first_byte``, ``after_chunk``, counts).
Bounded: ``clients x requests`` requests, ``--timeout`` seconds in all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from .common import LOCAL, emit_result, summarize_latencies
from .loadgen import STAMPED

BODY = json.dumps({"model": "bench", "stream": True, "max_tokens": 200, "messages": [
    {"role": "user", "content": "Hola, hoy me siento raro."}]}).encode("utf-8")
END = b"0\r\n\r\n"  # the end of a chunked body; the fake provider writes it last


class StreamProbe(Protocol):
    """One keep-alive connection: :meth:`ask` sends a request, fires when its body ended."""

    def __init__(self, port: int) -> None:
        self.request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                        % (port, len(BODY)) + BODY)
        self.done: Deferred | None = None
        self.buffer = b""
        self.sent = 0.0
        self.first_ns = 0
        self.sent_ns = 0

    def ask(self) -> Deferred:
        self.done, self.buffer, self.first_ns = Deferred(), b"", 0
        self.sent = time.perf_counter()
        self.sent_ns = time.monotonic_ns()
        self.transport.write(self.request)
        return self.done

    def dataReceived(self, data: bytes) -> None:
        if not self.first_ns:
            self.first_ns = time.monotonic_ns()
            self.first_s = time.perf_counter() - self.sent
        self.buffer += data
        if self.buffer.endswith(END) and self.done is not None:
            done, self.done = self.done, None
            done.callback(self.buffer)

    def connectionLost(self, reason=None) -> None:
        if self.done is not None:
            done, self.done = self.done, None
            done.errback(ConnectionError("provider closed"))


async def probe(reactor, args) -> dict:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    first_bytes: list[float] = []
    after_chunk: list[float] = []
    to_provider: list[float] = []
    errors = 0

    async def one(number: int) -> None:
        nonlocal errors
        endpoint = TCP4ClientEndpoint(reactor, LOCAL, args.port, timeout=10)
        client = await connectProtocol(endpoint, StreamProbe(args.port))
        await deferLater(reactor, number * args.pause_ms / 1000.0 / args.clients, lambda: None)
        for _ in range(args.requests):
            try:
                body = await client.ask()
            except ConnectionError:
                errors += 1
                return
            first_bytes.append(client.first_s)
            stamp = STAMPED.search(body.decode("utf-8", "replace"))
            if stamp is not None:
                after_chunk.append((client.first_ns - int(stamp.group(1))) / 1e9)
                to_provider.append((int(stamp.group(2)) - client.sent_ns) / 1e9)
            await deferLater(reactor, args.pause_ms / 1000.0, lambda: None)
        client.transport.loseConnection()

    work = DeferredList([ensureDeferred(one(n)) for n in range(args.clients)])
    await work.addTimeout(args.timeout, reactor)
    return {"mode": "direct", "clients": args.clients, "messages_per_client": args.requests,
            "ok": len(first_bytes), "errors": errors,
            "error_examples": {"provider closed": errors} if errors else {},
            "first_byte": summarize_latencies(first_bytes),
            "after_chunk": summarize_latencies(after_chunk),
            "to_provider": summarize_latencies(to_provider)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the fake provider's port")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--requests", type=int, default=12, help="per client, one at a time")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="between a client's requests")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    outcome: dict = {}

    def finish(result) -> None:
        outcome.update(result if isinstance(result, dict)
                       else {"mode": "direct", "failure": str(result.value)[:200]})
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(probe(reactor, args)).addBoth(finish))
    reactor.run()
    emit_result(outcome)
    return 0 if "failure" not in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
