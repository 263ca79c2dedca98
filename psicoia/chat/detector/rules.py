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
2. :data:`_LOOKALIKES` masks common non-risk uses that share words with risk language
   (``"me muero de risa"``, ``"cortarme el pelo"``, ``"this exam is killing me"``).
3. :data:`_STRONG` patterns, one group per category (ideation, passive wishes, burden,
   hopelessness with finality, goodbyes and affairs in order, plans and means, self-harm,
   acts in progress or done, someone else at risk, asks for a human), each enough alone to
   give the message a tier. :data:`_WEAK` patterns are signals that are not enough alone
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

import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

from psicoia.chat.detector.anchors import ANCHORS

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


def _fold_word(word: str) -> str:
    """A word as :func:`normalize` leaves it (seseo, then repeated letters collapsed)."""
    return _REPEATS.sub(r"\1", _seseo(word))


def _dropped_vowel_forms(word: str) -> set:
    forms = set()
    for i, char in enumerate(word):
        if char in _VOWELS and 0 < i:
            forms.add(word[:i] + word[i + 1:])
    return {f for f in forms if len(f) >= 4 and sum(c in _VOWELS for c in f) >= 1}


def _build_words() -> dict:
    words = {_fold_word(k): " ".join(_fold_word(w) for w in v.split()) for k, v in _CHAT.items()}
    keys = {_fold_word(w) for w in _KEY_WORDS.split()}
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


def _fold_pattern(pattern: str) -> str:
    """A pattern as the text reads: seseo, letter runs collapsed (never after a backslash)."""
    if not pattern.startswith("\\b"):
        raise ValueError(f"a crisis pattern must start at a word: {pattern!r}")
    return re.sub(r"(?<!\\)([a-z])\1+", r"\1", _seseo(pattern))


def _patterns(*patterns: str) -> tuple:
    """Folded pattern sources; each is compiled alone (:func:`_compile_one`) and run only
    when one of its anchors is in the message (section 5)."""
    return tuple(_fold_pattern(p) for p in patterns)


def _compile_one(source: str) -> re.Pattern:
    """Every pattern starts at a word, and in normalised text every word follows a space: the
    leading look-behind lets the engine skip all other positions."""
    return re.compile(r"(?<= )(?=[a-z])(?:" + source + ")")


def _compile(*patterns: str) -> re.Pattern:
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


# --- 2. look-alikes: masked before matching ----------------------------------------------------

_IDIOM_NOUNS = (r"risa|rir|hambre|ganas|sueno|sono|frio|calor|verguenza|vergonha|nervios|miedo"
                r"|aburrimiento|amor|envidia|sed|curiosidad|cansancio|cansaco|pena|ansiedad"
                r"|emocion|celos|embole|resaca|laughter|embarrassment|boredom")
_GROOMING = (r"pelo|cabello|flequillo|unas|una|barba|bigote|puntas|flequi|dedo|labio|mano"
             r"|luz|agua|internet|wifi|senal|conexion|llamada|cesped|pasto|carne|pan|cebolla"
             r"|rostro|bangs|hair")
_BODY_INJURY = r"rodilla|tobillo|pie|mano|espalda|brazo|dedo|muneca|hombro|cuello|pierna"

_LOOKALIKES = _patterns(
    # "me muero de risa / hambre / ganas...", "morirme de la vergüenza", "muerta de cansancio".
    rf"\b(muero|mori|morir|morirme|muera|muriendo|morire|moria|muerto|muerta|muertos|morrendo"
    rf"|morri|morta|morto) (de|por|del) (la |el |los )?({_IDIOM_NOUNS})\b",
    rf"\b(que|q) me muero\b",  # "tengo un hambre que me muero"
    r"\bmuero por\b",  # "me muero por ir al recital"
    r"\b(miedo|terror|panico) (de|a) morir(me)?\b",
    r"\bmat\w* (de (la )?risa|estudiando|trabajando|laburando|entrenando|corriendo|haciendo)\b",
    r"\bmatar de (estudar|trabalhar|rir|tanto|fome|saudade)\b",
    r"\bme mato (el|la|los|las|ese|esa|mi|tu|su|con|este(?! finde)|esta(?! noche| tarde| semana))\b",
    r"\b(va|van|vas|vamos) a matarme\b", r"\b(quiere|quieren|queres) matarme\b",
    r"\bme (va|van) a matar\b", r"\bme matan\b",
    r"\bmat\w* el (tiempo|rato|hambre)\b",
    r"\b(me esta|me estan|esta|ta|tá) (me )?mat(ando|ndo)\b",  # "este calor me está matando"
    r"\b(calor|frio|materia|examen|exam|semester|semestre|trabajo|laburo) [^|]{0,20}(matando|killing)\b",
    rf"\bcort\w* (el |la |los |las |un |una |mis |tus )?({_GROOMING})\b",
    r"\bse me cort\w*\b", r"\bme corto (el|la) \w+\b",
    rf"\blastim\w* (el |la |los |las |un |una |un poco |un poco la )?({_BODY_INJURY})\b",
    r"\blastim\w* (jugando|entrenando|corriendo)\b",
    rf"\bdano en (el |la |los |las |mi |mis )?({_BODY_INJURY})\b",
    r"\bme (tiro|tire|tirare|voy a tirar) (a|en) (la |el )?(pileta|piscina|sillon|cama|siesta|dormir)\b",
    r"\b(tirarme|me tiro) (a|en) (la |el )?(pileta|piscina|sillon|cama|dormir)\b",
    r"\bme (jogar|jogo) na (piscina|cama)\b",
    r"\bquiero desaparecer (del|de) (grupo|instagram|las redes|whatsapp|un mes|una semana)\b",
    r"\bdeath of\b", r"\bmuerte de (san|socrates|\w+ martin)\b",
    # English idioms.
    r"\bdying (to|of|for)\b", r"\bdie (of|from) (laughter|embarrassment|boredom)\b",
    r"\bdied laughing\b", r"\bdie (my|her|his|your|the) (hair|clothes|shirt)\b",
    r"\bcould (kill|murder) (for|a)\b", r"\bkill\w* (time|it)\b", r"\bis killing me\b",
    r"\bbattery is dying\b", r"\bi am dead\b(?! serious)", r"\bdead inside\b",
    r"\bcut\w* myself (shaving|cooking|a (slice|piece)|on (a|the)|by accident|accidentally)\b",
    r"\bkill\w* myself (laughing|working|studying)\b",
    r"\bjump in the pool\b",
    r"\b(mi novia|mi novio|mi ex|mi pareja|ella) me corto\b",
    r"\b(el|la|los|las|ese|esa|este|esta|eso|esto) (?!noche|tarde|ves|semana|finde|dia)\w+( de \w+)? me mato\b",
    
    r"\b(escribi|escribo|mande) una carta (a|para) [^|]{0,30}(cumple|cumpleanos|navidad|aniversario)\b",
    r"\bcuiden a mi (gato|perro) (el finde|mientras|unos dias|esta semana)\b",
    r"\bcarta de amor\b", r"\bnota [^|]{0,30}disiendo que (volvia|vuelvo|salgo|sali|fui|llego|lego)\b", r"\bsoga para saltar\b", r"\bjump rope\b", r"\bdesapareser (un|el) (fin de semana|finde|mes|rato)\b",
    r"\b(ultimo|ultima) (dia|semana|noche) (en|de) (el|la|mi) (laburo|trabajo|empresa|escuela|facu|colegio|depto|casa)\b",
    r"\bme despedi de [^|]{0,30}(porque|por que) me (cambio|mudo|voy de viaje)\b",
)

# --- 3. risk patterns ------------------------------------------------------------------------

_END = r"(?= *(\||$))"  # end of the clause or the message
# Verbs and nouns reused below.
_WANT = (r"quiero|quisiera|queria|deseo|desearia|necesito|ganas de|pienso en|pensando en"
         r"|pense en|prefiero|preferiria|me gustaria|me encantaria|me apetese|vontade de|quero"
         r"|queria|penso em|pensando em")
_PILLS = (r"pastillas|pastilla|remedios|medicamentos|clonasepam|rivotril|ansioliticos"
          r"|comprimidos|remedios|pills|blister|blisters|frasco|veneno")
_HIGH = (r"puente|balcon|edifisio|techo|terrasa|ventana|asotea|piso|cornisa|barranca"
         r"|acantilado|ponte|predio|bridge|roof|building|balcony")
_THIRD = (r"mi (mejor )?(amiga|amigo|hermana|hermano|hermanita|hermanito|hijo|hija|novio|novia"
          r"|viejo|vieja|mama|papa|madre|padre|abuelo|abuela|tio|tia|primo|prima|pareja|ex"
          r"|vesino|vesina|companero|companera|alumno|alumna|marido|mujer|esposo|esposa|jefe"
          r"|roomie|colega|pana|compa|socio|amigue|crush)|una (amiga|alumna|companera|conosida|chica|vesina)|un (amigo|alumno|pibe"
          r"|chico|companero|conosido|vesino|nene)|alguien (en|de) un|my (best )?(friend"
          r"|sister|brother|son|daughter|mom|mother|dad|father|girlfriend|boyfriend|partner"
          r"|wife|husband|roommate|student)|a (friend|student)|minha (amiga|irma|mae|filha"
          r"|namorada)|meu (amigo|irmao|pai|filho|namorado)|ella|alguien|someone|she|he")
