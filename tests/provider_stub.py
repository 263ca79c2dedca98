"""
A stand-in for the provider client at the session manager's boundary, for unit tests.

It has the same small interface as :class:`psicoia.provider.client.ChatProvider` (``online``,
``complete(messages, trace_id)``), and every call waits until the test answers it, so tests
decide the order and the timing of replies. The real client is tested against
tests/fake_provider.py in tests/test_llm.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from twisted.internet.defer import Deferred

from psicoia.chat.ports import ProviderError


@dataclass
class Call:
    messages: list
    trace_id: str
    deferred: Deferred
    cancelled: bool = False
    snapshot: Optional[bytes] = None  # what the test asked to record when the call started

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]

    def answer(self, reply: str) -> None:
        self.deferred.callback(reply)

    def fail(self, reason: str = "status", status: Optional[int] = 500) -> None:
        self.deferred.errback(ProviderError(reason, status))

    def crash(self, exc: Exception) -> None:
        self.deferred.errback(exc)


@dataclass
class ControlledProvider:
    online: bool = True
    calls: list = field(default_factory=list)
    on_call: Optional[Callable[[Call], None]] = None

    def complete(self, messages, trace_id: str) -> Deferred:
        call = None

        def cancelled(deferred: Deferred) -> None:
            call.cancelled = True

        call = Call(list(messages), trace_id, Deferred(cancelled))
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        return call.deferred

    def stream(self, messages, trace_id: str, on_delta) -> Deferred:
        """Like complete; the whole answer is one delta, given when the test answers."""
        def delta(reply):
            on_delta(reply)
            return reply

        return self.complete(messages, trace_id).addCallback(delta)

    @property
    def pending(self) -> list:
        return [c for c in self.calls if not c.deferred.called]

    def answer_all(self, reply_for: Callable[[Call], str] = lambda c: f"re: {c.text}") -> None:
        for call in self.pending:
            call.answer(reply_for(call))
