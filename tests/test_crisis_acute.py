"""Acute messages get the emergency number first, by family, on wording the tuner wrote for these
tests (docs/safety.md, "Acute: the emergency number first").

Families: an instrument in hand, at the skin or in the mouth; blood that does not stop or a
cut too deep; an overdose or a poison already taken; at a height or in the water now; gas or
charcoal in a closed room; on the tracks or the road now. Each has messages that must get
``acute`` and everyday look-alikes that must stay quiet. Rules-only tests pass ``SILENT`` (a
model that never speaks) so they say what the patterns do whatever the shipped weights are;
the model's part is tested with small made-up models of the real class.
"""

from __future__ import annotations

import pytest

from psicoia.chat.detector import RiskState, assess
from psicoia.chat.detector.index import RULES, in_reach
from psicoia.chat.detector.learned import SILENT
from psicoia.chat.detector.rules import MASKED_MARGIN, _raised, normalize
from tests.test_crisis_families import made_up

# A risk message (rules alone) whose act is in the present: raised to acute.
RISK_WITH_AN_ACT = [
    # an instrument in hand, at the skin, pointed or loaded
    "tengo ganas de lastimarme y la hojita ya está en la mano",
    "me quiero cortar, tengo el cúter apoyado en la muñeca",
    "quiero matarme, tengo el bisturí de mi vieja acá conmigo",
    "quero morrer, tô com a lâmina na mão",
    "i want to die and the razor blade is in my hand right now",
    "me quiero morir, tengo la pistola apuntándome a la cabeza",
    # pills in the hand or the mouth
    "no quiero vivir más, tengo las pastillas en la mano",
    # a cord at the neck
    "me quiero matar, ya me puse el cinturón al cuello",
    "ya no quiero vivir, até la cuerda a la viga",
    # at a height or in the water now
    "me quiero morir, estoy subida a la baranda del balcón",
    "ya no quiero vivir, estoy sentado en el alféizar",
    "quiero morirme, el agua del río ya me cubre el pecho",
    # on the road now
    "me quiero matar, estoy parado en el medio de la ruta",
    # the vehicle itself running in a closed garage
    "no quiero seguir, el auto está prendido en el garage cerrado",
    "quiero acabar con todo, el coche lleva encendido en el garaje y yo adentro",
    "i want to end it, the car is running in the garage and I'm inside",
]


@pytest.mark.parametrize("text", RISK_WITH_AN_ACT)
def test_a_risk_message_with_an_act_in_the_present_is_acute(text):
    assessment = assess(text, None, SILENT)
    assert assessment.tier == "acute", assessment


# Physical emergencies: acute by themselves, whatever the intent.
EMERGENCIES = [
    # an overdose or a poison already taken
    "me tomé todas las pastillas del frasco",
    "me tragué veinte clonazepam hace un rato",
    "tomei 30 comprimidos de rivotril",
    "i took 25 of my sleeping pills an hour ago",
    "me he bebido la lejía del baño",
    "just drank the weed killer",
    "me tomé los antidepresivos de dos meses juntos",
    "me inyecté toda la insulina de la semana",
    # blood that does not stop, a cut too deep
    "me corté el brazo y la sangre no para",
    "cut way too deep and i can't stop the bleeding",
    "me cortei e o sangue não para",
    "hay sangre por todos lados, el corte es muy profundo",
    # an attempt just made
    "me ahorqué con la sábana y se rompió, estoy en el piso",
    "tried to hang myself with a cable and it broke",
    # a weapon at the head, a blade at the throat, the safety off
    "tengo el revólver en la sien",
    "to com a faca encostada no pescoço",
    "the gun is loaded, safety off",
    # on the tracks waiting; at the window with the legs out
    "estoy en las vías esperando que pase el tren",
    "sentada en la ventana del piso 9 con las piernas afuera",
]


@pytest.mark.parametrize("text", EMERGENCIES)
def test_a_physical_emergency_is_acute_by_itself(text):
    assessment = assess(text, None, SILENT)
    assert assessment.tier == "acute", assessment


# Everyday look-alikes of the same families: quiet, rules alone.
LOOKALIKES = [
    "tengo el cuchillo en la mano, estoy picando cebolla para la salsa",
    "tengo la tijera en la mano, le estoy cortando el flequillo a mi hija",
    "me regalaron una navaja suiza para ir de campamento",
    "me tomé la pastilla como me dijo el médico",
    "me tomé todas las cervezas de la heladera anoche",
    "took two ibuprofen for my headache, feeling better",
    "me tomé dos mates y un café, estoy re despierto",
    "me sale sangre de la nariz y no para, me pasa con el calor",
    "el dentista me sacó una muela y me sangra la encía",
    "me raspé la rodilla en el skate, sangra un poco",
    "mañana me hacen análisis de sangre en ayunas",
    "estoy en la terraza tomando mate con los chicos",
    "estoy en el andén esperando el tren de las 8",
    "soy maquinista y hoy un auto quedó parado en las vías",
    "prendí el carbón para el asado, vengan",
    "me colgué mirando series y me acosté a las 3",
    "me metí al mar, el agua me cubre el pecho, está buenísima",
    "este trabajo me tiene con la soga al cuello",
]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_everyday_look_alikes_of_the_acute_families_stay_quiet(text):
    assessment = assess(text, None, SILENT)
    assert assessment.tier is None, assessment