_THIRD_ACT = (
    r"se (quiere|queria|va a|iba a|piensa|pensaba|puede) (matar|morir|suisidar|tirar|cortar"
    r"|lastimar|hacer algo|hacer dano|ahorcar|colgar)|se mata|se tira|se corta|se esta cortando"
    r"|se lastima|se quema|se quemo|se (tomo|trago) (un|una|todas|todo|muchas)"
    r"|quiere (morirse|morir|matarse|suisidarse|desaparecer)|(no )?quiere (seguir )?vivir"
    r"|(de )?(matarse|suisidarse|ahorcarse|tirarse|cortarse|morirse)"
    r"|es una carga|estamos mejor sin|estarian mejor sin|carta de despedida|despidiendose"
    r"|se despidio|regalo (todas )?sus|no va a (estar|legar)|no quiere bajar|dise que se tira"
    r"|tiene (cortes|marcas)|brasos cortados|gracias por todo|se haga algo"
    r"|(kill|hurt|cut|cutting|harm) (herself|himself|themselves|his|her)|wants to die"
    r"|vai se matar|quer morrer|se matar|no se despierta mas|despertarse|contrasenas|que cuide (a )?su"
    r"|con el mismo|con ella misma|esta en (la terrasa|el techo)|se (quiere|va a) tirar"
    r"|se (quiere|va a|piensa|queria) quitar la vida|quitarse la vida|amenasa con (matarse|suisidarse|tirarse)"
    r"|se (va a|quiere) pegar un tiro|pegarse un tiro|mensaje de despedida|(tomo|se tomo) muchas pastilas"
    r"|estariamos mejor sin (el|ela)|dejo de (tomar|comer) [^|]{0,25}a proposito|(va a|quiere) saltar"
    r"|took (a bunch of|all|too many|a lot of|a bottle of|all (her|his)) (pils|meds)|plan para (suisidarse|matarse)"
    r"|hablando de (matarse|suisidarse|morirse|quitarse la vida)"
    r"|(no )?va a ser una carga|(nos|me|les) pide perdon|se despide|se despidio de todos"
    r"|(wants|wanted|going|trying) to end (her|his|their) life|talking about (suicide|kiling|dying|ending)"
    r"|(wants|is going|is gonna) to (die|kil (her|him)self)|is suicidal|suicidal"
)

_THIRD_SUBJECT = _compile(rf"\b({_THIRD})\b")
# How far before a third-party act its subject may be (characters of normalised text).
_THIRD_REACH = 200

