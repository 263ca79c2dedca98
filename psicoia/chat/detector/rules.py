"""
The crisis layer: a deterministic detector of risk language, in front of the model and
independent of it.

A language model alone misses a large share of crisis messages, and the model may be down,
slow or rate-limited exactly when someone writes one. So every message is checked here first,
with plain compiled regular expressions (no I/O, no state, microseconds per message), and the
session manager makes sure a message at risk gets the crisis resources whatever the provider
does. Method, measured numbers and known misses: docs/safety.md.

How a message is read (each step is a choice, documented where it is made):

1. :func:`normalize` folds case, accents, punctuation, spacing, repeated letters, digit swaps
   and a few chat spellings, so ``"Me kiero m4tar!!"`` and ``"me quiero matar"`` read the same.
2. :data:`_LOOKALIKES` masks common non-risk uses that share words with risk language
   (``"me muero de risa"``, ``"cortarme el pelo"``, ``"dying to see"``), so they cannot match.
3. :data:`_RISK` patterns, grouped by category, look for ideation, self-harm, plans or intent,
   perceived burdensomeness and acute hopelessness, in Spanish (rioplatense and neutral) and
   English.
4. A match preceded by a simple negation (``"no quiero matarme"``, ``"I would never hurt
   myself"``) does not count, unless a contrast follows it (``"... pero lo pienso todo el
   tiempo"``). Patterns whose meaning *is* a negation (``"no quiero vivir más"``) are written
   with the negation inside them, so it cannot cancel them.
5. Before 2-4, :func:`in_reach` looks up :data:`_ANCHOR_SPEC`: a message with no anchor of a
   category cannot match that category's patterns, so most messages cost only step 1. The
   tests prove, pattern by pattern, that this never changes a verdict.

Errors are meant to fall on the safe side: laughter (``"jaja"``) never cancels a match, and a
negated statement followed by "pero"/"but" counts as risk.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

# --- 1. normalisation ------------------------------------------------------------------------

# Digits and symbols people swap for letters, applied only inside words that also have letters
# ("m4tarme", "m0rir", "k1ll"), so numbers such as "135" or "24" stay numbers. A "word" here
# is a run of letters, digits, "@" and "$"; only runs with both a letter and one of these
# symbols change, so only they are matched (anchored at the start of a run, so a long run costs
# one pass, not one per position).
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "@": "a", "$": "s"})
_LEETABLE = re.compile(r"[0-9@$]")
_LEET_RUN = re.compile(r"(?<![a-z0-9@$])(?=[0-9@$]*[a-z])[a-z0-9@$]*[0-9@$][a-z0-9@$]*")
# Punctuation that ends a clause becomes a "|" token: negations and look-ahead rules never
# reach across it ("no sé, quiero morirme" is not a negated "quiero morirme").
_CLAUSE = re.compile(r"[.!?¡¿;:,()\[\]\n\r]+")
# Every other ASCII character that is not a lower-case letter, a digit, "|" or a space becomes
# a space (runs of spaces are then joined into one). A byte table, not a regular expression:
# the text is ASCII by then, and bytes.translate does this in one C pass.
_OTHERS_TO_SPACE = bytes(b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789| " else 32
                         for b in range(256))
# Every run of a repeated letter becomes one letter ("moriiir", "mataaar", "diiie"). This
# also turns "kill" into "kil" and "llorar" into "lorar"; patterns are collapsed the same way
# when compiled (:func:`_compile`), so they are written in normal spelling.
_REPEATS = re.compile(r"([a-z])\1+")
# Four or more single letters in a row are one spaced-out word ("m o r i r m e"). Such a run
# always contains " x y " (two one-letter words), which a search for a leading space finds
# fast; most messages have none.
_SPACED = re.compile(r"(?<![a-z])(?:[a-z] ){3,}[a-z](?![a-z])")
_SPACED_HINT = re.compile(r" [a-z] [a-z] ")

# Chat spellings and English contractions, keyed by their normalised (collapsed) form.
_WORDS = {
    "q": "que", "ke": "que", "k": "que", "xq": "porque", "pq": "porque",
    "kiero": "quiero", "qiero": "quiero", "qero": "quiero", "kiere": "quiere", "kerer": "querer",
    "wana": "want to", "gona": "going to", "kms": "kil myself",
    "im": "i am", "ive": "i have", "id": "i would", "dont": "do not", "doesnt": "does not",
    "didnt": "did not", "wont": "will not", "wouldnt": "would not", "cant": "can not",
    "canot": "can not", "isnt": "is not", "theres": "there is", "aint": "am not",
}
_WORD = re.compile(r"(?<![a-z])(?:" + "|".join(sorted(_WORDS, key=len, reverse=True))
                   + r")(?![a-z])")


def normalize(text: str) -> str:
    """Fold ``text`` into the form the patterns read: lower-case ASCII words and "|" tokens.

    The result starts and ends with a space so patterns can rely on word boundaries. This runs
    on every message on the reactor thread, so each step is skipped when it cannot change the
    text, and the character-by-character ones are translation tables; the steps and their
    order are the contract (tests/test_safety.py compares it with the plain version).
    """
    folded = text.casefold().replace("'", "").replace("\u2019", "")  # "don't" -> "dont"
    folded = _CLAUSE.sub(" | ", folded)
    # Accents off ("á" -> "a", "ñ" -> "n"); anything else not ASCII (emoji...) goes too.
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
    folded = _WORD.sub(_expand, folded)
    return f" {folded} "


def _unleet(match: re.Match) -> str:
    return match.group(0).translate(_LEET)


def _join_letters(match: re.Match) -> str:
    return match.group(0).replace(" ", "")


def _expand(match: re.Match) -> str:
    return _WORDS[match.group(0)]


def _seseo(text: str) -> str:
    """Fold the spellings of the "s" sound most Spanish speakers do not distinguish
    ("suisidarme", "desaparesser"): "ce"/"ci" -> "se"/"si", "z" -> "s"."""
    return text.replace("ce", "se").replace("ci", "si").replace("z", "s")


def _compile(*patterns: str) -> re.Pattern:
    """One alternation, with letter runs collapsed like the text (never after a backslash).

    Every pattern starts at a word, and in normalised text every word follows a space: the
    leading look-behind lets the engine skip all other positions (about 3 times faster on a
    4 KB message, and this runs on every message, on the reactor thread).
    """
    for pattern in patterns:
        if not pattern.startswith("\\b"):
            raise ValueError(f"a crisis pattern must start at a word: {pattern!r}")
    joined = _seseo("|".join(f"(?:{p})" for p in patterns))
    joined = re.sub(r"(?<!\\)([a-z])\1+", r"\1", joined)
    return re.compile(r"(?<= )(?=[a-z])(?:" + joined + ")")


# --- 2. look-alikes: masked before matching ----------------------------------------------------

_IDIOM_NOUNS = (r"risa|hambre|ganas|sueno|frio|calor|verguenza|nervios|miedo|aburrimiento|amor"
                r"|envidia|sed|curiosidad|cansancio|pena|ansiedad|emocion|celos|embole")
_GROOMING = (r"pelo|cabello|flequillo|unas|una|barba|bigote|puntas|flequi|dedo|labio|mano"
             r"|luz|agua|internet|wifi|senal|conexion|llamada|cesped|pasto|carne|pan|cebolla")
_BODY_INJURY = r"rodilla|tobillo|pie|mano|espalda|brazo|dedo|muneca|hombro|cuello|pierna"

_LOOKALIKES = _compile(
    # "me muero de risa / hambre / ganas...", "morirme de la vergüenza", "muerta de cansancio".
    rf"\b(muero|mori|morir|morirme|muera|muriendo|morire|moria|muerto|muerta|muertos) "
    rf"(de|por) (la |el |los )?({_IDIOM_NOUNS})\b",
    r"\bmuero por\b",  # "me muero por ir al recital"
    r"\b(miedo|terror|panico) (de|a) morir(me)?\b",  # fear of dying is anxiety, not intent
    # "me mato estudiando", "me mato de risa"; "me mató el examen" (accents are gone, so a
    # determiner after "me mato" marks a third-person subject; "esta noche" is a time).
    r"\bmat\w* (de (la )?risa|estudiando|trabajando|laburando|entrenando|corriendo)\b",
    r"\bme mato (el|la|los|las|ese|esa|mi|tu|su|este(?! finde)|esta(?! noche| tarde| semana))\b",
    r"\b(va|van|vas|vamos) a matarme\b", r"\b(quiere|quieren|queres) matarme\b",
    r"\bmat\w* el (tiempo|rato|hambre)\b",
    # "cortarme el pelo", "me corté el dedo", "se me cortó la luz".
    rf"\bcort\w* (el |la |los |las |un |una |mis |tus )?({_GROOMING})\b",
    r"\bse me cort\w*\b",
    rf"\blastim\w* (el |la |los |las |un |una )?({_BODY_INJURY})\b",
    r"\blastim\w* (jugando|entrenando|corriendo)\b",
    rf"\bdano en (el |la |los |las |mi |mis )?({_BODY_INJURY})\b",
    # English idioms.
    r"\bdying (to|of|for)\b", r"\bdie (of|from) (laughter|embarrassment|boredom)\b",
    r"\bdied laughing\b", r"\bdie (my|her|his|your|the) (hair|clothes|shirt)\b",
    r"\bcould kill for\b", r"\bkill\w* (time|it)\b",
    r"\bcut\w* myself (shaving|cooking|a (slice|piece)|on (a|the)|by accident|accidentally)\b",
    r"\bkill\w* myself (laughing|working|studying)\b",
)

# --- 3. risk patterns ------------------------------------------------------------------------

_END = r"(?= *(\||$))"  # end of the clause or the message

_RISK: dict[str, re.Pattern] = {
    "ideation": _compile(
        # Spanish: wanting to die or to kill oneself.
        r"\b(quiero|quisiera|queria|deseo|necesito|ganas de|pienso en|pensando en|pense en"
        r"|prefiero|preferiria) morir(me)?\b",
        r"\bme (quiero|quisiera|gustaria|queria) morir\b",
        r"\bmorirme\b",
        r"\bmatarme\b",
        r"\bme (quiero|voy a|vuelvo a|dan ganas de|gustaria|quisiera|queria) matar\b",
        r"\bsui[cs]idarme\b",
        r"\bme (voy a|quiero|quisiera|gustaria|pienso) sui[cs]idar\b",
        r"\b(soy|me siento|estoy|pensamientos|ideas|ideacion) sui[cs]idas?\b",
        r"\b(intento|intentos|intente|pienso en el|pensando en el) (de )?sui[cs]idio\b",
        r"\bojala (me )?muera\b", r"\bojala (estuviera|estar) muert[oa]\b",
        r"\b(prefiero|preferiria|quisiera|quiero|desearia|deseo) estar muert[oa]\b",
        r"\bmejor muert[oa]\b",
        r"\bno (quiero|tengo ganas de|se si quiero) (seguir )?(vivir|viviendo|estar viv[oa]|existir)"
        r"\b(?! (en|con|cerca|lejos|aca|alla|de|solo|sola|sin)\b)(?! mas (en|con|cerca|lejos|aca|alla|de)\b)",
        r"\b(sin|perdi las|no tengo) ganas de vivir\b",
        r"\b(cansad[oa]|hart[oa]) de vivir\b",
        r"\b(dejar de|no quiero|no quisiera) existir\b",
        r"\bpara que (seguir viviendo|sigo viviendo|seguir vivo|seguir viva|vivir|seguir)" + _END,
        r"\bno (le )?(encuentro|veo) (ningun |el )?sentido (a|de) (la vida|vivir|seguir|mi vida)\b",
        r"\b(la vida|vivir) no (vale la pena|tiene sentido)\b",
        r"\bno vale la pena (vivir|seguir)\b",
        r"\bpienso (mucho |todo el tiempo |siempre )?en (la muerte|morir(me)?)\b(?! de\b)",
        r"\b(irme|me quiero ir|me voy a ir|dejar|desaparecer) de este mundo\b",
        r"\b(quiero|quisiera|ganas de|me gustaria) desaparecer\b(?! de (?!este mundo))"
        r"(?! (un rato|un tiempo|unos dias|una semana|del)\b)",
        # Added after the first held-out run (docs/safety.md): wider wording of the same ideas.
        r"\b(desearia|quisiera|quiero|me gustaria|ojala|prefiero|preferiria) (no existir"
        r"|dejar de vivir|no vivir|no haber nacido)\b",
        r"\bno (quiero|quisiera) (estar|seguir|quedarme) (mas )?en este mundo\b",
        r"\b(da|es) (igual|lo mismo) (vivir o morir|si vivo o (me )?muero|morir(me)?)\b",
        r"\b(bueno|lindo|mejor|ojala|quisiera|quiero|deseo|desearia|prefiero|preferiria)"
        r" no despertar(me|a)?\b",
        r"\b(quiero|necesito|ojala) que (se )?(termine|acabe) todo\b",
        r"\bno (tengo|me quedan) (fuerzas|ganas|motivos|razones) (para|de) (seguir|vivir)\b",
        r"\bmejor (me muero|desaparezco|me mato|no existo)\b",
        # Added after the second held-out run (docs/safety.md).
        r"\bdejar de (respirar|estar vivo|estar viva)\b",
        r"\b(si|no) (vale|valdria) la pena (vivir|seguir)\b(?! (con|en|estudiando|trabajando)\b)",
        r"\bojala\b[^|]{0,30}\bme (muera|atropelle|pise|mate|lleve)\b",
        r"\b(irme|me voy|desaparecer|dormir|dormirme) para siempre\b(?! (a|de|al|con)\b)",
        r"\bno (quiero )?despertar(me)?( nunca)? mas\b",
        r"\b(no quiero|ojala no|quisiera no|y no) despertar(me|a)?\b",
        # English.
        r"\b(want|wanted|wish|wishing|ready|need) to die\b",
        r"\bwant to dye\b(?! (my|her|his|your|the|it)\b)",  # a common homophone slip
        r"\bwish i (was|were) dead\b", r"\b(rather|want to) be dead\b", r"\bbetter off dead\b",
        r"\bkill(ing)? myself\b",
        r"\bsuicidal\b",
        r"\b(thinking|thought|think|considering|contemplating) (about |of )?(suicide|dying|killing myself)\b",
        r"\b(commit|committing|attempt|attempted) suicide\b",
        r"\bdo not want to (live|be alive|exist|wake up)\b(?! (in|with|here|there|near|alone)\b)",
        r"\bno reason to (live|go on|keep going|be here)\b", r"\bnothing to live for\b",
        r"\b(life|it) (is not|isnt) worth living\b", r"\bnot worth living\b",
        r"\b(never|not) wake up\b",
        r"\bwant to disappear\b(?! from\b)", r"\bdisappear forever\b",
        r"\bnot see (the |any )?point (of|in) (living|going on|being alive|life)\b",
        r"\bno point (in |of )?(living|going on|being alive)\b",
        r"\b(stop|cease) existing\b", r"\bwant to not exist\b",
        r"\bdone with (life|living)\b",
    ),
    "self_harm": _compile(
        r"\bcortarme\b",
        r"\bme (quiero|voy a|volvi a|vuelvo a|dan ganas de|gustaria|quisiera) cortar\b",
        r"\bcort\w* (las )?venas\b",
        r"\bme (corto|corte|cortaria)\b( (los|las|la|el|mis))? "
        r"(brazos|piernas|munecas|muneca|venas|piel|panza|muslos|brazo|pierna)\b",
        r"\bme (corto|corte)\b( (cuando|a proposito|otra vez|de nuevo|para))",
        r"\bme cortaria\b",
        r"\bme (hago|hice) cortes\b",
        r"\blastimarme\b", r"\bme lastimaria\b",
        r"\bme lastimo\b(?! (la|el|los|las|jugando|entrenando)\b)",
        r"\bme lastime (a proposito|otra vez|de nuevo)\b",
        r"\b(hacerme|me hago|me hice|me haria|me voy a hacer|me quiero hacer) dano\b",
        r"\bautolesion\w*\b",
        r"\bme (rasguno|rasco|corto|muerdo|golpeo|quemo|pego) hasta (sangrar|lastimarme)\b",
        r"\b(ganas de|quiero|voy a|necesito) hacerme (mal|dano)\b",
        r"\bme (quemo|queme|golpeo|golpee|pego|rasguno|muerdo)\b[^|]{0,40}\ba proposito\b",
        r"\b(hurt|hurting|harm|harming|cut|cutting|burn|burning) myself\b",
        r"\bself ?harm\w*\b",
        r"\bcutting (again|myself)\b", r"\bcut again\b",
        r"\bcortes (en|por) (los |las |mis )?(brazos|piernas|munecas|muslos|panza)\b",
        r"\b(me (pego|golpeo|doy)|golpearme|pegarme) (la cabeza |cabezazos )?(contra|con)"
        r" (la pared|el piso|la puerta)\b",
        r"\b(burn|burning|cut|cutting|hurt|hurting|scratch|scratching) my "
        r"(arms|wrists|legs|thighs|skin)\b",
    ),
    "plan": _compile(
        r"\b(terminar|acabar|termino|acabo) con (mi vida|mi existencia)\b",
        r"\b(quitarme|sacarme|me quito|me saco) la vida\b",
        r"\bponer(le)? fin a (mi vida|todo)\b",
        r"\btomar(me)? todas (las|mis) pastillas\b",
        r"\b(junte|juntando|guardando|guarde|acumulando|acumule) pastillas\b",
        r"\b(hacerme|tomar|tomarme) una sobredosis\b",
        r"\b(tirarme|tiro|tirar|tiraria) (de|del|desde|por|abajo|bajo|debajo|delante|adelante|a)"
        r" (de |del |la |el |un |una |las |los )*(puente|balcon|edificio|piso|techo|terraza"
        r"|ventana|tren|auto|colectivo|bondi|camion|subte|vias|vacio)\b",
        r"\bahorcarme\b", r"\bcolgarme (de )?(una|la|el|del) (soga|viga|techo|arbol)\b",
        r"\b(escribi|escribo|escribiendo|deje|tengo) (mi|una|la) carta de despedida\b",
        r"\bme mato\b" + _END,
        r"\bme mato (hoy|esta noche|ya|manana|de una vez)\b",
        r"\b(hoy|esta noche|manana|ya) me mato\b",
        # English.
        r"\bend(ing)? (my life|it all|it tonight|everything)\b",
        r"\b(take|taking) my (own )?life\b",
        r"\bsuicide note\b", r"\b(wrote|writing|write) (a|my) goodbye (note|letter)\b",
        r"\b(saving|hoarding|stockpiling|collecting) pills\b", r"\bto overdose\b",
        r"\btake all (my|the) pills\b",
        r"\bjump(ing)? (off|from|in front of|before) (a |the |my )?(bridge|building|roof"
        r"|balcony|window|train|car|bus|cliff)\b",
        r"\bhang myself\b",
        r"\b(compre|tengo|consegui) (una )?soga\b",
        r"\btengo (las|todas las|muchas) pastillas (aca|listas|juntas|guardadas)\b",
        r"\bpills (ready|saved|lined up)\b",
        r"\bme (voy a|quiero) colgar" + _END, r"\bcolgarme" + _END,
        r"\btomar(me)? (el|un|una|toda la|todo el) (frasco|caja|blister)\b",
        r"\b(quiero|voy a|pienso|para|a punto de) (saltar|tirarme)" + _END,
        r"\b(standing|sitting) on (the|a) (bridge|ledge|roof|edge)\b",
        r"\b(night|day) i end it\b", r"\bi end it" + _END, r"\bend it (tonight|today|now)\b",
    ),
    "burden": _compile(
        r"\b(estarian|estaria|estarias|seria|vivirian) mejor sin mi\b",
        r"\bmejor (si|que) no (estuviera|existiera|estuviese|existiese|hubiera nacido)\b",
        r"\bojala no (hubiera|haber) nacido\b",
        r"\bsoy una carga\b", r"\bme siento una carga para (todos|mi familia|los demas|mis viejos)\b",
        r"\bsi me (muero|muriera|desaparezco|desapareciera|mato|matara)\b",
        r"\bbetter off without me\b",
        r"\bmejor si (yo )?no (estuviera|existiera|estuviese|existiese)\b",
        r"\bsoy (un estorbo|una molestia|un peso) para\b",
        r"\bsoy (un problema|una carga) para (todos|los demas|mi familia|mis viejos)\b",
        r"\bsi (yo )?no (estuviera|existiera|estuviese|existiese)\b",
        r"\b(i am|im) (just |only )?a burden\b", r"\bburden (to|on) (everyone|everybody|my family)\b",
        r"\bnadie (me )?(va a extranar|extranaria|me extranaria)\b",
        r"\b(nobody|no one) (would|will) miss me\b",
        r"\b(better|happier) (if|when) i (was|were|am) (gone|dead)\b",
        r"\b(nobody|no one) would (care|notice|miss me) if i (died|was gone|were gone|disappeared)\b",
    ),
    "hopelessness": _compile(
        r"\bno (aguanto|soporto|puedo|doy) mas\b(?=( *(\||$))| (con )?(esta vida|mi vida|la vida"
        r"|vivir|esto|nada|todo|asi|de verdad|en serio|ya)\b)",
        r"\b(terminar|acabar|termino|acabo) con todo\b(?! (el|la|los|las|lo|esto de)\b)",
        r"\bno (le )?(veo|encuentro|tengo) (ninguna )?salida\b", r"\bno hay salida\b",
        r"\bcan not (take it|take this|do this|handle (it|this|life)) any ?more\b",
        r"\bcan not (go on|keep going)\b(?=( *(\||$))| like this| any ?more| living)",
        r"\bend it all\b",
    ),
}

# --- 4. negation -------------------------------------------------------------------------------

_NEGATORS = frozenset({"no", "nunca", "jamas", "ni", "tampoco", "not", "never"})
# Words that may sit between a negator and the match ("no *me voy a* matar", "not *going to*").
_FILLERS = frozenset({
    "me", "te", "lo", "yo", "ya", "a", "voy", "quiero", "pienso", "pense", "tengo", "ganas",
    "de", "en", "haria", "hare", "hago", "i", "am", "do", "will", "would", "want", "to",
    "going", "ever", "really", "plan", "planning", "try", "be", "have", "had", "realmente",
})
_NEGATION_REACH = 4
# A contrast after a negated match keeps it ("no quiero matarme pero lo pienso").
_CONTRAST = re.compile(r"\b(pero|aunque|igual|sin embargo|but|though|although|yet)\b")


def _negated(text: str, start: int, end: int) -> bool:
    """True when a negator governs the match at ``text[start:end]`` and no contrast follows."""
    before = text[:start].split()
    for word in reversed(before[-_NEGATION_REACH:]):
        if word in _NEGATORS:
            return not _CONTRAST.search(text, end)
        if word not in _FILLERS:
            return False
    return False


# --- 5. the fast path: anchors --------------------------------------------------------------

# Most messages contain no risk language at all, and the risk patterns are long alternations
# tried at every word (about 35 of the 50 microseconds an ordinary message used to cost). So
# after normalising, a set lookup first asks whether a category *could* match: every way a
# pattern of that category can match contains one of its anchors below, so a message with none
# of them cannot match and skips the look-alikes and the patterns. This is only a pre-check:
# the verdict on a message that has an anchor is the full detector's, unchanged.
#
# An entry is a word that must appear as a whole word ("venas"), a word plus the words one
# of which must appear with it anywhere in the message ("salida+veo/hay": common words are
# only anchors together), or the start of a word ("sui*"). Words are written in normal
# spelling and folded like the patterns (seseo, repeated letters), so "pastillas" reads
# "pastilas". tests/test_safety.py expands every risk pattern into each literal shape it
# can match and fails if a shape has no anchor: adding a pattern means adding its anchor here.
_ANCHOR_SPEC = {
    "ideation": """
        morir morirme muera muerto muerta muerte matar matarme sui*
        vivir viviendo vivo viva existir existo exist existing nacido
        desaparecer desaparezco disappear despertar despertarme despertara atropelle
        die dye dead alive
        seguir+para/ganas/fuerzas/motivos/razones/sentido/pena
        sentido+vida/vivir/seguir  pena+vida/vivir/seguir  mundo+este  todo+termine/acabe
        muero+mejor  mato+mejor  respirar+dejar  pise+ojala  mate+ojala  lleve+ojala
        siempre+irme/voy/dormir/dormirme
        myself+kill/killing  dying+thinking/thought/think/considering/contemplating
        live+want/nothing  reason+no  living+worth/point/done  wake+never/not/want
        point+going/life  done+life
    """,
    "self_harm": """
        cortarme cortar cortaria venas lastimarme lastimaria sangrar autolesion* selfharm* self
        corto+me  corte+me  cortes+hago/hice/brazos/piernas/munecas/muslos/panza
        lastimo+me  lastime+proposito/vez/nuevo
        dano+hacerme/hago/hice/haria/hacer  hacerme+mal
        proposito+quemo/queme/golpeo/golpee/pego/rasguno/muerdo
        pared+pego/golpeo/doy/golpearme/pegarme  piso+pego/golpeo/doy/golpearme/pegarme
        puerta+pego/golpeo/doy/golpearme/pegarme
        myself+hurt/hurting/harm/harming/cut/cutting/burn/burning  again+cut/cutting
        wrists thighs  arms+burn/burning/cut/cutting/hurt/hurting/scratch/scratching
        legs+burn/burning/cut/cutting/hurt/hurting/scratch/scratching
        skin+burn/burning/cut/cutting/hurt/hurting/scratch/scratching
    """,
    "plan": """
        existencia pastillas pills sobredosis overdose tirarme ahorcarme colgarme colgar
        despedida mato soga frasco blister goodbye bridge ledge tiro tirar tiraria sui*
        vida+terminar/acabar/termino/acabo/quitarme/sacarme/quito/saco  fin+poner/ponerle
        jump+building/roof/balcony/window/train/car/bus/cliff
        jumping+building/roof/balcony/window/train/car/bus/cliff
        roof+standing/sitting  edge+standing/sitting  caja+tomar/tomarme
        saltar+quiero/voy/pienso/para/punto  myself+hang
        end+life/all/tonight/everything/it  ending+life/all/tonight/everything
        life+take/taking
    """,
    "burden": """
        nacido existiera existiese muriera desaparezco desapareciera matara estorbo burden
        extranar extranaria disappeared
        sin+mejor  estuviera+no  estuviese+no  carga+soy/siento  muero+si  mato+si
        without+better  molestia+soy  peso+soy  problema+soy  miss+nobody/one
        gone+better/happier/nobody/one  dead+better/happier  died+nobody/one
    """,
    "hopelessness": """
        mas+aguanto/soporto/puedo/doy  todo+terminar/acabar/termino/acabo
        salida+veo/encuentro/tengo/hay  can+anymore/more/go  going+keep  end+all
    """,
}


def _fold_word(word: str) -> str:
    """A word as :func:`normalize` leaves it (seseo, then repeated letters collapsed)."""
    return _REPEATS.sub(r"\1", _seseo(word))


@dataclass(frozen=True)
class _Anchors:
    """One category's anchors, parsed from :data:`_ANCHOR_SPEC`."""

    words: frozenset  # enough alone
    pairs: dict  # word -> frozenset of words, one of which must also be there
    starts: tuple  # " prefix": the start of a word

    @classmethod
    def parse(cls, spec: str) -> "_Anchors":
        words, pairs, starts = set(), {}, []
        for entry in spec.split():
            if entry.endswith("*"):
                starts.append(" " + _fold_word(entry[:-1]))
            elif "+" in entry:
                word, others = entry.split("+")
                word = _fold_word(word)
                also = {_fold_word(other) for other in others.split("/")}
                pairs[word] = pairs.get(word, frozenset()) | also
            else:
                words.add(_fold_word(entry))
        return cls(frozenset(words), pairs, tuple(starts))

    def present(self, words: set, normal: str) -> bool:
        if not self.words.isdisjoint(words):
            return True
        for word in words & self.pairs.keys():
            if not self.pairs[word].isdisjoint(words):
                return True
        return any(start in normal for start in self.starts)


