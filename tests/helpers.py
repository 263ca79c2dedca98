"""Shared test helpers: configs for tests, a real line client, a running service."""

from __future__ import annotations

import dataclasses
import io
from contextlib import contextmanager
from typing import Any, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import globalLogPublisher
from twisted.protocols.basic import LineReceiver

from psicoia import config as config_module
from psicoia.chat.resume import hash_code
from psicoia.config import LogConfig
from psicoia.ops.logsetup import make_observer
from psicoia.app.service import build_service

LOCAL = "tcp:0:interface=127.0.0.1"


def make_config(api_key: Optional[str] = "test-key", **sections: dict) -> config_module.Config:
    """Defaults with every listener on an ephemeral 127.0.0.1 port, plus the given changes."""
    base = config_module.load(environ={}, cwd=_empty_dir())
    server = {"tcp": LOCAL, "websocket": None, "http": None}
    server.update(sections.pop("server", {}))
    # No start-up GET /models to the default (real) base_url: tests talk to 127.0.0.1 only.
    # Whole replies unless a test streams on purpose (tests/test_streamed_replies.py and the
    # provider's own streaming tests): the JSON-mode tests count events.
    sections["llm"] = {"check_model": False, "stream": False, **sections.get("llm", {})}
    # Conversations in memory unless a test asks for a database (then a real file it names).
    sections["storage"] = {"backend": "memory", **sections.get("storage", {})}
    # No second-opinion calls to the provider unless a test asks: they would take scripted
    # answers meant for the chat (tests/test_second_opinion.py turns it on).
    sections["safety"] = {"classifier": "off", **sections.get("safety", {})}
    changed = config_module.replace(base, server=server, **sections)
    return dataclasses.replace(changed, api_key=api_key)


def _empty_dir():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="psicoia-test-"))


class LineClient(LineReceiver):
    """A test client that collects lines and lets tests await the next N of them."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._waiters: list[tuple[int, Deferred]] = []
        self.closed: Deferred = Deferred()

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line.rstrip(b"\r").decode("utf-8"))
        self._check()

    def _check(self) -> None:
        for item in list(self._waiters):
            count, waiter = item
            if len(self.lines) >= count:
                self._waiters.remove(item)
                waiter.callback(self.lines[:count])

    def wait_lines(self, count: int, timeout: float = 10) -> Deferred:
        """Fire with the first ``count`` lines received in total."""
        waiter: Deferred = Deferred()
        self._waiters.append((count, waiter))
        waiter.addTimeout(timeout, reactor)
        self._check()
        return waiter

    def say(self, text: str) -> None:
        self.sendLine(text.encode("utf-8"))

    def connectionLost(self, reason=None) -> None:
        self.closed.callback(None)


async def connect_line_client(port: int) -> LineClient:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
    return await connectProtocol(endpoint, LineClient())


async def start_service(config, **kwargs) -> Any:
    service = build_service(config, reactor, **kwargs)
    service.startService()
    return service


async def port_of(service, name: str) -> int:
    port = await service.listener(name).when_listening()
    return port.getHost().port


def fired(deferred: Deferred):
    """The result of a Deferred that must have fired already (clock-driven tests)."""
    box: list = []
    deferred.addBoth(box.append)
    assert box, "the reply has not fired"
    return box[0]


@contextmanager
def captured_logs():
    """Every log event emitted inside the block, as JSON lines at debug level."""
    output = io.StringIO()
    observer = make_observer(LogConfig(format="json", level="debug"), output)
    globalLogPublisher.addObserver(observer)
    try:
        yield output
    finally:
        globalLogPublisher.removeObserver(observer)


def make_manager(config, provider, clock, **kwargs):
    """A SessionManager wired like the service's (``build_core``), around ``provider``:
    a memory store and local slots unless given."""
    from psicoia.app.core import build_core

    return build_core(config, clock, clock, provider=provider, **kwargs).manager


def history_of(session) -> list:
    """The history the model would see with the session's next message, as ``(role,
    content)`` pairs: the session's copy, or the store's while the session has let go of it
    (psicoia/chat/recall.py). Needs a store that answers at once (the memory store)."""
    if session.turns is not None:
        return list(session.turns)
    stored = fired(session.manager.store.resume(hash_code(session.code), 0.0))
    return [(turn.role, turn.content) for turn in stored.turns]