_STRONG: dict[str, tuple] = {
    # Acts in progress or already done: the emergency number first.
    "acute": _patterns(
        rf"\b(ya )?(me )?(tome|trague|tomo|he tomado|acabo de tomar|acabo de tomarme|tomei"
        rf"|me estoy tomando) ((todas|todos|toda|muchas|un monton de|unas cuantas|varias) (las |los |mis |de )?"
        rf"({_PILLS}|pastis|capsulas|gotas)|todo(?= *(\||$))|todo lo que|el frasco|la caja|el blister"
        rf"|el bote|un frasco|una caja|un blister|veneno|el pote|lo que habia|unas cuantas(?= *(\||$))"
        rf"|todo el (frasco|blister|bote|pote|sobre|paquete)|toda la caja|unas cuantas (de las|de los)"
        rf"|las pastillas(?! (de|del|para|que|como|a la|todos)\b))",
        r"\b(acabo de|ya) (tomarme|cortarme|tirarme)\b",
        # Swallowed or injected, with an amount or alcohol: done, not planned.
        rf"\b(tome|trague|me inyecte|inyecte|me he tomado|tomei|me tome) [^|]{{0,30}}\b({_PILLS}|pastis|insulina"
        rf"|parasetamol|ibuprofeno|antidepresivos|lavandina|bote|caja|blister)\b[^|]{{0,30}}\b(enter[oa]"
        rf"|con (alcohol|vino|serveza|whisky|fernet)|y me siento (muy )?mal|me siento rar[oa])\b",
        rf"\b(tome|trague|me inyecte|inyecte|me he tomado|tomei|me tome) (toda la|todo el|todas las|un|el|una|la) "
        rf"(insulina|bote|frasco|caja|blister|cartela) enter[oa]\b",
        r"\b(me )?inyecte (toda|todo|toda la) \w+\b",
        rf"\b({_PILLS}|pastis) con (alcohol|vino|serveza|whisky|fernet)\b",
        r"\b(no para de salir|sale mucha|sale un monton de) sangre\b",
        r"\bme (corte|abri) (el cuelo|la garganta|los brasos)\b",
        r"\bcolgando (los pies|las piernas)\b",
        r"\b(to|estou) (em cima|na beira) d[ao] (ponte|predio|telhado|janela)\b",
        r"\b(prendi|prendo|prendido) (el )?carbon\b", r"\b(bano|pieza|auto|garage) serad[oa]\b[^|]{0,30}\b(carbon|brasas|motor|gas)\b",
        rf"\bme tire (del|de la|desde) [^|]{{0,20}}\b({_HIGH})\b",
        r"\b(tome|trague|tomei|me tome) [0-9]{2,} \w+\b",
        r"\b(tome|me tome|trague|bebi|tomei) (lavandina|veneno|lejia|cloro|rasiticida|raticida|soda caustica)\b",
        r"\bya me tire (y|del|de la|desde|al)\b", r"\b(sale|sangra|sangro) (mucha sangre|mucho|un monton)\b",
        r"\bme corte (muy )?(hondo|profundo)\b", r"\bme estoy (ahogando|asfixiando|desangrando)\b",
        r"\b(revolver|arma|pistola|escopeta) en la (cabesa|boca|sien)\b",
        r"\btomei (muitos|muitas|todos|todas|o vidro|a cartela)\b", r"\bya tome\b[^|]{0,40}(\| [^|]{0,40})?\b(listo|chau|me acuesto|sueno)\b",
        r"\bme (tome|trague) [^|]{0,30}(hase|hace) (un rato|media hora|\w+ horas?)\b",
        r"\b(estoy|ta|esta|sigo) sangrando\b", r"\bhay (mucha )?sangre\b",
        r"\bno para de sangrar\b", r"\bme estoy desangrando\b", r"\bsangrando muito\b",
        r"\bme (abri|corte) (las venas|las munecas|muy profundo|profundo)\b",
        r"\bme corte\b[^|]{0,20}\b(me estoy mareando|no (se como|puedo) pararlo)\b",
        r"\b(estoy|to|me he subido|me subi) [^|]{0,30}\b(borde|cornisa|beira|escolera|anden|via|vias|edge|ledge|tracks|baranda)\b",
        r"\b(ya )?(pase|salte|saltado|he saltado) (la|el) (baranda|valla|baranda|reja)\b",
        r"\bdel lado de afuera\b", r"\bpiernas colgando\b",
        r"\b(estoy|me meti) en el (agua|rio|mar)\b",
        r"\b(abri|prendi|deje abierto|tengo abierto) el gas\b", r"\bgas abierto\b",
        r"\b(deje|tengo) (las hornallas|la hornalla|la cosina) abiertas?\b",
        r"\bla cosina ya huele\b", r"\bya huele\b",
        r"\bsoga (ya )?(esta )?(atada|colgada|puesta)\b", r"\bbanquito y la soga\b",
        r"\bmotor prendido\b", r"\bsoltar el volante\b",
        r"\b(tengo|con) (el arma|el revolver|la pistola|la escopeta|el cuchilo|la gilete"
        r"|la hojita|las pastillas|la soga|el cuter)\b[^|]{0,30}\b(en la mano|en la boca"
        r"|apoyad[oa]|ahora mismo|en el cuelo)",
        r"\bya se ve (la lus del )?tren\b",
        r"\bi (just )?(took|swallowed) (all|every|a bottle|the whole|too many|my pills|a whole|an entire|a lot of)\b",
        r"\bi (just )?overdosed\b", r"\bi (slit|cut) my wrists\b",
        r"\b(i am|i m) (on|at|standing on|sitting on) (the |my |a )?(roof|ledge|edge|tracks|bridge)\b",
        r"\bstanding on the tracks\b", r"\b(i am )?bleeding (a lot|badly|out|so much)\b",
    ),
    "third_party": _patterns(
        # Only counted after a third person named earlier in the message (_THIRD_SUBJECT).
        rf"\b({_THIRD_ACT})\b",
        r"\b(alguien|un tipo|una piba|un pibe) [^|]{0,30}dijo que se mata\b",
        r"\b(se|le) (vi|vimos) (los brasos|cortes|las marcas)\b",
        r"\bbuscaba? como (ahorcarse|matarse|suisidarse)\b",
        r"\bblisters vasios\b",
    ),
    "ideation": _patterns(
        rf"\b({_WANT}) (morir|morirme|morrer|mori)\b",
        r"\bme (quiero|quisiera|gustaria|queria|re quiero) morir\b",
        r"\bmorirme\b", r"\bmatarme\b", r"\bme matar\b",
        r"\bme (quiero|voy a|vuelvo a|dan ganas de|gustaria|quisiera|queria|re quiero|vou) matar\b",
        r"\bsui[cs]idarme?\b", r"\b(pienso|pensando|pense|penso|intento|intente|idea del?) (en |em |no )?(el |o )?sui[cs]idio\b",
        r"\bel sui[cs]idio (es|como) (lo que me|la unica|mi)\b",
        r"\b(mi|planeando|planear|planeo|preparando|como) (propio )?sui[cs]id\w*\b",
        r"\b(pensamientos|ideas) (de|sobre la|sobre) (muerte|morir|sui[cs]idio)\b",
        r"\b(la muerte|morir|morirme|matarme|el sui[cs]idio|irme) (es|seria|como) (la|mi) (unica|ultima)"
        r" (salida|opcion|solusion)\b",
        r"\b(unica|ultima) (salida|opcion|solusion) (es|seria|que me queda es) (morir|morirme|matarme"
        r"|la muerte|el sui[cs]idio|irme)\b",
        r"\bme imagino muert[oa]\b", r"\b(desirme|dise|disen|pide|piden|pidiendo|disiendo)(me)? que me mate\b",
        r"\bhasta (los cojones|el cono|el mono|la madre) de vivir\b",
        r"\bme (voy a|quiero|pienso) (quitar|sacar) la vida\b",
        r"\bdesapareser (del mapa|para siempre|de la fas)\b",
        # English, wider.
        r"\bwhats the point (of|in) (living|life|going on|being alive|anything|trying)\b",
        r"\b(so )?done with (everything|it all|life|living|this life)\b",
        r"\bwant out\b" + _END, r"\b(i )?(want|wanna) (it all )?to (end it|be gone|stop existing)\b(?! (well|soon|happily|on))",
        # Portuguese, wider.
        r"\b(nao vejo|sem|perdi o) (mais )?sentido (em|de|na) (viver|vida)\b",
        r"\b(quero|queria|vontade de|preciso) (sumir|morrer|desapareser)\b", r"\bsumir (pra|para) sempre\b",
        r"\bwant (it all|everything|this|it|my life) to (end|stop)\b(?! (well|soon|happily|on|early|at))",
        r"\b(no|any|see no|dont see any|not see any) reason to (keep living|live|go on|keep going|be alive)\b",
        r"\b(nao )?aguento mais viver\b", r"\benforcar\b", r"\bme enforcar\b",
        r"\b(porque|por que) no me muero\b", r"\b(voy|vou) me matar?\b",
        r"\bquitar(me|a)? de en medio\b", r"\b(nao )?quero mais viver\b", r"\bnao quero viver\b", r"\bme (voy a|quiero|quisiera|gustaria|pienso) sui[cs]idar\b",
        r"\b(soy|me siento|estoy|pensamientos|ideas|ideasion) sui[cs]idas?\b",
        r"\bojala (me )?muera\b", r"\bojala (estuviera|estar) muert[oa]\b",
        r"\b(prefiero|preferiria|quisiera|quiero|desearia|deseo) estar muert[oa]\b",
        r"\b(mejor|estaria mejor) muert[oa]\b",
        r"\b(no|ya no) (quiero|tengo ganas de|se si quiero|kiero) (seguir )?(vivir|viviendo|estar viv[oa]"
        r"|existir|seguir viv[oa]|seguir)\b(?! (en|con|cerca|lejos|aca|alla|de|solo|sola|sin|estudiando|trabajando|asi)\b)"
        r"(?! mas (en|con|cerca|lejos|aca|alla|de)\b)",
        r"\b(sin|perdi las|no tengo|ni) ganas de vivir\b",
        r"\b(cansad[oa]|hart[oa]|cansado|hasta las narises) de vivir\b",
        r"\b(dejar de|no quiero|no quisiera|quiero dejar de) (existir|vivir|estar)\b"
        r"(?! (en|con|cerca|lejos|aca|alla|de|solo|sola|sin|asi|tranquil\w*|bien|mal|todo el dia|toda la)\b)",
        r"\bpara que (seguir viviendo|sigo viviendo|seguir vivo|seguir viva|vivir|seguir)" + _END,
        r"\b(porque|por que) sigo viv[oa]\b",
        r"\bno (le )?(encuentro|veo) (ningun |el )?sentido (a|de) (la vida|vivir|seguir|mi vida)\b",
        r"\b(la vida|vivir) no (vale la pena|tiene sentido)\b",
        r"\bno (vale|tiene) (la pena|sentido) (vivir|seguir|que siga viv[oa])\b",
        r"\bpienso (mucho |todo el tiempo |siempre )?en (la muerte|morir(me)?)\b(?! de\b)",
        r"\b(irme|me quiero ir|me voy a ir|dejar|desaparecer|largo|pirar|bajo) (de|del) (este )?mundo\b",
        r"\b(quiero|quisiera|ganas de|me gustaria|me apetese) desaparecer\b(?! de (?!este mundo))"
        r"(?! (un rato|un tiempo|unos dias|una semana|del|un mes)\b)",
        r"\bquitarme (la vida|de en medio)\b", r"\bsacarme del medio\b", r"\bme saco del medio\b",
        r"\b(desearia|quisiera|quiero|me gustaria|ojala|prefiero|preferiria) (no existir"
        r"|dejar de vivir|no vivir|no haber nacido|no haber existido)\b",
        r"\bno (quiero|quisiera) (estar|seguir|quedarme) (mas )?en este mundo\b",
        r"\b(da|es) (igual|lo mismo) (vivir o morir|si vivo o (me )?muero|morir(me)?)\b",
        r"\b(quiero|necesito|ojala) que (se )?(termine|acabe) (todo|mi vida)\b",
        r"\bno (tengo|me quedan) (fuersas|ganas|motivos|rasones) (para|de) (seguir|vivir)\b",
        r"\bmejor (me muero|desaparezco|me mato|no existo)\b",
        r"\bdejar de (respirar|estar vivo|estar viva)\b",
        r"\b(si|no) (vale|valdria) la pena (vivir|seguir)\b(?! (con|en|estudiando|trabajando)\b)",
        r"\bme mato\b" + _END,
        r"\bme mato (hoy|esta noche|ya|manana|de una vez|posta)\b",
        r"\b(hoy|esta noche|manana|ya) me mato\b",
        r"\b(lo mejor es|mejor) matarme\b", r"\bformas de matarme\b",
        r"\b(quero|vou|to pensando em|pensando em) me matar\b", r"\bme matar\b",
        r"\bquero morrer\b", r"\bquero sumir\b", r"\bcansad[oa] de viver\b",
        # English.
        r"\b(want|wanted|wish|wishing|ready|need) to die\b",
        r"\bwant to dye\b(?! (my|her|his|your|the|it)\b)",
        r"\bwish i (was|were) dead\b", r"\bwish i (was|were|had) never (been )?born\b", r"\b(rather|want to) be dead\b", r"\bbetter off dead\b",
        r"\bkil(ing|ed)? myself\b", r"\bsuicidal\b",
        r"\b(thinking|thought|think|considering|contemplating) (about |of )?(suicide|dying|kiling myself)\b",
        r"\b(commit|committing|attempt|attempted) suicide\b",
        r"\bdo not (want|wanna) to (live|be alive|exist|wake up|be here)\b(?! (in|with|near|alone)\b)",
        r"\bno reason to (live|go on|keep going|be here)\b", r"\bnothing to live for\b",
        r"\b(life|it) (is not|isnt) worth living\b", r"\bnot worth living\b",
        r"\bwant to disappear\b(?! (from|under|for|into|in|until)\b)", r"\bdisappear forever\b",
        r"\bno point (in |of )?(living|going on|being alive|anymore)\b",
        r"\b(stop|cease) existing\b", r"\bwant to not exist\b", r"\btired of (existing|living|being alive)\b",
        r"\bdone with (life|living)\b", r"\b(using|use) it on myself\b",
    ),
    "passive": _patterns(
        r"\bojala (no )?(despertar|despertarme|amanesca|me agare|me pise|me lleve|me atropele"
        r"|me pase algo|me pase|se caiga|me hubiera muerto|hubiera sido yo)\b",
        r"\bojala\b[^|]{0,30}\bme (muera|atropele|pise|mate|leve|agare)\b",
        r"\b(bueno|lindo|mejor|ojala|quisiera|quiero|deseo|desearia|prefiero|preferiria|esperansa de|resando)"
        r" no (despertar|despertarme|despertara|levantarme|abrir mas los ojos|volver|amaneser)\b",
        r"\b(no (quiero )?despertar(me)?( nunca)? mas|no volver a despertar)\b",
        r"\b(no quiero|ojala no|quisiera no|y no) despertar(me|a)?\b",
        r"\bsi (manana )?no me despierto\b",
        r"\b(irme|me voy|desapareser|dormir|dormirme|descansar|me rindo) para siempre\b(?! (a|de|al|con|los|las|el|la|en|cada)\b)",
        r"\b(quisiera|quiero) dormir(me)? y (no|que sea para siempre)\b",
        r"\bo para siempre\b", r"\bno (abrir|volver a abrir) (mas )?los ojos\b",
        r"\bsi me pasa algo\b[^|]{0,30}(\| [^|]{0,10})?\bmejor\b",
        r"\bsi me (muero|muriera|pasa algo|pisa|atropela|enfermo)\b[^|]{0,40}\b(mejor|estaria bien|que asi sea"
        r"|no pasa nada|no me molestaria|prefiero)\b",
        r"\b(no|ya no) le tengo miedo a la muerte\b",
        r"\bno me (importaria|molestaria) (morir|morirme|que me pase algo|si me muero)\b",
        r"\bsi [^|]{0,25}me (atropela|pisa|pasa por arriba|mata|leva puesto)\b",
        r"\b(reso|pido|ruego|espero) (para )?que no (amanesca|me despierte|despierte)\b",
        r"\b(ruego|reso|pido) no (despertar|despertarme|amaneser|levantarme)\b",
        r"\bojala [^|]{0,20}no me despierte\b", r"\bque me leve\b(?! (a|al|hasta|en|de|con)\b)",
        r"\b(termine|acabe|se termine|se acabe) (todo )?para mi\b",
        r"\b(estaria bueno|seria lindo|seria un alivio|que alivio) (desapareser|no estar|no existir|morir(me)?|irme)\b",
        r"\bdesapareser del todo\b",
        r"\bsi me (chocan|atropelan|pisan|matan|agara|pasa algo)\b[^|]{0,40}\b(alivio|mejor|estaria bien"
        r"|no me (voy a|pienso) (tratar|curar|cuidar)|no me importaria)\b",
        r"\bojala (todo )?(se )?(termine|acabe) (pronto|ya|de una ves)\b",
        r"\bseria no (existir|estar|despertar(me)?|vivir)\b",
        r"\b(alivio|pas|descanso) (seria )?(no existir|morir(me)?|no despertar(me)?)\b",
        r"\b(le pido|pido) a dios que me leve\b", r"\bque alguien apague\b",
        r"\b(borrarme|evaporarme|apagarme|dejar de ser|dejar de estar)\b(?! de (instagram|las redes|whatsapp))",
        r"\bfantasias con que me\b", r"\bque el mundo se olvide que existi\b",
        r"\bno existir mas\b", r"\bme gustaria no haber\b",
        r"\b(quisiera|quiero|desearia) que todo se (apague|apagara|termine|terminara|acabe)\b",
        r"\bdormir e nao acordar\b", r"\bnao acordar\b",
        r"\b(fall asleep|sleep) and (never|not) wake up\b", r"\b(never|not) wake up\b",
        r"\bhope i get hit\b", r"\btired of being here\b",
        r"\b(me )?atropel(e|ase|lase)\b", r"\bme (atropele|atropelase|pise) un\b",
    ),
    "burden": _patterns(
        r"\b(estarian|estaria|estarias|seria|serian|vivirian|estariais|ficaria|ficar|ia fi?car|iria|iban a estar)"
        r" [^|]{0,25}(mejor|melhor|tranquilos|tranquila|tranquilo|en pas|aliviados) (sin|sem) (mi|mim|eu)\b",
        r"\bmejor sin mi\b", r"\b(estarian|vivirian|serian|estariais|iban a estar) [^|]{0,15}(mejor|tranquil\w*|felises|en pas|aliviad\w*)\b",
        r"\bmejor (desapareser|desaparesco|no estar|me voy de una|me saco|me muero|me borro|me mato"
        r"|me quito del medio|me saco del medio)\b", r"\bsi desaparesco\b",
        r"\b(nobody|no one) would (care|notice|miss me) if i (died|was gone|were gone|disappeared)\b", r"\bmelhor sem (mim|eu)\b", r"\bsin mi\b[^|]{0,40}\b(mejor|en pas|no hay problema|bien)\b",
        r"\bmejor (si|que) (yo )?no (estuviera|existiera|estuviese|existiese|hubiera nacido|este|exista)\b",
        r"\bsi me (fuera|voy|muero|muriera|mato|matara)\b[^|]{0,20}\bpara siempre\b",
        r"\b(les|le) (daria|haria|doy) un (respiro|favor|alivio)\b",
        r"\b(van a|vas a|va a|iban a) estar mejor sin\b", r"\bestar\w* mejor sin (una|un) \w+ como yo\b",
        r"\bmejor (no estar|no existir|eu nao existir|eu sumir)\b",
        r"\bojala no (hubiera|haber) nasido\b", r"\bperdon por haber nasido\b",
        r"\bsoy (una|la) carga\b", r"\bla carga de\b",
        r"\b(me siento|siento que soy) una carga\b(?=( *(\||$))| (para|tan|de|enorme|muy))",
        r"\bsi me (muero|muriera|desaparesco|desapareciera|mato|matara)\b",
        r"\bbetter off (without me|if i)\b",
        r"\bsi (yo )?no (estuviera|existiera|estuviese|existiese)\b",
        r"\bsoy (un estorbo|una molestia|un peso|un lastre|un gasto|un obstaculo|una mochila|el problema)\b",
        r"\b(siento que |solo )?(estorbo|molesto|sobro) (en todos lados|a todos|en todas partes|en esta casa)\b",
        r"\b(no se merese|no merese|no merecen) (cargar|tener que cargar|aguantar|bancar) (conmigo|a alguien como yo)\b",
        r"\b(cansad[oa] de|harto de|harta de) ser (un problema|una carga|un estorbo|una molestia)\b",
        r"\b(solo|nada mas) (le|les) (traigo|doy) problemas\b",
        r"\b(estaria|estarian) mejor con otr[oa]\b",
        r"\b(lo mejor es que|mejor que) me (vaya|valla) (del todo|para siempre|de una ves)\b",
        r"\b(me siento|siento que solo soy|solo soy) (un estorbo|una mochila|un obstaculo|un peso)\b",
        r"\b(sou|me sinto) (um|uma) (peso|carga|fardo|estorvo)\b",
        r"\bsentir (minha )?falta de mim\b", r"\bninguem (vai|ia) sentir (minha )?falta\b",
        r"\b(they|everyone|my family|you all) (would|will) be (so much |much )?(better|happier) (off )?(without me|if i)\b",
        r"\bsoy (un problema|una carga) para\b",
        r"\b(no|ya no) (voy a|vas a|van a) (ser|tener que) (un problema|una carga|un estorbo"
        r"|una molestia|un peso|aguantarme|bancarme|cuidarme|preocuparse)\b",
        r"\b(i am|im) (just |only |such )?a burden\b", r"\bburden (to|on) (everyone|everybody|my family)\b",
        r"\bnadie (me )?(va a extranar|extranaria|me extranaria|ia sentir (minha )?falta)\b",
        r"\b(ninguem|nadie) [^|]{0,10}(sentir|extranar) (minha falta|me)\b",
        r"\b(nobody|no one) (would|will) miss me\b",
        r"\b(better|happier) (if|when) i (was|were|am) (gone|dead|not around)\b",
        r"\b(if|when) i (was|wasnt|were|weren|am) (not )?around\b",
        r"\b(les|le) (haria|hago) un favor (si|muriendome|muriendo|al)\b",
        r"\b(los|las|la|lo) libero de mi\b", r"\blibrarse de mi\b", r"\bsobro\b",
        r"\b(cuando|si) no este mas\b", r"\bno este mas\b",
        r"\bmi muerte (le|les) (solusionaria|haria|ahoraria)\b",
        r"\batrapalho a vida de todo\b",
    ),
    "hopeless": _patterns(
        # "no doy más" alone is everyday exhaustion in Argentina: only a weak signal (despair).
        r"\bno (aguanto|soporto|puedo) mas\b(?=( *(\||$))| (con )?(esta vida|mi vida|la vida"
        r"|vivir|de verdad|en serio|nada|todo)\b)",
        r"\bno doy mas\b(?= (con )?(esta vida|mi vida|la vida|vivir|de verdad|en serio)\b)",
        r"\b(terminar|acabar|termino|acabo) con (todo|mi vida|mi existensia)\b(?! (el|la|los|las|lo|esto de)\b)",
        r"\bno (le )?(veo|encuentro|tengo) (ninguna )?salida\b", r"\bno hay salida\b",
        r"\bnao vejo saida\b",
        r"\b(ultima|ultimo) (noche|semana|dia|ves) (que|q) (aguanto|hago|hablo|abraso|te escribo|vivo|paso)\b",
        r"\bes la ultima\b" + _END, r"\bno hay nada que haser conmigo\b",
        r"\b(will not|not|wil) be around (much |for )?(longer|much longer|for long|anymore)\b",
        r"\bno (voy a|vo a) (legar|estar) (a|al|para|en) (fin de ano|navidad|\w+bre|mi cumple|septiembre|el ano)\b",
        r"\bno (legar|voy a legar|legare|legas) a (navidad|fin de ano|\w+bre|mi cumple)\b",
        r"\bno lego a (navidad|fin de ano|\w+bre|mi cumple)\b",
        r"\b(el ano que viene|el lunes|el mes que viene|manana|el viernes|para el \w+) (ya )?no (voy a estar|existo|estoy)\b",
        r"\bno (voy a estar|existo) (mucho mas|para)\b", r"\bya no voy a estar\b",
        r"\bmanana no va a haber\b",
        r"\bno hay nada que me (sostenga|retenga|ate|mantenga)\b",
        r"\b(ya )?no voy a (existir|seguir aca|seguir viv[oa]|seguir en este mundo)\b",
        r"\b(es|sera|fue) mi (ultima|ultimo) (semana|dia|noche|mes|cumple|navidad|ano)\b",
        r"\bno me veo (viv[oa]|aca|en \w+ (anos|meses))\b",
        r"\bno (voy a|vas a) legar a (mi cumple\w*|navidad|ano nuevo|las fiestas|fin de ano|\w+bre|el verano)\b",
        r"\bno me (van a|vas a|vuelven a) ver (nunca )?mas\b(?! (por|en|el|la) )", r"\bno me veo en ningun futuro\b", r"\bno hay futuro para mi\b",
        r"\b(se termina|se acabe|se acaba|se termino) (todo|mi sufrimiento|esto|pronto)\b"
        r"(?! (el|la|los|las|este)\b)",
        r"\b(esto|todo) se termina\b", r"\bque se termine\b" + _END, r"\bque se acabe de una ves\b",
        r"\bmi vida ya se termino\b", r"\bno hay vuelta atras\b", r"\bya no va a haser falta\b",
        r"\bsolo irme\b", r"\bya no tengo nada por (que|lo que) seguir\b", r"\bse me acabo\b",
        r"\bno tengo arreglo\b", r"\bme rindo para siempre\b", r"\bno aguanto (uno|una) mas\b",
        r"\bno me van a tener que aguantar\b", r"\b(todo|ya esta todo) dicho\b",
        r"\bno (voy a|pienso) seguir (esperando|intentando|buscando)\b",
        r"\bno (puedo|pienso) seguir\b" + _END,
        r"\bya no (puedo sostener|quiero tenerlo)\b",
        r"\bcan not (take it|take this|do this|handle (it|this|life)) any ?more\b",
        r"\bcan not (go on|keep going)\b(?=( *(\||$))| like this| any ?more| living)",
        r"\bend it all\b",
        r"\b(not|never) (going to|gonna) be (here|around|alive) (next|tomorrow|by|for|much|anymore)\b",
        r"\b(will not|wont) be (here|around|alive) (next|tomorrow|by|for|much|anymore)\b",
        r"\bno way out\b", r"\b(will not|wont) make it to\b", r"\blast night i put up\b",
        r"\bi am done\b[^|]{0,5}(\| )?goodbye\b",
        r"\bnao (to|estou|vou estar) mais aqui\b", r"\bja deu pra mim\b", r"\bultima noite\b",
    ),
    "goodbye": _patterns(
        r"\b(escribi|escribo|escribiendo|deje|tengo|he dejado|ya escrevi|escrevi|wrote|writing) "
        r"(mi |una |la |las |unas |cartas? |a |letters |my )?(carta|cartas|nota|letters|note|carta pra)\b",
        r"\bcarta de despedida\b", r"\b(posteo|mensaje|historia) de despedida\b",
        r"\b(gracias|obrigad[oa]) por (todo|tudo|intentar|escucharme)\b[^|]{0,40}(\| )?[^|]{0,40}"
        r"\b(los quise|te quise|los amo|perdon|en serio|la ultima|chau|adios|amo voses)\b",
        # "le pedí perdón por todo" tells about an apology (a weak farewell); "perdón por todo"
        # is one.
        r"\b(?<!pedi )(?<!pedir )(?<!pedirle )(?<!pedile )(?<!pido )(perdon|perdao|perdonadme|sorry)"
        r" (por|for) (todo|tudo|everything)\b",
        r"\b(thank you|thanks) for everything\b", r"\bi loved you all\b",
        r"\b(los|las|te) (quise|kise|ame)\b", r"\bamo voses\b",
        r"\b(cuiden|cuidadlo|cuidala|cuidalo|cuidem|cuida|take care of) (a |do |of )?(mi|meu|minha|my) (gato|perro|cachoro|cat|dog|perra|gata)\b",
        r"\bcuidadlo mucho por mi\b", r"\bos dejo mi (gato|perro)\b",
        r"\b(dejo|deje|he dejado|te dejo|les deje) [^|]{0,40}\b(contrasenas?|claves|usuario|papeles firmados"
        r"|todo ordenado|todo en orden|las cuentas)\b",
        r"\b(contrasenas?|claves) (del banco|de mis cuentas)\b",
        r"\b(regale|he regalado|ya regale|le regale|gave away|i gave)\b[^|]{0,50}\b(no (la|lo|los|las|me) (voy|van) a (nesesitar|haser falta)|ya no (tiene sentido|me van)|won t need|will not need|no quiero que|era lo unico)",
        r"\b(regale|he regalado|ya regale|estoy regalando) (todas|todos|todo|mis cosas)\b",
        r"\b(gave away|already gave) my\b",
        r"\bno (la|lo|los|las) voy a (nesesitar|usar) mas\b", r"\bwon t need them\b", r"\bwill not need them\b",
        r"\bdespidiendome\b",
        r"\bchau a todos\b", r"\b(chau|adios|goodbye)\b" + _END,
        r"\b(ultima ves|last time) (que te escribo|i write|i talk)\b", r"\bultima voluntad\b",
        r"\bno (fue|es) (su|tu) culpa\b", r"\bno es culpa de nadie\b", r"\bno fue culpa de ustedes\b",
        r"\bque nadie se sienta culpable\b",
        r"\bdiganle a (mi|mis)\b", r"\bsi (manana )?no (contesto|vuelvo a escribir)\b",
        r"\b(cuando|cuando ya) no (este|estoy)\b", r"\bcuando yo no este\b",
        r"\bborre todas mis fotos\b", r"\bcere (las redes|todo)\b",
        r"\btodo listo para irme\b", r"\b(irme|me voy|me voy de una)" + _END,
        r"\bya puedo irme\b", r"\bantes de irme para siempre\b", r"\bdejar todo en orden\b",
        r"\bpara cuando vengan a buscar mis cosas\b", r"\bquien se queda con (cada uno de )?mis\b",
        r"\bpor si hay que avisarle\b", r"\blo ultimo que queria desirte\b",
        r"\bse queda con [^|]{0,20}mis\b", r"\b(carpeta|papeles) [^|]{0,40}no tienen que buscar\b",
        r"\bpague todas las deudas\b",
        r"\b(deixei|deixo) tudo (organisado|arumado|pronto|em ordem)\b",
        r"\bcuidem (do|da) (meu|minha) (gato|gata|cachoro|cachora|filho|filha|planta)\b",
        r"\b(wrote|written|writing) (my |the )?(goodbye|farewell|last) (letters?|notes?)\b",
        r"\b(take care of|look after) my (cat|dog|kids|plants)\b(?![^|]{0,25}(while|vacation|trip|weekend))",
        r"\b(goodbye|bye) (everyone|forever|world|all)\b(?![^|]*(\| [^|]*)?(see you|after the|til|until|tomorrow|next))",
        r"\bthis is goodbye\b",
        r"\bsorry for everything\b", r"\bi love you all\b[^|]{0,20}(\| )?(goodbye|sorry|bye)\b",
        r"\bgave (my|away my) (dog|cat|stuff|things|guitar|books)\b[^|]{0,40}\b(better|will not need|wont need|no longer)\b", r"\bno voy a volver\b", r"\bno le digas a nadie\b",
        r"\bsos el ultimo\b", r"\bno lo saben\b",
        r"\b(mi )?(ultimo|ultima) (mensaje|carta|despedida)\b", r"\bme despido de (todos|ustedes|todo)\b",
        r"\b(chau|adios|tchau) (para siempre|a todos|mundo|pra sempre)\b(?![^|]*(\| [^|]*)?(nos vemos|hasta (manana|el|la|pronto)))",
        r"\bhasta siempre\b", r"\bmi despedida\b", r"\b(les|te|os) dejo una (carta|nota)\b",
        r"\bpara (despues de que|cuando) me (vaya|muera|haya ido)\b",
        r"\b(cuides|cuiden|cuidar|cuidad) (a )?(mis|mi) (gatos|perros|gato|perro|hijos|plantas)\b"
        r"(?![^|]{0,25}(vacasiones|viaj|mientras|el finde|unos dias))",
        r"\b(perdon|perdonen|perdoname|sorry|lo siento) por lo que (voy a haser|hise|hare|i am about)\b",
        r"\b(deje|hise|escribi|redacte|arme) (el |mi |un )?testamento\b",
        r"\blo siento por todo\b", r"\bos (echare|voy a echar) de menos\b",
        r"\b(deje|tengo|dejo|queda) todo (arreglado|ordenado|en orden|resuelto|organisado)\b", r"\blas cartas (estan|quedan) en\b",
        r"\bya me (he )?despedi(do)? de\b", r"\bme despedi de (todos|todo|tds)\b",
    ),
    "plan": _patterns(
        r"\b(terminar|acabar|termino|acabo) con (mi vida|mi existensia)\b",
        r"\b(quitarme|sacarme|me quito|me saco) la vida\b",
        r"\bponer(le)? fin a (mi vida|todo)\b",
        r"\btomar(me)? (todas|todo) (las|mis|lo que)\b",
        rf"\b(junte|juntando|acumulando|acumule|junto|juntar|juntarla|voy juntando|estoy juntando) [^|]{{0,30}}\b({_PILLS})\b"
        r"(?! (para la|de la|para dormir y|pra alergia|para el dolor))",
        rf"\b(guardando|guarde|guardo|tengo) [^|]{{0,40}}\b({_PILLS})\b[^|]{{0,40}}\b(para cuando|en ves de tomar"
        rf"|para el dia|para haserlo|sufisientes|de sobra|para no despertar|para matarme)\b",
        rf"\b(guardo|guarde|guardando) (el|la|los|las) ({_PILLS}) en ves de\b",
        rf"\b({_PILLS}) (contadas|juntas|guardadas|listas|del insomnio guardadas)\b",
        r"\b(hacerme|tomar|tomarme) una sobredosis\b", r"\bsuficiente para (matarme|no despertar)\b",
        r"\bcuantas pastillas (hacen falta|nesesito|son)\b",
        r"\bcuantas (serian|son|hacen falta) (demasiadas|sufisientes|para (no|morir|matarme))\b",
        rf"\b(tirarme|me tiro|me (voy a|quiero|vuelvo a) tirar|tiraria|saltar|meterme|me jogar|jogar me|arrojarme) [^|]{{0,20}}"
        rf"\b({_HIGH}|tren|auto|colectivo|bondi|camion|subte|vias|vasio|rio|agua|arroyo|mar)\b",
        r"\b(tirarme|saltar|salto) (desde|de) (que|el) (puente|piso)\b",
        rf"\b({_HIGH}) [^|]{{0,30}}\b(y salto|y me tiro|tirarme|y tirarme|y saltar)\b",
        r"\b(estuve|he estado|estoy|i keep) (mirando|viendo|averiguando|buscando|looking up) [^|]{0,30}"
        r"\b(puente|tren|piso|edifisio|vias|bridge|pastilas|pils)\b",
        r"\bend(ing)? my life\b", r"\bnot see (the |any )?point (of|in) (living|going on|being alive|life)\b",
        r"\bahorcarme\b", r"\bcolgarme\b", r"\bsoga\b(?! (nueva )?para (el tendedero|saltar|la ropa|atar|el barco|escalar|el gimnasio))", r"\bcorda\b",
        r"\b(el |un |la |de mi viejo |tengo un )?(revolver|escopeta|pistola|arma de fuego|gun)\b",
        r"\bel arma\b", r"\bcuchilo nuevo\b[^|]{0,20}\bno es para\b",
        r"\b(voy a|cuando|el finde) [^|]{0,30}abrir el gas\b", r"\babrir el gas\b",
        r"\b(auto|carro) prendido en el garage\b", r"\bno pienso frenar\b",
        r"\bcontra un camion\b", r"\bmeterme (al|en el) (rio|agua|mar)\b", r"\bhasta no haser pie\b",
        r"\bno saber nadar\b", r"\bno se nadar\b",
        r"\bque piso es seguro\b", r"\bno sobrevivis\b", r"\bpara no despertarse\b",
        r"\b(ya )?(pense|tengo pensado|elegi|tengo elegido) (como|el lugar|cuando|haserlo)\b",
        r"\bel plan es\b", r"\b(para )?no sobrevivir\b",
        r"\b(donde|de donde) (atarlo|atarla|colgarme|colgarlo|colgarla)\b",
        r"\btengo (las|todas las|muchas) pastillas (aca|listas|juntas|guardadas|al lado)\b",
        r"\b(lo|la|los|las) voy a tomar (esta noche|hoy|ya|todo|todas|de una)\b",
        r"\b(saving|stockpiling|hoarding|colecting|saved|stockpiled) (up )?(my |the |all my )?(pils|meds|medication|medicine)\b",
        r"\b(bought|got|have) (a )?rope\b", r"\b(i have|there is) a gun\b[^|]{0,40}\b(myself|use it|end)\b",
        r"\bplanning (to die|my suicide|to end it|to kil myself|how to)\b",
        r"\btomar (todos|todas) (os|as) (remedios|comprimidos)\b",
        r"\b(pular|me jogar|jogar) (do|da|de) (predio|ponte|janela|sacada|telhado)\b",
        r"\b(se|se como|forma de|manera de|how to) (terminar|acabar|end) (con )?(esto|todo|mi vida|it)\b",
        r"\b(acelerar a fondo y|chocar a proposito|tirar el auto contra|voy a acelerar y listo)\b",
        r"\bme (voy a|quiero|pienso) colgar (en|de|del)\b",
        r"\b(pegar(me)?|me (voy a|quiero) pegar) un tiro\b", r"\bun tiro en la cabesa\b",
        r"\b(elegi|tengo elegido|tengo pensado|ya se) (el dia|la fecha|el lugar|la hora)\b", r"\banote el plan\b", r"\bla voy a usar (conmigo|con migo)\b",
        r"\bhasta lo ensaye\b", r"\bpasa el tren rapido\b", r"\besperar al tren\b",
        r"\b(tengo|ya tengo) todo (para (haserlo|matarme|ahorcarme)|en el cajon)\b",
        r"\b(solo|nomas) me falta animarme\b", r"\bme las tomo\b", r"\bme (las|lo) voy a tomar\b",
        r"\b(me )?las tomo todas\b", r"\bme tomo todo\b",
        r"\bme voy a tomar (todas|tdas|todo)\b",
        r"\bde que puente\b", r"\bwhich bridge\b", r"\bbottle of pills\b",
        r"\b(ending|end) it (this|tonight|today|now|on)\b",
        r"\b(take|taking) my (own )?life\b",
        r"\bsuicide note\b", r"\b(wrote|writing|write) (a|my) goodbye (note|letter)\b",
        r"\b(saving|hoarding|stockpiling|collecting) pills\b", r"\bto overdose\b",
        r"\btake all (my|the) pills\b",
        r"\bjump(ing)? (off|from|in front of|before) (a |the |my )?(bridge|building|roof"
        r"|balcony|window|train|car|bus|cliff)\b", r"\bi am (gonna|going to) jump\b",
        r"\bhang myself\b", r"\bpills (ready|saved|lined up)\b",
        r"\bme (voy a|quiero) colgar" + _END,
        r"\btomar(me)? (el|un|una|toda la|todo el) (frasco|caja|blister)\b",
        r"\b(quiero|voy a|pienso|para|a punto de) (saltar|tirarme)\b",
        r"\b(night|day) i end it\b", r"\bi end it" + _END,
        r"\bvou pular\b",
    ),
    "self_harm": _patterns(
        r"\bcortarme\b", r"\bme sigo cortando\b", r"\bme he (cortado|quemado|hecho dano|vuelto a cortar)\b(?! con (un|una|el|la) (folio|papel|hoja|cuchilo|cuter|lata|vidrio))", r"\bme (vuelvo|volvi|he vuelto) a cortar\b",
        r"\bme (quiero|voy a|volvi a|vuelvo a|dan ganas de|gustaria|quisiera) cortar\b",
        r"\bcort\w* (las )?venas\b",
        r"\bme (corto|corte|cortaria|cortei)\b(?! (el|la|con|con el cuchilo del pan|con el cuter|con el vidrio(?! [^|]* a proposito)))",
        r"\bme (hago|hise|hice) (cortes|mierda los brasos)\b",
        r"\blastimarme\b", r"\bme lastimaria\b",
        r"\bme lastimo\b(?! (la|el|los|las|jugando|entrenando)\b)",
        r"\bme lastime (a proposito|otra ves|de nuevo)\b",
        r"\b(hacerme|me hago|me hise|me haria|me voy a haser|me quiero haser) (dano|mas marcas)\b",
        r"\bhaserme (mas|dano|mal)\b",
        r"\bautolesion\w*\b", r"\bme autolesiono\b",
        r"\bme (rasguno|rasco|corto|muerdo|golpeo|quemo|pego|arano|clavo|arranco) [^|]{0,30}hasta (sangrar|lastimarme|sacarme sangre|que (me )?(sale|duele|sangra|quedan|se me pasa)|dejarme)\b",
        r"\b(ganas de|quiero|voy a|nesesito) haserme (mal|dano)\b",
        r"\bme (quemo|queme|quemei|golpeo|golpee|pego|rasguno|muerdo|di)\b[^|]{0,40}\ba proposito\b",
        r"\bme (quemo|queme|queimo) (con|las|el|la)\b[^|]{0,30}\b(sigaril|sigarro|encendedor|isqueiro|hornala|lighter|encendedr)",
        r"\b(me )?(quemo|queimo) (con|com) (el |o )?(encendedor|isqueiro|sigarillo)\b",
        r"\b(hurt|hurting|harm|harming|cut|cutting|burn|burning|hit|hitting) myself\b",
        r"\bself ?harm\w*\b",
        r"\bme (corte|queme|golpee|lastime|di|pegue)\b[^|]{0,60}(\| [^|]{0,30})?\ba proposito\b",
        r"\b(cutting|cut) again\b",
        r"\bcortes (en|por) (los |las |mis )?(brasos|piernas|munecas|muslos|pansa)\b",
        r"\b(me (pego|golpeo|doy)|golpearme|pegarme) [^|]{0,20}(contra|con) (la pared|el piso|la puerta|el puno|el sinto|el espejo)\b",
        r"\bme (pego|golpeo) (pinas|con|las piernas)\b", r"\bme castigo\b", r"\bpara castigarme\b",
        r"\bme (lastime|corte|hise marcas en|raspe) (los|las|mis) (brasos|munecas|piernas|muslos|pansa)\b",
        r"\bme hise (marcas|cortes|heridas)\b",
        r"\b(me di|me doy|me daba|me pego|me pegue) (golpes|pinas|cabesasos|trompadas)\b",
        r"\btengo (cortes|marcas|sicatrises|heridas) (frescos|frescas|nuevos|nuevas|en (los|las|mis) (brasos|piernas|munecas|muslos))\b",
        r"\bme quemo con (la|el|un|una) (plancha|encendedor|sigarilo|fosforo|vela|hornala)\b",
        r"\bme (clave|clavo|enterre) (una|un|la|el) (tijera|cuchilo|aguja|lapis|cuter|vidrio|trincheta)\b",
        r"\bhasta (quedar con|que (me )?quedan?|dejarme) (moretones|marcas|violeta)\b",
        r"\b(burn|burning|cut|cutting|hurt|hurting|scratch|scratching) my "
        r"(arms|wrists|legs|thighs|skin)\b",
        r"\b(gilete|giliete|hojita|trincheta|cuchila|sacapuntas desarmado)\b",
        r"\bre(cai|caida) con\b", r"\bsentir dolor fisico\b", r"\babrirme los brasos\b",
        r"\bbrazo leno de marcas\b", r"\bme corto desde\b",
    ),
    # Asks for a person, a number or help: the human resources.
    "help": _patterns(
        r"\b(persona|alguien|humano|humana|gente|personas|pessoa|alguem) (real|de verdad|de carne y hueso|de verdade)\b",
        r"\b(nesesito|quiero|puedo|preciso|nesesito que) (hablar|falar) con (alguien|una persona|un humano|un psicologo"
        r"|una psicologa|un profesional)\b(?! (de|del) (recursos|ventas|sistemas|atension|soporte|la empresa"
        r"|administrasion|mi equipo|la ofisina|el banco|tu empresa))",
        r"\bfalar com alguem\b",
        r"\b(nesesito|quiero) (que alguien|una persona|un humano)\b",
        r"\bno quiero hablar con una maquina\b", r"\bno un bot\b", r"\bsos una persona\b",
        r"\b(real person|a human|someone real)\b",
        r"\bnumero (al que|a donde|para) (pueda |puedo )?lamar\b",
        r"\b(a quien|donde) (puedo |pueda )?(lamar|lamo)\b", r"\ba quien lamo\b",
        r"\b(telefono|numero|linea) (de (ayuda|atension|emergensia|crisis)|para lamar|de alguna)\b",
        r"\b(hay|tenes|teneis|me das|dame|pasame|me podes dar|me podrias pasar) (algun |un |el |alguna )?"
        r"(numero|telefono|linea)\b(?= *(\||$)| (al|a donde|para|de) (que )?(pueda |puedo )?(lamar|hablar"
        r"|ayuda|crisis|emergensia|atension|contension|prevension|alguna linea)| por favor)",
        r"\b(hay|tenes|teneis) (alguna |algun )?(guardia|chat con personas)\b",
        r"\blugar (al que|a donde|donde) (pueda|puedo) ir (ahora|hoy|ya)\b",
        r"\b(nesesito|necesito) ayuda\b(?! (con|para|en|de) )", r"\bayuda (ya|urgente|por favor)\b",
        r"\b(alguien que me ayude|ayudame|ayudenme|me ayuden)\b",
        r"\b(pasame|conectame|me podes conectar|me podes pasar) con alguien\b",
        r"\bguardia (psiquiatrica|abierta)\b", r"\bayuda profesional\b", r"\bque alguien me (atienda|escuche)\b",
        r"\b(ayuda|ayudaa|help|auxilio|socoro|ajuda|ayudame)\b(?=( \|)* $)",
        r"\b(number|someone|somebody) i can (call|talk to)\b", r"\bis there a number\b",
        r"\bnesesito hablar con alguien\b",
        r"\b(hablar con|no sos|sos) (un|una) (robot|bot|maquina|programa|ia)\b",
        r"\bno quiero hablar con (un|una) (robot|bot|maquina|programa|ia)\b",
        r"\b(psicologo|psicologa|terapeuta|profesional|medico) (disponible|de guardia|ahora)\b",
        r"\bnesesito que (me atienda|me escuche|me ayude) alguien\b",
        r"\b(someone|somebody|anyone) (help|talk to) me\b", r"\bplease help\b",
        r"\bpreciso de ajuda\b", r"\bnesesito a alguien\b", r"\b(socoro|auxilio|help me|ayudenme)\b",
        r"\b(numero|telefono) de (la|una|alguna) linea\b",
        r"\b(numero|telefono|pasame|dame|hay|tenes|conoses|donde (esta|encuentro)) [^|]{0,20}\blinea de"
        r" (prevension|ayuda|crisis|contension|emergensia)\b", r"\bpreciso falar com (alguem|uma pesoa)\b", r"\bcan i talk to\b", r"\b(que|q) alguien me ayude\b",
    ),
}

