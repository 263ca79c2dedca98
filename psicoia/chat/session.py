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
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Protocol

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredSemaphore,
    fail,
    succeed,
)
from twisted.internet.interfaces import IReactorTime

from psicoia import texts
from psicoia.chat.companion import Companion
from psicoia.config import Config
from psicoia.chat.history import HistoryStore, InMemoryHistory, build_prompt
from psicoia.ops.instruments import Instruments
from psicoia.chat.ports import IProvider, ProviderError
from psicoia.chat.vocabulary import Kind, Reply, fold_lines
from psicoia.ops.logsetup import LevelLogger
from psicoia.chat.ratelimit import RateLimiter, SlidingWindowLimiter
from psicoia.chat.detector.rules import assess


def is_goodbye(text: str) -> bool:
    """The user's way out: "salir", in any case, surrounding spaces ignored."""
    return text.strip().lower() == "salir"


COMMANDS = ("/ayuda", "/recursos", "/reset")


def command_of(text: str) -> Optional[str]:
    """The command in ``text`` ("/ayuda", ...), "/" for an unknown one, or None for a message."""
    word = text.strip().lower()
    if word in COMMANDS:
        return word
    if word.startswith("/") and len(word.split()) == 1:
        return "/"
    return None


def load_system_prompt(path: Optional[str]) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return resources.files("psicoia.chat.prompts").joinpath("system.txt").read_text("utf-8").strip()


def load_crisis_note() -> str:
    """Added to the system prompt for a message at risk (docs/safety.md)."""
    return resources.files("psicoia.chat.prompts").joinpath("crisis.txt").read_text("utf-8").strip()


