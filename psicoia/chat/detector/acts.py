"""
Strong patterns about acts: in progress or done (acute), someone else at risk,
plans and means, self-harm, and asks for a human (help). Each is enough for a tier.
"""

from __future__ import annotations

from psicoia.chat.detector.lexicon import END, HIGH, PILLS, THIRD_ACT
from psicoia.chat.detector.normalize import patterns

ACTS: dict[str, tuple] = {
    # Acts in progress or already done: the emergency number first.
    "acute": patterns(
        rf"\b(ya )?(me )?(tome|trague|tomo|he tomado|acabo de tomar|acabo de tomarme|tomei"
        rf"|me estoy tomando) ((todas|todos|toda|muchas|un monton de|unas cuantas|varias) (las |los |mis |de )?"
        rf"({PILLS}|pastis|capsulas|gotas)|todo(?= *(\||$))|todo lo que|el frasco|la caja|el blister"
        rf"|el bote|un frasco|una caja|un blister|veneno|el pote|lo que habia|unas cuantas(?= *(\||$))"
        rf"|todo el (frasco|blister|bote|pote|sobre|paquete)|toda la caja|unas cuantas (de las|de los)"
        rf"|las pastillas(?! (de|del|para|que|como|a la|todos)\b))",
        r"\b(acabo de|ya) (tomarme|cortarme|tirarme)\b",
        # Swallowed or injected, with an amount or alcohol: done, not planned.
        rf"\b(tome|trague|me inyecte|inyecte|me he tomado|tomei|me tome) [^|]{{0,30}}\b({PILLS}|pastis|insulina"
        rf"|parasetamol|ibuprofeno|antidepresivos|lavandina|bote|caja|blister)\b[^|]{{0,30}}\b(enter[oa]"
        rf"|con (alcohol|vino|serveza|whisky|fernet)|y me siento (muy )?mal|me siento rar[oa])\b",
        rf"\b(tome|trague|me inyecte|inyecte|me he tomado|tomei|me tome) (toda la|todo el|todas las|un|el|una|la) "
        rf"(insulina|bote|frasco|caja|blister|cartela) enter[oa]\b",
        r"\b(me )?inyecte (toda|todo|toda la) \w+\b",
        rf"\b({PILLS}|pastis) con (alcohol|vino|serveza|whisky|fernet)\b",
        r"\b(no para de salir|sale mucha|sale un monton de) sangre\b",
        r"\bme (corte|abri) (el cuelo|la garganta|los brasos)\b",
        r"\bcolgando (los pies|las piernas)\b",
        r"\b(to|estou) (em cima|na beira) d[ao] (ponte|predio|telhado|janela)\b",
        r"\b(prendi|prendo|prendido) (el )?carbon\b", r"\b(bano|pieza|auto|garage) serad[oa]\b[^|]{0,30}\b(carbon|brasas|motor|gas)\b",
        rf"\bme tire (del|de la|desde) [^|]{{0,20}}\b({HIGH})\b",
        r"\b(tome|trague|tomei|me tome) [0-9]{2,} \w+\b",
        r"\b(tome|me tome|trague|bebi|tomei) (lavandina|veneno|lejia|cloro|rasiticida|raticida|soda caustica)\b",
        r"\bya me tire (y|del|de la|desde|al)\b", r"\b(sale|sangra) (mucha sangre|mucho|un monton)\b",
        r"\bme corte (muy )?(hondo|profundo)\b", r"\bme estoy (ahogando|asfixiando|desangrando)\b",
        r"\b(revolver|arma|pistola|escopeta) en la (cabesa|boca|sien)\b",
        r"\btomei (muitos|muitas|todos|todas|o vidro|a cartela)\b", r"\bya tome\b[^|]{0,40}(\| [^|]{0,40})?\b(listo|chau|me acuesto|sueno)\b",
        r"\bme (tome|trague) [^|]{0,30}(hase|hace) (un rato|media hora|\w+ horas?)\b",
        r"\b(estoy|ta|esta|sigo) sangrando\b", r"\bhay (mucha )?sangre\b",
        r"\bno para de sangrar\b", r"\bme estoy desangrando\b", r"\bsangrando muito\b",
        r"\bme (abri|corte) (las venas|las munecas|muy profundo|profundo)\b",
        r"\bme corte\b[^|]{0,20}\b(me estoy mareando|no (se como|puedo) pararlo)\b",
        r"\b(estoy|to|me he subido|me subi) [^|]{0,30}\b(borde|cornisa|beira|escolera|via|vias|edge|ledge|tracks|baranda)\b",
        r"\b(ya )?(pase|salte|saltado|he saltado) (la|el) (baranda|valla|baranda|reja)\b",
        r"\bdel lado de afuera\b", r"\bpiernas colgando\b",
        r"\b(estoy|me meti) en el (agua|rio|mar)\b",
        r"\b(abri|prendi|deje abierto|tengo abierto) el gas\b", r"\bgas abierto\b",
        r"\b(deje|tengo) (las hornallas|la hornalla|la cosina) abiertas?\b",
        r"\bla cosina ya huele\b", r"\bya huele\b",
        r"\bsoga (ya )?(esta )?(atada|colgada|puesta)\b", r"\bbanquito y la soga\b",
        r"\bmotor prendido\b", r"\bsoltar el volante\b",
        r"\b(tengo|con) (el arma|el revolver|la pistola|la escopeta|la gilete"
        r"|la hojita|las pastillas|la soga|el cuter)\b[^|]{0,30}\b(en la mano|en la boca"
        r"|apoyad[oa]|ahora mismo|en el cuelo)",
        # A kitchen knife in hand is cooking: only at the body.
        r"\b(tengo|con) el cuchilo\b[^|]{0,30}\b(en la boca|apoyad[oa]|en el cuelo)",
        r"\bya se ve (la lus del )?tren\b",
        r"\bi (just )?(took|swallowed) (all|every|a bottle|the whole|too many|my pills|a whole|an entire|a lot of)\b",
        r"\bi (just )?overdosed\b", r"\bi (slit|cut) my wrists\b",
        r"\b(i am|i m) (on|at|standing on|sitting on) (the |my |a )?(roof|ledge|edge|tracks|bridge)\b",
        r"\bstanding on the tracks\b", r"\b(i am )?bleeding (a lot|badly|out|so much)\b",
    ),
    "third_party": patterns(
        # Only counted after a third person named earlier in the message (THIRD_SUBJECT).
        rf"\b({THIRD_ACT})\b",
        r"\b(alguien|un tipo|una piba|un pibe) [^|]{0,30}dijo que se mata\b",
        r"\b(se|le) (vi|vimos) (los brasos|cortes|las marcas)\b",
        r"\bbuscaba? como (ahorcarse|matarse|suisidarse)\b",
        r"\bblisters vasios\b",
    ),
    "plan": patterns(
        r"\b(estrelarme|me estrelo|me (quiero|voy a) estrelar|me la (quiero|voy a) (dar|pegar))\b[^|]{0,40}"
        r"\b(auto|proposito|contra|camion|pared|arbol|moto)\b",
        r"\b(auto|moto|carro)\b[^|]{0,25}\bme estrelo\b",
        r"\b(terminar|acabar|termino|acabo) con (mi vida|mi existensia)\b",
        r"\b(quitarme|sacarme|me quito|me saco) la vida\b",
        r"\bponer(le)? fin a (mi vida|todo)\b",
        r"\btomar(me)? (todas|todo) (las|mis|lo que)\b",
        rf"\b(junte|juntando|acumulando|acumule|junto|juntar|juntarla|voy juntando|estoy juntando) [^|]{{0,30}}\b({PILLS})\b"
        r"(?! (para la|de la|para dormir y|pra alergia|para el dolor))",
        rf"\b(guardando|guarde|guardo|tengo) [^|]{{0,40}}\b({PILLS})\b[^|]{{0,40}}\b(para cuando|en ves de tomar"
        rf"|para el dia|para haserlo|sufisientes|de sobra|para no despertar|para matarme)\b",
        rf"\b(guardo|guarde|guardando) (el|la|los|las) ({PILLS}) en ves de\b",
        rf"\b({PILLS}) (contadas|juntas|guardadas|listas|del insomnio guardadas)\b",
        r"\b(hacerme|tomar|tomarme) una sobredosis\b", r"\bsuficiente para (matarme|no despertar)\b",
        r"\bcuantas pastillas (hacen falta|nesesito|son)\b",
        r"\bcuantas (serian|son|hacen falta) (demasiadas|sufisientes|para (no|morir|matarme))\b",
        rf"\b(tirarme|me tiro|me (voy a|quiero|vuelvo a) tirar|tiraria|saltar|meterme|me jogar|jogar me|arrojarme) [^|]{{0,20}}"
        rf"\b({HIGH}|tren|auto|colectivo|bondi|camion|subte|vias|vasio|rio|agua|arroyo|mar)\b",
        r"\b(tirarme|saltar|salto) (desde|de) (que|el) (puente|piso)\b",
        rf"\b({HIGH}) [^|]{{0,30}}\b(y salto|y me tiro|tirarme|y tirarme|y saltar)\b",
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
        r"\bme (voy a|quiero) colgar" + END,
        r"\btomar(me)? (el|un|una|toda la|todo el) (frasco|caja|blister)\b",
        r"\b(quiero|voy a|pienso|para|a punto de) (saltar|tirarme)\b",
        r"\b(night|day) i end it\b", r"\bi end it" + END,
        r"\bvou pular\b",
        r"\b(i ve|i have|already) (picked|chosen|set) (a|the) (date|day)\b",
        r"\bhow (many|much) \w+ (would it take|would be (dangerous|lethal|enough))\b",
        r"\bwhat dose would\b",
    ),
    "self_harm": patterns(
        r"\bcortarme\b", r"\bme sigo cortando\b",
        r"\b(me estoy|to me|estou me) (cortando|lastimando)\b(?! (el|la|los|las|o|a|os|as|con (el|la) (cuchilo|cuter)))", r"\bme he (cortado|quemado|hecho dano|vuelto a cortar)\b(?! con (un|una|el|la) (folio|papel|hoja|cuchilo|cuter|lata|vidrio))", r"\bme (vuelvo|volvi|he vuelto) a cortar\b",
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
    "help": patterns(
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
        # English asks for a line or a person.
        r"\b(hotline|helpline|crisis line|crisis number|suicide line|lifeline)\b",
        r"\b(a |the )?(number|line) (to call|i can call)\b", r"\b(anyone|anybody|someone|somebody) real\b",
        r"\b(an |a )?(actual|real) (person|human)\b",
        r"\b(numero|telefono|pasame|dame|hay|tenes|conoses|donde (esta|encuentro)) [^|]{0,20}\blinea de"
        r" (prevension|ayuda|crisis|contension|emergensia)\b", r"\bpreciso falar com (alguem|uma pesoa)\b", r"\bcan i talk to\b", r"\b(que|q) alguien me ayude\b",
    ),
}