# Weak signals: not enough alone; each adds its weight once per message, and a conversation's
# weights (decayed per turn) add up in RiskState. A message reaches "risk" at WEAK_THRESHOLD.
_WEAK: dict[str, tuple] = {
    "despair": _patterns(
        r"\b(cansad[oa]|harta|harto|agotad[oa]) de (todo|pelear|vivir asi|esta casa)\b(?! pero)",
        r"\b(tired|sick) of (this|everything|it all)\b", r"\bno puedo mas\b", r"\bno doy mas\b",
        r"\bnada (me )?sale bien\b", r"\bnada cambia\b", r"\bya nada\b", r"\bno sirvo para nada\b",
        r"\btoque fondo\b", r"\bno (tengo|hay) futuro\b", r"\bme canse de (esperar|todo|luchar|pelear|intentar)\b",
        r"\bnada va a (mejorar|cambiar)\b", r"\bestoy (muy )?mal\b",
        r"\bno me importa nada\b", r"\bya fue (todo)?\b", r"\bme dejo\b", r"\bse lev[oa]\b",
        r"\b(atrapalho|complico) (a vida|todo)\b", r"\bsiempre soy el que\b", r"\bno aguanto\b",
        r"\b(nobody|no one) cares\b", r"\beverything i do is wrong\b", r"\bi hate myself\b",
        r"\b(to|estou) muito mal\b", r"\bninguem liga\b", r"\bera lo unico que tenia\b",
        r"\bno tengo a nadie\b", r"\bno tiene areglo\b", r"\bme rendi\b", r"\bno hay nada que haser\b", r"\b(entierro|velorio) de\b", r"\bme odio\b", r"\bsin sentido\b", r"\bnada tiene sentido\b",
    ),
    "decision": _patterns(
        r"\b(ya )?lo tengo (pensado|planeado|planificado)\b",
        r"\b(ya )?(lo )?(decidi|he desidido|tengo desidido|esta desidido|resolvi|tengo resuelto"
        r"|lo tengo resuelto|lo tengo claro|decided|already decided|ja desidi|resolvo)\b",
        r"\bhoy me animo\b", r"\bme animo\b",
    ),
    "intent": _patterns(
        r"\b(lo hago|hacerlo|voy a hacerlo|lo voy a hacer|do it|eu resolvo isso|resolvo isso"
        r"|me bajo del mundo|ya compre lo que|made up my mind|my mind is made up|tonight is the night"
        r"|fazer isso|acelerar y listo)\b",
        r"\b(terminar|acabar|acabo|termino) (con|com) (esto|isso|todo esto|tudo isso)\b",
        r"\b(es|sera|va a ser) (esta noche|hoy|manana)\b", r"\bme quiero ir con (el|ela|mi \w+)\b",
        r"\b(unica|la unica) (forma|manera) (de|que tengo de) (calmarme|sentir algo|aliviarme|parar)\b",
        r"\bno (me )?(convensas|convensas de nada|pidas que baje)\b",
        r"\bno quiero que (me convensas|lames a nadie)\b",
    ),
    "soon": _patterns(
        r"\b(esta noche|hoy|manana|el domingo|el sabado|el viernes|tonight|hoje|temprano|el finde)\b",
    ),
    "ending": _patterns(
        r"\b(alcansan (seguro|de sobra|para)|con (eso|esto) me alcansa|son sufisientes|bastan para|enough to)\b",
        r"\b(no voy a estar|ya no voy a estar|not be around|no va a haser falta|nao vou estar)\b",
        r"\b(ya )?tengo todo (listo|preparado)( para (esta noche|hoy|manana|el (sabado|domingo|viernes|finde)))?\b" + _END, r"\bse termina todo\b",
        r"\b(solo|ya solo) (me )?falta lo ultimo\b", r"\bel momento justo\b", r"\bya esta\b" + _END,
        r"\bsumir de ves\b", r"\bsera rapido\b", r"\bseria rapido\b", r"\bdespedirme\b",
        r"\bya no (tiene sentido|me (van|va) a haser falta|(la|lo|los|las) voy a nesesitar)\b", r"\bse termina\b" + _END, r"\bme voy con (ella|el)\b",
        r"\bnadie se va a dar cuenta\b", r"\bsin haserlo\b", r"\blevaba \w+ (meses|dias) sin\b",
        r"\bsiempre funsionaba\b",
    ),
    "means": _patterns(
        rf"\b({_PILLS}|gas|hornalas|soga|arma|trincheta|cuchila|gilete|puente|caja entera)\b",
        r"\b(cuantas|how many) (serian|son) (demasiadas|too many)\b",
        r"\bdesimo piso\b",
    ),
    "jump": _patterns(
        r"\b(salto|saltar|tirarme|me tiro|pular|jump|un paso)\b", r"\bno (pienso|quiero|voy a) bajar\b",
        r"\bmirando el agua\b",
    ),
    "farewell": _patterns(
        r"\b(pedi|le pedi|les pedi|pedirle|pedir) perdon por todo\b",
        r"\bdeje pagad[oa]s?\b", r"\b(asi|para que) no (tengan|tienen) (problemas|que (pagar|buscar|haser))\b",
        r"\b(le|les) deje (mi|mis) (perro|perra|gato|gata|cosas|plantas)\b",
        r"\b(regale|he regalado|ya regale) (mi|mis|la|el)\b", r"\bme despido\b",
        r"\b(gracias por (todo|escucharme)|perdon por todo|thank you for everything|le dije que lo cuide"
        r"|las cartas|cuide siempre|gave my stuff|my stuff)\b",
        r"\b(le deje|les deje) a\b", r"\bcontrasena\b", r"\bno me preguntes\b",
    ),
    "secrecy": _patterns(
        r"\bantes de que (se despierte|se levante|lleguen|vuelvan|se den cuenta)\b",
        r"\bcuando (no haya nadie|se duerman|se vayan todos|me quede solo|me quede sola)\b",
        r"\bsin que (nadie )?se (den|de) cuenta\b",
    ),
    "place": _patterns(
        r"\b(estoy|voy) (en el auto|en la ruta|manejando) [^|]{0,20}\b(ruta|autopista|auto)\b",
        r"\bestoy en (el auto|la ruta)\b",
        rf"\b(estoy|to|me subi|me he subido|i am) [^|]{{0,20}}\b({_HIGH})\b",
        r"\b(desde|from) (aca|here) arriba\b", r"\bmirando (para abajo|el agua)\b",
    ),
    # Someone else named (context only: it weighs nothing, but a later third-person act
    # without a subject, "dice que se quiere matar", is read as about them).
    "third_subject": _patterns(rf"\b({_THIRD})\b"),
    "burden_hint": _patterns(
        r"\b(no le importo|complico todo|atrapalho|soy el que complica|solo atrapalho)\b",
    ),
}
WEAK_WEIGHTS = {"despair": 0.4, "decision": 0.6, "intent": 0.5, "soon": 0.2, "ending": 0.7,
                "means": 0.5, "farewell": 0.5, "place": 0.3, "jump": 0.7, "secrecy": 0.4, "burden_hint": 0.4,
                "third_subject": 1.0}
