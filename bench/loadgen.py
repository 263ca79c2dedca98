"""
The load generator: many chat clients over TCP or WebSocket, or many idle connections.

``chat``: N clients connect and read the greeting (up to the line that names ``salir``); once
all are in, each sends M messages. Closed loop by default (send, wait for the reply, think,
send the next); ``--rate R`` makes it open loop (R messages/s in all, sent on schedule whatever
the replies). It measures each message from the write to its reply line and prints p50, p90,
p99 and max latency, messages/s, errors, busy notices, and the server's CPU time and RSS read
from /proc (``--server-pid``). With a fake provider started with ``--stamp``, a reply line
starting with ``[t=W r=R]`` also gives ``after_chunk``: the reply's first byte here minus the
moment W the provider wrote its first chunk (both ``time.monotonic_ns()``, one clock for every
process on Linux), i.e. what the server in between (and two loopback hops) added to the relay;
and ``to_provider``: from writing the message here to the moment R the provider had read the
request it caused (the request path). The stamp is taken off before the reply is compared with
the expected text.

``idle``: open ``--connections`` TCP connections that each read the greeting and then say
nothing; it reports the time to get them all in and the server's RSS per connection.

Talks to 127.0.0.1 only; every loop is bounded in count and by ``--timeout``; stops by itself.

    python -m bench.loadgen chat --port 5001 --clients 100 --messages 10 --server-pid PID
    python -m bench.loadgen idle --port 5001 --connections 10000 --server-pid PID
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import deque
from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, ensureDeferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from .common import LOCAL, ProcessProbe, emit_result, memory_kib, raise_file_limit
from .common import summarize_latencies
from .fake_provider import REPLY

now = time.perf_counter
STAMPED = re.compile(r"\[t=(\d+) r=(\d+)\]")  # bench/fake_provider.py's STAMP


class Counts:
    def __init__(self) -> None:
        self.ok = 0
        self.busy = 0
        self.errors = 0
        self.error_examples: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.errors += 1
        key = what[:80]
        if len(self.error_examples) < 5 or key in self.error_examples:
            self.error_examples[key] = self.error_examples.get(key, 0) + 1


class ChatClient:
    """Transport-independent client logic: the greeting, then one reply per message, in order."""

    def __init__(self, run: "ChatRun") -> None:
        self.run = run
        self.greeted: Deferred = Deferred()
        self.sent: deque = deque()  # send times of messages still waiting for their reply
        self.sent_ns: deque = deque()  # the same, time.monotonic_ns()
        self.reply_waiter: Optional[Deferred] = None
        self.send_line: Callable[[str], None] = lambda text: None
        self.close: Callable[[], None] = lambda: None
        self.lost = False
        self.first_byte_seen = False  # of the reply now arriving
        self.first_byte_ns = 0  # its time.monotonic_ns()

    def partial(self) -> None:
        """Bytes of a reply line arrived, not yet its end: the reply's first byte, if new."""
        if self.greeted.called and self.sent and not self.first_byte_seen:
            self.first_byte_ns = time.monotonic_ns()
            self.first_byte_seen = True
            self.run.first_bytes.append(now() - self.sent[0])

    def on_line(self, text: str) -> None:
        if not self.greeted.called:
            if "salir" in text:
                self.greeted.callback(self)
            return
        if not self.sent:
            self.run.counts.error("unexpected line")
            return
        self.partial()
        self.first_byte_seen = False
        stamp = STAMPED.match(text)
        sent_ns = self.sent_ns.popleft()
        if stamp is not None:
            self.run.after_chunk.append((self.first_byte_ns - int(stamp.group(1))) / 1e9)
            self.run.to_provider.append((int(stamp.group(2)) - sent_ns) / 1e9)
            text = text[stamp.end():]
        sent_at = self.sent.popleft()
        self.run.record(now() - sent_at, text)
        if self.reply_waiter is not None and not self.sent:
            waiter, self.reply_waiter = self.reply_waiter, None
            waiter.callback(None)

    def send(self, text: str) -> None:
        self.sent_ns.append(time.monotonic_ns())
        self.sent.append(now())
        self.send_line(text)

    def on_lost(self) -> None:
        self.lost = True
        if not self.greeted.called:
            self.greeted.errback(ConnectionError("closed before the greeting"))
        for _ in range(len(self.sent)):
            self.run.counts.error("connection lost")
        self.sent.clear()
        self.sent_ns.clear()
        if self.reply_waiter is not None:
            waiter, self.reply_waiter = self.reply_waiter, None
            waiter.callback(None)

    def wait_replies(self) -> Deferred:
        if not self.sent:
            from twisted.internet.defer import succeed
            return succeed(None)
        self.reply_waiter = Deferred()
        return self.reply_waiter


