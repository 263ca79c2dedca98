"""
The chat core's shared half: one :class:`SessionManager` for every session of a service.

It owns only what users share: the conversation store (which numbers conversations), the
provider and its slots, the rate limiter, the wrong-code throttle for ``/retomar``, which
connection carries which conversation, and the drain at shutdown. Everything about one user
is the :class:`~psicoia.chat.session.Session`'s.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from psicoia.chat import resume
from psicoia.chat.ports import (
    Conversation,
    IConversationStore,
    IProvider,
    ISessionListener,
    ISharedState,
    SessionListener,
    StorageUnavailable,
)
from psicoia.chat.ratelimit import RateLimiter, SlidingWindowLimiter
from psicoia.chat.crisis import CrisisLayer
from psicoia.chat.second_opinion import SecondOpinion
from psicoia.chat.session import Session
from psicoia.config import Config
from psicoia.ops.instruments import Instruments
from psicoia.ops.logsetup import LevelLogger
from psicoia.ops.observers import Waiters

_SILENT = SessionListener()
# Numbers for conversations opened while the store is down (in memory only): far above what a
# store's counter reaches, so they never collide with stored ones.
TEMPORARY_NUMBERS = 1_000_000_001


def load_system_prompt(path: Optional[str]) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return resources.files("psicoia.chat.prompts").joinpath("system.txt").read_text("utf-8").strip()


def load_crisis_note() -> str:
    """Added to the system prompt for a message at risk (docs/safety.md)."""
    return resources.files("psicoia.chat.prompts").joinpath("crisis.txt").read_text("utf-8").strip()


class SessionManager:
    """What every session of one service shares: the store that numbers conversations, the
    provider and its slots, the rate limiter, the drain at shutdown."""

    log = LevelLogger()  # per-message events: not built when the level drops them

    def __init__(
        self,
        config: Config,
        provider: IProvider,
        clock: IReactorTime,
        store: IConversationStore,
        slots: ISharedState,
        limiter: Optional[RateLimiter] = None,
        resume_throttle: Optional["WrongCodes"] = None,
        instruments: Optional[Instruments] = None,
        system_prompt: Optional[str] = None,
        second_opinion: Optional[SecondOpinion] = None,
        fallback: Optional[IConversationStore] = None,
    ) -> None:
        self.config = config
        self.provider = provider
        self.clock = clock
        self.store = store
        self.slots = slots
        self.limiter = limiter or SlidingWindowLimiter(
            clock, config.limits.rate_max_messages, config.limits.rate_window_seconds)
        # Wrong /retomar codes per address: a few a minute, then "wait a minute".
        self.resume_throttle = resume_throttle or WrongCodes(clock)
        self.instruments = instruments or Instruments()
        self.crisis = CrisisLayer(config.safety, self.instruments)
        self.second_opinion = second_opinion  # the model's reading of risk, when configured
        self.system_prompt = system_prompt or load_system_prompt(config.llm.system_prompt_path)
        self.crisis_prompt = f"{self.system_prompt}\n\n{load_crisis_note()}"
        self.fallback = fallback  # numbers conversations while the store is down
        # Conversation id -> how to evict the one connection that carries it (take-over).
        self.holders: dict[str, Callable[[], None]] = {}
        self.closing = False
        # Every accepted message without its reply yet, oldest first (drain, abandon).
        self._in_progress: dict[Deferred, None] = {}
        self._drained = Waiters()
        # Messages waiting behind an earlier message of their own user (count to max_waiting).
        self.queued_behind = 0

    # --- sessions ---------------------------------------------------------------------------

    def open(self, transport: str, peer: str,
             listener: Optional[ISessionListener] = None) -> Deferred:
        """A new conversation for a new connection; a Deferred firing with its Session."""
        code = resume.new_code()
        created = self.store.create(resume.hash_code(code), self.clock.seconds())
        created.addErrback(self._in_memory, code)
        return created.addCallback(self._opened, code, transport, peer, listener or _SILENT)

    def _in_memory(self, failure, code: str) -> Deferred:
        """The store cannot number a conversation now (its disk or Redis is down): this one
        lives in the ``fallback`` store (memory only), numbered from a range the store never
        hands out (:data:`TEMPORARY_NUMBERS` up), so no number is ever given twice."""
        failure.trap(StorageUnavailable)
        if self.fallback is None:
            return failure
        return self.fallback.create(resume.hash_code(code), self.clock.seconds())

    def _opened(self, conversation: Conversation, code: str, transport: str, peer: str,
                listener: ISessionListener) -> Session:
        session = Session(self, conversation, code, transport, peer, listener)
        self.holders[conversation.id] = session.taken_over
        return session

    def claim(self, conversation_id: str, previous_id: str, evict: Callable[[], None]) -> None:
        """The connection whose ``evict`` this is now carries ``conversation_id`` instead of
        ``previous_id``; a connection that carried it is evicted (told, then closed)."""
        holder = self.holders.get(conversation_id)
        if holder is not None and holder != evict:
            holder()
        if self.holders.get(previous_id) == evict:
            del self.holders[previous_id]
        self.holders[conversation_id] = evict

    def evict(self, conversation_id: str) -> None:
        """``conversation_id`` was resumed elsewhere (another instance, told through the
        storage): the connection here that carries it, if any, is evicted."""
        holder = self.holders.pop(conversation_id, None)
        if holder is not None:
            holder()

    def left(self, conversation_id: str, evict: Callable[[], None], user: str) -> None:
        """A connection closed: it no longer holds its conversation; its rate window goes."""
        if self.holders.get(conversation_id) == evict:
            del self.holders[conversation_id]
        self.limiter.forget(user)

    def resources_text(self) -> str:
        """The crisis lines (tier "risk") as one line, for /recursos."""
        return self.crisis.resources_text("risk")

    # --- storage: never on the reply's path -------------------------------------------------

    def persist(self, written: Deferred) -> None:
        """A write the reply does not wait for; its failure is reported, never raised."""
        written.addErrback(self.storage_failed)

    def storage_failed(self, failure) -> None:
        """A StorageUnavailable is the store's to report (one line per state change,
        psicoia/storage); anything else is a bug, logged here."""
        if not failure.check(StorageUnavailable):
            self.log.failure("storage error", failure)

    # --- drain at shutdown ------------------------------------------------------------------

    def accepted(self, reply: Deferred) -> None:
        """A message was accepted; :meth:`finished` is called once when it has its reply."""
        self._in_progress[reply] = None

    def finished(self, reply: Deferred) -> None:
        self._in_progress.pop(reply, None)
        if not self._in_progress:
            self._drained.fire()

    def waiting(self) -> int:
        """Messages waiting now: for a provider slot, or behind their own user's earlier one
        (``llm.max_waiting`` bounds the sum: past it, new arrivals get the busy notice)."""
        return self.slots.waiting() + self.queued_behind

    def drain(self) -> Deferred:
        """Stop taking new work; fire when every message already accepted has its reply.

        From now on a message whose turn comes, or that gets a provider slot, is answered with
        the shutting-down notice instead of going to the provider."""
        self.closing = True
        if not self._in_progress:
            return succeed(None)
        return self._drained.wait()

    def abandon(self) -> None:
        """The shutdown grace is over: every message still without a reply gets the
        shutting-down notice now (oldest first, so each user's order holds)."""
        for reply in list(self._in_progress):
            reply.cancel()  # a reply already written is not touched (Deferred.cancel)


class WrongCodes:
    """Wrong ``/retomar`` codes per address: :data:`ALLOWED` per :data:`WINDOW_SECONDS`, then
    every code is refused unchecked until the oldest wrong one leaves the window."""

    ALLOWED = 5
    WINDOW_SECONDS = 60.0

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._wrong: dict[str, list[float]] = {}

    def check(self, address: str) -> float:
        """Seconds to wait before another code is checked (0: go ahead)."""
        times = self._recent(address)
        if len(times) < self.ALLOWED:
            return 0.0
        return times[0] + self.WINDOW_SECONDS - self._clock.seconds()

    def record(self, address: str) -> None:
        self._wrong.setdefault(address, []).append(self._clock.seconds())
        del self._wrong[address][:-self.ALLOWED]

    def _recent(self, address: str) -> list[float]:
        horizon = self._clock.seconds() - self.WINDOW_SECONDS
        times = [t for t in self._wrong.get(address, ()) if t > horizon]
        if times:
            self._wrong[address] = times
        else:
            self._wrong.pop(address, None)
        return times