# Weak groups that are context, not signals: carried by the state, never counted in a score.
CONTEXT_ONLY = frozenset({"third_subject"})
_SCORED = frozenset(WEAK_WEIGHTS) - CONTEXT_ONLY
_SIGNALS = (frozenset(_STRONG) | _SCORED)  # what can make a tier (context and "third_act" cannot)
WEAK_THRESHOLD = 1.0

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


# --- 5. the fast path: anchors --------------------------------------------------------------

# Most messages contain no risk language at all, and Python's regular expressions try every
# alternative at every word. So each pattern (look-alikes included) has anchors: every way it
# can match contains one of them, so a message with none of them cannot match it, and the
# pattern is not run. A message with no anchor at all costs only its normalisation.
#
# An anchor is a word that must appear as a whole word ("venas"), a word plus the words one of
# which must appear with it anywhere in the message ("salida+veo/hay": common words are only
# anchors together), or the start of a word ("sui*"). The anchors live in
# :mod:`psicoia.chat.detector.anchors`, keyed by the folded pattern source, generated by
# ``python -m tests.anchor_shapes --write``; tests/test_safety.py expands every pattern into
# each literal shape it can match and fails if a shape has none of its anchors (or if a
# pattern has no entry), so a changed pattern needs its anchors regenerated.


