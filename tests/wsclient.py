"""A real Autobahn WebSocket client for tests, and a raw handshake probe for refusals."""

from __future__ import annotations

import json
from typing import Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from psicoia import texts

GREETING_LINES = 3 + len(texts.GREETING_BODY)


class HandshakeFailed(Exception):
    pass


class FrameClient(WebSocketClientProtocol):
    """Collects text frames; tests await the next N of them, or the close."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[str] = []
        self._waiters: list[tuple[int, Deferred]] = []
        self.opened: Deferred = Deferred()
        self.closed: Deferred = Deferred()
        self.close_code: Optional[int] = None
        self.subprotocol: Optional[str] = None

    def onConnect(self, response) -> None:
        self.subprotocol = response.protocol

    def onOpen(self) -> None:
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.frames.append(payload.decode("utf-8"))
        self._check()

    def onClose(self, wasClean: bool, code, reason) -> None:
        self.close_code = code
        if not self.opened.called:
            self.opened.errback(HandshakeFailed(self.wasNotCleanReason or reason))
        if not self.closed.called:
            self.closed.callback(code)

    def _check(self) -> None:
        for item in list(self._waiters):
            count, waiter = item
            if len(self.frames) >= count:
                self._waiters.remove(item)
                waiter.callback(self.frames[:count])

    def wait_frames(self, count: int, timeout: float = 10) -> Deferred:
        """Fire with the first ``count`` frames received in total."""
        waiter: Deferred = Deferred()
        self._waiters.append((count, waiter))
        waiter.addTimeout(timeout, reactor)
        self._check()
        return waiter

    async def wait_events(self, count: int, timeout: float = 10) -> list[dict]:
        return [json.loads(frame) for frame in await self.wait_frames(count, timeout)]

    async def wait_event(self, timeout: float = 10, **match) -> dict:
        """The first JSON event (received so far or later) whose fields equal ``match``."""
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                event = json.loads(frame)
                if all(event.get(key) == value for key, value in match.items()):
                    return event
            seen = len(self.frames)
            await self.wait_frames(seen + 1, timeout)

    def say(self, text: str) -> None:
        self.sendMessage(text.encode("utf-8"), isBinary=False)

    def send_event(self, **event) -> None:
        self.say(json.dumps(event))

    async def hang_up(self) -> None:
        if not self.closed.called:
            self.sendClose(1000)
            closed = self.closed
            closed.addTimeout(5, reactor)
            await closed


async def connect_ws(port: int, path: str = "/", protocols=None, origin: Optional[str] = None,
                     timeout: float = 5) -> FrameClient:
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}", protocols=protocols,
                                     origin=origin)
    factory.protocol = FrameClient
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=timeout)
    client = await endpoint.connect(factory)
    opened = client.opened
    opened.addTimeout(timeout, reactor)
    await opened
    return client


class _RawResponse(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if b"\r\n\r\n" in self.data and not self.done.called:
            self.done.callback(self.data)

    def connectionLost(self, reason=None) -> None:
        if not self.done.called:
            self.done.callback(self.data)


async def handshake_status(port: int, path: str = "/", origin: Optional[str] = None,
                           host: Optional[str] = None) -> int:
    """Send a bare WebSocket upgrade request; return the HTTP status of the answer."""
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
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
    await connectProtocol(endpoint, raw)
    raw.transport.write(("\r\n".join(headers) + "\r\n\r\n").encode("ascii"))
    done = raw.done
    done.addTimeout(5, reactor)
    data = await done
    raw.transport.loseConnection()
    return int(data.split(b" ", 2)[1])
