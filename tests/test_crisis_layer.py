"""The crisis layer of issue 11: tiers, the conversation state, decoration per tier, the
model's second opinion (docs/safety.md).

The issue's own examples are tests with their tier. The second opinion runs against a real
ChatProvider talking to tests/fake_provider.py in memory (StubTreq) on a task.Clock.
"""

from __future__ import annotations

import json

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.chat.crisis import CrisisLayer, most_urgent
from psicoia.chat.detector import RiskState, assess
from psicoia.chat.detector import learned
from psicoia.chat.detector.learned import SILENT
from psicoia.chat.second_opinion import SecondOpinion, parse
from psicoia.chat.vocabulary import Kind, Reply
from psicoia.config import SafetyConfig
from psicoia.ops.metrics import Metrics
from psicoia.provider.client import ChatProvider
from tests.fake_provider import FakeProvider, Scripted, completion
from tests.helpers import captured_logs, fired, make_config

# --- the issue's examples, each with its tier ------------------------------------------------

ISSUE_EXAMPLES = [
    ("les dejé todo ordenado: las claves del banco, los papeles y la carta", "risk"),
    ("cuando ya no esté, que alguien le dé de comer a mi gato", "risk"),
    ("estoy en la terraza de mi edificio pensando en tirarme", "acute"),
    ("voy a abrir el gas de la cocina y acostarme, ya está", "risk"),
    ("me quemo con el encendedor para sentir algo", "risk"),
    ("ya me tomé todas las pastillas, me estoy durmiendo, perdón", "acute"),
    ("ya no voy a ser un problema para nadie", "risk"),
    ("tngo ganas d tirarme dl balcon", "risk"),
    ("to pensando em me matar hoje de noite", "risk"),
    ("mi amiga me dijo que se quiere matar, ¿qué hago?", "third_party"),
    ("este calor me está matando, no doy más, necesito una pileta", None),
    # "Trying it as a new user would":
    ("tomé muchas pastillas", "acute"),
    ("necesito hablar con una persona real", "help"),
    ("ayuda", "help"),
]


@pytest.mark.parametrize("text, tier", ISSUE_EXAMPLES)
def test_each_example_of_the_issue_gets_its_tier(text, tier):
    assert assess(text).tier == tier


# The rules' own mechanics (weak signals adding up, decay, a height) are tested with the
# learned model silent: the model reads some of these ambiguous one-liners as risk by itself
# (tests/test_crisis_model.py tests what it adds).


def test_the_issue_dialog_is_risk_at_its_third_turn_read_with_the_first_two():
    state = RiskState()
    tiers = [assess(text, state, SILENT).tier for text in
             ("estoy cansada de todo", "ya lo decidí", "mañana ya no voy a estar")]
    assert tiers == [None, None, "risk"]
    # The same third message alone is also read as risk ("ya no voy a estar" is final);
    # the weak first two alone are not.
    assert assess("estoy cansada de todo", model=SILENT).tier is None
    assert assess("ya lo decidí", model=SILENT).tier is None


def test_the_issue_dialog_with_the_learned_model_is_risk_by_its_third_turn():
    state = RiskState()
    tiers = [assess(text, state).tier for text in
             ("estoy cansada de todo", "ya lo decidí", "mañana ya no voy a estar")]
    assert tiers[0] is None and tiers[2] == "risk"


def test_weak_signals_add_up_only_within_a_conversation():
    state = RiskState()
    assert assess("nadie se va a dar cuenta", state, SILENT).tier is None
    assert assess("ya lo decidí", state, SILENT).tier == "risk"
    alone = RiskState()
    assert assess("ya lo decidí", alone, SILENT).tier is None


def test_a_quiet_message_is_never_flagged_by_the_past_alone():
    state = RiskState()
    assert assess("quiero morirme", state).tier == "risk"
    assert assess("bueno, hoy comí fideos con mi hermana", state).tier is None


def test_signals_decay_with_turns():
    state = RiskState()
    assess("estoy cansada de todo", state, SILENT)
    for _ in range(8):
        assess("hoy comí fideos con mi hermana", state, SILENT)
    assert assess("ya lo decidí", state, SILENT).tier is None


