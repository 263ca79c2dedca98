"""
The crisis layer wired into the session (psicoia/chat/session.py): tiers on every reply path,
the conversation's risk state across turns and resumes, and the model's second opinion
running beside the reply without ever delaying it.
"""

from __future__ import annotations

import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.chat.resume import hash_code
from psicoia.chat.vocabulary import Kind
from psicoia.ops.metrics import Metrics
from psicoia.provider.client import ChatProvider
from psicoia.storage.memory import MemoryStore
from tests.fake_provider import FakeProvider, Scripted, completion
from tests.helpers import fired, make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.test_crisis_layer import ISSUE_EXAMPLES as LAYER_EXAMPLES

# The issue's examples with their tiers, shared with the detector's own tests; here through the
# session (the look-alike, tier None, is checked on its own below).
ISSUE_EXAMPLES = [(text, tier) for text, tier in LAYER_EXAMPLES if tier is not None]


def offline(store=None):
    manager = make_manager(make_config(api_key=None), ControlledProvider(online=False), Clock(),
                           store=store or MemoryStore(), system_prompt="s")
    return manager, fired(manager.open("tcp", "10.0.0.1"))


def say(session, text):
    return fired(session.submit(text).reply)


@pytest.mark.parametrize("text, tier", ISSUE_EXAMPLES)
def test_each_issue_example_gets_its_tier_offline(text, tier):
    _, session = offline()
    reply = say(session, text)
    assert reply.crisis and reply.tier == tier
    assert reply.resources, "the reply names its resources (the page shows tel: links)"
    if tier == "acute":
        acute = texts.CRISIS_ACUTE.split("{")[0]
        assert reply.text.startswith(acute), "the emergency number comes first"


def test_the_look_alike_of_the_issue_stays_quiet():
    _, session = offline()
    reply = say(session, "este calor me está matando, no doy más, necesito una pileta")
    assert not reply.crisis and reply.tier is None


def test_the_issue_dialog_gets_resources_at_its_third_turn():
    _, session = offline()
    replies = [say(session, text) for text in
               ("estoy cansada de todo", "ya lo decidí", "mañana ya no voy a estar")]
    # The rules alone give them at the third turn (tests/test_crisis_layer.py); the learned
    # model already reads "ya lo decidí" after "estoy cansada de todo" as risk: by the third
    # turn at the latest, never at the first.
    assert replies[0].crisis is False and replies[2].crisis is True


def test_the_risk_state_survives_a_resume_on_another_connection():
    store = MemoryStore()
    manager, first = offline(store)
    say(first, "estoy cansada de todo")
    say(first, "ya lo decidí")
    code = first.code
    first.close()
    stored = fired(store.resume(hash_code(code), 0)).risk

    def numbers_only(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and numbers_only(v) for k, v in value.items())
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    assert stored and numbers_only(stored), stored
    second = fired(manager.open("tcp", "10.0.0.2"))
    say(second, f"/retomar {code}")
    assert say(second, "mañana ya no voy a estar").crisis


# --- the model's second opinion, through the session --------------------------------------

class Stack:
    """Real client on the fake provider (StubTreq), on a Clock, second opinion on."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(clock=self.clock, default_reply="Te escucho")
        self.stub = StubTreq(self.fake)
        self.config = make_config(llm={"max_retries": 0, "pacing": False, "timeout_seconds": 30},
                                  safety={"classifier": "auto",
                                          "classifier_timeout_seconds": 2})
        client = ChatProvider(self.config.llm, "test-key", self.clock, self.stub,
                              Metrics(), random=lambda: 0.0)
        from psicoia.app.core import build_core

        self.manager = build_core(self.config, self.clock, self.clock, provider=client,
                                  system_prompt="s").manager
        # build_core gave the second opinion the same client (no breaker here).
        self.session = fired(self.manager.open("tcp", "10.0.0.1"))

    def say(self, text):
        reply = self.session.submit(text).reply
        self.stub.flush()
        return reply

    def run(self, seconds, step=0.25):
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.stub.flush()


def classifier_requests(fake):
    return [r for r in fake.requests if r["json"].get("max_tokens", 0) <= 8]


def test_risk_found_by_the_model_only_adds_the_resources():
    stack = Stack()
    text = "ya pensé bien lo que voy a hacer el lunes"
    # The chat's call goes out first, then the classifier's (held until the chat's is sent).
    stack.fake.push(Scripted(body=completion("Te escucho, contame más."), delay=0.5))
    stack.fake.push(Scripted(body=completion("risk")))
    reply = stack.say(text)
    stack.run(1)
    result = fired(reply)
    assert result.crisis and result.tier == "risk"
    assert result.text.startswith("Te escucho, contame más.")
    assert len(classifier_requests(stack.fake)) == 1


def test_risk_found_by_both_is_one_set_of_resources():
    stack = Stack()
    reply = stack.say("quiero morirme")
    stack.run(1)
    result = fired(reply)
    resources_line = texts.CRISIS_RESOURCES.split("{")[0]
    assert result.tier == "risk" and result.text.count(resources_line) == 1
    assert classifier_requests(stack.fake) == [], "no second opinion when the rules found risk"


def test_a_slow_or_failing_classifier_never_delays_the_reply():
    stack = Stack()
    stack.fake.push(Scripted(body=completion("Te escucho")))  # the chat's call
    stack.fake.push(Scripted(hang=True))  # the classifier's call never answers
    reply = stack.say("hoy fue un día raro en el trabajo")
    stack.run(0.5)
    result = fired(reply)  # answered while the classifier still hangs
    assert result.outcome == Kind.ANSWERED and not result.crisis
    stack.run(3)  # the classifier's deadline passes: nothing breaks, nothing is added
    follow = stack.say("bueno, gracias")
    stack.run(0.5)
    assert not fired(follow).crisis


def test_a_late_verdict_reaches_the_next_reply():
    stack = Stack()
    text = "ya pensé bien lo que voy a hacer el lunes"
    stack.fake.push(Scripted(body=completion("Te escucho")))  # the chat's call goes first
    stack.fake.push(Scripted(body=completion("risk"), delay=1.0))  # slower than the chat
    first = stack.say(text)
    stack.run(0.5)
    assert not fired(first).crisis, "the reply did not wait for the second opinion"
    stack.run(1)
    second = stack.say("bueno")
    stack.run(0.5)
    result = fired(second)
    assert result.crisis and result.tier == "risk", "the model's late risk is not dropped"


def test_the_chat_request_goes_out_before_the_classifiers_and_both_at_arrival():
    """The reply's own request is sent first (its first words come back first), the second
    opinion's right after it, in the same call; a message waiting behind the user's earlier
    one still has its second opinion asked at arrival."""
    stack = Stack()
    stack.fake.push(Scripted(body=completion("Te escucho"), delay=1.0))
    stack.session.submit("hoy fue un día raro en el trabajo")
    stack.stub.flush()
    kinds = ["classifier" if r["json"].get("max_tokens", 0) <= 8 else "chat"
             for r in stack.fake.requests]
    assert kinds == ["chat", "classifier"]
    stack.session.submit("y ayer también")  # waits for the first reply
    stack.stub.flush()
    assert len(classifier_requests(stack.fake)) == 2 and len(stack.fake.requests) == 3
