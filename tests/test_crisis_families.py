"""The crisis detector's look-alike families, the model's doubt, act cues and the carried state
in an everyday frame (docs/safety.md, "Precision: families, doubt, act cues").

Rules-only tests pass ``SILENT`` (a model that never speaks) so they say what the patterns do
whatever the shipped weights are; the doubt and the alert are tested with small made-up models
of the real class.
"""

from __future__ import annotations

import pytest

from psicoia.chat.detector import LearnedModel, RiskState, assess
from psicoia.chat.detector.learned import SILENT
from psicoia.chat.detector.signals import WEAK_WEIGHTS


def made_up(bias: float, doubt: float | None = -2.0, weights: dict | None = None,
            confident: float = 2.0, signal: float = 0.0) -> LearnedModel:
    """A real LearnedModel whose log-odds are ``bias`` plus ``weights`` of the words present."""
    data = {"format": 1, "prefix": 5, "classes": ["acute", "risk", "third_party", "help"],
            "confident": confident, "signal": signal,
            "any": {"bias": bias, "weights": weights or {}},
            "tier": {"bias": [0.0, 1.0, 0.0, 0.0], "weights": {}}}
    if doubt is not None:
        data["doubt"] = doubt
    return LearnedModel(data)


# --- look-alike families: the everyday frame is quiet, the risk twin is not ---------------

FAMILIES = [
    # (everyday frame, the same words as risk)
    ("me voy a tirar al río a nadar un rato, hace un calor bárbaro", "me voy a tirar al río"),
    ("vou me jogar no rio pra nadar depois do futebol", "vou me jogar da ponte"),
    ("la soga del tender se cortó y se me cayó la ropa", "ya compré la soga"),
    ("me corté picando cebolla, ya me puse una curita", "me corté a propósito otra vez"),
    ("me cortei fazendo churrasco, nada grave", "me cortei de novo a propósito"),
    ("mi viejo me enseñó a usar la escopeta de aire comprimido", "tengo la escopeta de mi viejo"),
    ("mi padre es cazador y la escopeta está en el armario, sé la combinación",
     None),  # access to a weapon: never masked
    ("escribí mi carta de renuncia, el lunes la entrego", "escribí mi carta de despedida"),
    ("escribí una carta de despedida para mi compañera que se jubila",
     "les dejé una carta de despedida"),
    ("hice el testamento con el escribano, un trámite", "ya hice mi testamento, está todo"),
    ("les dejo la contraseña del wifi en la heladera", "les dejé todas mis contraseñas"),
    ("ya me despedí de todos en el laburo, el lunes arranco en otro lado",
     "ya me despedí de todos"),
    ("me voy al sur dos semanas de vacaciones, cuiden a mis plantas", "cuiden a mis plantas"),
    ("dejé todo ordenado en la oficina antes de irme de vacaciones", "dejé todo ordenado"),
    ("minha mãe vai me matar, bati o carro dela", "vou me matar"),
    ("si mi vieja ve la nota me mata", "me mato"),
    ("muchas gracias por tu ayuda", "ayuda"),
    ("empecé a hacer yoga a ver si ayuda", "necesito ayuda"),
    ("me estoy ahogando en tareas esta semana", "me estoy ahogando"),
    ("prendí el carbón y la parrilla está lista, vengan", "prendí el carbón en el baño cerrado"),
    ("me quero morrer de vergonha, caí na frente de todo mundo", "quero morrer"),
]


@pytest.mark.parametrize("everyday, risk", FAMILIES)
def test_an_everyday_frame_masks_only_its_own_words(everyday, risk):
    if risk is None:  # a risk message that looks like the family: the mask must not reach it
        assert assess(everyday, None, SILENT).tier is not None
        return
    assert assess(everyday, None, SILENT).tier is None
    assert assess(risk, None, SILENT).tier is not None


# --- the model's doubt -------------------------------------------------------------------


def test_a_doubtable_family_on_a_message_the_model_reads_as_ordinary_is_a_weak_signal():
    text = "les dejé una carta de despedida"  # rules: goodbye
    assert assess(text, None, SILENT).tier == "risk"
    assert assess(text, None, made_up(bias=-1.0)).tier == "risk"  # above the doubt level
    doubted = assess(text, None, made_up(bias=-5.0))
    assert doubted.tier is None and "doubted" in doubted.categories
    assert "goodbye" not in doubted.categories
    assert assess(text, None, made_up(bias=-5.0, doubt=None)).tier == "risk"  # no doubt level