def test_someone_elses_overdose_gets_the_emergency_numbers_too():
    # acute or third_party: both replies put the emergency numbers first
    assert assess("mi hermano se tomó todas las pastillas, qué hago",
                  None, SILENT).tier in ("acute", "third_party")
    assert assess("mi amiga dice que se quiere matar", None, SILENT).tier == "third_party"


def test_a_negated_act_is_not_acute():
    assert assess("no me tomé todas las pastillas, tranqui, las tiré", None, SILENT).tier != "acute"


@pytest.mark.parametrize("text", [
    "ayer me corté más profundo de lo normal",  # done, not bleeding now
    "tengo el revólver de mi abuelo cargado en el cajón, lo pienso usar esta semana",
    "me estoy cortando todas las noches desde que se fue",  # a habit, not now
    "pensé en hacerlo con el auto prendido en el garage cerrado",  # the means of a plan
])
def test_plans_and_habits_stay_risk(text):
    assert assess(text, None, SILENT).tier == "risk"


def test_thinking_about_walking_into_the_sea_is_not_acute():
    assert assess("i keep thinking about walking into the sea and not coming back",
                  None, SILENT).tier != "acute"


# --- a sure cue on a message with no tier but some evidence -----------------------------------


def test_a_sure_cue_with_a_weak_signal_is_acute_and_alone_is_quiet():
    assert assess("tengo la cuerda en el cuello", None, SILENT).tier is None
    assert assess("no aguanto más, tengo la cuerda en el cuello", None, SILENT).tier == "acute"


def test_a_sure_cue_with_the_models_signal_is_acute_a_weak_cue_is_not():
    model = made_up(bias=-5.0, weights={"oscuro": 4.5}, confident=3.0, signal=-1.0)
    # log-odds -0.5: the model's mid signal, not a tier
    assert assess("todo oscuro, el agua ya me llega al pecho", None, model).tier == "acute"
    assert assess("el agua ya me llega al pecho", None, model).tier is None
    # being on a terrace is a cue only for a message already at risk
    assert assess("todo oscuro, estoy en la terraza", None, model).tier is None


def test_an_everyday_frame_turns_a_moderately_confident_model_tier_into_a_weak_signal():
    nose = "me sale sangre de la nariz y no para"
    sure = made_up(bias=-5.0, weights={"naris": 5.0 + 3.0 + MASKED_MARGIN + 1.0}, confident=3.0)
    unsure = made_up(bias=-5.0, weights={"naris": 5.0 + 3.0 + MASKED_MARGIN - 1.0}, confident=3.0)
    quiet = assess(nose, None, unsure)
    assert quiet.tier is None and "masked" in quiet.categories and "model" in quiet.categories
    assert assess(nose, None, sure).tier is not None


def test_the_state_after_an_acute_turn_keeps_the_reminder():
    state = RiskState()
    assert assess("me tomé todas las pastillas del frasco", state, SILENT).tier == "acute"
    assert state.alert > 0


# --- the act cues' anchors never change a verdict -------------------------------------------


@pytest.mark.parametrize("text", RISK_WITH_AN_ACT + EMERGENCIES + LOOKALIKES)
def test_act_cues_in_reach_give_the_same_verdict_as_every_cue(text):
    for variant in (text, text.upper(), "che " * 40 + text, text.replace(" ", ", ")):
        normal = normalize(variant)
        reach = [RULES[i] for i in in_reach(normal)]
        for tier, groups, signal in (("risk", (), False), (None, ("despair",), False),
                                     (None, (), True), ("help", (), False)):
            assert _raised(normal, reach, tier, groups, signal) == _raised(
                normal, list(RULES), tier, groups, signal), (variant, tier)


def test_one_or_two_short_words_get_no_tier_from_the_model_alone():
    model = made_up(bias=-5.0, weights={"ahora": 9.0}, confident=3.0, signal=0.0)
    short = assess("ahora sí", None, model)
    assert short.tier is None and short.categories == ("model",)
    assert assess("ahora sí, ahora mismo lo digo", None, model).tier == "risk"