class SessionListener(Protocol):
    """Optional transport callbacks for progress before the reply (JSON mode uses them)."""

    def on_queued(self, trace_id: str, position: int) -> None: ...

    # Optional (called only when the listener has them, see Session.notify):
    #   on_accepted(trace_id)  the message got its trace id (before any other hook for it)
    #   on_waiting(trace_id)   its provider call starts: the reply is being written


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
        # Per-user ordering: a message's turn comes when the previous message's Deferred has run
        # all its callbacks, the transport's write included (see _enqueue).
        self._last: Optional[Deferred] = None
        self._ready: list[Deferred] = []  # a list: 56 bytes empty, a deque 760
        self._advancing = False
        self._pending: dict[Deferred, None] = {}  # insertion order: close() cancels newest first
        # Crisis layer (docs/safety.md): replies left that carry the gentle reminder.
        self.reminders_left = 0
        self.companion: Optional[Companion] = None  # the offline companion, made on first use

    def greeting(self) -> list[str]:
        return [
            texts.GREETING_FIRST.format(number=self.number),
            *texts.GREETING_BODY,
            texts.GREETING_LAST,
        ]

    def submit(self, text: str) -> Deferred:
        """Queue one message; the Deferred fires with its Reply, after all earlier ones.

        Transports attach their writer to the returned Deferred at once (synchronously): the
        user's next message is handled only after that writer has run.
        """
        # "salir" and commands are always answered, even when rate limited: no provider call.
        # The crisis check runs here, at arrival, before any limit can answer for the message.
        command = is_goodbye(text) or command_of(text) is not None
        crisis = not command and not self.closed and self.manager.crisis_check(self, text)
        return self._enqueue(lambda trace_id: self.manager.handle(self, text, trace_id, crisis),
                             checked=not command, crisis=crisis)

    def submit_too_long(self) -> Deferred:
        """A message the transport could not accept because of its size; answered in order."""
        limit = self.manager.config.limits.max_line_bytes
        # Not rate limited: the contract promises this notice, and it costs no provider call.
        return self._enqueue(
            lambda trace_id: succeed(
                self.manager.notice(self, trace_id, texts.TOO_LONG.format(limit=limit),
                                    Kind.TOO_LONG)
            ),
            checked=False,
        )

    def _enqueue(self, work: Callable[[str], Deferred], checked: bool = True,
                 crisis: bool = False) -> Deferred:
        if self.closed:  # the transport is gone: nothing to answer, no state to create
            return succeed(Reply("", Kind.ERROR))
        self._messages += 1
        trace_id = f"{self.user}:m{self._messages}"
        self.notify("on_accepted", trace_id)
        # Rate limiting and other checks must happen at arrival, not when the turn comes.
        arrival = self.manager.at_arrival(self, trace_id, crisis) if checked else None

        def start(_):
            if arrival is not None:
                return arrival
            if self.closed:
                return Reply("", Kind.ERROR, trace_id)
            return work(trace_id)

        turn: Deferred = Deferred()
        result = turn.addCallback(start)
        previous, self._last = self._last, result
        self._pending[result] = None
        self.manager._started()
        # Few callbacks per message, on purpose (each costs a turn of Deferred._runCallbacks;
        # docs/benchmarks.md): one to settle the bookkeeping, one pair for the reply.
        result.addBoth(self._settled, result)
        # Whatever path the reply took (busy, failed, shutting down...), the crisis layer has
        # the last word on it, before the transport writes it.
        result.addCallbacks(self.manager.with_safety, self._unexpected_safe,
                            callbackArgs=(self, crisis), errbackArgs=(trace_id, crisis))
        if previous is None:
            self._take_turn(turn)
        else:
            # Added after the transport's own callbacks on ``previous``: runs once it is written.
            previous.addBoth(self._previous_done, turn)
        return result

    def _previous_done(self, outcome, turn: Deferred):
        self._take_turn(turn)
        return outcome

    def _take_turn(self, turn: Deferred) -> None:
        """Start ``turn`` now, or after the one being started (a loop, not recursion: a user
        may have thousands of queued notices that all complete synchronously)."""
        self._ready.append(turn)
        if self._advancing:
            return
        self._advancing = True
        try:
            while self._ready:
                ready = self._ready.pop(0)  # holds one or two turns at a time
                if not ready.called:  # a cancelled turn has already fired
                    ready.callback(None)
        finally:
            self._advancing = False

    def notify(self, hook: str, *args) -> None:
        """Call an optional listener hook; transports implement only what they show."""
        method = getattr(self.listener, hook, None)
        if method is not None:
            method(*args)

    def _settled(self, outcome, result: Deferred):
        """The message has its reply (or failure): it is no longer pending or in progress."""
        self.manager._finished()  # first: drain() waiters see it at once
        self._pending.pop(result, None)
        return outcome

    def _unexpected_safe(self, failure, trace_id: str, crisis: bool) -> Reply:
        return self.manager.with_safety(self._unexpected(failure, trace_id), self, crisis)

    def _unexpected(self, failure, trace_id: str):
        if failure.check(CancelledError):
            return Reply("", Kind.ERROR, trace_id)
        self.manager.log.failure("[{trace_id}] unexpected error", failure, trace_id=trace_id)
        return Reply(texts.ERROR, Kind.ERROR, trace_id)

    def close(self) -> None:
        """The user left: cancel queued and in-flight work, forget per-user state."""
        if self.closed:
            return
        self.closed = True
        for pending in reversed(list(self._pending)):
            pending.cancel()
        self.manager._forget(self)


