"""
The crisis detector: a deterministic reader of risk language, in front of the model and
independent of it.

A language model alone misses a large share of crisis messages, and the model may be down,
slow or rate-limited exactly when someone writes one. So every message is read here first,
with plain compiled regular expressions (no I/O, microseconds per ordinary message), and the
crisis layer (:mod:`psicoia.chat.crisis`) makes sure a message at risk gets the resources of
its tier whatever the provider does. Method, numbers and known misses: docs/safety.md.

How a message is read (each step is a choice, documented where it is made):

1. :func:`normalize` folds case, accents, punctuation, spacing, repeated letters, digit swaps
   and chat spelling (``q``/``xq``/``k``, ``d``/``dl``, dropped vowels, words run together),
   so ``"Me kiero m4tar!!"`` and ``"me quiero matar"`` read the same.
2. :data:`LOOKALIKES` masks common non-risk uses that share words with risk language
   (``"me muero de risa"``, ``"cortarme el pelo"``, ``"this exam is killing me"``).
3. :data:`_STRONG` patterns, one group per category (ideation, passive wishes, burden,
   hopelessness with finality, goodbyes and affairs in order, plans and means, self-harm,
   acts in progress or done, someone else at risk, asks for a human), each enough alone to
   give the message a tier. :data:`WEAK` patterns are signals that are not enough alone
   (despair, a decision, a time, a goodbye phrase, a means, an ending): they carry a weight,
   add up within the message and, through :class:`~psicoia.chat.detector.state.RiskState`,
   across the turns of a conversation.
4. A match preceded by a simple negation (``"no quiero matarme"``) does not count, unless a
   contrast follows it (``"... pero lo pienso"``).
5. Before 2-4, :func:`in_reach` looks up :data:`_ANCHOR_SPEC`: a message with no anchor of a
   group cannot match that group's patterns, so most messages cost only step 1. The tests
   prove, pattern by pattern, that this never changes a verdict.

Errors are meant to fall on the safe side: laughter (``"jaja"``) never cancels a match, and a
negated statement followed by "pero"/"but" counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from psicoia.chat.detector.index import (ANCHORS, GROUPS as _GROUPS, NOT_SAID, RULES as _RULES,
                                         STRONG as _STRONG, _Anchors, groups_in_reach,
                                         in_reach)
from psicoia.chat.detector.learned import LearnedModel, default_model
from psicoia.chat.detector.lexicon import THIRD_REACH, THIRD_SUBJECT
from psicoia.chat.detector.lookalikes import LOOKALIKES
from psicoia.chat.detector.normalize import normalize
from psicoia.chat.detector.signals import CONTEXT_ONLY, SCORED, WEAK_THRESHOLD, WEAK_WEIGHTS


__all__ = ["ANCHORS", "LOOKALIKES", "TIERS", "WEAK_WEIGHTS", "Assessment", "assess", "decide",
           "groups_in_reach", "in_reach", "is_risk", "match_groups", "normalize"]

_SIGNALS = frozenset(_STRONG) | SCORED  # what can make a tier (context and "third_act" cannot)

# --- 4. negation -------------------------------------------------------------------------------

_NEGATORS = frozenset({"no", "nunca", "jamas", "ni", "tampoco", "not", "never", "nao"})
# Words that may sit between a negator and the match ("no *me voy a* matar", "not *going to*").
_FILLERS = frozenset({
    "me", "te", "lo", "yo", "ya", "a", "voy", "quiero", "pienso", "pense", "tengo", "ganas",
    "de", "en", "haria", "hare", "hago", "i", "am", "do", "will", "would", "want", "to",
    "going", "ever", "really", "plan", "planning", "try", "be", "have", "had", "realmente",
})
_NEGATION_REACH = 4
# A contrast after a negated match keeps it ("no quiero matarme pero lo pienso").
_CONTRAST_REACH = 80  # characters after the match: the same sentence or the next one
_CONTRAST = re.compile(r"\b(pero|aunque|igual|sin embargo|but|though|although|yet)\b")


def _negated(text: str, start: int, end: int) -> bool:
    """True when a negator governs the match at ``text[start:end]`` and no contrast follows."""
    window = max(0, start - 100)  # 4 words back is never longer than this
    before = text[window:start].split()
    if window and text[window - 1] != " " and before:
        before = before[1:]  # a cut word is not a word
    for word in reversed(before[-_NEGATION_REACH:]):
        if word in _NEGATORS:
            return not _CONTRAST.search(text, end, end + _CONTRAST_REACH)
        if word not in _FILLERS:
            return False
    return False


# --- the API -------------------------------------------------------------------------------

TIERS = ("acute", "risk", "third_party", "help")
# Which tier a strong group gives; the most urgent tier found wins (TIERS order).
_TIER_OF = {"acute": "acute", "ideation": "risk", "passive": "risk", "burden": "risk",
            "hopeless": "risk", "goodbye": "risk", "plan": "risk", "self_harm": "risk",
            "third_party": "third_party", "help": "help"}


@dataclass(frozen=True)
class Assessment:
    """The verdict on one message.

    ``tier``: "acute" (an act in progress or done: emergency number first), "risk" (the
    crisis lines), "third_party" (someone else at risk), "help" (asks for a human) or None.
    ``categories``: the pattern groups that matched (strong and weak), in a fixed order.
    ``score``: the weak signals' weight this turn plus what the conversation carried (0 when
    there is no weak signal); a strong match needs no score.
    """

    tier: Optional[str] = None
    categories: tuple = ()
    score: float = 0.0

    @property
    def risk(self) -> bool:
        """True for the tiers that get crisis resources about the person or someone else."""
        return self.tier in ("acute", "risk", "third_party")

    @property
    def category(self) -> Optional[str]:
        """The first strong category (kept for older callers), or None."""
        for name in self.categories:
            if name in _TIER_OF:
                return name
        return None


NO_RISK = Assessment()

# Laughter next to ideation words with no sign of meaning it ("me quiero matar jaja mandé el
# audio al grupo equivocado") is hyperbole far more often than not: the match then counts only
# as a weak despair signal, which still adds up with the conversation's other signals. Plans,
# self-harm, acts and goodbyes are never downgraded (only ideation and passive wishes), nor
# what is said to be serious.
_JOKE_PRONE = frozenset({"ideation", "passive"})
_LAUGH = re.compile(r"(?<= )(?:ja(?:ja)+j?|je(?:je)+|jsj\w*|lol|lmao|xd|ha(?:ha)+)(?= )")
_SERIOUS = re.compile(r"(?<= )(?:en serio|no es (?:chiste|joda|broma)|posta|de verdad|not joking"
                      r"|no joke|seriously|nao e brincadeira|sin joda|enserio)(?= )")


def match_groups(text: str) -> tuple:
    """The pattern groups (strong and weak) with a match that is not negated, in
    :data:`_GROUPS` order. Patterns without an anchor in the message are not run."""
    normal = normalize(text)
    reach = in_reach(normal)
    if not reach:
        return ()
    return _match(normal, [_RULES[i] for i in reach])


# Weak signals add up only when they are near each other: within this many characters of
# normalised text (about 30 words), so a long message of ordinary sentences, each with one
# innocent weak word, is not read as risk. The best window wins.
_WINDOW = 160


def _best_window(weak_at: dict) -> set:
    """The weak groups inside the window of :data:`_WINDOW` characters with the most weight."""
    best, best_weight = set(), -1.0
    for start in sorted(p for positions in weak_at.values() for p in positions):
        inside = {g for g, positions in weak_at.items()
                  if any(start <= p < start + _WINDOW for p in positions)}
        weight = sum(WEAK_WEIGHTS[g] for g in inside)
        if weight > best_weight:
            best, best_weight = inside, weight
    return best


def _match(normal: str, rules: list, negated: Optional[list] = None) -> tuple:
    """Mask the look-alikes among ``rules`` (in order), then try the others. The strong
    groups matched only under a negation are appended to ``negated`` when given."""
    masked = False
    for rule in rules:
        if rule.group == "lookalike":
            normal, count = rule.pattern.subn(" | ", normal)
            masked = masked or count > 0
    joking = _LAUGH.search(normal) is not None and _SERIOUS.search(normal) is None
    found = {}
    weak_at: dict = {}  # weak group -> where its matches start
    third_act = False  # a third-person act with no subject in this message
    for rule in rules:
        weak = rule.group in SCORED
        if rule.group in NOT_SAID or (rule.group in found and not weak):
            continue
        for match in rule.pattern.finditer(normal):
            if rule.group == "third_party" and not THIRD_SUBJECT.search(
                    normal, max(0, match.start() - THIRD_REACH), match.end()):
                third_act = third_act or not _negated(normal, match.start(), match.end())
                continue
            if not _negated(normal, match.start(), match.end()):
                found[rule.group] = True
                if not weak:
                    break
                weak_at.setdefault(rule.group, []).append(match.start())
            elif negated is not None and not weak:
                negated.append(rule.group)
    if len(weak_at) > 1:
        for group in weak_at.keys() - _best_window(weak_at):
            del found[group]
    groups = [("despair" if joking and g in _JOKE_PRONE else g) for g in _GROUPS if g in found]
    if third_act and "third_party" not in found:
        groups.append("third_act")
    if masked:
        groups.append("masked")  # context: an everyday frame was read (see decide)
    # The time of day alone ("hoy", "esta noche") is not a signal: it only counts next to another.
    if "soon" in groups and not any(g != "soon" and g in _SIGNALS for g in groups):
        groups.remove("soon")
    return tuple(dict.fromkeys(groups))


def decide(groups: tuple, carried: Optional[dict] = None) -> Assessment:
    """The tier for a message whose matching ``groups`` are known, given the weak signals the
    conversation ``carried`` (name -> decayed weight, from RiskState; None for a lone message).
    """
    tiers = {_TIER_OF[g] for g in groups if g in _TIER_OF}
    weak = [g for g in groups if g in WEAK_WEIGHTS and g not in CONTEXT_ONLY]
    here = sum(WEAK_WEIGHTS[g] for g in weak)
    # A turn in an everyday frame (a look-alike was masked: "este calor me está matando, no doy
    # más") is read alone; the alert after a risk turn lifts a turn's weak rule signals, not
    # a turn whose only signal is the model's (its evidence is carried apart) or the time.
    if carried and "masked" in groups:
        carried = {g: w for g, w in carried.items() if g in CONTEXT_ONLY}
    lifted = any(g not in ("model", "soon") for g in weak)
    carry = sum(w for g, w in carried.items() if g not in CONTEXT_ONLY
                and (lifted or g != "alert")) if carried else 0.0
    # A third-person act whose subject was named in an earlier turn.
    if "third_act" in groups and carried and carried.get("third_subject", 0) > 0.1:
        tiers.add("third_party")
    score = round(here + carry, 3) if weak else 0.0
    # A weak signal this turn is needed: a quiet message is never flagged by the past alone,
    # and the time of day alone ("hoy") is not a signal.
    if weak and weak != ["soon"] and score >= WEAK_THRESHOLD:
        tiers.add("risk")
    # Risk at a height ("estoy en la terraza" earlier, or now) is an act about to happen.
    at_height = "place" in weak or bool(carried and carried.get("place", 0) > 0.1)
    if "risk" in tiers and at_height and ("jump" in weak or "plan" in groups or "ending" in weak
                                          or "hopeless" in groups):
        tiers.add("acute")
    for tier in TIERS:
        if tier in tiers:
            # Risk words about oneself beat a third party; an act in progress beats both.
            return Assessment(tier, groups, score)
    return Assessment(None, groups, score)


# The model's "help" (asks for a person) counts only this far (log-odds) above its confident
# threshold: help verdicts lean on single words ("número": "mensaje número 3"), and a false
# "help" replaces the companion's reply with the acknowledgement; asks for a person are
# structural and the rules read most of them.
HELP_MARGIN = 1.5
# A message of one or two short words ("ahora sí", "ya volví"; normalised, under this many
# characters) that the rules read as nothing gets no tier from the model alone, only its weak
# signal: a word the model weighs heavily ("ahora", frequent in acute messages) is not a message
# at risk by itself. Glued words ("quieromorirmequieromorirme") are long and keep the tier.
SHORT = 24
# In an everyday frame the rules masked ("me sale sangre de la nariz y no para"), with no strong
# group of their own, the model's tier counts only this far (log-odds) above its confident
# threshold; below, it is the weak signal "model" (adds up with other signals and turns).
MASKED_MARGIN = 2.0
# Strong groups with families of everyday look-alikes the masks cannot all list (a resignation
# letter, plants watered during a trip, a swim in the river, a clothesline, a hunter's
# shotgun, an accidental cut, "no doy más" with the heat): when the model reads the message as
# clearly ordinary (its ``doubt`` level) and no other strong group matched, they count as the
# weak signal "doubted", which still adds up with other signals and across turns. Ideation,
# passive wishes, burden, acts, someone else at risk and asks for help are never doubted.
_DOUBTABLE = frozenset({"goodbye", "plan", "self_harm", "hopeless"})


def assess(text: str, state=None, model: Optional[LearnedModel] = None) -> Assessment:
    """Read one message, alone or as the next turn of a conversation.

    ``state`` (a :class:`~psicoia.chat.detector.state.RiskState`, optional) supplies the weak
    signals of earlier turns and is updated in place with this turn's (numbers only).
    ``model``: the learned model read beside the rules (None: the shipped one, see
    :mod:`psicoia.chat.detector.learned`); its confident tier is combined with the rules' (the
    most urgent wins: it can only add resources) and its mid-confident verdict is the weak
    signal ``"model"``. Laughter with no sign of meaning it, or a risk statement the rules
    found negated ("no quiero matarme"), turns the model's tier (other than "acute") into that
    weak signal too, as the rules do. Never raises on odd input.
    """
    normal = normalize(text)
    reach = in_reach(normal)
    negated: list = []
    in_reach_rules = [_RULES[i] for i in reach]
    groups = _match(normal, in_reach_rules, negated) if reach else ()
    model = model or default_model()
    carried = state.carried_evidence() if state is not None else 0.0
    verdict = model.read(normal, carried)
    model_tier = verdict.tier
    if verdict.doubt and _DOUBTABLE.intersection(groups) and _DOUBTABLE.issuperset(
            g for g in groups if g in _TIER_OF):
        groups = (*(g for g in groups if g not in _DOUBTABLE), "doubted")
    unsure_help = model_tier == "help" and verdict.own < model.confident + HELP_MARGIN
    if unsure_help:
        model_tier = None  # a false "help" replaces the reply: it needs a clearer verdict
    if model_tier is not None and not groups and len(normal) < SHORT and len(normal.split()) < 3:
        model_tier = None  # "ahora sí": too few words for the model alone to give a tier
    if model_tier in ("risk", "third_party", "help") and (negated or (
            _LAUGH.search(normal) and not _SERIOUS.search(normal))):
        model_tier = None
    if (model_tier is not None and "masked" in groups and not _TIER_OF.keys() & set(groups)
            and verdict.own < model.confident + MASKED_MARGIN):
        model_tier = None  # an everyday frame the rules read, and nothing else: a weak signal
    if verdict.signal or (verdict.tier and model_tier is None and not unsure_help):
        groups = (*groups, "model")
    assessment = decide(groups, state.carried() if state is not None else None)
    tier = _combine(assessment.tier, model_tier)
    if tier != assessment.tier:
        groups = (*groups, "learned")
    if _raised(normal, in_reach_rules, tier, groups, verdict.own >= model.signal):
        tier, groups = "acute", (*groups, "act")
    if tier != assessment.tier:
        assessment = Assessment(tier, groups, assessment.score)
    if state is not None:
        state.observe(assessment, max(0.0, verdict.own) + carried)
    return assessment


def _combine(rules_tier: Optional[str], model_tier: Optional[str]) -> Optional[str]:
    """The rules' tier and the model's, combined so the model only adds resources: the model's
    crisis tier counts where the rules found no crisis tier (none, or only "help"); where they
    found one, theirs stands (explainable, and tuned per tier: the model's tier reading is
    weaker)."""
    if rules_tier in (None, "help") and model_tier is not None:
        return model_tier
    return rules_tier


# Weak groups that are no evidence of risk next to an act cue: the time of day, context, and
# a family the model doubts.
_NO_EVIDENCE = frozenset({"soon", "third_subject", "masked", "third_act", "doubted"})


def _raised(normal: str, rules: list, tier: Optional[str], groups: tuple,
            model_signal: bool) -> bool:
    """Whether an act cue (:mod:`psicoia.chat.detector.urgency`) among ``rules`` (those in
    reach) makes this message "acute": any cue on a message read as "risk" or as an ask for
    help ("ayuda, ya tengo la hojita en la mano"); a sure cue on a message with no tier but
    some evidence of risk (a weak rule signal, or ``model_signal``: the model's log-odds at its
    ``signal`` level) outside an everyday frame. Someone else at risk stays "third_party"; a
    negated cue does not count."""
    if tier in ("risk", "help"):
        wanted = ("act_sure", "act")
    elif tier is None and "masked" not in groups and (
            model_signal or any(g in SCORED and g not in _NO_EVIDENCE for g in groups)):
        wanted = ("act_sure",)
    else:
        return False
    return any(not _negated(normal, m.start(), m.end())
               for rule in rules if rule.group in wanted for m in rule.pattern.finditer(normal))


def is_risk(text: str) -> bool:
    """True when ``text`` alone shows risk language about the writer or someone else."""
    return assess(text).risk
