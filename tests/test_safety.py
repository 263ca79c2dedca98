"""The crisis detector (psicoia/chat/detector) on its labelled corpora and on targeted cases.

Numbers and method: docs/safety.md. The thresholds are the issue's: recall on risk >= 0.95 and
false-positive rate <= 0.10 on tests/data/crisis_corpus.tsv.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from psicoia import config as config_module
from psicoia import texts
from psicoia.chat.detector import normalize as norm
from psicoia.chat.detector import rules as safety
from tests import anchor_shapes, safety_eval
from psicoia.chat.detector.rules import assess, in_reach, is_risk, normalize

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
    done = subprocess.run([sys.executable, "-m", "tests.safety_eval", str(CORPUS)],
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
    "jaja bueno no es chiste, me quiero morir",  # laughter said to be serious still counts
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


def test_laughter_turns_ideation_hyperbole_into_a_weak_signal():
    """ "me quiero matar jaja mandé el audio al grupo equivocado" is a look-alike: alone it gets
    no tier, but it still counts as despair, which adds up with other signals."""
    joke = assess("me quiero matar jaja mandé el audio al grupo equivocado")
    assert joke.tier is None and "despair" in joke.categories
    assert assess("me quiero matar jaja, ya lo decidí, es esta noche").tier == "risk"
    assert assess("jaja me quiero morir en serio").tier == "risk"
    assert assess("me quiero cortar jaja").tier == "risk"  # self-harm is never downgraded


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
    assert defaults.safety.resources == texts.CRISIS_RESOURCES_DEFAULT
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


# --- the fast path (rules.py, section 5): never changes a verdict ----------------------------
#
# ``assess`` runs only the patterns whose anchors ``in_reach`` finds in the normalised text, and
# ``normalize`` skips steps that cannot change the text. Both are only allowed to be faster:
# these tests compare them with the plain, slow versions (written out below) and prove,
# pattern by pattern, that no match lacks an anchor (tests/anchor_shapes.py).

HOLDOUTS = [DATA / "crisis_holdout.tsv", DATA / "crisis_holdout2.tsv"]
ALL_CORPORA = [CORPUS, *HOLDOUTS]


def reference_normalize(text: str) -> str:
    """``normalize`` without its shortcuts: every step, always, in order."""
    folded = text.casefold().replace("'", "").replace("\u2019", "")
    folded = re.sub(r"[.!?¡¿;:,()\[\]\n\r]+", " | ", folded)
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
    if re.search(r"[0-9@$]", folded):
        folded = re.sub(r"[a-z0-9@$]*[a-z][a-z0-9@$]*",
                        lambda m: m.group(0).translate(norm._LEET), folded)
    folded = re.sub(r"[^a-z0-9| ]+", " ", folded)
    folded = " ".join(folded.split())
    folded = re.sub(r"(?<![a-z])(?:[a-z] ){3,}[a-z](?![a-z])",
                    lambda m: m.group(0).replace(" ", ""), folded)
    folded = re.sub(r"c(?=[ei])", "s", folded).replace("z", "s")
    folded = re.sub(r"([a-z])\1+", r"\1", folded)
    words = []
    for word in folded.split(" "):
        if word in norm._WORDS:
            words.append(norm._WORDS[word])
        else:
            words.append(norm._GLUED.sub(" ", word, count=1) if len(word) >= 11 else word)
    return f" {' '.join(words)} "


def full_detector(text: str) -> tuple:
    """``match_groups`` without the pre-check: every look-alike masked, every pattern tried."""
    return safety._match(reference_normalize(text), list(safety._RULES))


def corpus_texts() -> list[str]:
    texts_ = [e.text for path in ALL_CORPORA for e in safety_eval.load(path)]
    return texts_ + [row.text for row in safety_eval.load_singles(safety_eval.DEV / "singles.tsv")]


# Variants people actually type, each a function of the text.
_ACCENTS_ON = str.maketrans({"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú", "n": "ñ"})
_DIGIT_SWAPS = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_FILLER = ("hola che la verdad no sé qué decirte hoy fue un día largo en el laburo y mi vieja "
           "me llamó tres veces por el tema del alquiler así que nada te cuento un poco ")
VARIANTS = {
    "upper": str.upper,
    "accents off": lambda t: unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode(),
    "accents on": lambda t: t.translate(_ACCENTS_ON),
    "repeated letters": lambda t: re.sub(r"([aeiou])", r"\1\1\1", t, count=3),
    "digit swaps": lambda t: t.translate(_DIGIT_SWAPS),
    "extra spaces": lambda t: "  " + t.replace(" ", "   \t ") + " ",
    "spaced out": lambda t: " ".join(t),
    "chat spelling": lambda t: t.replace("que", "q").replace("quiero", "kiero"),
    "in long filler": lambda t: _FILLER * 8 + t + ". " + _FILLER * 4,
    "pipes glued": lambda t: "|" + t.replace(" ", "| ", 1) + "|",  # "|" stays on its word
    "punctuation": lambda t: "¡¡" + t.replace(" ", ", ") + "!!!",
    "vowels dropped": lambda t: re.sub(r"(?<=[a-z][a-z])[aeiou](?=[a-z]{2})", "", t, count=2),
}


def assert_fast_path_is_safe(text: str) -> None:
    fast = safety.match_groups(text)
    full = full_detector(text)
    assert fast == full, (text, fast, full)


def test_normalize_equals_the_reference_on_every_corpus_row_and_variant():
    for text in corpus_texts():
        for variant in [text, *(make(text) for make in VARIANTS.values())]:
            assert safety.normalize(variant) == reference_normalize(variant), variant


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pre_check_never_skips_a_message_the_full_detector_flags(variant):
    make = VARIANTS[variant]
    flagged = 0
    texts_ = corpus_texts()
    if variant == "in long filler":  # each text costs every pattern over ~1.5 KB: a sample
        texts_ = texts_[::7]
    for text in texts_:
        assert_fast_path_is_safe(make(text))
        flagged += bool(full_detector(make(text)))
    assert flagged > 0, "the variant should keep some messages at risk"


def test_pre_check_is_safe_on_random_mutations():
    """Seeded random edits of corpus rows and risk phrases (bounded, about 3,000 texts)."""
    rng = random.Random(20261125)
    seeds = corpus_texts() + RISK
    pieces = ["|", "!", "¿", ",", "'", "’", "1", "4", "0", "@", "$", "2", "_", "-", " ", "  ",
              "á", "Ñ", "😢", "ﬁ", "\t", "jaja", " no ", " pero ", "q", "im", "x", "d", "xq"]
    flagged = 0
    for _ in range(3000):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            spot = rng.randrange(len(chars) + 1)
            action = rng.randrange(4)
            if action == 0:
                chars.insert(spot, rng.choice(pieces))
            elif action == 1 and spot < len(chars):
                chars.insert(spot, chars[spot] * rng.randint(1, 3))  # repeated letter
            elif action == 2 and spot < len(chars):
                del chars[spot]
            elif action == 3 and spot < len(chars):
                chars[spot] = chars[spot].upper()
        text = "".join(chars)
        assert safety.normalize(text) == reference_normalize(text), text
        assert_fast_path_is_safe(text)
        flagged += bool(full_detector(text))
    assert flagged > 500  # most mutations of risk text stay risk: the test exercises both sides


@pytest.mark.parametrize("text", [
    "quiero morirme|", "a|quiero morirme", "QUIERO   MORIRME!!!", "m o r i r m e", "me kiero m4t4r",
    "2q me quiero matar", "no aguanto más", "no aguanto mas|", "i can't go on", "kms",
    "tengoganasdemorirme", "kiero morirm", "tdo el dia pensando en matrme",
])
def test_pre_check_lets_through_spellings_the_patterns_read(text):
    assert is_risk(text)
    assert_fast_path_is_safe(text)


@pytest.mark.parametrize("text", [
    "me peleé con mi novia por una pavada y ahora no me contesta los mensajes",
    "I had a rough week at work and I just need to vent for a bit",
    "feeling a bit anxious about my job interview on Monday, any tips?",
    "gracias por escucharme, me sirvió hablar un rato",
])
def test_ordinary_messages_take_the_fast_path(text):
    """Few or no patterns run (this is what makes the check cheap; no timing here)."""
    assert len(in_reach(safety.normalize(text))) <= 4


def test_every_pattern_has_anchors_and_no_stale_entry_is_kept():
    sources = {source for sources in safety._GROUPS.values() for source in sources}
    assert sources <= set(safety.ANCHORS), sources - set(safety.ANCHORS)
    assert set(safety.ANCHORS) <= sources, "regenerate: python -m tests.anchor_shapes --write"


@pytest.mark.parametrize("group", list(safety._GROUPS))
def test_every_way_a_pattern_can_match_contains_one_of_its_anchors(group):
    """The proof that the pre-check cannot skip a match (tests/anchor_shapes.py)."""
    shapes = 0
    for rule in safety._RULES:
        if rule.group != group:
            continue
        missing = anchor_shapes.uncovered(rule.source, rule.anchors)
        assert not missing, f"regenerate the anchors of {rule.source!r}: {missing[:5]}"
        shapes += len(anchor_shapes.pattern_shapes(rule.source))
    assert shapes > 0


def test_look_alike_masks_end_at_a_word_boundary():
    """Masking replaces whole words only, so the words the patterns then read are words of
    the normalised text the pre-check reads."""
    for source in safety.LOOKALIKES:
        for shape in anchor_shapes.pattern_shapes(source):
            assert shape and shape[-1] is anchor_shapes.END, (source, shape)


def test_shape_expansion_catches_a_missing_anchor():
    """The proof above must be able to fail: a pattern with no anchor is reported."""
    source = norm.fold_pattern(r"\bquiero (volar|nadar) lejos\b")
    anchors = safety._Anchors.parse("volar")
    assert anchor_shapes.uncovered(source, anchors) == [[" quiero nadar lejos "]]
    assert anchor_shapes.uncovered(source, safety._Anchors.parse(anchor_shapes.choose(source))) == []
