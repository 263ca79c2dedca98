"""
Act cues: the signs that a message already read as risk is about an act in progress or just
done, so its tier is "acute" (the emergency numbers first) rather than "risk" (docs/safety.md).

The strong "acute" group (:mod:`psicoia.chat.detector.acts`) gives a tier by itself, so it
must stay narrow. These cues are wider because they never flag a message on their own: they
only raise a message the rules or the model already flagged as "risk", one family of act per
entry, in the languages people here write (rioplatense and neutral Spanish, Spain Spanish,
Portuguese, English; the text is normalised first, so chat spelling folds in):

- something swallowed or taken, said in the past or as just done (not "voy a tomar");
- bleeding now, a deep cut, blood that does not stop;
- a rope or cord around the neck, tied, or standing on the chair;
- a weapon loaded or in hand;
- in the water, with the water up to the chest or the waist;
- on the edge, over the railing, legs outside, at a height right now;
- the engine running in a closed garage, a hose to the exhaust, the gas open;
- lying on the road or the tracks, the train coming.

Run only on flagged messages (a handful per thousand), and only the cues whose anchors are in the
message (:mod:`psicoia.chat.detector.index`), so their cost is not on the hot path.
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import patterns

__all__ = ["ACT_CUES"]

_TAKEN = (r"pastillas|pastilla|pastis|blister|blisters|caja|cajas|frasco|frascos|litio|rivotril"
          r"|clonazepam|alprazolam|veneno|lejia|lavandina|raticida|cloro|cartela|comprimidos"
          r"|remedios|medicamentos|tablets|pills|antidepressants|antidepresivos|meds|bottle"
          r"|paracetamol|ibuprofeno|insulina")
_TOOK = (r"tome|me tome|trague|me trague|tragarme|he tomado|me he tomado|acabo de tomar"
         r"|acabo de tomarme|acabo de tragar|acabo de tragarme|tomei|engoli|me pase con|took"
         r"|swallowed|have taken|just took|overdosed|me inyecte|inyecte")
_HEIGHT = (r"puente|ponte|bridge|terrasa|terraso|asotea|techo|telhado|roof|cornisa|ledge"
           r"|viaducto|balcon|sacada|varanda|balcony|acantilado|cliff|predio|edifisio|terraco")

ACT_CUES = patterns(
    # Taken: past or just done, with what.
    rf"\b(ya )?({_TOOK})\b[^|]{{0,50}}\b({_TAKEN})\b",
    rf"\b(me las |las |los )?({_TOOK}) (todo|todas|todos|tudo|all of them|everything)\b",
    # Bleeding now.
    r"\b(?<!hasta que )(?<!hasta que me )(sangra|sangro|sangrando|bleeding)\b",
    r"\b(sangre|sangue|blood)\b[^|]{0,20}\b(no para|no deja|nao para|wont stop|will not stop"
    r"|everywhere|por todos lados)\b",
    r"\b(mucha|tanta|a lot of|lots of|so much) (sangre|sangue|blood)\b",
    r"\b(no para|no deja|nao para) de (sangrar|salir)\b",
    r"\b(agua|water|banera|toalla|towel) [^|]{0,15}\b(roja|vermelha|red|empapada|soaked)\b",
    r"\b(corte|cortei|cut) (es |is |muy |bien |re |too |very |so )?(profundo|hondo|fundo|deep|demasiado)\b",
    r"\b(acabo de|just|already|ive already|i have already) (me )?(cortar|cortarme|cut|cortei)\b",
    # Ligature.
    r"\b(soga|cuerda|corda|rope|cinturon|belt)\b[^|]{0,30}\b(cuello|pescoso|neck|atada|amarrada"
    r"|colgada|puesta|tied|around)\b",
    r"\b(ate|amarre|amarrei|colgue|tied|hung) (la |a |the )?(soga|cuerda|corda|rope)\b",
    r"\b(arriba de|parad[oa] en|de pie en|subid[oa] a|em cima da|on the) (la |a |the )?(silla"
    r"|banquito|cadeira|chair|stool|banqueta)\b",
    # A weapon loaded or in hand.
    r"\b(arma|escopeta|pistola|revolver|rifle|gun|cuchillo|faca|knife|gilete)\b[^|]{0,40}\b(en la mano"
    r"|en las manos|in my hand|na mao|clavad[oa]|apuntando|en la sien|en la boca)\b",
    r"\bya (la|lo) cargue\b", r"\bme (clave|clavei) (la|el|una|un|a|o)\b",
    # In the water.
    r"\b(agua|water)\b[^|]{0,20}\b(pecho|cintura|cuello|peito|chest|waist|neck)\b",
    r"\b(metid[oa]|me meti|me estoy metiendo|dentro|i am walking into|estoy en|to no|to dentro)"
    r" (en |al |a |el |la |del |de la |do |da |no |into |the )?(el |la |the )?(rio|mar|agua|sea"
    r"|river|lake|lago)\b",
    r"\b(piedras en (la campera|los bolsillos|el abrigo)|stones in my pockets)\b",
    # On the edge, at a height right now.
    rf"\b(en|sobre|on|at|na|no) (el |la |the |a |o )?(borde|beira|edge|orilla) (de la |del |of the"
    rf" |of my |da |do )?({_HEIGHT}|anden|via|vias|muelle|platform|janela|ventana)\b",
    r"\b(cornisa|ledge|parapet|pretil)\b",
    r"\b(al otro lado|del otro lado|other side|lado de afuera) (de |of )?(la |the )?(barandilla"
    r"|baranda|reja|railing|valla|fence)\b",
    r"\b(passei|pase|salte|cruse|climbed over) (a |la |el |the )?(grade|baranda|barandilla|reja"
    r"|railing|valla)\b",
    r"\b(pernas|piernas|legs) (pra fora|para fora|afuera|colgando|hanging|over)\b",
    r"\b(es|e|its|it is) (solo |so |just )?(un|um|one) (paso|passo|step)\b",
    rf"\b(estoy|to|estou|i am|sat on|sitting on|standing on|sentad[oa] en|parad[oa] en)"
    rf" (en |na |no |on |at |in )?(el |la |lo |the |a |da |do |my )?(\w+ )?({_HEIGHT})\b",
    # Exhaust and gas.
    r"\b(motor|engine) (lleva|esta|ta|is|has been) [^|]{0,15}\b(encendido|prendido|running|ligado)\b",
    r"\b(estoy|estou|to|i am|sitting|me meti|sentad[oa]) (en|dentro del|adentro del|no|in) (el |the |o )?"
    r"(auto|coche|carro|car)\b[^|]{0,40}\b(garage|garaje|garagem|motor|engine|manguera|escape|hose"
    r"|exhaust)\b",
    r"\bmanguera\b[^|]{0,30}\bescape\b", r"\bhose\b[^|]{0,30}\bexhaust\b",
    r"\b(abri|abri o|deje abierto|dejo abierto|turned on)\b[^|]{0,10}\bgas\b",
    r"\b(gas|hob|hobs)\b[^|]{0,20}\b(on|abierto|aberto)\b",
    # Road and tracks.
    r"\b(me acoste|estoy acostad[oa]|lying|tirado|tirada) (en |on )?(la |las |el |the )?(carretera"
    r"|ruta|vias|via|tracks|road|calle)\b",
    r"\b(el tren|the train|o trem) (ya )?(viene|esta viniendo|is coming|vem|se acerca)\b",
)