@dataclass(frozen=True)
class _Anchors:
    """One pattern's anchors, parsed from its spec."""

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


_GROUPS: dict[str, tuple] = {**_STRONG, **_WEAK}
_GROUPS["lookalike"] = _LOOKALIKES


@dataclass(frozen=True)
class _Rule:
    group: str
    source: str
    pattern: re.Pattern
    anchors: _Anchors


# Set only by ``python -m tests.anchor_shapes --write``, which regenerates the anchors.
_BOOTSTRAP = os.environ.get("PSICOIA_ANCHOR_BOOTSTRAP") == "1"


def _rules() -> tuple:
    missing = [source for sources in _GROUPS.values() for source in sources
               if source not in ANCHORS]
    if missing and not _BOOTSTRAP:
        raise ValueError(f"patterns without anchors (run python -m tests.anchor_shapes "
                         f"--write): {missing[:3]}")
    return tuple(_Rule(group, source, _compile_one(source), _Anchors.parse(ANCHORS.get(source, "")))
                 for group, sources in _GROUPS.items() for source in sources)


_RULES = _rules()
# The index: anchor word -> rules it may start; pair word -> (other words, rule); word starts.
_BY_WORD: dict = {}
_BY_PAIR: dict = {}
_BY_START: list = []
for _index, _rule in enumerate(_RULES):
    for _word in _rule.anchors.words:
        _BY_WORD.setdefault(_word, []).append(_index)
    for _word, _others in _rule.anchors.pairs.items():
        _BY_PAIR.setdefault(_word, []).append((_others, _index))
    if _rule.anchors.starts:
        _BY_START.append((_rule.anchors.starts, _index))