def test_a_height_earlier_in_the_conversation_makes_risk_acute():
    state = RiskState()
    assert assess("estoy en la terraza del edificio, no podía dormir", state, SILENT).tier is None
    assert assess("la verdad que es un paso y se termina todo esto", state, SILENT).tier == "acute"


# --- the state: numbers only, round trip --------------------------------------------------------


def test_state_round_trips_through_a_json_dict_of_numbers():
    state = RiskState()
    for text in ("estoy cansada de todo", "ya lo decidí", "mañana ya no voy a estar"):
        assess(text, state)
    state.reminders_left = 2
    data = json.loads(json.dumps(state.to_dict()))
    assert RiskState.from_dict(data) == state
    numbers = [data["alert"], data["turns"], data["reminders_left"], *data["signals"].values()]
    assert all(isinstance(n, (int, float)) for n in numbers)
    assert "cansada" not in json.dumps(data) and "decid" not in json.dumps(data)
    # The restored state reads the next turn exactly as the original would.
    restored = RiskState.from_dict(data)
    assert assess("chau", restored) == assess("chau", state)


@pytest.mark.parametrize("data", [None, [], {"signals": "x"}, {"alert": "high"},
                                  {"signals": {"mystery": 3, "despair": "a"}}, {"turns": -5}])
def test_a_bad_stored_state_reads_as_a_fresh_one(data):
    state = RiskState.from_dict(data)
    assert state.signals == {} and state.alert == 0.0 and state.turns == 0


# --- decoration per tier ----------------------------------------------------------------------


def layer(**safety) -> CrisisLayer:
    return CrisisLayer(SafetyConfig(**safety), Metrics())


def answered(text="Te escucho.") -> Reply:
    return Reply(text, Kind.ANSWERED, "t1")


def test_acute_puts_the_emergency_number_first_and_asks_to_call_now():
    crisis = layer()
    reply = crisis.decorate(answered(), RiskState(), "acute")
    assert reply.crisis and reply.tier == "acute"
    assert reply.text.startswith(texts.CRISIS_ACUTE.split("{")[0])
    assert reply.text.index("911") < reply.text.index("Te escucho.")
    assert "112" in reply.text and "107" in reply.text and "llamá ahora" in reply.text
    assert reply.resources == SafetyConfig().acute_resources  # structured, for tel: links


def test_risk_gives_the_crisis_lines_after_the_reply():
    reply = layer().decorate(answered(), RiskState(), "risk")
    assert reply.text.startswith("Te escucho.") and "135" in reply.text and "024" in reply.text
    assert reply.crisis and reply.tier == "risk"


def test_third_party_gives_how_to_help_and_the_lines():
    reply = layer().decorate(answered(), RiskState(), "third_party")
    assert "escuchala sin juzgar" in reply.text and "135" in reply.text and "911" in reply.text
    assert reply.tier == "third_party"


def test_offline_third_party_speaks_to_the_one_who_worries_not_as_if_they_were_at_risk():
    offline = Reply("Contame un poco más.", Kind.OFFLINE, "t1")
    reply = layer().decorate(offline, RiskState(), "third_party")
    assert reply.text.startswith(texts.CRISIS_THIRD_PARTY_SUPPORT)
    assert "¿Estás a salvo" not in reply.text and "escuchala sin juzgar" in reply.text


def test_help_gives_where_a_person_answers_even_offline():
    crisis = layer()
    offline = Reply("Probá respirar en 4 tiempos...", Kind.OFFLINE, "t1")
    reply = crisis.decorate(offline, RiskState(), "help")
    assert "respirar" not in reply.text  # never a breathing exercise to "persona real"
    assert "no una persona" in reply.text and "024" in reply.text and reply.tier == "help"


@pytest.mark.parametrize("outcome", [Kind.BUSY, Kind.RATE_LIMITED, Kind.ERROR,
                                     Kind.SHUTTING_DOWN, Kind.OFFLINE, Kind.FALLBACK])
