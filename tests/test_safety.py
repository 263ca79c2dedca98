"""The crisis detector (psicoia/safety.py) on its labelled corpus and on targeted cases.

Numbers and method: docs/safety.md. The thresholds are the issue's: recall on risk >= 0.95 and
false-positive rate <= 0.10 on tests/data/crisis_corpus.tsv.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from psicoia import config as config_module
from psicoia import messages, safety_eval
from psicoia.safety import assess, is_risk, normalize

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "crisis_corpus.tsv"
ROOT = Path(__file__).resolve().parent.parent


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_large_mixed_and_well_formed():
    examples = safety_eval.load(CORPUS)
    assert len(examples) >= 150
    assert {e.lang for e in examples} == {"es", "en"}
    categories = {(e.label, e.category) for e in examples}
    for needed in [("risk", "typo"), ("ok", "idiom"), ("ok", "negation"), ("ok", "grief"),
                   ("risk", "self_harm"), ("risk", "plan"), ("risk", "hopelessness")]:
        assert needed in categories
    assert len({e.text for e in examples}) == len(examples), "no duplicate messages"


def test_recall_and_false_positive_rate_meet_the_thresholds_on_the_corpus():
    overall, _ = safety_eval.evaluate(safety_eval.load(CORPUS))
    assert overall.recall >= 0.95, [e.id for e in overall.wrong]
    assert overall.false_positive_rate <= 0.10, [e.id for e in overall.wrong]


def test_recall_on_each_language_alone_meets_the_threshold():
    _, groups = safety_eval.evaluate(safety_eval.load(CORPUS))
    for lang in ("es", "en"):
        assert groups[f"lang={lang}"].recall >= 0.95


def test_eval_script_prints_precision_recall_fpr_and_misclassified_ids():
    out = io.StringIO()
    assert safety_eval.main([str(CORPUS)], out=out) == 0
    text = out.getvalue()
    assert "precision" in text and "recall" in text and "false-positive rate" in text
    overall, _ = safety_eval.evaluate(safety_eval.load(CORPUS))
    for example in overall.wrong:
        assert f"{example.id:4d} " in text


def test_eval_script_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "psicoia.safety_eval", str(CORPUS)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "recall" in done.stdout


def test_eval_rejects_a_malformed_row_naming_its_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tlang\tcategory\ttext\nrisk\tes\tideation\tquiero morirme\nmaybe\tes\tx\n",
                   encoding="utf-8")
    with pytest.raises(ValueError, match=":3:"):
        safety_eval.load(bad)


# --- targeted cases -----------------------------------------------------------------------

# The issue's own examples, and variants of spelling the normaliser must fold.
RISK = [
    "no aguanto más", "quiero morirme", "me quiero matar", "quiero cortarme",
    "quiero terminar con todo", "no quiero vivir más", "mejor si no estuviera",
    "I want to kill myself", "quiero moriiir", "quiero m4tarme", "quiero m0rir",
    "QUIERO   MORIRME", "Me Kiero Matar", "no quiero vivir mas", "me quiero suicidar",
    "no sé, quiero morirme",  # "no sé" is not a negation of what follows the comma
    "no quiero matarme pero lo pienso todo el tiempo",  # a contrast keeps it
    "jaja me quiero morir",  # laughter never cancels
    "i don't want to live anymore", "i wanna die",
]
NOT_RISK = [
    "me muero de risa", "me mató el examen", "la muerte de mi abuelo me dejó muy mal",
    "me muero de hambre", "me muero de ganas de verte", "estamos matando el tiempo",
    "no quiero matarme", "nunca me haría daño", "no me voy a matar", "tengo que cortarme el pelo",
    "this homework is killing me", "i'm dying to see it", "I would never hurt myself",
    "quiero vivir en otro país", "hola, ¿cómo estás?", "135",
]


@pytest.mark.parametrize("text", RISK)
def test_risk_language_is_detected(text):
    assert is_risk(text)


@pytest.mark.parametrize("text", NOT_RISK)
def test_look_alikes_and_negations_are_not_risk(text):
    assert not is_risk(text)


def test_negation_does_not_reach_across_a_clause():
    assert not is_risk("no quiero morirme")
    assert is_risk("no, quiero morirme")


def test_assessment_names_a_category_and_no_content():
    verdict = assess("me quiero cortar las venas")
    assert verdict.risk and verdict.category == "self_harm"
    assert not assess("hola").risk and assess("hola").category is None


@pytest.mark.parametrize("raw, folded", [
    ("ÉSTÁ  BIÉN!!", " esta bien | "),
    ("moriiiir", " morir "),
    ("m4tarme", " matarme "),
    ("m o r i r m e", " morirme "),
    ("llamá al 135", " lama al 135 "),  # numbers stay numbers; "ll" folds like every run
    ("I don't", " i do not "),
])
def test_normalize_folds_case_accents_spacing_repeats_and_digit_swaps(raw, folded):
    assert normalize(raw) == folded


def test_detector_never_raises_on_odd_input():
    for text in ["", " ", "\x00\ufffd", "🙂" * 500, "a" * 5000, "|||", "\n\r\t"]:
        assert assess(text) is not None


# --- configuration ------------------------------------------------------------------------


def test_safety_defaults_match_the_shipped_config(tmp_path):
    shipped = config_module.load(str(ROOT / "config.yaml"), environ={})
    defaults = config_module.load(environ={}, cwd=tmp_path)
    assert shipped.safety == defaults.safety
    assert defaults.safety.resources == messages.CRISIS_RESOURCES_DEFAULT
    text = " ".join(defaults.safety.resources)
    for number in ("135", "(011) 5275-1135", "0800-999-0091", "024", "911", "112"):
        assert number in text


@pytest.mark.parametrize("yaml_text, named", [
    ("safety: {reminder_turns: -1}", "safety.reminder_turns"),
    ("safety: {resources: []}", "safety.resources"),
    ("safety: {resources: [1, 2]}", "safety.resources"),
    ("safety: {resources: ['']}", "safety.resources"),
    ("safety: {crisis_reply_seconds: 0}", "safety.crisis_reply_seconds"),
    ("safety: {colour: red}", "safety.colour"),
])
def test_bad_safety_keys_are_rejected_with_the_key_named(tmp_path, yaml_text, named):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(config_module.ConfigError) as raised:
        config_module.load(str(path), environ={})
    assert str(raised.value).startswith(named)


def test_safety_keys_can_be_overridden_from_the_environment(tmp_path):
    config = config_module.load(environ={"PSICOIA_SAFETY_RESOURCES": "Línea A 111, Línea B 222",
                                         "PSICOIA_SAFETY_REMINDER_TURNS": "0"}, cwd=tmp_path)
    assert config.safety.resources == ("Línea A 111", "Línea B 222")
    assert config.safety.reminder_turns == 0