_WORD_KEYS = frozenset(_BY_WORD)
_PAIR_KEYS = frozenset(_BY_PAIR)
_ANY_WORD = _WORD_KEYS | _PAIR_KEYS


def in_reach(normal: str) -> tuple:
    """The indexes (in :data:`_RULES`) of the patterns whose anchors are in ``normal`` (a
    :func:`normalize` result), in order. Only these can match: an empty answer means
    "certainly no risk language"; a pattern in it means "maybe", and the pattern decides.
    """
    spaced = normal.replace("|", " ") if "|" in normal else normal
    words = set(spaced.split())
    found = set()
    if not words.isdisjoint(_ANY_WORD):
        for word in words & _WORD_KEYS:  # set & frozenset: iterates the smaller one
            found.update(_BY_WORD[word])
        for word in words & _PAIR_KEYS:
            for others, index in _BY_PAIR[word]:
                if not others.isdisjoint(words):
                    found.add(index)
    for starts, index in _BY_START:
        if any(start in spaced for start in starts):
            found.add(index)
    return tuple(sorted(found))


def groups_in_reach(normal: str) -> tuple:
    """The groups with at least one pattern in reach (look-alikes left out)."""
    return tuple(dict.fromkeys(_RULES[i].group for i in in_reach(normal)
                               if _RULES[i].group != "lookalike"))


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