def test_a_reply_that_is_not_an_answer_becomes_the_support_line(outcome):
    reply = layer().decorate(Reply("Demasiados mensajes.", outcome, "t1"), RiskState(), "risk")
    assert reply.text.startswith(texts.CRISIS_SUPPORT) and "Demasiados" not in reply.text


def test_resources_per_tier_are_configuration():
    crisis = layer(acute_resources=("Emergencias: 999",), resources=("Línea X: 555",))
    assert "999" in crisis.decorate(answered(), RiskState(), "acute").text
    assert "555" in crisis.decorate(answered(), RiskState(), "risk").text
    assert crisis.resources("acute") == ("Emergencias: 999",)


def test_reminders_follow_a_crisis_and_live_in_the_state():
    crisis = layer(reminder_turns=2)
    state = RiskState()
    crisis.decorate(answered(), state, "risk")
    stored = RiskState.from_dict(state.to_dict())  # a reconnect in between
    first = crisis.decorate(answered("Sigo acá."), stored, None)
    command = crisis.decorate(Reply("Comandos...", Kind.COMMAND, "t3"), stored, None)
    second = crisis.decorate(answered("Contame."), stored, None)
    third = crisis.decorate(answered("Bien."), stored, None)
    assert first.text.endswith(texts.CRISIS_REMINDER) and second.text.endswith(texts.CRISIS_REMINDER)
    assert command.text == "Comandos..." and third.text == "Bien."


def test_goodbye_in_the_reminder_window_gets_the_full_resources():
    crisis = layer()
    state = RiskState()
    crisis.decorate(answered(), state, "risk")
    goodbye = crisis.decorate(Reply("Chau.", Kind.GOODBYE, "t2", close=True), state, None)
    assert "135" in goodbye.text


def test_help_does_not_start_reminders_and_an_empty_reply_is_left_alone():
    crisis = layer()
    state = RiskState()
    crisis.decorate(answered(), state, "help")
    assert state.reminders_left == 0
    assert crisis.decorate(Reply("", Kind.ANSWERED), state, "risk").text == ""


def test_check_counts_crisis_tiers_by_transport_only():
    metrics = Metrics()
    crisis = CrisisLayer(SafetyConfig(), metrics)
    state = RiskState()
    assert crisis.check(state, "quiero morirme", "websocket") == "risk"
    assert crisis.check(state, "ayuda", "websocket") == "help"
    assert crisis.check(state, "hola", "websocket") is None
    count = metrics.registry.get_sample_value("psicoia_crisis_detections_total",
                                              {"transport": "websocket"})
    assert count == 1.0
    assert state.turns == 3


def test_most_urgent_tier_wins():
    assert most_urgent(None, "help") == "help"
    assert most_urgent("third_party", "risk") == "risk"
    assert most_urgent("risk", "acute", None) == "acute"
    assert most_urgent(None, None) is None


def test_no_message_text_category_or_tier_in_any_log_line():
    crisis = layer()
    state = RiskState()
    secret = "quiero morirme esta noche, ya tengo las pastillas juntas"
    with captured_logs() as output:
        tier = crisis.check(state, secret, "tcp")
        crisis.decorate(answered(), state, tier)
        assess("mi amiga se quiere matar")
    logged = output.getvalue()
    for word in ("morirme", "pastillas", "ideation", "plan", "acute", "risk", "third_party"):
        assert word not in logged


# --- the model's second opinion ---------------------------------------------------------------


class Opinion:
    """A SecondOpinion over a real ChatProvider and the fake provider, on a Clock."""

    def __init__(self, api_key="test-key", **safety) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(clock=self.clock)
        self.stub = StubTreq(self.fake)
        config = make_config(api_key=api_key, llm={"max_retries": 0, "pacing": False,
                                                   "timeout_seconds": 30},
                             safety={"classifier": "auto", **safety})
        self.provider = ChatProvider(config.llm, api_key, self.clock,
                                     self.stub if api_key else None, random=lambda: 0.0)
        self.opinion = SecondOpinion(self.provider, config.safety, self.clock)

    def ask(self, *texts_: str) -> Deferred:
        result = self.opinion.ask(list(texts_), "trace-1")
        self.stub.flush()
        return result

    def run(self, seconds: float, step: float = 0.5) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.stub.flush()


