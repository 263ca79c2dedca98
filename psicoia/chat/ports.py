"""
The core's seams: what the chat core needs from the world, declared once.

The core (``psicoia.chat``) calls these interfaces and never imports what implements them:
``psicoia.provider`` implements :class:`IProvider`, ``psicoia.storage`` implements
:class:`IConversationStore` and :class:`ISharedState`, ``psicoia.transports`` implement
:class:`ISessionListener`. Everything that may touch a disk or a network returns a Deferred,
so SQLite (through a thread pool) or Redis can stand behind it. The in-memory implementations
(``psicoia.storage.memory``) are both the ``memory`` backend and the test doubles; the tests
check every implementation with ``zope.interface.verify.verifyObject``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from zope.interface import Attribute, Interface, implementer


class ProviderError(Exception):
    """The provider could not give a usable reply.

    ``reason`` is one of: ``timeout``, ``connection``, ``status``, ``malformed``,
    ``retry_after_too_long``, ``paced_too_long``, ``offline``, ``breaker_open``, ``stalled``,
    ``stream_error`` (an error object inside a stream), ``cut`` (a stream failed after some
    text was shown; ``partial`` holds that text, never retried).
    ``status`` is the last HTTP status, if any.
    """

    def __init__(self, reason: str, status: Optional[int] = None, attempts: int = 0,
                 partial: str = "") -> None:
        super().__init__(reason, status)
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.partial = partial
        self.retry_after: Optional[float] = None


class IProvider(Interface):
    """A chat-completion provider (``psicoia.provider.client.ChatProvider`` and its breaker)."""

    online = Attribute("bool: a key is configured; False means offline mode (no calls made)")

    def complete(messages, trace_id, model=None, max_tokens=None):
        """Ask for one reply.

        ``messages`` is the OpenAI-style list of ``{"role": ..., "content": ...}`` dicts.
        ``model`` and ``max_tokens`` (optional, keyword) override the configured ones for this
        call only (the crisis layer's second opinion asks a guard model for a few tokens).
        Returns a Deferred firing with the reply text (str), or failing with ProviderError.
        Cancelling the Deferred abandons the call.
        """

    def stream(messages, trace_id, on_delta):
        """Like :meth:`complete`, but calls ``on_delta(text)`` with each new piece of visible
        text as it arrives (never reasoning). The Deferred fires with the whole text; a failure
        after some text was delivered is a ProviderError with reason ``cut``."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation's history: ``role`` is "user" or "assistant"."""

    role: str
    content: str


@dataclass
class Conversation:
    """What a stored conversation holds: only what resuming needs (docs/operations.md).

    ``id`` is an opaque random key; ``number`` the ``Usuario-N`` shown to the user;
    ``turns`` the history window, oldest first; ``risk`` the crisis layer's state (numbers
    only, never text); times are seconds since the epoch (the injected clock).
    """

    id: str
    number: int
    created_at: float
    updated_at: float
    turns: list[Turn] = field(default_factory=list)
    risk: dict = field(default_factory=dict)


class IConversationStore(Interface):
    """Where conversations live between messages, connections and processes.

    Every method returns a Deferred. Errors: a backend that cannot reach its storage fails
    the Deferred with :class:`StorageUnavailable`; the core then keeps going from memory.
    """

    health = Attribute('str: "ok" or "degraded" (the storage failed and the core runs '
                       'from memory); /readyz and a metric show it')

    def create(secret_hash, now):
        """A new conversation with a fresh, never reused ``number``; Deferred[Conversation].
        ``secret_hash`` (bytes) is the hash of its resume secret (the secret itself is never
        stored)."""

    def resume(secret_hash, now):
        """Deferred[Conversation or None]: the live conversation whose secret hashes to
        ``secret_hash``; None for unknown, forgotten or expired ones."""

    def append(conversation_id, turns, keep, now, risk=None):
        """Add ``turns`` (a sequence of Turn) and keep only the newest ``keep`` turns;
        Deferred[None]. ``risk`` (optional): also replace the crisis state, as
        :meth:`save_risk` would, in the same write (all or nothing: the memory and sqlite
        backends fail with ValueError and write nothing when it is not numbers only)."""

    def save_risk(conversation_id, risk, now):
        """Replace the crisis state (a JSON-able dict of numbers); Deferred[None]."""

    def clear(conversation_id, now):
        """Forget the history but keep the conversation (``/reset``); Deferred[None]."""

    def forget(conversation_id):
        """Delete the conversation now, its text gone from the files (``/olvidar``);
        Deferred[None]."""

    def purge(older_than):
        """Delete conversations last touched before ``older_than`` (epoch seconds);
        Deferred[int], how many."""

    def close():
        """Release files and connections; Deferred[None]."""


class StorageUnavailable(Exception):
    """The storage backend could not do what was asked (locked, full, unreachable...)."""


class ISharedState(Interface):
    """State that several instances of the service must share (one process: in memory).

    Provider slots are leases: ``acquire_slot`` fires when a slot is ours (or with None when
    the wait queue is full: the busy notice), and each acquired slot is released exactly once.
    """

    def acquire_slot(on_queued, room=None):
        """Deferred[Slot or None]. ``on_queued(position)`` is called (synchronously, at most
        once) when the caller has to wait; None means the queue is full: ``room`` callers
        already wait (default ``llm.max_waiting``; the core passes what is left of it after
        the messages queued behind their own user's). Cancelling the Deferred leaves the
        queue."""

    def release_slot(slot):
        """Give the slot back; idempotent."""

    def in_flight():
        """int: slots held now (by this instance, for the local gauge)."""

    def waiting():
        """int: callers queued now."""


class ISharedHealth(Interface):
    """What every instance knows about the provider's health (one process: in memory).

    ``kind`` is ``"breaker"`` (the circuit breaker opened: no calls until then) or
    ``"pacing"`` (the rate-limit budget is spent until then). Times are epoch seconds on the
    injected clock. The breaker and the pacer report what they find and check before calling,
    so N instances do not hammer a provider one of them already found down or out of quota.
    """

    def report(kind, until):
        """No calls of ``kind`` should go out before ``until``; later reports win. Called on
        transitions only (a breaker opening, a budget found spent), never per message."""

    def clear(kind):
        """``kind`` is fine again before its ``until`` (a breaker's probe call succeeded):
        every instance forgets the report, and the probe claim is released."""

    def claim_probe(kind, seconds):
        """Deferred[bool]: True if this instance may send the one probe call of ``kind``
        (``"breaker"``) now; the claim lapses after ``seconds`` (an instance that died while
        probing). False: another instance is probing. Never fails (no shared state: True)."""

    def blocked_until(kind):
        """float: the latest ``until`` any instance reported for ``kind``, 0.0 when none or
        after a ``clear`` (a report whose time has passed keeps its value). Synchronous:
        answered from what this instance last heard."""


class ISessionListener(Interface):
    """What a transport is told about its user's messages besides the final reply.

    Every method is declared and :class:`SessionListener` implements all of them as no-ops,
    so a transport overrides only what it shows (JSON mode shows them all; TCP, deltas).
    Methods are called synchronously, from the reactor thread.
    """

    def on_accepted(trace_id):
        """The message was accepted and got ``trace_id`` (before any other call for it)."""

    def on_queued(trace_id, position):
        """The message waits for a provider slot; ``position`` counts from 1."""

    def on_waiting(trace_id):
        """The provider call started: the reply is being written."""

    def on_delta(trace_id, text):
        """A new piece of the reply's visible text (streaming)."""

    def on_taken_over():
        """The conversation was resumed on another connection: this one will be closed."""

    def on_conversation(user, code, turns):
        """This connection now carries another conversation (``/retomar``, ``/olvidar``):
        its ``Usuario-N``, resume code and stored turns (a list of Turn, oldest first)."""


@implementer(ISessionListener)
class SessionListener:
    """No-op base for transports; override what you show."""

    def on_accepted(self, trace_id: str) -> None:
        pass

    def on_queued(self, trace_id: str, position: int) -> None:
        pass

    def on_waiting(self, trace_id: str) -> None:
        pass

    def on_delta(self, trace_id: str, text: str) -> None:
        pass

    def on_taken_over(self) -> None:
        pass

    def on_conversation(self, user: str, code: str, turns: list) -> None:
        pass
