"""
Normalisation for the crisis detector: the form every pattern reads (docs/safety.md).

:func:`normalize` folds case, accents, punctuation, spacing, repeated letters, digit swaps and
chat spelling, so ``"Me kiero m4tar!!"`` and ``"me quiero matar"`` read the same; the pattern
helpers fold a pattern the same way, so patterns are written in normal spelling.
"""

from __future__ import annotations

import re
import unicodedata

# --- 1. normalisation ------------------------------------------------------------------------

# Digits and symbols people swap for letters, applied only inside words that also have letters
# ("m4tarme", "m0rir", "k1ll"), so numbers such as "135" or "24" stay numbers.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "@": "a", "$": "s"})
_LEETABLE = re.compile(r"[0-9@$]")
_LEET_RUN = re.compile(r"(?<![a-z0-9@$])(?=[0-9@$]*[a-z])[a-z0-9@$]*[0-9@$][a-z0-9@$]*")
# Punctuation that ends a clause becomes a "|" token: negations and look-ahead rules never
# reach across it ("no sé, quiero morirme" is not a negated "quiero morirme").
_CLAUSE = re.compile(r"[.!?¡¿;:,()\[\]\n\r]+")
_OTHERS_TO_SPACE = bytes(b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789| " else 32
                         for b in range(256))
# Every run of a repeated letter becomes one letter ("moriiir", "mataaar"); patterns are
# collapsed the same way when compiled (:func:`_compile`), so they are written normally.
_REPEATS = re.compile(r"([a-z])\1+")
# Four or more single letters in a row are one spaced-out word ("m o r i r m e").
_SPACED = re.compile(r"(?<![a-z])(?:[a-z] ){3,}[a-z](?![a-z])")
_SPACED_HINT = re.compile(r" [a-z] [a-z] ")

# Chat spellings, abbreviations and English contractions, keyed by their normalised
# (seseo-folded, collapsed) form; applied word by word (a dict lookup per word).
_CHAT = {
    # Spanish chat spelling.
    "q": "que", "ke": "que", "k": "que", "xq": "porque", "pq": "porque", "porq": "porque",
    "prq": "porque", "x": "por", "d": "de", "dl": "del", "m": "me", "t": "te", "s": "se",
    "kiero": "quiero", "qiero": "quiero", "qero": "quiero", "kiere": "quiere", "kerer": "querer",
    "kise": "quise", "qise": "quise", "tdo": "todo", "tds": "todos", "tdos": "todos",
    "tda": "toda", "tdas": "todas", "stoy": "estoy", "toy": "estoy", "stoi": "estoy",
    "estoi": "estoy", "sta": "esta", "stas": "estas", "oy": "hoy", "noxe": "noche",
    "noxes": "noches", "nose": "no se", "pa": "para", "p": "para", "cn": "con", "sn": "sin",
    "dsp": "despues", "dps": "despues", "nunk": "nunca", "nunka": "nunca", "mjr": "mejor",
    "mejr": "mejor", "flia": "familia", "tmb": "tambien", "tb": "tambien", "xfa": "por favor",
    "porfa": "por favor", "plis": "por favor", "bldo": "boludo", "bld": "boludo", "voi": "voy",
    "vo": "voy", "tngo": "tengo", "tng": "tengo", "aka": "aca", "nd": "nada",
    "ns": "no se", "cuand": "cuando", "kuando": "cuando", "vs": "vos", "msj": "mensaje",
    "pastis": "pastillas", "pasti": "pastillas",
    "enserio": "en serio", "aser": "hacer", "aserlo": "hacerlo", "acerlo": "hacerlo",
    "muxo": "mucho", "muxa": "mucha", "muxos": "muchos", "muxas": "muchas", "ablar": "hablar",
    "ablamos": "hablamos", "ablo": "hablo",
    # English chat spelling and contractions.
    "wana": "want to", "gona": "going to", "kms": "kil myself", "u": "you", "ur": "your",
    "im": "i am", "ive": "i have", "id": "i would", "ill": "i will", "dont": "do not",
    "doesnt": "does not", "didnt": "did not", "wont": "will not", "wouldnt": "would not",
    "cant": "can not", "canot": "can not", "isnt": "is not", "theres": "there is",
    "aint": "am not", "tho": "though", "rn": "right now", "idk": "i do not know",
    # Portuguese chat spelling.
    "vc": "voce", "hj": "hoje", "mt": "muito",
}
# Key words whose chat spellings drop a vowel ("matrme", "morirm", "vivr", "suicidarm"):
# every form with one vowel dropped (or the last letter, when it is a vowel) reads as the
# word. Generated, not listed, so a new key word brings its spellings with it.
_KEY_WORDS = """
    amigo amiga hermano hermana morir morirme muera muero muerte muerto muerta matar matarme mato suicidarme suicidio
    suicidar vivir viviendo vida seguir existir desaparecer despertar despertarme cortarme
    cortar corte corto tirarme tirar pastillas sangre soga colgarme ahorcarme puente balcon
    terraza encendedor quemarme lastimarme carga estorbo extranar despedida despedirme
    despedi carta cartas nadie todos todo ganas quiero noche manana decidi pensando dormir
    estoy esta para siempre nunca mejor aguanto aguantar familia
"""
_VOWELS = "aeiou"
# Dropped-vowel forms that are words of their own (Portuguese "quero", Spanish "muro"...).
_REAL_WORDS = frozenset("quero mero muro pente cart nade vida sigo mes tos ganas carga".split())


