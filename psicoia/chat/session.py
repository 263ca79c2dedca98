"""
The chat core's per-user half: one :class:`Session` per connected user.

A transport calls :meth:`Session.submit` with decoded text and writes the :class:`Reply` the
returned :class:`Submission`'s Deferred fires with. The session owns the per-user rules:
ordering (a user's next message waits until the previous reply is written), commands, the
crisis layer, the rate limit check, the history window, the offline companion. The manager
owns only what users share: the store that numbers conversations, the provider slots and their
bounded queue, the drain at shutdown. Whatever happens, each message gets exactly one reply and
each provider slot is released once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

from twisted.internet.defer import CancelledError, Deferred, fail, succeed

from psicoia import texts
from psicoia.chat import commands, recall, risk_watch
from psicoia.chat.admission import FLOOD_FACTOR, at_arrival
from psicoia.chat.companion import Companion
from psicoia.chat.crisis import CRISIS_TIERS
from psicoia.chat.deltas import DeltaRelay
from psicoia.chat.detector import RiskState
from psicoia.chat.history import build_prompt
from psicoia.chat.ports import Conversation, ISessionListener, ProviderError
from psicoia.chat.second_opinion import held
from psicoia.chat.vocabulary import Kind, Reply, fold_lines

if TYPE_CHECKING:  # the manager imports this module; annotations only
    from psicoia.chat.manager import SessionManager

__all__ = ["FLOOD_FACTOR", "Session", "Submission"]


class Submission(NamedTuple):
    """What :meth:`Session.submit` hands back: the message's trace id (None when the session
    was already closed) and a Deferred firing with its one :class:`Reply`."""

    trace_id: Optional[str]
    reply: Deferred


class Session:
    """One connected user. Made by :meth:`SessionManager.open`, ended by :meth:`close`."""

    # Idle, no per-message object is kept: no history (recall.py), RiskState, ordering list.
    __slots__ = ("manager", "transport", "peer", "listener", "closed", "conversation_id",
                 "number", "code", "turns", "risk", "_saved_risk", "_late_tier",
                 "companion", "_messages", "_last", "_ready", "_advancing", "_pending",
                 "_refused", "_loading", "_unsaved", "_keep", "_resting", "_relay")

    def __init__(self, manager: "SessionManager", conversation: Conversation, code: str,
                 transport: str, peer: str, listener: ISessionListener) -> None:
        self.manager = manager
        self.transport = transport
        self.peer = peer
        self.listener = listener
        self.closed = False
        self._loading: Optional[list[Deferred]] = None  # callers waiting for the history read
        self._unsaved = 0  # writes of the history not yet confirmed by the store
        self._resting = None  # the timer that lets go of per-message state (see rest())
        self._relay: Optional[DeltaRelay] = None  # the reply streaming now (see _deadline)
        self.adopt(conversation, code)
        self._messages = 0
        # Per-user ordering: a message's turn comes when the previous message's Deferred has run
        # all its callbacks, the transport's write included (see _enqueue).
        self._last: Optional[Deferred] = None
        self._ready: Optional[list[Deferred]] = None  # turns to start (a list while starting)
        self._advancing = False
        # Insertion order: close() cancels newest first. None while nothing is pending.
        self._pending: Optional[dict[Deferred, None]] = None
        self._refused = 0  # messages refused by the rate limit in a row

    def adopt(self, conversation: Conversation, code: str) -> None:
        """This connection now carries ``conversation`` (at open, on /retomar, on /olvidar)."""
        self.conversation_id = conversation.id
        self.number = conversation.number
        self.code = code
        self.turns = recall.window(conversation.turns)
        # Made while the store was degraded: maybe in the fallback store only (recall.py).
        self._keep = self.manager.store.health != "ok"
        # The crisis layer's state (numbers only, docs/safety.md); idle, only its values.
        self.risk: Optional[RiskState] = None
        self._saved_risk = risk_watch.values(RiskState.from_dict(conversation.risk).to_dict())
        self._late_tier: Optional[str] = None  # found by the second opinion after its reply
        self.companion: Optional[Companion] = None  # the offline companion, made on first use

    @property
    def user(self) -> str:
        """``Usuario-N``: made when asked (a string less per idle connection)."""
        return f"Usuario-{self.number}"

    def greeting(self) -> list[str]:
        return [
            texts.GREETING_FIRST.format(number=self.number),
            *texts.GREETING_BODY,
            texts.GREETING_RESUME.format(code=self.code),
            texts.GREETING_LAST,
        ]

    # --- accepting messages -----------------------------------------------------------------

    def submit(self, text: str) -> Submission:
        """Queue one message; its reply fires after all earlier ones of this user. Transports
        attach their writer to the reply at once (synchronously): the user's next message is
        handled only after that writer has run."""
        command = commands.parse(text)
        # The crisis check runs here, at arrival, before any limit can answer for the message;
        # the second opinion it asks for goes out after the reply's own request (held()).
        tier = None
        with held(self.manager.second_opinion):
            if command is None and not self.closed:
                if self.turns is None and self.manager.provider.online:
                    recall.recall(self)  # read the history back while the message waits
                tier = risk_watch.check(self, text)
            return self._enqueue(
                lambda trace_id, arrived: self._handle(text, command, trace_id, tier, arrived),
                checked=command is None, tier=tier)

    def submit_too_long(self) -> Submission:
        """A message the transport could not accept because of its size; answered in order."""
        limit = self.manager.config.limits.max_line_bytes
        # Not rate limited: the contract promises this notice, and it costs no provider call.
        return self._enqueue(
            lambda trace_id, arrived: succeed(
                self.notice(trace_id, texts.TOO_LONG.format(limit=limit), Kind.TOO_LONG)),
            checked=False,
        )

    def _enqueue(self, work: Callable[[str, float], Deferred], checked: bool = True,
                 tier: Optional[str] = None) -> Submission:
        if self.closed:  # the transport is gone: nothing to answer, no state to create
            return Submission(None, succeed(Reply("", Kind.ERROR)))
        self._messages += 1
        trace_id = f"Usuario-{self.number}:m{self._messages}"
        self.listener.on_accepted(trace_id)
        manager = self.manager
        # Rate limiting and other checks happen at arrival, not when the turn comes.
        arrival = at_arrival(self, trace_id, tier) if checked else None
        pending = self._pending
        behind = bool(pending) and arrival is None  # waits for this user's earlier one
        if behind:
            manager.queued_behind += 1
        arrived = manager.clock.seconds()

        def no_longer_behind(_=None) -> None:
            nonlocal behind
            if behind:
                behind = False
                manager.queued_behind -= 1

        def start(_):
            no_longer_behind()
            if arrival is not None:
                return arrival
            if self.closed:
                return Reply("", Kind.ERROR, trace_id)
            if manager.closing and checked:
                return self.notice(trace_id, texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN)
            return work(trace_id, arrived)

        turn: Deferred = Deferred(no_longer_behind)  # cancelled before its turn: not behind
        result = turn.addCallback(start)
        previous, self._last = self._last, result
        if pending is None:
            pending = self._pending = {}
        pending[result] = None
        manager.accepted(result)
        # Few callbacks per message, on purpose (each costs a turn of Deferred._runCallbacks;
        # docs/benchmarks.md): one to settle the bookkeeping, one pair for the reply.
        result.addBoth(self._settled, result, arrived)
        # Whatever path the reply took, the crisis layer has the last word before it is written.
        result.addCallbacks(risk_watch.last_word, risk_watch.unexpected,
                            callbackArgs=(self, tier), errbackArgs=(self, trace_id, tier))
        if previous is None:
            self._take_turn(turn)
        else:
            # Added after the transport's own callbacks on ``previous``: runs once it is written.
            previous.addBoth(self._previous_done, turn)
        return Submission(trace_id, result)

    def _previous_done(self, outcome, turn: Deferred):
        self._take_turn(turn)
        return outcome

    def _take_turn(self, turn: Deferred) -> None:
        """Start ``turn`` now, or after the one being started (a loop, not recursion: a user
        may have thousands of queued notices that all complete synchronously)."""
        if self._advancing:
            self._ready.append(turn)
            return
        self._advancing = True
        self._ready = [turn]  # a list: 56 bytes empty, a deque 760; none while idle
        try:
            while self._ready:
                ready = self._ready.pop(0)  # holds one or two turns at a time
                if not ready.called:  # a cancelled turn has already fired
                    ready.callback(None)
        finally:
            self._advancing = False
            self._ready = None

    def _settled(self, outcome, result: Deferred, arrived: float):
        """The message has its reply (or failure): it is no longer pending or in progress."""
        manager = self.manager
        manager.finished(result)  # first: drain() waiters see it at once
        pending = self._pending
        if pending is not None:
            pending.pop(result, None)
            if not pending:  # emptied: not kept (a dict keeps its table after pop)
                self._pending = None
        if self._last is result:
            # Not kept while idle: the rest of this chain (crisis layer, writer) runs now, so
            # a message let in by the writer comes after this reply and may start at once.
            self._last = None
        manager.instruments.reply_ready(self.transport, manager.clock.seconds() - arrived)
        return outcome

    # --- answering --------------------------------------------------------------------------

    def _handle(self, text: str, command: Optional[commands.Command], trace_id: str,
                tier: Optional[str], arrived: float) -> Deferred:
        """Answer one message; its turn has come (earlier ones of this user are answered)."""
        if command is not None:
            return commands.run(self, command, trace_id)
        manager = self.manager
        manager.log.info("[{trace_id}] message chars={chars}", trace_id=trace_id,
                         chars=len(text), user=self.user, transport=self.transport)
        if not manager.provider.online:
            return succeed(self._fallback(trace_id, text, "offline", tier))
        # Nobody waits longer than reply_deadline_seconds from arrival (their own queue
        # included); a message at risk has its resources within crisis_reply_seconds.
        left = manager.config.llm.reply_deadline_seconds - (manager.clock.seconds() - arrived)
        if tier:
            left = min(left, manager.config.safety.crisis_reply_seconds)
        if left <= 0:
            return succeed(self._fallback(trace_id, text, "deadline", tier))
        if self.turns is None:  # read back from the store (started at arrival)
            reply = recall.recall(self).addCallback(
                lambda _: self._ask_provider(text, trace_id, tier))
        else:
            reply = self._ask_provider(text, trace_id, tier)
        return reply.addTimeout(left, manager.clock, onTimeoutCancel=lambda _result, _timeout:
                                self._deadline(trace_id, text, tier))

    def _deadline(self, trace_id: str, text: str, tier: Optional[str]) -> Reply:
        """The deadline passed: what the model said so far (streamed) ends with the notice that
        it was cut, as when the provider cuts a stream; nothing said: the fallback."""
        relay, self._relay = self._relay, None
        if relay is not None and relay.said:
            return self.notice(trace_id, f"{relay.said} {texts.REPLY_CUT}", Kind.FALLBACK)
        return self._fallback(trace_id, text, "deadline", tier)

    def notice(self, trace_id: str, text: str, outcome: str, close: bool = False) -> Reply:
        self.manager.log.info("[{trace_id}] {outcome}", trace_id=trace_id, outcome=outcome,
                              user=self.user, transport=self.transport)
        self.manager.instruments.message_handled(self.transport, outcome)
        return Reply(text, outcome, trace_id, close)

    def _fallback(self, trace_id: str, text: str, reason: str, tier: Optional[str] = None) -> Reply:
        """The reply when the model cannot answer: the offline companion (companion.py), or the
        crisis support line (risk_watch.last_word adds the resources). Offline, these turns are
        the conversation a resume or a reloaded page shows."""
        outcome = Kind.OFFLINE if reason == "offline" else Kind.FALLBACK
        if self.companion is None:
            self.companion = Companion(seed=self.number)
        answer = texts.CRISIS_SUPPORT if tier else self.companion.reply(text)
        if tier:
            self.companion.after_crisis()
        if reason == "offline":  # a failed call writes no history: the model sees none of it
            recall.remember(self, text, answer)
        return self.notice(trace_id, answer, outcome)

    def _ask_provider(self, text: str, trace_id: str, tier: Optional[str]) -> Deferred:
        """Wait for a provider slot, then ask the provider; a Deferred firing with the Reply.
        Plain Deferreds, not a coroutine (docs/benchmarks.md): when a slot is free it is ours
        before ``acquire_slot`` returns, and the request goes out in the same call. As with a
        coroutine, anything raised here fails the returned Deferred."""
        try:
            manager = self.manager
            queued_at = manager.clock.seconds()
            acquired = manager.slots.acquire_slot(
                lambda position: self._queued(trace_id, position),
                manager.config.llm.max_waiting - manager.queued_behind)
            if acquired.called:  # a free slot (or a full queue): nothing to wait for
                return self._with_slot(acquired.result, text, trace_id, tier, queued_at)
            return acquired.addCallback(self._with_slot, text, trace_id, tier, queued_at)
        except Exception:  # noqa: BLE001 - the caller's errback handles it (_unexpected)
            return fail()

    def _queued(self, trace_id: str, position: int) -> None:
        self.manager.log.info("[{trace_id}] queued position={position}", trace_id=trace_id,
                              position=position)
        self.listener.on_queued(trace_id, position)

    def _with_slot(self, slot, text: str, trace_id: str, tier: Optional[str], queued_at: float):
        """The slot is ours (None: the queue was full): every path from here releases it."""
        if slot is None:
            return succeed(self.notice(trace_id, texts.BUSY, Kind.BUSY))
        manager = self.manager
        if manager.closing:  # it waited through the start of a shutdown: no new call now
            manager.slots.release_slot(slot)
            return succeed(self.notice(trace_id, texts.SHUTTING_DOWN, Kind.SHUTTING_DOWN))
        try:
            manager.instruments.queue_wait(manager.clock.seconds() - queued_at)
            self.listener.on_waiting(trace_id)
            prompt = build_prompt(
                manager.crisis_prompt if tier in CRISIS_TIERS else manager.system_prompt,
                self.turns,
                text,
                manager.config.history.max_messages,
                manager.config.history.input_token_budget,
                manager.config.history.chars_per_token,
            )
            relay = None
            if manager.config.llm.stream:
                relay = self._relay = DeltaRelay(manager.clock, lambda shown: self.closed
                                                 or self.listener.on_delta(trace_id, shown))
                relay.lead(manager.crisis.lead(tier))  # acute: the emergency line first
                reply = manager.provider.stream(prompt, trace_id, relay.feed)
            else:
                reply = manager.provider.complete(prompt, trace_id)
        except BaseException:
            manager.slots.release_slot(slot)
            raise
        # Both release the slot themselves (one callback less than a separate addBoth).
        return reply.addCallbacks(self._answered, self._provider_failed,
                                  callbackArgs=(slot, text, trace_id, relay),
                                  errbackArgs=(slot, text, trace_id, tier, relay))

    def _answered(self, answer: str, slot, text: str, trace_id: str,
                  relay: Optional[DeltaRelay]) -> Reply:
        try:
            if relay is not None:
                relay.finish()  # what is held goes out before the line's end
                self._relay = None
            answer = fold_lines(answer)
            recall.remember(self, text, answer)
            self.manager.log.info("[{trace_id}] answered reply_chars={reply_chars}",
                                  trace_id=trace_id, reply_chars=len(answer), user=self.user,
                                  transport=self.transport)
            self.manager.instruments.message_handled(self.transport, Kind.ANSWERED)
            return Reply(answer, Kind.ANSWERED, trace_id)
        finally:
            self.manager.slots.release_slot(slot)

    def _provider_failed(self, failure, slot, text: str, trace_id: str, tier: Optional[str],
                         relay: Optional[DeltaRelay]) -> Reply:
        try:
            if relay is not None:
                relay.finish()
                if not failure.check(CancelledError):  # a deadline's cancel: _deadline reads it
                    self._relay = None
            failure.trap(ProviderError)  # anything else (a cancel) goes on as it is
            error = failure.value
            if error.reason == "cut" and error.partial:  # text was shown: end that line
                shown = fold_lines(error.partial)
                return self.notice(trace_id, f"{shown} {texts.REPLY_CUT}", Kind.FALLBACK)
            return self._fallback(trace_id, text, error.reason, tier)
        finally:
            self.manager.slots.release_slot(slot)

    def rest(self) -> None:
        """Nothing of this user's is pending: once nothing more arrives for
        :data:`recall.IDLE_SECONDS`, keep only what an idle user needs (the crisis state's
        values, psicoia/chat/risk_watch.py; the history in the store, recall.py)."""
        if self._pending or self._resting is not None or self.closed:
            return
        # No timer work per message: one timer per quiet spell, checked when it is due.
        self._resting = self.manager.clock.callLater(recall.IDLE_SECONDS, self._at_rest,
                                                     self._messages)

    def _at_rest(self, messages: int) -> None:
        self._resting = None
        if self._messages != messages:  # more came since: wait for a quiet spell again
            self.rest()
        elif not self._pending:
            self.risk = self._relay = None
            recall.release(self)

    # --- the end ----------------------------------------------------------------------------

    def taken_over(self) -> None:
        """Another connection resumed this conversation: tell this one, which then closes."""
        self.listener.on_taken_over()
        self.close()

    def close(self) -> None:
        """The user left: cancel queued and in-flight work, forget per-connection state."""
        if self.closed:
            return
        self.closed = True
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        for pending in reversed(list(self._pending or ())):
            pending.cancel()
        self.manager.left(self.conversation_id, self.taken_over, self.user)
