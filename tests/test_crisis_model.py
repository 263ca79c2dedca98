"""The learned crisis model (psicoia/chat/detector/learned.py) and its shipped weights.

The shipped file is checked against its training data (always) and against a fresh run of
the training script (when scikit-learn, the ``train`` extra, is installed), so it cannot drift
silently. The wiring tests use small made-up models of the real class, so they say what the
detector does with a verdict whatever the shipped weights are.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from psicoia.chat.detector import LearnedModel, RiskState, assess
from psicoia.chat.detector.features import features
from psicoia.chat.detector.learned import MODEL_FILE, default_model
from psicoia.chat.detector.normalize import normalize
from psicoia.chat.detector.signals import WEAK_WEIGHTS
from tests.crisis_training_files import data_digests

SHIPPED = resources.files("psicoia.chat.detector").joinpath(MODEL_FILE)


def made_up(weights: dict, bias: float = -5.0, tiers: dict | None = None,
            confident: float = 2.0, signal: float = 0.0) -> LearnedModel:
    """A real LearnedModel with hand-set weights: ``weights`` on ``any``, ``tiers`` (feature ->
    4 weights acute/risk/third_party/help) on ``tier``."""
    return LearnedModel({
        "format": 1, "prefix": 5, "classes": ["acute", "risk", "third_party", "help"],
        "confident": confident, "signal": signal,
        "any": {"bias": bias, "weights": weights},
        "tier": {"bias": [0.0, 1.0, 0.0, 0.0], "weights": tiers or {}},
    })


# --- features ---------------------------------------------------------------------------


def test_features_are_words_pairs_and_prefixes_of_the_normalised_text():
    found = features(normalize("Me kiero tomar TODAS las pastillas!!"))
    # repeated letters are folded ("pastillas" -> "pastilas"), as the rules read them
    assert {"quiero", "me quiero", "pastilas", "pasti~", "todas las", "|"} <= found
    assert "me~" not in found  # short words get no prefix
    assert features("") == set()


# --- the shipped file -------------------------------------------------------------------


def test_the_shipped_model_is_compact_and_only_non_zero_weights():
    text = SHIPPED.read_text("utf-8")
    data = json.loads(text)
    # 7,500 training singles (v3 and zeta rows added) give about 520 KB; the bound keeps it
    # package data, not a growing blob (the lookup cost does not depend on it: docs/safety.md)
    assert len(text.encode()) < 600_000
    assert all(w != 0 for w in data["any"]["weights"].values())
    assert all(any(ws) for ws in data["tier"]["weights"].values())
    assert data["signal"] <= data["confident"]


def test_the_shipped_model_was_trained_on_the_data_in_the_repository():
    """Changing a training file without retraining fails here (sha256 of each file)."""
    recorded = json.loads(SHIPPED.read_text("utf-8"))["trained"]["data"]
    assert recorded == data_digests()
    assert not any("heldout" in path for path in recorded)


def test_retraining_with_the_fixed_seed_gives_the_shipped_file_byte_for_byte():
    pytest.importorskip("sklearn")
    from tests import train_crisis_model as train  # noqa: PLC0415
    assert train.main(["--check"]) == 0


@pytest.mark.parametrize("text", [
    "quiero morirme, no aguanto más",
    "ya tengo las pastillas juntas para esta noche",
    "i want to kill myself tonight",
    "quero me matar, não aguento mais",
])
def test_the_shipped_model_reads_clear_risk_as_risk(text):
    verdict = default_model().read(normalize(text))
    assert verdict.tier is not None, verdict


@pytest.mark.parametrize("text", [
    "hola, quería contarte cómo me fue en el examen de hoy",
    "me peleé con mi hermano por la herencia de la casa de la costa",
    "what a nice day, I went for a walk with my dog",
    "gracias, hasta mañana",
])
def test_the_shipped_model_leaves_ordinary_messages_alone(text):
    verdict = default_model().read(normalize(text))
    assert verdict.tier is None and not verdict.signal, verdict


def test_a_malformed_model_is_refused():
    with pytest.raises(ValueError):
        LearnedModel({"format": 99})
    with pytest.raises(ValueError):
        LearnedModel({"format": 1, "prefix": 5})


# --- wiring: the model only adds ---------------------------------------------------------


def test_a_confident_model_gives_a_tier_the_rules_missed():
    model = made_up({"tatu": 9.0})
    assert assess("vi un tatu", model=made_up({})).tier is None
    got = assess("vi un tatu", model=model)
    assert got.tier == "risk" and "learned" in got.categories


def test_the_model_cannot_remove_what_the_rules_found():
    quiet = made_up({}, bias=-50.0)
    assert assess("quiero morirme", model=quiet).tier == "risk"
    assert assess("ya me tomé todas las pastillas", model=quiet).tier == "acute"


def test_the_models_tier_counts_only_where_the_rules_found_no_crisis_tier():
    model = made_up({"tatu": 9.0}, tiers={"tatu": [5.0, 0.0, 0.0, 0.0]})
    assert assess("vi un tatu", model=model).tier == "acute"
    assert assess("quiero morirme tatu", model=model).tier == "risk"  # the rules' tier stands
    assert assess("necesito hablar con una persona real tatu", model=model).tier == "acute"


def test_the_models_help_tier_needs_a_clearer_verdict():
    tiers = {"tatu": [0.0, 0.0, 0.0, 9.0]}
    assert assess("vi un tatu", model=made_up({"tatu": 7.5}, tiers=tiers)).tier is None
    assert assess("vi un tatu", model=made_up({"tatu": 9.0}, tiers=tiers)).tier == "help"
    assert assess("necesito hablar con una persona real", model=made_up({})).tier == "help"


def test_a_mid_confident_verdict_is_a_weak_signal_within_its_turn_and_evidence_across_turns():
    model = made_up({"tatu": 5.5}, confident=2.0, signal=0.0)  # logit 0.5: a signal
    alone = assess("vi un tatu", model=model)
    assert alone.tier is None and "model" in alone.categories
    state = RiskState()
    tiers = [assess("vi un tatu", state, model).tier for _ in range(5)]
    # evidence 0.5, then 0.5 + 0.25, ... carried at half: 0.5 + 0.5 * 0.9375 < 2 at turn 5
    assert tiers == [None] * 5 and "model" not in state.to_dict()["signals"]
    assert state.evidence > 0.9
    assert RiskState.from_dict(state.to_dict()).evidence == state.evidence
    # a clearer turn then reaches the confident level with what was carried
    strong = made_up({"tatu": 5.5, "otra": 1.2}, confident=2.0, signal=0.0)
    assert assess("otra vez un tatu", model=strong).tier is None  # 1.7 alone
    assert assess("otra vez un tatu", state, strong).tier == "risk"  # 1.7 + carried


def test_many_mid_confident_ordinary_turns_never_add_up_alone():
    model = made_up({"tatu": 4.8}, confident=2.0, signal=-1.0)  # logit -0.2: a signal, no evidence
    state = RiskState()
    assert [assess("vi un tatu", state, model).tier for _ in range(20)] == [None] * 20


def test_a_mid_confident_verdict_adds_up_with_a_weak_rule_signal():
    model = made_up({"tatu": 5.5})
    assert assess("ya lo decidí", model=made_up({})).tier is None
    assert assess("ya lo decidí tatu", model=model).tier == "risk"
    assert WEAK_WEIGHTS["model"] + WEAK_WEIGHTS["decision"] >= 1.0


def test_laughter_turns_the_models_tier_into_a_weak_signal():
    model = made_up({"tatu": 9.0})
    joke = assess("vi un tatu jaja", model=model)
    assert joke.tier is None and "model" in joke.categories
    assert assess("vi un tatu jaja, en serio", model=model).tier == "risk"