_ANCHORS = {category: _Anchors.parse(spec) for category, spec in _ANCHOR_SPEC.items()}
if list(_ANCHORS) != list(_RISK):
    raise ValueError("every risk category needs anchors, in the same order")
# Any anchor word at all: one set lookup clears most messages.
_ANY_WORD = frozenset().union(*(a.words | a.pairs.keys() for a in _ANCHORS.values()))
_ANY_START = tuple(sorted({s for a in _ANCHORS.values() for s in a.starts}))


def in_reach(normal: str) -> tuple:
    """The categories whose anchors are in ``normal`` (a :func:`normalize` result).

    Only these can match: an empty answer means "certainly no risk language"; a category in it
    means "maybe", and the patterns decide.
    """
    # A "|" a person typed stays glued to its word ("morirme|"), and \b still matches next to
    # it: read it as a space here, so a word is a whole run of letters and digits.
    spaced = normal.replace("|", " ")
    words = set(spaced.split())
    if words.isdisjoint(_ANY_WORD) and not any(start in spaced for start in _ANY_START):
        return ()
    return tuple(c for c, anchors in _ANCHORS.items() if anchors.present(words, spaced))


# --- the API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """The verdict on one message: ``category`` is None when no risk was found."""

    category: Optional[str] = None

    @property
    def risk(self) -> bool:
        return self.category is not None


NO_RISK = Assessment()


def assess(text: str) -> Assessment:
    """Read one message; the first category with a match that is not negated wins.

    Categories without an anchor in the message cannot match and are not tried
    (:func:`in_reach`); a message with no anchor at all costs only its normalisation.
    """
    normal = normalize(text)
    reach = in_reach(normal)
    if not reach:
        return NO_RISK
    normal = _LOOKALIKES.sub(" | ", normal)
    for category in reach:
        for match in _RISK[category].finditer(normal):
            if not _negated(normal, match.start(), match.end()):
                return Assessment(category)
    return NO_RISK


def is_risk(text: str) -> bool:
    """True when ``text`` shows risk language (see :func:`assess`)."""
    return assess(text).risk