class TCPLineProtocol(Protocol):
    """Splits the byte stream into lines for a :class:`ChatClient`."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self._buffer = b""
        client.send_line = self._send
        client.close = lambda: self.transport.loseConnection()

    def _send(self, text: str) -> None:
        self.transport.write(text.encode("utf-8") + b"\r\n")

    def dataReceived(self, data: bytes) -> None:
        buffer = self._buffer + data
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            self.client.on_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        if self._buffer:
            self.client.partial()

    def connectionLost(self, reason=None) -> None:
        self.client.on_lost()


def connect_tcp(reactor, port: int, client: ChatClient) -> Deferred:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    endpoint = TCP4ClientEndpoint(reactor, LOCAL, port, timeout=10)
    return connectProtocol(endpoint, TCPLineProtocol(client))


def connect_ws(reactor, port: int, client: ChatClient, path: str = "/") -> Deferred:
    """An Autobahn WebSocket client in the line-compatible mode: one text frame per line."""
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from twisted.internet.endpoints import TCP4ClientEndpoint

    class WSLineProtocol(WebSocketClientProtocol):
        def onOpen(self) -> None:
            client.send_line = lambda text: self.sendMessage(text.encode("utf-8"), False)
            client.close = lambda: self.sendClose()

        def onMessage(self, payload: bytes, is_binary: bool) -> None:
            client.on_line(payload.decode("utf-8", "replace"))

        def onClose(self, was_clean, code, reason) -> None:
            client.on_lost()

    factory = WebSocketClientFactory(f"ws://{LOCAL}:{port}{path}")
    factory.protocol = WSLineProtocol
    factory.noisy = False
    return TCP4ClientEndpoint(reactor, LOCAL, port, timeout=10).connect(factory)


class ChatRun:
    def __init__(self, reactor, args) -> None:
        self.reactor = reactor
        self.args = args
        self.counts = Counts()
        self.latencies: list[float] = []
        self.busy_latencies: list[float] = []
        self.expected = {args.expect, *(args.also_expect or ())}
        self.first_bytes: list[float] = []  # send to the reply's first byte, seconds
        self.after_chunk: list[float] = []  # provider's stamped first chunk to first byte, s
        self.to_provider: list[float] = []  # message written to its request read, s
        self.busy_text = _busy_text()

    def record(self, latency: float, text: str) -> None:
        if text in self.expected:
            self.counts.ok += 1
            self.latencies.append(latency)
        elif text == self.busy_text:
            self.counts.busy += 1
            self.busy_latencies.append(latency)
        else:
            self.counts.error(text)

    async def connect_all(self) -> list[ChatClient]:
        args = self.args
        connect = connect_ws if args.transport == "ws" else connect_tcp
        gate = DeferredSemaphore(args.connect_concurrency)
        clients: list[ChatClient] = []

        async def one() -> None:
            await gate.acquire()
            try:
                client = ChatClient(self)
                await connect(self.reactor, args.port, client)
                await client.greeted
                clients.append(client)
            except Exception as error:  # noqa: BLE001 - counted, the run goes on
                self.counts.error(f"connect: {error.__class__.__name__}")
            finally:
                gate.release()

        await DeferredList([ensureDeferred(one()) for _ in range(args.clients)])
        return clients

    def message(self, number: int, index: int) -> str:
        return f"Hola, soy el cliente {number} y este es mi mensaje {index}: hoy me siento raro."

    async def closed_loop(self, clients: list[ChatClient]) -> None:
        args = self.args

        rng = random.Random(args.seed)

        def think() -> float:
            """Seconds to wait: uniform around --think-ms, +/- --think-jitter of it."""
            spread = args.think_ms * args.think_jitter
            return max(0.0, args.think_ms + rng.uniform(-spread, spread)) / 1000.0

        async def talk(number: int, client: ChatClient) -> None:
            if args.think_ms and args.think_jitter:
                # Start spread out too: users do not all press Enter in the same millisecond.
                await deferLater(self.reactor, rng.uniform(0, 2 * args.think_ms) / 1000.0,
                                 lambda: None)
            for index in range(args.messages):
                if client.lost:
                    self.counts.error("connection lost")
                    continue
                client.send(self.message(number, index))
                await client.wait_replies()
                if args.think_ms and index + 1 < args.messages:
                    await deferLater(self.reactor, think(), lambda: None)

        await DeferredList([ensureDeferred(talk(n, c)) for n, c in enumerate(clients)])

    async def open_loop(self, clients: list[ChatClient]) -> None:
        """Send ``clients * messages`` messages at ``--rate`` per second, round robin."""
        args = self.args
        total = len(clients) * args.messages
        interval = 1.0 / args.rate
        started = now()
        sent = 0
        while sent < total:
            due = min(total, int((now() - started) / interval) + 1)
            while sent < due:
                client = clients[sent % len(clients)]
                if client.lost:
                    self.counts.error("connection lost")
                else:
                    client.send(self.message(sent % len(clients), sent // len(clients)))
                sent += 1
            await deferLater(self.reactor, min(interval, 0.005), lambda: None)
        await DeferredList([client.wait_replies() for client in clients])

    async def run(self) -> dict:
        args = self.args
        probe = ProcessProbe(args.server_pid)
        connect_started = now()
        clients = await self.connect_all()
        connect_s = now() - connect_started
        probe.start()
        started = now()
        if clients:
            work = ensureDeferred(self.open_loop(clients) if args.rate
                                  else self.closed_loop(clients))
            work.addTimeout(args.timeout, self.reactor)
            try:
                await work
            except Exception:  # noqa: BLE001 - the timeout: what is missing counts as errors
                for client in clients:
                    for _ in range(len(client.sent)):
                        self.counts.error("timeout")
                    client.sent.clear()
                    client.sent_ns.clear()
        elapsed = now() - started
        server = probe.report()
        for client in clients:
            client.close()
        answered = self.counts.ok + self.counts.busy
        result = {
            "mode": "chat", "transport": args.transport, "clients": args.clients,
            "connected": len(clients), "messages_per_client": args.messages,
            "think_ms": args.think_ms, "think_jitter": args.think_jitter, "rate": args.rate,
            "ok": self.counts.ok, "busy": self.counts.busy, "errors": self.counts.errors,
            "error_examples": self.counts.error_examples,
            "connect_s": round(connect_s, 3), "elapsed_s": round(elapsed, 3),
            "messages_per_s": round(answered / elapsed, 1) if elapsed > 0 else None,
            "latency": summarize_latencies(self.latencies),
            "first_byte": summarize_latencies(self.first_bytes),
            "after_chunk": summarize_latencies(self.after_chunk),
            "to_provider": summarize_latencies(self.to_provider),
            "busy_latency": summarize_latencies(self.busy_latencies),
            **server,
        }
        if server.get("server_cpu_s") is not None and answered:
            result["server_cpu_ms_per_message"] = round(server["server_cpu_s"] * 1000 / answered, 3)
        if args.latencies_file:
            with open(args.latencies_file, "w", encoding="utf-8") as handle:
                json.dump([round(x * 1000, 3) for x in self.latencies], handle)
        await deferLater(self.reactor, 0.2, lambda: None)  # let the closes go out
        return result


def _busy_text() -> str:
    try:
        from psicoia import texts
    except ImportError:  # pragma: no cover - bench run outside the repository
        return ""
    return texts.BUSY


class IdleProtocol(Protocol):
    """A connection that reads the greeting, optionally says ``--say`` messages (one at a
    time, each after the previous reply), and then stays silent."""

    def __init__(self, run: "IdleRun", say: int = 0) -> None:
        self.run = run
        self.greeted = False
        self._in_greeting = True
        self._to_say = say

    def dataReceived(self, data: bytes) -> None:
        if self.greeted:
            return
        if self._in_greeting:
            if b"salir" not in data:
                return
            self._in_greeting = False
        elif b"\n" not in data:  # waiting for the reply line
            return
        if self._to_say:
            self._to_say -= 1
            self.transport.write(b"Hola, hoy me siento un poco solo y queria hablar.\r\n")
            return
        self.greeted = True
        self.run.greeted(self)

    def connectionLost(self, reason=None) -> None:
        self.run.lost(self)


class IdleRun:
    def __init__(self, reactor, args) -> None:
        self.reactor = reactor
        self.args = args
        self.open: list[IdleProtocol] = []
        self.failed = 0
        self.closed_early = 0
        self._window: Optional[DeferredSemaphore] = None
        self._waiters: dict[IdleProtocol, Deferred] = {}
        self.finished = False

    def greeted(self, protocol: IdleProtocol) -> None:
        waiter = self._waiters.pop(protocol, None)
        if waiter is not None:
            waiter.callback(None)

    def lost(self, protocol: IdleProtocol) -> None:
        if not self.finished:
            self.closed_early += 1
        waiter = self._waiters.pop(protocol, None)
        if waiter is not None:
            waiter.errback(ConnectionError("closed before the greeting"))

    async def run(self) -> dict:
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

        args = self.args
        limit = raise_file_limit()
        if limit < args.connections + 100:
            sys.stderr.write(f"warning: RLIMIT_NOFILE is {limit}\n")
        pid = args.server_pid
        before = memory_kib(pid)["rss_kib"] if pid else None
        window = DeferredSemaphore(args.connect_concurrency)
        endpoint = TCP4ClientEndpoint(self.reactor, LOCAL, args.port, timeout=30)

        async def one() -> None:
            await window.acquire()
            try:
                protocol = IdleProtocol(self, args.say)
                waiter = Deferred()
                self._waiters[protocol] = waiter
                await connectProtocol(endpoint, protocol)
                if protocol.greeted:
                    self._waiters.pop(protocol, None)
                else:
                    await waiter
                self.open.append(protocol)
            except Exception:  # noqa: BLE001 - counted
                self.failed += 1
            finally:
                window.release()

        started = now()
        everything = DeferredList([ensureDeferred(one()) for _ in range(args.connections)])
        everything.addTimeout(args.timeout, self.reactor)
        try:
            await everything
        except Exception:  # noqa: BLE001 - timed out: report what we have
            pass
        accept_s = now() - started
        # Let the server finish whatever each connection started, then read its memory.
        await deferLater(self.reactor, args.settle, lambda: None)
        after = memory_kib(pid) if pid else {}
        await deferLater(self.reactor, args.hold, lambda: None)
        self.finished = True
        count = len(self.open)
        for protocol in self.open:
            protocol.transport.loseConnection()
        await deferLater(self.reactor, 1.0, lambda: None)
        released = memory_kib(pid)["rss_kib"] if pid else None
        per_connection = None
        if pid and count:
            per_connection = round((after["rss_kib"] - before) * 1024 / count)
        return {
            "mode": "idle", "connections": args.connections, "said": args.say, "open": count,
            "failed": self.failed, "closed_early": self.closed_early,
            "accept_s": round(accept_s, 3),
            "server_rss_before_kib": before, "server_rss_open_kib": after.get("rss_kib"),
            "server_rss_after_close_kib": released,
            "rss_bytes_per_connection": per_connection,
        }


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    chat = sub.add_parser("chat", help="N clients x M messages")
    chat.add_argument("--transport", choices=("tcp", "ws"), default="tcp")
    chat.add_argument("--port", type=int, required=True)
    chat.add_argument("--clients", type=int, default=10)
    chat.add_argument("--messages", type=int, default=10)
    chat.add_argument("--think-ms", type=float, default=0.0,
                      help="mean pause between a reply and the next message")
    chat.add_argument("--think-jitter", type=float, default=1.0,
                      help="pauses are uniform in think-ms x (1 +/- this); 0: fixed")
    chat.add_argument("--seed", type=int, default=1, help="for the think-time jitter")
    chat.add_argument("--rate", type=float, default=0.0, help="open loop: messages/s in all")
    chat.add_argument("--expect", default=REPLY, help="the reply that counts as answered")
    chat.add_argument("--also-expect", action="append",
                      help="another reply that counts as answered (repeatable)")
    chat.add_argument("--connect-concurrency", type=int, default=100)
    chat.add_argument("--latencies-file", help="write every answered latency (ms) as JSON")
    chat.add_argument("--server-pid", type=int)
    chat.add_argument("--timeout", type=float, default=120.0)
    idle = sub.add_parser("idle", help="many idle TCP connections")
    idle.add_argument("--port", type=int, required=True)
    idle.add_argument("--connections", type=int, default=1000)
    idle.add_argument("--connect-concurrency", type=int, default=200)
    idle.add_argument("--say", type=int, default=0,
                      help="messages each connection sends (one by one) before going idle")
    idle.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    idle.add_argument("--hold", type=float, default=0.5, help="seconds to hold after reading")
    idle.add_argument("--server-pid", type=int)
    idle.add_argument("--timeout", type=float, default=120.0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    raise_file_limit()
    runner = IdleRun(reactor, args) if args.mode == "idle" else ChatRun(reactor, args)
    outcome: dict = {}
    guard = reactor.callLater(args.timeout + 30, reactor.stop)  # never outlive the budget

    def finish(result) -> None:
        if isinstance(result, dict):
            outcome.update(result)
        else:
            outcome.update({"mode": args.mode, "failure": str(result.value)[:200]})
        if guard.active():
            guard.cancel()
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(runner.run()).addBoth(finish))
    reactor.run()
    emit_result(outcome)
    sys.stderr.write(json.dumps(outcome, indent=1) + "\n")
    return 0 if outcome and "failure" not in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