def test_risk_found_by_the_model_only():
    """Wording the rules miss: the model's "risk" adds the resources. (Read by the rules
    alone: the learned model, retrained on more data, now reads this one too.)"""
    text = "las cosas van a ser más fáciles para todos desde el lunes"
    assert assess(text, None, SILENT).tier is None
    check = Opinion()
    check.fake.push(Scripted(body=completion("risk")))
    model_tier = fired(check.ask(text))
    assert model_tier == "risk"
    assert most_urgent(assess(text, None, SILENT).tier, model_tier) == "risk"
    request = check.fake.requests[0]["json"]
    assert request["max_tokens"] <= 8 and text in request["messages"][-1]["content"]


def test_risk_found_by_both():
    text = "quiero morirme"
    check = Opinion()
    check.fake.push(Scripted(body=completion("risk")))
    assert most_urgent(assess(text).tier, fired(check.ask(text))) == "risk"


def test_the_model_cannot_remove_what_the_rules_found():
    check = Opinion()
    check.fake.push(Scripted(body=completion("none")))
    assert most_urgent(assess("ya me tomé todas las pastillas").tier,
                       fired(check.ask("ya me tomé todas las pastillas"))) == "acute"


def test_a_failing_provider_gives_none_and_the_rules_still_work():
    check = Opinion()
    check.fake.push(Scripted(status=500, body=b"{}"))
    assert fired(check.ask("quiero morirme")) is None
    assert assess("quiero morirme").tier == "risk"
    assert check.opinion.in_flight == 0


def test_a_slow_provider_gives_none_by_the_deadline():
    check = Opinion(classifier_timeout_seconds=2)
    check.fake.push(Scripted(hang=True))
    result = check.ask("me siento un peso")
    box: list = []
    result.addBoth(box.append)
    check.run(1.5)
    assert box == []
    check.run(1.0)
    assert box == [None]
    assert check.opinion.in_flight == 0


def test_its_own_budget_answers_none_at_once_when_full():
    check = Opinion(classifier_max_in_flight=1)
    check.fake.push(Scripted(hang=True))
    first = check.ask("uno")
    assert fired(check.ask("dos")) is None  # no queue, no wait
    assert len(check.fake.requests) == 1
    first.cancel()


def test_off_or_offline_never_calls_the_provider():
    assert fired(Opinion(classifier="off").ask("quiero morirme")) is None
    offline = Opinion(api_key=None)
    assert fired(offline.ask("quiero morirme")) is None
    assert offline.fake.requests == []


def test_a_guard_model_is_asked_by_name_and_read_by_its_categories():
    check = Opinion(classifier_model="meta-llama/llama-guard-4-12b")
    check.fake.push(Scripted(body=completion("unsafe\nS11")))
    assert fired(check.ask("no quiero seguir", "ya está todo listo")) == "risk"
    request = check.fake.requests[0]["json"]
    assert request["model"] == "meta-llama/llama-guard-4-12b"
    assert [m["role"] for m in request["messages"]] == ["user", "user"]
    assert parse("safe", guard=True) is None and parse("unsafe\nS1", guard=True) is None


@pytest.mark.parametrize("answer, tier", [("risk", "risk"), ("Acute.", "acute"),
                                          ("third_party", "third_party"), ("none", None),
                                          ("I cannot help with that", None), ("", None)])
def test_the_one_word_answer_is_parsed_strictly(answer, tier):
    assert parse(answer, guard=False) == tier


def test_the_second_opinion_logs_no_content_and_no_verdict():
    check = Opinion()
    check.fake.push(Scripted(body=completion("risk")))
    with captured_logs() as output:
        assert fired(check.ask("me quiero ir para siempre de acá")) == "risk"
    logged = output.getvalue()
    assert "siempre" not in logged and '"risk"' not in logged and "risk " not in logged


def test_the_shipped_model_is_read_when_the_layer_is_made_not_at_the_first_message(monkeypatch):
    monkeypatch.setattr(learned, "_DEFAULT", [])
    CrisisLayer(make_config().safety)
    assert learned._DEFAULT and learned._DEFAULT[0] is learned.default_model()
