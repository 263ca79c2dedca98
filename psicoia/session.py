"""
The session manager: everything between "a user sent a line" and "this line goes back".

Transports call :meth:`Session.submit` with decoded text and write the :class:`Reply` its
Deferred fires with. The manager owns the rules: user numbering shared by all transports, the
per-user rate limit, per-user ordering (a user's next message waits for the previous reply),
the global cap on provider calls (a ``DeferredSemaphore`` with a bounded queue), the history
window and the fallbacks. Whatever happens, each message gets exactly one reply, and the
semaphore slot is released.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Protocol

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredLock,
    DeferredSemaphore,
    ensureDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from . import messages
from .config import Config
from .history import HistoryStore, InMemoryHistory, build_prompt
from .instruments import Instruments
from .llm import ChatProvider, ProviderError
from .ratelimit import RateLimiter, SlidingWindowLimiter


class Outcome:
    """What happened to one message; used for replies, logs and metrics."""

    ANSWERED = "answered"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    TOO_LONG = "too_long"
    FALLBACK = "fallback"
    OFFLINE = "offline"
    GOODBYE = "goodbye"
    COMMAND = "command"
    SHUTTING_DOWN = "shutting_down"
    ERROR = "error"


@dataclass(frozen=True)
class Reply:
    """One line for the user. ``close`` asks the transport to hang up after writing it."""

    text: str
    outcome: str
    trace_id: Optional[str] = None
    close: bool = False


def fold_lines(text: str) -> str:
    """Make any text one line: the protocol promises a reply never contains a line break."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def load_system_prompt(path: Optional[str]) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return resources.files("psicoia.prompts").joinpath("system.txt").read_text("utf-8").strip()


class SessionListener(Protocol):
    """Optional transport callbacks for progress before the reply (JSON mode uses them)."""

    def on_queued(self, trace_id: str, position: int) -> None: ...


class Session:
    """One connected user. Created by :meth:`SessionManager.open`, ended by :meth:`close`."""

    def __init__(self, manager: "SessionManager", number: int, transport: str, peer: str) -> None:
        self.manager = manager
        self.number = number
        self.user = f"Usuario-{number}"
        self.transport = transport
        self.peer = peer
        self.listener: Optional[SessionListener] = None
        self.closed = False
        self._messages = 0
        self._order = DeferredLock()
        self._pending: set[Deferred] = set()

    def greeting(self) -> list[str]:
        return [
            messages.GREETING_FIRST.format(number=self.number),
            *messages.GREETING_BODY,
            messages.GREETING_LAST,
        ]

    def submit(self, text: str) -> Deferred:
        """Queue one message; the Deferred fires with its Reply, after all earlier ones."""
        return self._enqueue(lambda trace_id: self.manager.handle(self, text, trace_id))

    def submit_too_long(self) -> Deferred:
        """A message the transport could not accept because of its size; answered in order."""
        limit = self.manager.config.limits.max_line_bytes
        return self._enqueue(
            lambda trace_id: succeed(
                self.manager.notice(self, trace_id, messages.TOO_LONG.format(limit=limit),
                                    Outcome.TOO_LONG)
            )
        )

    def _enqueue(self, work: Callable[[str], Deferred]) -> Deferred:
        self._messages += 1
        trace_id = f"{self.user}:m{self._messages}"
        # Rate limiting and other checks must happen at arrival, not when the turn comes.
        arrival = self.manager.at_arrival(self, trace_id)
        if arrival is not None:
            step = lambda: succeed(arrival)  # noqa: E731
        else:
            step = lambda: work(trace_id)  # noqa: E731
        result = self._order.run(step)
        self._pending.add(result)
        self.manager._started(result)

        def done(outcome):
            self._pending.discard(result)
            return outcome

        result.addBoth(done)
        result.addErrback(self._unexpected, trace_id)
        return result

    def _unexpected(self, failure, trace_id: str):
        if failure.check(CancelledError):
            return Reply("", Outcome.ERROR, trace_id)
        self.manager.log.failure("[{trace_id}] unexpected error", failure, trace_id=trace_id)
        return Reply(messages.ERROR, Outcome.ERROR, trace_id)

    def close(self) -> None:
        """The user left: cancel queued and in-flight work, forget per-user state."""
        if self.closed:
            return
        self.closed = True
        for pending in list(self._pending):
            pending.cancel()
        self.manager._forget(self)


