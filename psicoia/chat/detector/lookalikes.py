"""
Look-alikes: everyday uses that share words with risk language, masked before the risk
patterns read the text ("me muero de risa", "cortarme el flequillo", "this exam is killing me").
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import patterns

_IDIOM_NOUNS = (r"risa|rir|hambre|ganas|sueno|sono|frio|calor|verguenza|vergonha|nervios|miedo"
                r"|aburrimiento|amor|envidia|sed|curiosidad|cansancio|cansaco|pena|ansiedad"
                r"|emocion|celos|embole|resaca|laughter|embarrassment|boredom")
_GROOMING = (r"pelo|cabello|flequillo|unas|una|barba|bigote|puntas|flequi|dedo|labio|mano"
             r"|luz|agua|internet|wifi|senal|conexion|llamada|cesped|pasto|carne|pan|cebolla"
             r"|rostro|bangs|hair")
_BODY_INJURY = r"rodilla|tobillo|pie|mano|espalda|brazo|dedo|muneca|hombro|cuello|pierna"

LOOKALIKES = patterns(
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
