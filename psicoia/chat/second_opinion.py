"""
The model's second opinion on a conversation at risk (docs/safety.md).

The rules (psicoia/chat/detector) miss wording they have never seen. When a key is set
(``safety.classifier: auto``), :meth:`SecondOpinion.ask` asks the provider to classify the
latest user messages: a guard model (``safety.classifier_model``, e.g. a Llama Guard served
by the same provider) or the chat model with a short classification prompt
(psicoia/chat/prompts/classifier.txt). The session starts it alongside the reply, right
after the reply's own request (:meth:`SecondOpinion.hold`); a tier it finds adds the resources
the rules missed (:func:`psicoia.chat.crisis.most_urgent`).

It never fails and never waits long: its own budget of ``classifier_max_in_flight`` calls
(over it, no second opinion: None at once, never a queue), a deadline of
``classifier_timeout_seconds`` (then the call is cancelled and the answer is None), and any
provider error, odd answer or cancellation is None too. Nothing is logged: not the text, not
the verdict (a log line tying a trace id to "risk" would be a per-user flag).

Pass the provider itself (``psicoia.provider.client.ChatProvider``), not the circuit breaker
in front of the chat, so a misconfigured guard model cannot open the chat's breaker.

Cost: one provider call per message asked about (:meth:`SecondOpinion.wanted` skips messages
the rules already put in "acute" or "risk"), about 150 tokens of prompt plus the latest
``classifier_turns`` user messages (each cut to ``MAX_CHARS`` characters, so at most about
600 input tokens), and at most ``MAX_TOKENS`` output tokens.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from importlib import resources
from typing import Any, Iterator, Optional, Sequence

from twisted.internet.defer import Deferred, succeed

from psicoia.chat.ports import IProvider
from psicoia.config import SafetyConfig

MAX_CHARS = 500  # of each user message sent for classification
MAX_TOKENS = 8  # the answer is one word ("safe" / "unsafe\nS11" for a guard model)
# Llama Guard categories about a life at risk: S11 "Suicide & Self-Harm".
_GUARD_SELF_HARM = re.compile(r"\bS11\b")
_WORD = re.compile(r"[a-z_]+")
_ANSWERS = {"acute": "acute", "risk": "risk", "third_party": "third_party",
            "thirdparty": "third_party", "help": "help", "none": None}


def load_prompt() -> str:
    return resources.files("psicoia.chat.prompts").joinpath("classifier.txt").read_text(
        "utf-8").strip()


def parse(answer: str, guard: bool) -> Optional[str]:
    """The tier in a classifier's ``answer``: a guard model's "unsafe" with S11 is "risk";
    the prompt's one word is itself; anything else is None."""
    if guard:
        lines = answer.strip().lower().split()
        if lines and lines[0] == "unsafe" and _GUARD_SELF_HARM.search(answer.upper()):
            return "risk"
        return None
    word = _WORD.search(answer.strip().lower())
    return _ANSWERS.get(word.group(0)) if word else None


class SecondOpinion:
    """``SecondOpinion(provider, safety_config, clock)``; :meth:`ask` per message."""

    def __init__(self, provider: IProvider, config: SafetyConfig, clock: Any) -> None:
        self.provider = provider
        self.config = config
        self.clock = clock
        self.in_flight = 0
        self.model = config.classifier_model
        self.guard = bool(self.model and "guard" in self.model.lower())
        self._prompt = load_prompt()
        self._holding = 0  # hold() depth: calls asked meanwhile wait in _held
        self._held: list[tuple[list[str], str, Deferred]] = []

    @property
    def enabled(self) -> bool:
        return self.config.classifier == "auto" and bool(self.provider.online)

    def wanted(self, rules_tier: Optional[str]) -> bool:
        """Whether a second opinion could add anything to what the rules found."""
        return self.enabled and rules_tier not in ("acute", "risk")

    def messages(self, recent_user_texts: Sequence[str]) -> list[dict]:
        """The request: the latest ``classifier_turns`` user messages, each cut short."""
        recent = [text[:MAX_CHARS] for text in recent_user_texts][-self.config.classifier_turns:]
        if self.guard:  # a guard model reads the conversation itself, with its own policy
            return [{"role": "user", "content": text} for text in recent]
        numbered = "\n".join(f"{i}. {text}" for i, text in enumerate(recent, start=1))
        return [{"role": "system", "content": self._prompt},
                {"role": "user", "content": numbered}]

    def ask(self, recent_user_texts: Sequence[str], trace_id: str) -> Deferred:
        """Deferred firing with a tier ("acute", "risk", "third_party", "help") or None, by
        ``classifier_timeout_seconds`` at the latest (counted from the call, see
        :meth:`hold`). Never fails."""
        recent = [t for t in recent_user_texts if t and t.strip()]
        if not self.enabled or not recent or self.in_flight >= self.config.classifier_max_in_flight:
            return succeed(None)
        self.in_flight += 1
        if self._holding:
            answer = Deferred()
            self._held.append((recent, trace_id, answer))
            return answer
        return self._call(recent, trace_id)

    def hold(self) -> None:
        """Until the matching :meth:`release`, calls asked wait (in order) instead of going to
        the provider. The session holds them while a message's own reply request is sent, so
        that request reaches the provider first and its first words come back first; the
        classification goes out in the same reactor turn, right after (bench/analysis.md)."""
        self._holding += 1

    def release(self) -> None:
        """End one :meth:`hold`; at the outermost, the calls held go out now, in order."""
        self._holding -= 1
        if self._holding or not self._held:
            return
        held, self._held = self._held, []
        for recent, trace_id, answer in held:
            self._call(recent, trace_id).chainDeferred(answer)

    def _call(self, recent: list[str], trace_id: str) -> Deferred:
        """The provider call for one :meth:`ask` (its budget already counted)."""
        try:
            call = self.provider.complete(self.messages(recent), trace_id, model=self.model,
                                          max_tokens=MAX_TOKENS)
        except Exception:  # a provider that raises instead of failing its Deferred
            self.in_flight -= 1
            return succeed(None)
        call.addTimeout(self.config.classifier_timeout_seconds, self.clock)
        call.addCallbacks(lambda answer: parse(str(answer), self.guard), lambda _: None)
        call.addBoth(self._done)
        return call

    def _done(self, tier: Optional[str]) -> Optional[str]:
        self.in_flight -= 1
        return tier


@contextmanager
def held(opinion: Optional[SecondOpinion]) -> Iterator[None]:
    """:meth:`SecondOpinion.hold` for the block (nothing when there is no second opinion)."""
    if opinion is None:
        yield
        return
    opinion.hold()
    try:
        yield
    finally:
        opinion.release()