class SessionManager:
    """Shared by every transport of one service. Owns all per-user and global chat state."""

    log = Logger()

    def __init__(
        self,
        config: Config,
        provider: ChatProvider,
        clock: IReactorTime,
        history: Optional[HistoryStore] = None,
        limiter: Optional[RateLimiter] = None,
        instruments: Optional[Instruments] = None,
        system_prompt: Optional[str] = None,
    ) -> None:
        self.config = config
        self.provider = provider
        self.clock = clock
        self.history = history or InMemoryHistory(config.history.max_messages)
        self.limiter = limiter or SlidingWindowLimiter(
            clock, config.limits.rate_max_messages, config.limits.rate_window_seconds
        )
        self.instruments = instruments or Instruments()
        self.system_prompt = system_prompt or load_system_prompt(config.llm.system_prompt_path)
        self.semaphore = DeferredSemaphore(config.llm.max_in_flight)
        self.sessions: dict[str, Session] = {}
        self.closing = False
        self._numbers = itertools.count(1)
        self._in_progress = 0
        self._drained: list[Deferred] = []

    # --- sessions -------------------------------------------------------------------------

    def open(self, transport: str, peer: str) -> Session:
        session = Session(self, next(self._numbers), transport, peer)
        self.sessions[session.user] = session
        return session

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.user, None)
        self.limiter.forget(session.user)
        self.history.clear(session.user)

    # --- message handling -----------------------------------------------------------------

    def notice(self, session: Session, trace_id: str, text: str, outcome: str,
               close: bool = False) -> Reply:
        self.log.info("[{trace_id}] {outcome}", trace_id=trace_id, outcome=outcome,
                      user=session.user, transport=session.transport)
        self.instruments.message_handled(session.transport, outcome)
        return Reply(text, outcome, trace_id, close)

    def at_arrival(self, session: Session, trace_id: str) -> Optional[Reply]:
        """Checks made when a message arrives (before waiting its turn); a Reply stops it."""
        if self.closing:
            return self.notice(session, trace_id, messages.SHUTTING_DOWN, Outcome.SHUTTING_DOWN)
        wait = self.limiter.check(session.user)
        if wait:
            return self.notice(
                session, trace_id,
                messages.RATE_LIMITED.format(seconds=max(1, round(wait))),
                Outcome.RATE_LIMITED,
            )
        return None

    def handle(self, session: Session, text: str, trace_id: str) -> Deferred:
        """Answer one message; its turn has come (earlier ones of this user are answered)."""
        command = text.strip().lower()
        if command == "salir":
            return succeed(self.notice(session, trace_id, messages.GOODBYE, Outcome.GOODBYE,
                                       close=True))
        self.log.info("[{trace_id}] message chars={chars}", trace_id=trace_id,
                      chars=len(text), user=session.user, transport=session.transport)
        if not self.provider.online:
            return succeed(self.fallback(session, trace_id, text, "offline"))
        return ensureDeferred(self._ask_provider(session, text, trace_id))

    def fallback(self, session: Session, trace_id: str, text: str, reason: str) -> Reply:
        """The reply when the model cannot answer: offline, or the provider failed."""
        if reason == "offline":
            return self.notice(session, trace_id, messages.OFFLINE, Outcome.OFFLINE)
        return self.notice(session, trace_id, messages.FALLBACK, Outcome.FALLBACK)

    async def _ask_provider(self, session: Session, text: str, trace_id: str) -> Reply:
        semaphore = self.semaphore
        if semaphore.tokens == 0 and len(semaphore.waiting) >= self.config.llm.max_waiting:
            return self.notice(session, trace_id, messages.BUSY, Outcome.BUSY)
        queued_at = self.clock.seconds()
        acquired = semaphore.acquire()
        if not acquired.called:
            position = len(semaphore.waiting)
            self.log.info("[{trace_id}] queued position={position}", trace_id=trace_id,
                          position=position)
            if session.listener is not None:
                session.listener.on_queued(trace_id, position)
        self._semaphore_changed()
        try:
            await acquired
        finally:
            self._semaphore_changed()
        self.instruments.queue_wait(self.clock.seconds() - queued_at)
        try:
            prompt = build_prompt(
                self.system_prompt,
                self.history.get(session.user),
                text,
                self.config.history.max_messages,
                self.config.history.input_token_budget,
                self.config.history.chars_per_token,
            )
            try:
                answer = await self.provider.complete(prompt, trace_id)
            except ProviderError as error:
                return self.fallback(session, trace_id, text, error.reason)
            answer = fold_lines(answer)
            self.history.append(session.user, "user", text)
            self.history.append(session.user, "assistant", answer)
            self.log.info("[{trace_id}] answered reply_chars={reply_chars}", trace_id=trace_id,
                          reply_chars=len(answer), user=session.user, transport=session.transport)
            self.instruments.message_handled(session.transport, Outcome.ANSWERED)
            return Reply(answer, Outcome.ANSWERED, trace_id)
        finally:
            semaphore.release()
            self._semaphore_changed()

    def _semaphore_changed(self) -> None:
        semaphore = self.semaphore
        self.instruments.semaphore_changed(
            semaphore.limit - semaphore.tokens, len(semaphore.waiting)
        )

    # --- shutdown -------------------------------------------------------------------------

    def _started(self, result: Deferred) -> None:
        self._in_progress += 1

        def finished(outcome):
            self._in_progress -= 1
            if self._in_progress == 0:
                waiters, self._drained = self._drained, []
                for waiter in waiters:
                    waiter.callback(None)
            return outcome

        result.addBoth(finished)

    def drain(self) -> Deferred:
        """Stop taking new work; fire when every message already accepted has its reply."""
        self.closing = True
        if self._in_progress == 0:
            return succeed(None)
        waiter: Deferred = Deferred()
        self._drained.append(waiter)
        return waiter
