"""
Weak signals: not enough alone (despair, a decision, intent, a time, an ending, a means...).
Each carries a weight; they add up within a window of one message and, through RiskState,
across the turns of a conversation (rules.py, docs/safety.md).
"""

from __future__ import annotations

from psicoia.chat.detector.lexicon import END, HIGH, PILLS, THIRD
from psicoia.chat.detector.normalize import patterns

# Weak signals: not enough alone; each adds its weight once per message, and a conversation's
# weights (decayed per turn) add up in RiskState. A message reaches "risk" at WEAK_THRESHOLD.
WEAK: dict[str, tuple] = {
    "despair": patterns(
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
    "decision": patterns(
        r"\b(ya )?lo tengo (pensado|planeado|planificado)\b",
        r"\b(ya )?(lo )?(decidi|he desidido|tengo desidido|esta desidido|resolvi|tengo resuelto"
        r"|lo tengo resuelto|lo tengo claro|decided|already decided|ja desidi|resolvo)\b",
        r"\bhoy me animo\b", r"\bme animo\b",
    ),
    "intent": patterns(
        r"\b(lo hago|hacerlo|voy a hacerlo|lo voy a hacer|do it|eu resolvo isso|resolvo isso"
        r"|me bajo del mundo|ya compre lo que|made up my mind|my mind is made up|tonight is the night"
        r"|fazer isso|acelerar y listo)\b",
        r"\b(terminar|acabar|acabo|termino) (con|com) (esto|isso|todo esto|tudo isso)\b",
        r"\b(es|sera|va a ser) (esta noche|hoy|manana)\b", r"\bme quiero ir con (el|ela|mi \w+)\b",
        r"\b(unica|la unica) (forma|manera) (de|que tengo de) (calmarme|sentir algo|aliviarme|parar)\b",
        r"\bno (me )?(convensas|convensas de nada|pidas que baje)\b",
        r"\bno quiero que (me convensas|lames a nadie)\b",
    ),
    "soon": patterns(
        r"\b(esta noche|hoy|manana|el domingo|el sabado|el viernes|tonight|hoje|temprano|el finde)\b",
    ),
    "ending": patterns(
        r"\b(alcansan (seguro|de sobra|para)|con (eso|esto) me alcansa|son sufisientes|bastan para|enough to)\b",
        r"\b(no voy a estar|ya no voy a estar|not be around|no va a haser falta|nao vou estar)\b",
        r"\b(ya )?tengo todo (listo|preparado)( para (esta noche|hoy|manana|el (sabado|domingo|viernes|finde)))?\b" + END, r"\bse termina todo\b",
        r"\b(solo|ya solo) (me )?falta lo ultimo\b", r"\bel momento justo\b", r"\bya esta\b" + END,
        r"\bsumir de ves\b", r"\bsera rapido\b", r"\bseria rapido\b", r"\bdespedirme\b",
        r"\bya no (tiene sentido|me (van|va) a haser falta|(la|lo|los|las) voy a nesesitar)\b", r"\bse termina\b" + END, r"\bme voy con (ella|el)\b",
        r"\bnadie se va a dar cuenta\b", r"\bsin haserlo\b", r"\blevaba \w+ (meses|dias) sin\b",
        r"\bsiempre funsionaba\b",
    ),
    "means": patterns(
        rf"\b({PILLS}|gas|hornalas|soga|arma|trincheta|cuchila|gilete|puente|caja entera)\b",
        r"\b(cuantas|how many) (serian|son) (demasiadas|too many)\b",
        r"\bdesimo piso\b",
    ),
    "jump": patterns(
        r"\b(salto|saltar|tirarme|me tiro|pular|jump|un paso)\b", r"\bno (pienso|quiero|voy a) bajar\b",
        r"\bmirando el agua\b",
    ),
    "goodbye_word": patterns(r"\b(chau|adios|goodbye|tchau)\b" + END),
    "farewell": patterns(
        r"\b(cuidate mucho|cuidense mucho|fuiste muy importante|sos muy importante para mi"
        r"|take care of yourself|you meant a lot)\b",
        r"\b(pedi|le pedi|les pedi|pedirle|pedir) perdon por todo\b",
        r"\bdeje pagad[oa]s?\b", r"\b(asi|para que) no (tengan|tienen) (problemas|que (pagar|buscar|haser))\b",
        r"\b(le|les) deje (mi|mis) (perro|perra|gato|gata|cosas|plantas)\b",
        r"\b(regale|he regalado|ya regale) (mi|mis|la|el)\b", r"\bme despido\b",
        r"\b(gracias por (todo|escucharme)|perdon por todo|thank you for everything|le dije que lo cuide"
        r"|las cartas|cuide siempre|gave my stuff|my stuff)\b",
        r"\b(le deje|les deje) a\b", r"\bcontrasena\b", r"\bno me preguntes\b",
    ),
    "secrecy": patterns(
        r"\bantes de que (se despierte|se levante|lleguen|vuelvan|se den cuenta)\b",
        r"\bcuando (no haya nadie|se duerman|se vayan todos|me quede solo|me quede sola)\b",
        r"\bsin que (nadie )?se (den|de) cuenta\b",
    ),
    "place": patterns(
        r"\b(estoy|voy) (en el auto|en la ruta|manejando) [^|]{0,20}\b(ruta|autopista|auto)\b",
        r"\bestoy en (el auto|la ruta)\b",
        rf"\b(estoy|to|me subi|me he subido|i am) [^|]{{0,20}}\b({HIGH})\b",
        r"\b(desde|from) (aca|here) arriba\b", r"\bmirando (para abajo|el agua)\b",
    ),
    # Someone else named (context only: it weighs nothing, but a later third-person act
    # without a subject, "dice que se quiere matar", is read as about them).
    "third_subject": patterns(rf"\b({THIRD})\b"),
    "burden_hint": patterns(
        r"\b(no le importo|complico todo|atrapalho|soy el que complica|solo atrapalho)\b",
    ),
}
WEAK_WEIGHTS = {
    "despair": 0.4, "decision": 0.6, "intent": 0.5, "soon": 0.2, "ending": 0.7, "means": 0.5,
    "farewell": 0.5, "goodbye_word": 0.5, "place": 0.3, "jump": 0.7, "secrecy": 0.4,
    "burden_hint": 0.4, "third_subject": 1.0,
    # The learned model's mid-confidence verdict (psicoia/chat/detector/learned.py): no
    # pattern, set by rules.assess; weighed by out-of-fold dialog results.
    "model": 0.4,
    # A doubtable strong group on a message the model reads as clearly ordinary (rules.py).
    "doubted": 0.25,
}
# Weak groups that are context, not signals: carried by the state, never counted in a score.
CONTEXT_ONLY = frozenset({"third_subject"})
SCORED = frozenset(WEAK_WEIGHTS) - CONTEXT_ONLY
WEAK_THRESHOLD = 1.0
