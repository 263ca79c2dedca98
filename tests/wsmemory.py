"""
The WebSocket listeners of the real service, tested in memory with ``autobahn.twisted.testing``.

A :class:`World` is one ``MemoryReactorClock`` standing for the reactor, the clock and the
network: the real service (or a gateway and its core) built on it with ``build_service`` /
``build_gateway``, the fake provider answering through ``treq.testing.StubTreq``, and Autobahn
clients opened with ``create_memory_agent`` over ``twisted.test.iosim`` transports. Nothing
listens on a socket and nothing waits for real time: :meth:`World.flush` moves every byte
and runs every call that is due, :meth:`World.advance` moves the clock.

Clients (:class:`MemoryClient`) keep the shape of the real-socket client in tests/wsclient.py,
but their waits are synchronous: ``wait_frames(n)`` flushes the world and returns the first
``n`` frames, or fails the test at once if they have not arrived.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from autobahn.twisted.testing import MemoryReactorClockResolver, create_memory_agent
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.test import iosim

from psicoia.app.gateway import build_gateway
from psicoia.app.service import build_service
from tests.fake_provider import FakeProvider
from tests.helpers import LineClient, make_config
from tests.wsclient import FrameClient, _RawResponse

# Where the in-memory listeners pretend to be (nothing binds them).
PORTS = {"tcp": 5001, "websocket": 8765, "http": 8000}
CLIENT_ADDRESS = ("127.0.0.1", 31337)  # the address autobahn.twisted.testing gives clients


def endpoint(name: str) -> str:
    return f"tcp:{PORTS[name]}:interface=127.0.0.1"


class Pumps:
    """The ``IPumper`` handed to ``create_memory_agent``: pumps when the world flushes, never
    on a timer (Autobahn's own pumper flushes every 0.1 s on the global reactor)."""

    def __init__(self) -> None:
        self.pumps: list[iosim.IOPump] = []

    def add(self, pump: iosim.IOPump) -> None:
        self.pumps.append(pump)

    def start(self) -> None:
        pass

    def stop(self) -> Deferred:
        return succeed(None)

    def flush(self) -> bool:
        moved = False
        for pump in list(self.pumps):
            moved = pump.flush() or moved
            if pump.clientIO.disconnected and pump.serverIO.disconnected:
                self.pumps.remove(pump)
        return moved


class MemoryClient(FrameClient):
    """A real Autobahn client protocol on an in-memory transport; waits flush its world."""

    world: "World"

    def wait_frames(self, count: int) -> list[str]:  # type: ignore[override]
        self.world.flush()
        assert len(self.frames) >= count, f"{len(self.frames)} frames, not {count}: {self.frames}"
        return self.frames[:count]

    def wait_events(self, count: int) -> list[dict]:  # type: ignore[override]
        return [json.loads(frame) for frame in self.wait_frames(count)]

    def wait_event(self, **match) -> dict:  # type: ignore[override]
        """The first JSON event received so far whose fields equal ``match``."""
        self.world.flush()
        for frame in self.frames:
            event = json.loads(frame)
            if all(event.get(key) == value for key, value in match.items()):
                return event
        raise AssertionError(f"no event {match} in {self.frames}")

    def wait_closed(self) -> Optional[int]:
        """The close code, once the connection has closed (fails the test if it is open)."""
        self.world.flush()
        assert self.closed.called, "still open"
        return self.close_code

    def hang_up(self) -> None:  # type: ignore[override]
        if not self.closed.called:
            self.sendClose(1000)
        self.wait_closed()


class World:
    """One MemoryReactorClock: reactor, clock and network of the services built on it."""

    def __init__(self, provider: Optional[FakeProvider] = None) -> None:
        self.reactor = MemoryReactorClockResolver()
        self.provider = provider or FakeProvider(clock=self.reactor)
        self.stub = StubTreq(self.provider)
        self.pumps = Pumps()
        self.services: list[Any] = []
        self.listening: dict[int, Any] = {}  # port -> server factory (what connectTCP reaches)
        self._seen_clients = 0
        self._agents_clients: set[int] = set()  # connectTCP calls the memory agent serves

    # --- building -------------------------------------------------------------------------

    def service(self, **sections) -> Any:
        """The real service from ``make_config(**sections)`` (listeners at :data:`PORTS`,
        the provider through the stub), started."""
        server = {"tcp": endpoint("tcp"), "websocket": endpoint("websocket"),
                  "http": endpoint("http")}
        server.update(sections.pop("server", {}))
        llm = {"base_url": "http://provider.test/v1", **sections.pop("llm", {})}
        service = build_service(make_config(server=server, llm=llm, **sections), self.reactor,
                                http=self.stub)
        return self.start(service)

    def gateway(self, upstream: str, **sections) -> Any:
        server = {"tcp": None, "websocket": endpoint("websocket"), "http": endpoint("http")}
        server.update(sections.pop("server", {}))
        return self.start(build_gateway(make_config(server=server, **sections), upstream,
                                        self.reactor))

    def start(self, service: Any) -> Any:
        service.startService()
        for listener in service:
            if getattr(listener, "port", None) is not None:
                self.listening[listener.port.getHost().port] = listener.factory
        self.services.append(service)
        self.flush()
        return service

    def listen(self, port: int, factory: Any) -> None:
        """Something else listening at ``port`` (an upstream that never greets, ...)."""
        self.listening[port] = factory

    # --- time and bytes -------------------------------------------------------------------

    def flush(self) -> None:
        """Move every byte, connect every pending TCP client, run every call due now, until
        nothing changes."""
        quiet = 0
        for _ in range(10_000):
            self.reactor.advance(0)
            self.stub.flush()
            moved = self._connect_clients()
            moved = self.pumps.flush() or moved
            quiet = 0 if moved else quiet + 1
            if quiet >= 3:
                return
        raise AssertionError("the world never settles")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the clock: from one scheduled call to the next, flushing
        after each, so everything happens in the order (and at the time) it would."""
        self.flush()
        end = self.reactor.seconds() + seconds
        while True:
            now = self.reactor.seconds()
            due = [call.getTime() for call in self.reactor.getDelayedCalls()
                   if call.getTime() <= end]
            step = (min(due) if due else end) - now
            self.reactor.advance(max(step, 0))
            self.flush()
            if not due and self.reactor.seconds() >= end:
                return

    def fired(self, deferred: Deferred) -> Any:
        """The result of ``deferred`` once the world has flushed (it must have fired)."""
        self.flush()
        results: list = []
        deferred.addBoth(results.append)
        assert results, "never fired"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    def _connect_clients(self) -> bool:
        """``connectTCP`` calls made on the reactor (the gateway's upstream connections) reach
        whatever listens at their port, or are refused."""
        moved = False
        while self._seen_clients < len(self.reactor.tcpClients):
            index = self._seen_clients
            self._seen_clients += 1
            if index in self._agents_clients:
                continue
            host, port, factory, _, _ = self.reactor.tcpClients[index]
            server_factory = self.listening.get(port)
            if server_factory is None:
                factory.clientConnectionFailed(self.reactor.connectors[index],
                                               Failure(ConnectionRefusedError()))
            else:
                self._pair(server_factory.buildProtocol(None), factory.buildProtocol(None), port)
            moved = True
        return moved

    def _pair(self, server: Any, client: Any, port: int) -> iosim.IOPump:
        server_address = IPv4Address("TCP", "127.0.0.1", port)
        client_address = IPv4Address("TCP", *CLIENT_ADDRESS)
        pump = iosim.connect(
            server, iosim.FakeTransport(server, True, server_address, client_address),
            client, iosim.FakeTransport(client, False, client_address, server_address),
            greet=False)
        self.pumps.add(pump)
        return pump

    # --- clients --------------------------------------------------------------------------

    def connect(self, service: Any, listener: str, path: str = "/",
                protocols: Optional[list] = None, origin: Optional[str] = None,
                client: type = MemoryClient) -> MemoryClient:
        """An Autobahn client through ``service``'s ``listener`` ("websocket", or "http" with
        ``path`` "/ws"), handshake done."""
        opened = self.open(service, listener, path, protocols, origin, client)
        return self.fired(opened)

    def open(self, service: Any, listener: str, path: str = "/",
             protocols: Optional[list] = None, origin: Optional[str] = None,
             client: type = MemoryClient) -> Deferred:
        """Start opening a client (the Deferred fires with it once the handshake is done)."""
        factory = service.getServiceNamed(listener).factory
        return self.open_factory(factory, PORTS[listener], path, protocols, origin, client)

    def open_factory(self, factory: Any, port: int, path: str = "/",
                     protocols: Optional[list] = None, origin: Optional[str] = None,
                     client: type = MemoryClient) -> Deferred:
        """Like :meth:`open`, for a server ``factory`` of our own at ``port``."""
        agent = create_memory_agent(self.reactor, self.pumps,
                                    lambda: factory.buildProtocol(IPv4Address(
                                        "TCP", *CLIENT_ADDRESS)))
        options: dict[str, Any] = {}
        if protocols:
            options["protocols"] = protocols
        if origin:
            options["origin"] = origin
        made: list[MemoryClient] = []

        def build() -> MemoryClient:
            protocol = client()
            protocol.world = self
            made.append(protocol)
            return protocol

        # The agent's own Deferred never fires when the handshake is refused; the client's
        # ``opened`` fails then, with the HTTP status (tests/wsclient.py).
        # The agent connects its own connectTCP call (the next one) in memory, at once.
        self._agents_clients.add(len(self.reactor.tcpClients))
        agent.open(f"ws://127.0.0.1:{port}{path}", options, build).addErrback(lambda _: None)
        self.flush()
        [protocol] = made
        return protocol.opened

    def connect_line(self, service: Any) -> LineClient:
        """A TCP line client of ``service``'s ``tcp`` listener."""
        client = LineClient()
        self._pair(service.getServiceNamed("tcp").factory.buildProtocol(None), client,
                   PORTS["tcp"])
        self.flush()
        return client

    def handshake_status(self, service: Any, listener: str, path: str = "/",
                         origin: Optional[str] = None, host: Optional[str] = None) -> int:
        """Send a bare upgrade request (as tests/wsclient.handshake_status does over a socket);
        the HTTP status of the answer."""
        port = PORTS[listener]
        headers = [
            f"GET {path} HTTP/1.1",
            f"Host: {host or f'127.0.0.1:{port}'}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            headers.append(f"Origin: {origin}")
        raw = _RawResponse()
        server = service.getServiceNamed(listener).factory.buildProtocol(None)
        self._pair(server, raw, port)
        raw.transport.write(("\r\n".join(headers) + "\r\n\r\n").encode("ascii"))
        data = self.fired(raw.done)
        raw.transport.loseConnection()
        self.flush()
        return int(data.split(b" ", 2)[1])

    # --- the end --------------------------------------------------------------------------

    def stop(self, service: Any = None) -> None:
        """Stop ``service`` (default: every one, last built first), letting time pass for the
        graceful shutdown's grace and flush."""
        for each in ([service] if service is not None else reversed(self.services)):
            if each.running:
                stopped = each.stopService()
                for _ in range(200):
                    if stopped.called:
                        break
                    self.advance(0.05)
                self.fired(stopped)
