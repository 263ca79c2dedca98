"""
The offline companion: a small rule-based Rogerian (ELIZA-style) listener in rioplatense
Spanish, used when the model cannot answer (no key, breaker open, retries exhausted).

One canned "I can't answer now" sentence, repeated every turn, tells a person nobody is
listening. This companion keeps a conversation going honestly instead: it recognises the themes
of the original prompt (ansiedad/estrés, tristeza, soledad, apoyo social, esperanza/motivación,
sueño, trabajo/estudio), reflects the person's own words back ("Decís que te sentís sola"),
validates, offers at most one concrete grounding idea at a time, and asks one open question.
It says once per session that it is in limited mode.

Rules it keeps:

- Deterministic: all choices come from ``random.Random(seed)``, one per session, so a test (or a
  complaint) can be replayed exactly.
- Never the same reply twice in a session; no sentence picked twice in a row from a pool.
- One line, always (the line protocol forbids line breaks in a reply).
- Privacy: the reflection repeats the user's words to that user only; nothing here logs.
- Safety is not its job: messages at risk are answered by the crisis layer (psicoia.chat.detector.rules and
  the session manager) and never reach it. As a second guard it does not reflect text the
  crisis detector flags.

All phrases live in :mod:`psicoia.texts` (COMPANION section).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import deque
from typing import Optional, Sequence

from psicoia import texts
from psicoia.chat.detector.rules import is_risk

# Replies remembered so that none of them is said again verbatim.
RECENT_REPLIES = 50


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


# Theme cues, on case- and accent-folded text. Order breaks ties.
THEMES: dict[str, re.Pattern] = {
    name: re.compile(pattern) for name, pattern in (
        ("ansiedad", r"ansied|ansios|nervio|estres|angusti|preocup|panico|tension|agobi|abrumad"
                     r"|desbord|taquicard|no puedo respirar|me ahogo|inquiet|\bmiedo"),
        ("tristeza", r"trist|llor|deprim|bajon|vacio|desanim|melancol|me siento mal|\bduele"),
        ("soledad", r"soledad|\b(me siento|estoy|tan|muy|re|siempre|bastante) sol[oa]s?\b"
                    r"|aislad|no tengo (a )?nadie|nadie me (entiende|escucha|llama|habla|quiere)"
                    r"|sin amig"),
        ("apoyo", r"amig|familia|pareja|novi[oa]\b|\bmama|\bpapa|mi vieja|mi viejo|herman"
                  r"|companer|hablar con alguien|contar con|\bapoyo|me ayud"),
        ("esperanza", r"motiva|\bganas\b|esperanza|sentido|futuro|fuerza|seguir adelante|\bmeta"
                      r"|objetivo|rendirme|me rindo|\bcambiar"),
        ("sueno", r"\bdorm|duermo|insomni|sueno|desvel|pesadilla|cansancio|agotad|descans"
                  r"|me despierto"),
        ("trabajo", r"trabaj|laburo|\bjefe|oficina|\bfacu|universidad|examen|parcial|\bfinal(es)?\b"
                    r"|estudi|colegio|escuela|materia|tesis|desemple|me echaron|entrevista|\bprofe"),
    )
}
# Themes where a grounding idea is welcome at once; elsewhere it comes every third turn.
GROUNDING_FIRST = frozenset({"ansiedad", "sueno"})

# First-person cues that start a reflectable clause ("me siento...", "no puedo...").
_CUE = re.compile(
    r"\b(me siento|siento que|estoy|tengo|no tengo|no puedo|no s[eé]|ya no s[eé]|me cuesta"
    r"|necesito|extra[nñ]o|quiero|creo que|me pasa|me preocupa|me duele|soy|odio|nadie me)\b"
)
_CLAUSE_END = re.compile(r"[.!?;,\n]")
MAX_REFLECTED_WORDS = 12

# First person -> "vos" (rioplatense). Only unambiguous words: "trabajo" or "como" are nouns
# or other words too often to swap.
_SWAP = {
    "yo": "vos", "me": "te", "mi": "tu", "mis": "tus", "mí": "vos", "conmigo": "con vos",
    "mío": "tuyo", "mía": "tuya", "míos": "tuyos", "mías": "tuyas",
    "soy": "sos", "estoy": "estás", "tengo": "tenés", "siento": "sentís", "puedo": "podés",
    "quiero": "querés", "sé": "sabés", "voy": "vas", "hago": "hacés", "necesito": "necesitás",
    "creo": "creés", "pienso": "pensás", "extraño": "extrañás", "extrano": "extrañás",
    "odio": "odiás", "duermo": "dormís", "estaba": "estabas", "tenía": "tenías",
    "fui": "fuiste", "era": "eras", "quería": "querías", "podía": "podías",
    "sentía": "sentías", "entiendo": "entendés", "aguanto": "aguantás", "merezco": "merecés",
}
# "no se que hacer" is "no sé": "se" means "sé" before these words, after "no"/"ya".
_SE_NEXT = frozenset({"que", "qué", "como", "cómo", "si", "nada", "por", "cuando", "cuándo",
                      "donde", "dónde", "a", "bien", "muy"})


def _contract(text: str) -> str:
    """Spanish contractions a template can produce: "de el" -> "del", "a el" -> "al"."""
    return re.sub(r"\b([Dd]e|[Aa]) el\b", r"\1l", text)


def reflect(text: str) -> Optional[str]:
    """The first first-person clause of ``text`` with its pronouns turned to "vos", or None."""
    lowered = text.strip().lower()
    match = _CUE.search(lowered)
    if match is None:
        return None
    clause = _CLAUSE_END.split(lowered[match.start():], 1)[0]
    words = clause.split()
    if not words or len(words) > MAX_REFLECTED_WORDS:
        return None
    swapped = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word == "se" and index and words[index - 1] in ("no", "ya") and following in _SE_NEXT:
            swapped.append("sabés")
        else:
            swapped.append(_SWAP.get(word, word))
    return " ".join(swapped).strip(" \"'")


def theme_of(text: str, previous: Optional[str] = None) -> Optional[str]:
    """The theme with most cues in ``text``; a tie with the previous theme keeps it."""
    folded = _fold(text)
    scores = {name: len(pattern.findall(folded)) for name, pattern in THEMES.items()}
    best = max(scores.values())
    if best == 0:
        return None
    if previous is not None and scores.get(previous) == best:
        return previous
    return next(name for name, score in scores.items() if score == best)


class Companion:
    """One per session. :meth:`reply` answers a message; :meth:`reset` forgets the theme."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self.last_theme: Optional[str] = None
        self.turns = 0
        self._noticed = False
        # The recent replies not to repeat verbatim; bounded, a session may last for hours.
        self._said: deque[str] = deque(maxlen=RECENT_REPLIES)
        self._last_pick: dict[str, str] = {}
        self._grounding_left: dict[Optional[str], list[str]] = {}
        self._grounded_last_turn = False
        self._check_in = False  # the next reply follows a crisis reply

    def reset(self) -> None:
        """``/reset``: forget what the conversation was about (the limited-mode notice stays said)."""
        self.last_theme = None
        self._grounded_last_turn = False

    def after_crisis(self) -> None:
        """A message got crisis resources (it never reaches the companion): the next reply
        checks in on the person instead of going back to what was said before it."""
        self.reset()
        self._check_in = True

    def reply(self, text: str) -> str:
        self.turns += 1
        theme = theme_of(text, self.last_theme)
        reflection = None if is_risk(text) else reflect(text)
        check_in, self._check_in = self._check_in and theme is None, False
        for _ in range(8):
            candidate = (self._pick("check_in", texts.COMPANION_AFTER_CRISIS) if check_in
                         else self._compose(theme, reflection))
            if candidate not in self._said:
                break
        else:  # every draw was said before: a fresh open question makes it new
            candidate = f"{candidate} {self._pick('extra', texts.COMPANION_QUESTIONS[None])}"
        self._said.append(candidate)
        if not self._noticed:
            self._noticed = True
            candidate = f"{texts.COMPANION_LIMITED} {candidate}"
        if theme is not None:
            self.last_theme = theme
        return _contract(" ".join(candidate.split()))

    # --- composition ----------------------------------------------------------------------

    def _compose(self, theme: Optional[str], reflection: Optional[str]) -> str:
        parts = []
        topic = theme
        if theme is None and self.last_theme is not None:
            topic = self.last_theme
            parts.append(self._pick("continue", texts.COMPANION_CONTINUE).format(
                theme=texts.COMPANION_THEMES[topic]))
        if reflection:
            parts.append(self._pick("reflect", texts.COMPANION_REFLECT).format(
                reflection=reflection))
        if not reflection or self._random.random() < 0.5:
            parts.append(self._pick(f"validate:{topic}", texts.COMPANION_VALIDATE[topic]))
        if self._grounding_due(topic):
            parts.append(self._grounding(topic))
        parts.append(self._pick(f"question:{topic}", texts.COMPANION_QUESTIONS[topic]))
        return " ".join(parts)

    def _grounding_due(self, topic: Optional[str]) -> bool:
        due = not self._grounded_last_turn and (topic in GROUNDING_FIRST or self.turns % 3 == 0)
        self._grounded_last_turn = due
        return due

    def _grounding(self, topic: Optional[str]) -> str:
        """The next idea for ``topic``, cycling through all of them before repeating any."""
        left = self._grounding_left.get(topic)
        if not left:
            left = list(texts.COMPANION_GROUNDING[topic])
            self._random.shuffle(left)
            self._grounding_left[topic] = left
        return left.pop()

    def _pick(self, key: str, pool: Sequence[str]) -> str:
        """A random phrase from ``pool``, never the one picked last time for ``key``."""
        choices = [p for p in pool if p != self._last_pick.get(key)] or list(pool)
        choice = self._random.choice(choices)
        self._last_pick[key] = choice
        return choice