@pytest.mark.parametrize("text", [
    "me quiero matar",  # ideation
    "ojalá no despertar mañana",  # passive
    "todos estarían mejor sin mí",  # burden
    "ya me tomé todas las pastillas",  # acute
    "mi amiga me dijo que se quiere matar",  # someone else
    "necesito hablar con una persona real",  # help
])
def test_the_model_never_doubts_the_other_groups(text):
    model = made_up(bias=-9.0)
    assert assess(text, None, model).tier == assess(text, None, SILENT).tier is not None


def test_a_doubted_family_still_adds_up_with_other_signals_and_across_turns():
    model = made_up(bias=-5.0)
    state = RiskState()
    assess("les dejé una carta de despedida", state, model)
    assert state.signals["doubted"] == WEAK_WEIGHTS["doubted"]
    # within one message: a doubted goodbye next to a jump and a time adds up
    together = assess("les dejé una carta, esta noche salto", None, model)
    assert together.tier == "risk" and "doubted" in together.categories


# --- act cues: risk raised to acute, never a flag of their own -----------------------------

@pytest.mark.parametrize("text", [
    "me quiero morir, estoy en el puente",
    "ya no quiero vivir, el agua ya me llega a la cintura",
    "no aguanto más, me tomé todo el blister de clonazepam",
    "quiero matarme, tengo la soga al cuello",
    "me quiero matar, ya estoy del otro lado de la baranda",
    "i want to die, i'm sitting on the ledge",
    "quero morrer, tô na beira da ponte",
])
def test_a_risk_message_with_an_act_cue_gets_the_acute_tier(text):
    assessment = assess(text, None, SILENT)
    assert assessment.tier == "acute"


@pytest.mark.parametrize("text", [
    "me quiero tirar del puente mañana",  # a plan, not an act under way
    "voy a dejar el auto prendido en el garage",
    "me rasco hasta que sangra, no puedo parar",  # habitual, not bleeding now
    "ayer me corté más profundo de lo normal",
    "tengo el revólver de mi abuelo en el cajón, lo pienso usar esta semana",
])
def test_plans_and_habits_stay_risk(text):
    assert assess(text, None, SILENT).tier == "risk"


@pytest.mark.parametrize("text", [
    "estoy en el puente esperando el colectivo",
    "me metí al mar, el agua ya me llega a la cintura, está hermosa",
    "el tren viene lleno a esta hora",
])
def test_an_act_cue_alone_never_flags(text):
    assert assess(text, None, SILENT).tier is None


# --- the carried state in an everyday frame ---------------------------------------------------


def test_a_look_alike_after_a_risk_turn_is_read_alone():
    state = RiskState()
    for turn in ("estoy cansada de todo", "ya lo decidí", "mañana ya no voy a estar"):
        last = assess(turn, state)
    assert last.tier == "risk"  # the dialog, with the shipped model
    heat = assess("este calor me está matando, no doy más, necesito una pileta", state)
    assert heat.tier is None and "masked" in heat.categories
    # the state is still on alert: a weak signal without an everyday frame is read as risk
    assert assess("no doy más", state).tier == "risk"


def test_the_alert_does_not_lift_a_turn_whose_only_signal_is_the_model():
    model = made_up(bias=-5.0, weights={"tatu": 5.5}, signal=0.0)  # "tatu": a mid verdict
    state = RiskState()
    assert assess("me quiero matar", state, model).tier == "risk"
    assert state.alert == 1.0
    lone = assess("tatu", state, model)
    assert lone.tier is None and lone.categories == ("model",)


def test_the_evidence_carried_after_a_very_clear_risk_turn_is_capped():
    model = made_up(bias=-5.0, weights={"tatu": 5.1, "matarme": 15.0}, confident=3.0, signal=0.0)
    state = RiskState()
    assert assess("quiero matarme", state, model).tier == "risk"  # log-odds 10: evidence 10
    assert state.carried_evidence() == 2.0  # not 5.0
    turn = assess("tatu", state, model)  # 0.1 alone: a mid verdict, 2.1 with what is carried
    assert turn.tier is None and turn.categories == ("model",)