class SessionManager:
    """Shared by every transport of one service. Owns all per-user and global chat state."""

    log = LevelLogger()  # per-message events: not built when the level drops them

    def __init__(
        self,
        config: Config,
        provider: IProvider,
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
        self.crisis_prompt = f"{self.system_prompt}\n\n{load_crisis_note()}"
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

    def at_arrival(self, session: Session, trace_id: str,
                   crisis: bool = False) -> Optional[Reply]:
        """Checks made when a message arrives (before waiting its turn); a Reply stops it.

        A message at risk is counted by the rate limiter but never refused by it: it goes on to
        the model like any other (docs/safety.md).
        """
        if self.closing:
            return self.notice(session, trace_id, texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN)
        wait = self.limiter.check(session.user)
        if wait and not crisis:
            return self.notice(
                session, trace_id,
                texts.RATE_LIMITED.format(seconds=max(1, round(wait))),
                Kind.RATE_LIMITED,
            )
        return None

    def handle(self, session: Session, text: str, trace_id: str,
               crisis: bool = False) -> Deferred:
        """Answer one message; its turn has come (earlier ones of this user are answered)."""
        if is_goodbye(text):
            return succeed(self.notice(session, trace_id, texts.GOODBYE, Kind.GOODBYE,
                                       close=True))
        command = command_of(text)
        if command is not None:
            return succeed(self.command(session, trace_id, command))
        self.log.info("[{trace_id}] message chars={chars}", trace_id=trace_id,
                      chars=len(text), user=session.user, transport=session.transport)
        if not self.provider.online:
            return succeed(self.fallback(session, trace_id, text, "offline", crisis))
        reply = self._ask_provider(session, text, trace_id, crisis)
        if crisis:
            # Resources within crisis_reply_seconds, however long the queue or the retries.
            reply.addTimeout(
                self.config.safety.crisis_reply_seconds, self.clock,
                onTimeoutCancel=lambda _result, _timeout: self.fallback(
                    session, trace_id, text, "crisis_deadline", crisis),
            )
        return reply

    def fallback(self, session: Session, trace_id: str, text: str, reason: str,
                 crisis: bool = False) -> Reply:
        """The reply when the model cannot answer: offline, or the provider failed.

        The offline companion answers (psicoia/companion.py); a message at risk gets the crisis
        support line instead (with_safety adds the resources).
        """
        outcome = Kind.OFFLINE if reason == "offline" else Kind.FALLBACK
        if crisis:
            return self.notice(session, trace_id, texts.CRISIS_SUPPORT, outcome)
        if session.companion is None:
            session.companion = Companion(seed=session.number)
        return self.notice(session, trace_id, session.companion.reply(text), outcome)

    # --- crisis layer and commands (docs/safety.md) ---------------------------------------

    def crisis_check(self, session: Session, text: str) -> bool:
        """Run the detector on an arriving message; count a detection (never its content)."""
        if not assess(text).risk:
            return False
        self.instruments.crisis_detected(session.transport)
        return True

    def resources_text(self) -> str:
        return "; ".join(self.config.safety.resources)

    def with_safety(self, reply: Reply, session: Session, crisis: bool) -> Reply:
        """The crisis layer's last word on a reply: resources for a message at risk, whatever
        happened to it (a busy or rate-limit notice is replaced, never sent alone), and a short
        reminder on the next ``safety.reminder_turns`` replies."""
        if not reply.text:  # the user left: nothing is written
            return reply
        if not crisis and session.reminders_left <= 0:  # most replies: nothing to add
            return reply
        resources_line = texts.CRISIS_RESOURCES.format(resources=self.resources_text())
        if crisis:
            session.reminders_left = self.config.safety.reminder_turns
            text = reply.text
            if reply.outcome not in (Kind.ANSWERED, Kind.OFFLINE, Kind.FALLBACK):
                text = texts.CRISIS_SUPPORT
            return replace(reply, text=f"{text} {resources_line}", crisis=True)
        if session.reminders_left > 0 and reply.outcome != Kind.COMMAND:
            session.reminders_left -= 1
            extra = resources_line if reply.close else texts.CRISIS_REMINDER
            return replace(reply, text=f"{reply.text} {extra}")
        return reply

    def command(self, session: Session, trace_id: str, command: str) -> Reply:
        """``/ayuda``, ``/recursos``, ``/reset`` (``salir`` is handled before)."""
        if command == "/ayuda":
            text = texts.HELP
        elif command == "/recursos":
            text = texts.RESOURCES_REPLY.format(resources=self.resources_text())
        elif command == "/reset":
            self.history.clear(session.user)
            if session.companion is not None:
                session.companion.reset()
            text = texts.RESET_DONE
        else:
            text = texts.UNKNOWN_COMMAND
        return self.notice(session, trace_id, text, Kind.COMMAND)

    def _ask_provider(self, session: Session, text: str, trace_id: str,
                      crisis: bool = False) -> Deferred:
        """Wait for a provider slot, then ask the provider; a Deferred firing with the Reply.

        Plain Deferreds, not a coroutine (docs/benchmarks.md): when a slot is free,
        ``DeferredSemaphore.acquire`` has fired before it returns, and the request goes out in
        the same call, with no ``ensureDeferred`` and no await machinery around it. As with a
        coroutine, anything raised here fails the returned Deferred.
        """
        try:
            semaphore = self.semaphore
            if semaphore.tokens == 0 and len(semaphore.waiting) >= self.config.llm.max_waiting:
                return succeed(self.notice(session, trace_id, texts.BUSY, Kind.BUSY))
            queued_at = self.clock.seconds()
            if semaphore.tokens == 0:
                # Before acquire(): a hook that raises must not leave an acquire nobody releases.
                position = len(semaphore.waiting) + 1
                self.log.info("[{trace_id}] queued position={position}", trace_id=trace_id,
                              position=position)
                if session.listener is not None:
                    session.listener.on_queued(trace_id, position)
            acquired = semaphore.acquire()
            self._semaphore_changed()
            if acquired.called:  # a free slot, already ours: nothing waited, nothing to chain
                return self._with_slot(session, text, trace_id, crisis, queued_at)
            acquired.addBoth(self._waited)
            acquired.addCallback(
                lambda _: self._with_slot(session, text, trace_id, crisis, queued_at))
            return acquired
        except Exception:  # noqa: BLE001 - the caller's errback handles it (Session._unexpected)
            return fail()

    def _waited(self, result):
        """The wait for a slot ended (acquired or cancelled): the gauges change."""
        self._semaphore_changed()
        return result

    def _with_slot(self, session: Session, text: str, trace_id: str, crisis: bool,
                   queued_at: float) -> Deferred:
        """The slot is ours: every path from here releases it, once (``_release``)."""
        try:
            self.instruments.queue_wait(self.clock.seconds() - queued_at)
            session.notify("on_waiting", trace_id)
            prompt = build_prompt(
                self.crisis_prompt if crisis else self.system_prompt,
                self.history.get(session.user),
                text,
                self.config.history.max_messages,
                self.config.history.input_token_budget,
                self.config.history.chars_per_token,
            )
            reply = self.provider.complete(prompt, trace_id)
        except BaseException:
            self._release()
            raise
        # Both release the slot themselves (one callback less than a separate addBoth).
        return reply.addCallbacks(self._answered, self._provider_failed,
                                  callbackArgs=(session, text, trace_id),
                                  errbackArgs=(session, text, trace_id, crisis))

    def _answered(self, answer: str, session: Session, text: str, trace_id: str) -> Reply:
        try:
            answer = fold_lines(answer)
            self.history.append(session.user, "user", text)
            self.history.append(session.user, "assistant", answer)
            self.log.info("[{trace_id}] answered reply_chars={reply_chars}", trace_id=trace_id,
                          reply_chars=len(answer), user=session.user,
                          transport=session.transport)
            self.instruments.message_handled(session.transport, Kind.ANSWERED)
            return Reply(answer, Kind.ANSWERED, trace_id)
        finally:
            self._release()

    def _provider_failed(self, failure, session: Session, text: str, trace_id: str,
                         crisis: bool) -> Reply:
        try:
            failure.trap(ProviderError)  # anything else (a cancel) goes on as it is
            return self.fallback(session, trace_id, text, failure.value.reason, crisis)
        finally:
            self._release()

    def _release(self) -> None:
        self.semaphore.release()
        self._semaphore_changed()

    def _semaphore_changed(self) -> None:
        semaphore = self.semaphore
        self.instruments.semaphore_changed(
            semaphore.limit - semaphore.tokens, len(semaphore.waiting)
        )

    # --- shutdown -------------------------------------------------------------------------

    def _started(self) -> None:
        """A message was accepted; :meth:`_finished` is called once when it has its reply."""
        self._in_progress += 1

    def _finished(self) -> None:
        self._in_progress -= 1
        if self._in_progress == 0:
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                waiter.callback(None)

    def drain(self) -> Deferred:
        """Stop taking new work; fire when every message already accepted has its reply."""
        self.closing = True
        if self._in_progress == 0:
            return succeed(None)
        waiter: Deferred = Deferred()
        self._drained.append(waiter)
        return waiter