def _seseo(text: str) -> str:
    """Fold the spellings of the "s" sound most Spanish speakers do not distinguish
    ("suisidarme", "desaparesser"): "ce"/"ci" -> "se"/"si", "z" -> "s"."""
    return text.replace("ce", "se").replace("ci", "si").replace("z", "s")


def fold_word(word: str) -> str:
    """A word as :func:`normalize` leaves it (seseo, then repeated letters collapsed)."""
    return _REPEATS.sub(r"\1", _seseo(word))


def _dropped_vowel_forms(word: str) -> set:
    forms = set()
    for i, char in enumerate(word):
        if char in _VOWELS and 0 < i:
            forms.add(word[:i] + word[i + 1:])
    return {f for f in forms if len(f) >= 4 and sum(c in _VOWELS for c in f) >= 1}


def _build_words() -> dict:
    words = {fold_word(k): " ".join(fold_word(w) for w in v.split()) for k, v in _CHAT.items()}
    keys = {fold_word(w) for w in _KEY_WORDS.split()}
    for key in sorted(keys):
        for form in sorted(_dropped_vowel_forms(key)):
            if form not in keys and form not in words and form not in _REAL_WORDS:
                words[form] = key
        if key.startswith("c") and key[1:2] in "aou":  # "kortarme", "kuando"
            words.setdefault("k" + key[1:], key)
    return words


_WORDS = _build_words()
# Words run together ("tengoganasdemorirme"): a long word that contains one of these stems
# is split before the stem, so the stem's word can match.
_GLUED = re.compile(r"(?<=[a-z]{3})(?=(?:morir|matar|suisid|vivir|cortar|tirarme|despert|desapares)[a-z]*$)")
_GLUED_MIN = 11


def _expand(word: str) -> str:
    found = _WORDS.get(word)
    if found is not None:
        return found
    if len(word) >= _GLUED_MIN:
        return _GLUED.sub(" ", word, count=1)
    return word


def normalize(text: str) -> str:
    """Fold ``text`` into the form the patterns read: lower-case ASCII words and "|" tokens.

    The result starts and ends with a space so patterns can rely on word boundaries. This runs
    on every message on the reactor thread, so each step is skipped when it cannot change the
    text; the steps and their order are the contract (tests/test_safety.py compares it with
    the plain version).
    """
    folded = text.casefold().replace("'", "").replace("\u2019", "")  # "don't" -> "dont"
    folded = _CLAUSE.sub(" | ", folded)
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
    if _LEETABLE.search(folded):
        folded = _LEET_RUN.sub(_unleet, folded)
    folded = " ".join(folded.encode("ascii").translate(_OTHERS_TO_SPACE).decode("ascii").split())
    if _SPACED_HINT.search(folded):
        folded = _SPACED.sub(_join_letters, folded)
    folded = _seseo(folded)
    if _REPEATS.search(folded):
        folded = _REPEATS.sub(r"\1", folded)
    get = _WORDS.get
    folded = " ".join([get(word, word) if len(word) < _GLUED_MIN else _expand(word)
                       for word in folded.split(" ")])
    return f" {folded} "


def _unleet(match: re.Match) -> str:
    return match.group(0).translate(_LEET)


def _join_letters(match: re.Match) -> str:
    return match.group(0).replace(" ", "")


def fold_pattern(pattern: str) -> str:
    """A pattern as the text reads: seseo, letter runs collapsed (never after a backslash)."""
    if not pattern.startswith("\\b"):
        raise ValueError(f"a crisis pattern must start at a word: {pattern!r}")
    return re.sub(r"(?<!\\)([a-z])\1+", r"\1", _seseo(pattern))


def patterns(*patterns: str) -> tuple:
    """Folded pattern sources; each is compiled alone (:func:`compile_one`) and run only
    when one of its anchors is in the message (section 5)."""
    return tuple(fold_pattern(p) for p in patterns)


def compile_one(source: str) -> re.Pattern:
    """Every pattern starts at a word, and in normalised text every word follows a space: the
    leading look-behind lets the engine skip all other positions."""
    return re.compile(r"(?<= )(?=[a-z])(?:" + source + ")")


def compile_alternation(*patterns: str) -> re.Pattern:
    """One alternation, with letter runs collapsed like the text (never after a backslash).

    Every pattern starts at a word, and in normalised text every word follows a space: the
    leading look-behind lets the engine skip all other positions.
    """
    for pattern in patterns:
        if not pattern.startswith("\\b"):
            raise ValueError(f"a crisis pattern must start at a word: {pattern!r}")
    joined = _seseo("|".join(f"(?:{p})" for p in patterns))
    joined = re.sub(r"(?<!\\)([a-z])\1+", r"\1", joined)
    return re.compile(r"(?<= )(?=[a-z])(?:" + joined + ")")
