"""
Look-alikes: everyday uses that share words with risk language, masked before the risk
patterns read the text ("me muero de risa", "cortarme el flequillo", "this exam is killing me").
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import patterns

_IDIOM_NOUNS = (r"risa|rir|bronca|rabia|raiva|hambre|ganas|sueno|sono|frio|calor|verguenza|vergonha|nervios|miedo"
                r"|aburrimiento|amor|envidia|sed|curiosidad|cansancio|cansaco|pena|ansiedad"
                r"|emocion|celos|embole|resaca|laughter|embarrassment|boredom")
_GROOMING = (r"pelo|cabello|flequillo|unas|una|barba|bigote|puntas|flequi|dedo|labio|mano"
             r"|luz|agua|internet|wifi|senal|conexion|llamada|cesped|pasto|carne|pan|cebolla"
             r"|rostro|bangs|hair")
_BODY_INJURY = r"rodilla|tobillo|pie|mano|espalda|brazo|dedo|muneca|hombro|cuello|pierna"

LOOKALIKES = patterns(
    # "me muero de risa / hambre / ganas...", "morirme de la vergüenza", "muerta de cansancio".
    rf"\b(muero|mori|morir|morirme|muera|muriendo|morire|moria|muerto|muerta|muertos|morrendo"
    rf"|morri|morta|morto|morrer|morro) (de|por|del) (la |el |los )?({_IDIOM_NOUNS})\b",
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

    # Families of everyday look-alikes of goodbyes, plans and self-harm (docs/safety.md): each
    # masks the risk words only inside its everyday frame.
    # Someone else "will kill me" (Portuguese), a third person "kills me" ("si mi vieja ve la
    # nota me mata"): never the writer's own intent.
    r"\b(vai|vao|ia|iam) me matar\b", r"\bme mata\b",
    # "ayuda" as a verb or a thanks: "eso me ayuda", "nadie ayuda", "gracias por tu ayuda".
    r"\b(me|te|nos|les|le|si|nadie|eso|esto|que) ayuda\b(?! (por favor|urgente|ya)\b)",
    r"\b(gracias|thanks|thank you) (por|for) (tu|la|su|your|the) (ayuda|help)\b",
    # Accidental cuts and burns while doing something.
    r"\bme (corte|cortei|queme|quemei|lastime) (haciendo|fazendo|cocinando|picando|cortando|pelando"
    r"|afeitandome|jugando|arreglando|podando|con (el|la) (cuchillo|tijera|cuter) (del|de la|de) "
    r"(pan|cocina|podar|jardin))\b",
    r"\b(picando|cortando|cocinando|pelando|afeitandome|fazendo \w+) [^|]{0,20}\bme (corte|cortei|queme"
    r"|quemei)\b",
    # Bleeding in an everyday frame: the nose, the gums after the dentist, a scraped knee, a
    # splinter, a tattoo, a fall or a sport (the clause is masked whole: "y no para" included).
    r"\b(nariz|nose|encia|encias|gums|muela|diente|tooth|dentista|dentist|rodila|knee|knees"
    r"|astila|splinter|tatuaje|tattoo|raspon|scrape|skateboard)\b[^|]{0,40}\b(sangr\w*|bled|bleding|blod|sangue|sangre)\b[^|]*\b",
    r"\b(sangr\w*|bled|bleding|blod|sangue|sangre)\b[^|]{0,25}\b(de la nariz|from my nose|do nariz"
    r"|de la encia|la rodila|the knee|my knee)\b[^|]*\b",
    # "con la soga al cuello" / "com a corda no pescoço": in debt or under pressure at work.
    r"\b(con|com) (la |a )?(soga|corda) (al|no) (cuelo|pescoco)\b(?=[^|]{0,40}\b(deudas|trabajo|laburo"
    r"|plata|cuentas|dividas|contas|trabalho|banco|alquiler|hipoteca|jefe|fin de mes|aluguel|chefe))",
    r"\b(deudas|trabajo|laburo|plata|cuentas|dividas|contas|trabalho|banco|alquiler|hipoteca|jefe"
    r"|aluguel|chefe)\b[^|]{0,40}\b(con|com) (la |a )?(soga|corda) (al|no) (cuelo|pescoco)\b",
    r"\bme estoy (ahogando|afogando) (en|em) (\w+ )?(tareas|trabajo|laburo|deudas|papeles|problemas"
    r"|mails|trabalho|dividas)\b",
    r"\b(abri|abro|prendi|abrir) (el )?gas\b(?= (para|pra|y) (cosinar|haser|calentar|prender|la pava|el horno"
    r"|la hornala|poner|el agua))",
    r"\b(prendi|prendo|prendido) (el )?carbon\b(?=[^|]{0,40}\b(parrila|asado|chori|vengan|carne))",
    # Leisure in the water, on the sofa.
    r"\b(tirarme|me tiro|me voy a tirar|me jogar|jogar|vou me jogar|me jogo) (al|a la|en el|no|na|a)"
    r" (rio|mar|agua|lago|pileta|piscina|sofa|sillon|colchon|pasto|cesped|arena) (a|pra|para)"
    r" (nadar|refrescarme|banarme|descansar)\b",
    r"\b(tirarme|me tiro|me voy a tirar) (al|en el) (sofa|sillon|colchon|pasto|cesped)\b",
    # Ropes, shotguns and letters in their everyday frames.
    r"\bsoga (del|de la|de|para el|para la) (columpio|hamaca|tender|tendedero|ropa|toldo|barco"
    r"|carpa|escalar|saltar|rappel)\b",
    r"\bescopeta\b[^|]{0,40}\b(ir a cazar|para cazar|aire comprimido|museo|tiro al blanco|perdices"
    r"|conejos|pajaros|palomas)\b",
    r"\b(carta|carta de) (renuncia|presentasion|demision|recomendasion|motivasion)\b",
    r"\bcarta de (despedida|demissao) (para|a|pra|del|de la|de) [^|]{0,40}\b(jubila|jubilo|aposentar"
    r"|retira|va a estudiar|se muda|se va)\b",
    r"\b(escrevi|escribi) a carta\b(?=[^|]{0,40}(demissao|renuncia))",
    r"\b(pedindo|pidiendo) (demissao|la renuncia)\b[^|]{0,30}\bcarta\b",
    # Testaments at the notary, passwords and keys for a trip or for guests.
    r"\btestamento (con|en|ante|no) (el |la |o )?(escribano|escribana|notario|notaria|abogado"
    r"|abogada|cartorio)\b",
    r"\b(contrasenas?|claves|senhas?) (del|de la|de|do) (wifi|netflix|spotify|alarma|la alarma"
    r"|internet|streaming)\b",
    r"\b(contrasenas?|claves|documentos|papeles)\b[^|]{0,40}\b(porque|mientras|que) (me voy|viajo"
    r"|estoy de vacasiones|me alquila|vuelvo)\b",
    # Leaving a job or a place: farewells, affairs in order for a trip or a leave.
    r"\b(ya )?me (he )?despedi(do)? de (todos|todo el mundo|todo mundo|tds) (en|del|de la|em) (el |la )?"
    r"(laburo|trabajo|oficina|curro|aeropuerto|esesa|barrio|facu|escuela|grupo|club)\b",
    r"\btodo (ordenado|en orden|arreglado) (en|para) (la oficina|el laburo|el trabajo|el curro"
    r"|la mudansa|el depto|el viejo|el reemplaso)\b",
    r"\btodo (ordenado|en orden|arreglado)\b[^|]{0,40}\b(vacasiones|licensia|mudansa|mudarme|viaje"
    r"|reemplaso|operasion)\b",
    r"\b(cuiden|cuida|cuidem|cuidar|take care of) [^|]{0,15}(gato|perro|cachoro|cat|dog|plantas|plants)"
    r"\b(?=[^|]{0,40}(\| [^|]{0,30})?\b(fin de semana|fim de semana|finde|viaj|vacasiones|ferias"
    r"|intercambio|while|praia|weekend))",
    r"\b(viaje|viajo|vacasiones|intercambio|me voy de|vou pra|vou viajar|trip|vacation)\b[^|]{0,40}"
    r"(\| [^|]{0,10})?\b(cuiden|cuida|cuidem|take care of) [^|]{0,15}(gato|perro|cachoro|cat|dog|plantas)\b",
    r"\b(sorry for everything|perdon por todo|lo siento por todo) (lo que |that )?(i|te|les|le) (said|dije)\b",
)