def _match(normal: str, rules: list) -> tuple:
    """Mask the look-alikes among ``rules`` (in order), then try the others."""
    for rule in rules:
        if rule.group == "lookalike":
            normal = rule.pattern.sub(" | ", normal)
    joking = _LAUGH.search(normal) is not None and _SERIOUS.search(normal) is None
    found = {}
    weak_at: dict = {}  # weak group -> where its matches start
    third_act = False  # a third-person act with no subject in this message
    for rule in rules:
        weak = rule.group in _SCORED
        if rule.group == "lookalike" or (rule.group in found and not weak):
            continue
        for match in rule.pattern.finditer(normal):
            if rule.group == "third_party" and not _THIRD_SUBJECT.search(
                    normal, max(0, match.start() - _THIRD_REACH), match.end()):
                third_act = third_act or not _negated(normal, match.start(), match.end())
                continue
            if not _negated(normal, match.start(), match.end()):
                found[rule.group] = True
                if not weak:
                    break
                weak_at.setdefault(rule.group, []).append(match.start())
    if len(weak_at) > 1:
        for group in weak_at.keys() - _best_window(weak_at):
            del found[group]
    groups = [("despair" if joking and g in _JOKE_PRONE else g) for g in _GROUPS if g in found]
    if third_act and "third_party" not in found:
        groups.append("third_act")
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
    carry = sum(w for g, w in carried.items() if g not in CONTEXT_ONLY) if carried else 0.0
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


def assess(text: str, state=None) -> Assessment:
    """Read one message, alone or as the next turn of a conversation.

    ``state`` (a :class:`~psicoia.chat.detector.state.RiskState`, optional) supplies the weak
    signals of earlier turns and is updated in place with this turn's (numbers only). Never
    raises on odd input; costs only the normalisation when no anchor is present.
    """
    groups = match_groups(text)
    if state is None:
        return decide(groups)
    assessment = decide(groups, state.carried())
    state.observe(assessment)
    return assessment


def is_risk(text: str) -> bool:
    """True when ``text`` alone shows risk language about the writer or someone else."""
    return assess(text).risk
