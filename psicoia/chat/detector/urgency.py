"""
Act cues: the signs that a message is about an act in progress or just done, so its tier is
"acute" (the emergency numbers first) rather than "risk" (docs/safety.md, "Acute").

The strong "acute" groups (:mod:`psicoia.chat.detector.acts`,
:mod:`psicoia.chat.detector.emergency`) give a tier by themselves, so they must stay narrow.
These cues are wider because they never flag a message on their own. Two strengths, one family
of act per entry, in the languages people here write (rioplatense and neutral Spanish, Spain
Spanish, Portuguese, English; the text is normalised first, so chat spelling folds in):

- :data:`ACT_CUES` raise a message already read as "risk" or as an ask for help: being at a
  height or on the road now, having taken a pill, the train coming, "it is one step";
- :data:`SURE_CUES` raise those too, and also a message with no tier that carries *some*
  evidence of risk (a weak rule signal, or the learned model's log-odds at its ``signal``
  level) outside an everyday frame (rules.py): an amount or a poison swallowed, blood that
  does not stop or a deep cut, a cord at the neck, an instrument in hand, at the skin, in the
  mouth, pointed or loaded, the water up to the chest, on the ledge or over the railing, the
  engine running in a closed garage or a hose to the exhaust, the gas open.

Run only on messages with a tier or some evidence (a handful per thousand), and only the cues
whose anchors are in the message (:mod:`psicoia.chat.detector.index`), so their cost is not
on the hot path.
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import patterns

__all__ = ["ACT_CUES", "SURE_CUES"]

_TAKEN = (r"pastillas|pastilla|pastis|blister|blisters|caja|cajas|frasco|frascos|litio|rivotril"
          r"|clonazepam|alprazolam|veneno|lejia|lavandina|raticida|cloro|cartela|comprimidos"
          r"|remedios|medicamentos|tablets|pills|antidepressants|antidepresivos|meds|bottle"
          r"|paracetamol|ibuprofeno|insulina|tylenol|bleach|lithium|tabletas|capsulas"
          r"|medicine|remedio|soda caustica|anticongelante|antifreeze|pesticida")
_POISON = (r"veneno|lejia|lavandina|raticida|rasiticida|cloro|bleach|soda caustica|anticongelante"
           r"|antifreeze|pesticida|veneno de rato|mata ratas|matarratas|insecticida")
_TOOK = (r"tome|me tome|trague|me trague|tragarme|he tomado|me he tomado|acabo de tomar"
         r"|acabo de tomarme|acabo de tragar|acabo de tragarme|tomei|engoli|me pase con|took"
         r"|swallowed|have taken|just took|overdosed|me inyecte|inyecte|drank|bebi|me bebi|mixed"
         r"|mesle|injected|tragei")
_ALL = (r"todo|todas|todos|tudo|toda|all|all of them|everything|entero|entera|inteiro|inteira"
        r"|whole|enteros|enteras|de un saque|juntas|junta|everything in")
_BOX = (r"blister|blisters|caja|cajas|frasco|frascos|cartela|cartelas|bottle|bote|tira|pack|box"
        r"|sobre|paquete|pote")
_HEIGHT = (r"puente|ponte|bridge|terrasa|terraso|asotea|techo|telhado|roof|cornisa|ledge"
           r"|viaducto|balcon|sacada|varanda|balcony|acantilado|cliff|predio|edifisio|terraco")
# Anything that cuts or pierces, and firearms: the instrument is in hand, at the skin or in the
# mouth, pointed or loaded (the act is under way), never merely owned.
_BLADE = (r"hoja|hojita|hojitas|gillette|gilete|gilette|navaja|cuchilla|cuchillas|cuchillo|trincheta"
          r"|cuter|cutter|bisturi|tijera|tijeras|vidrio|blade|blades|razor|razors|lamina|faca"
          r"|knife|estilete|cortaplumas|cortapluma")
_FIREARM = r"arma|escopeta|pistola|revolver|rifle|gun|fusil|pistol"
_AT_BODY = (r"en la mano|en las manos|en mi mano|in my hand|in my hands|na mao|na minha mao"
            r"|en la boca|in my mouth|na boca|en la muneca|en las munecas|en el cuello|en la sien"
            r"|en la garganta|en la cabesa|en la piel|en el braso|on my (wrist|wrists|skin|arm|throat)"
            r"|to my (wrist|head|throat|temple)|no pulso|no braso|no pescoco|na cabesa|apoyad[oa]"
            r"|contra (la|mi) (piel|muneca|braso|cuelo|garganta|cabesa)|apuntando|apuntandome"
            r"|apuntada|apuntado|sin el seguro|sin seguro|safety off|safety of|clavad[oa]|en la falda|en el regaso"
            r"|in my lap|no colo|aca conmigo|aqui conmigo|here with me|encostad[oa]|pressed (to|against)|na garganta|na pele")

SURE_CUES = patterns(
    # On the tracks or the road, waiting for the train or a truck.
    r"\b(en el medio de|in the middle of|acostad[oa] en|parad[oa] en) (la |the |a )?(highway|autopista|ruta"
    r"|carretera|road)\b",
    r"\b(me tire|i threw myself|me joguei) (a la|al|in front of|na frente) (calle|ruta|auto|camion|tren|car|truck"
    r"|train|carro|rua)\b",
    # Taken: "them all".
    rf"\b({_TOOK}) (them|elas|eles) all\b",
    rf"\b({_TOOK}) (them|it|elas) (all|todas|todos|tudo)\b",
    # Swallowed or injected: an amount, a poison, or with alcohol.
    rf"\b({_TOOK}) (me |las |los |my |a |o |el |la )?({_ALL})\b",
    rf"\b({_TOOK})\b[^|]{{0,40}}\b({_BOX}) (entero|entera|inteiro|inteira|whole|completo|completa)\b",
    rf"\b({_TOOK}) (the |a |o |el |la |una |um |uma )?(whole|entire) ({_BOX})\b",
    rf"\b({_TOOK})\b[^|]{{0,60}}\b(con|com|with) (alcohol|vino|vodka|whisky|fernet|serveza|cachasa"
    r"|vinho|alcool|serveja|wine|beer|ginebra|ron)\b",
    rf"\b({_TOOK})\b[^|]{{0,20}}\b({_POISON})\b",
    rf"\b({_TOOK}) (like |como |unas |unos |uns |umas |about |around )?[0-9]{{2,}}\b",
    rf"\b({_TOOK}) (dos|tres|cuatro|two|three|duas|varias|varios|muchas|muchos|un monton de) (cajas"
    r"|blisters|frascos|cartelas|bottles|boxes|packs)\b",
    # Blood that does not stop, a deep cut.
    r"\b(sangre|sangue|blood)\b[^|]{0,20}\b(no para|no deja|nao para|wont stop|will not stop"
    r"|everywhere|por todos lados)\b",
    r"\b(saindo|sale|salendo|saliendo|coming out|pouring) [^|]{0,15}\b(mucha |muita |tanta |so much )"
    r"(sangre|sangue|blood)\b",
    r"\b(sangre|sangue|blood|bleeding|sangrando|herida|wound|ferida)\b[^|]{0,40}"
    r"(\| [^|]{0,10})?\b(not stopping|wont stop|will not stop|doesnt stop|isnt stopping|no para"
    r"|nao para|no deja de|no se detiene|cant stop it|no (puedo|consigo) pararl[ao])\b",
    r"\b(no para|no deja|nao para) de (sangrar|salir)\b",
    r"\b(sigue|continua|keeps|keep|still|segue|continua) (saliendo|sangrando|bleeding|pouring|saindo|sangrando)\b",
    r"\b(cortado|cortei|cut|corte|cortado) (way |muy |re |to |so |demasiado |bien |mui |muito )?(hondo|profundo"
    r"|deep|dep|fundo)\b",
    r"\b(agua|water|banera|toalla|towel) [^|]{0,15}\b(roja|vermelha|red|empapada|soaked)\b",
    r"\b(corte|cortei|cut|cuts|cortes|herida|wound|uno|one|tajo) (es |is |muy |bien |re |too |to |very"
    r" |so |fue |ta |esta |e |demasiado )?(profundo|profunda|hondo|honda|fundo|funda|deep|dep)\b",
    # A cord at the neck, on the chair.
    r"\b(soga|cuerda|corda|rope|cinturon|belt|cinto|cable|sabana|bufanda)\b[^|]{0,30}\b(cuello"
    r"|pescoco|neck|atada|amarrada|colgada|puesta|tied|around)\b",
    r"\b(ate|ato|atado|amarre|amarrei|amarro|colgue|tied|hung|he atado) (el |la |a |o |the |my )?(soga|cuerda"
    r"|corda|rope|cinturon|belt|cable|correa|sabana|cinto)\b",
    r"\b(puesto|puse|pus|put it|put the \w+) (al|en el|around my|no) (cuelo|neck|pescoco)\b",
    r"\b(arriba de|parad[oa] en|de pie en|subid[oa] a|em cima da|on the) (la |a |the )?(silla"
    r"|banquito|cadeira|chair|stool|banqueta)\b",
    # An instrument in hand, at the skin, in the mouth, pointed or loaded; pills in hand or mouth.
    rf"\b({_BLADE}|{_FIREARM}|pastillas|pastis|pills|comprimidos|remedios|blister)\b[^|]{{0,40}}"
    rf"\b({_AT_BODY})\b",
    rf"\b(en la mano|in my hand|na mao|agarro|sostengo|holding|segurando|empunando)\b"
    rf"[^|]{{0,20}}\b({_BLADE}|{_FIREARM})\b",
    r"\bya (la|lo) cargue\b", rf"\bme (clave|clavei) (la|el|una|un|a|o) ({_BLADE})\b",
    rf"\b(cargue|i loaded|loaded) (el |la |the |my |o |a )?({_FIREARM})\b",
    rf"\b({_BLADE}|{_FIREARM})\b[^|]{{0,40}}(\| [^|]{{0,20}})?\b(ya empese|ya comense|ja comecei|already started)\b",
    r"\b(le )?(saque|quite) el seguro\b", r"\b(took|switched) the safety off\b",
    # In the water up to the chest, walking in.
    # ("no"/"na" start the match: in Portuguese they are "in the", not a negation.)
    r"\b((no|na|en|el|la|in|into) )?(agua|water|rio|mar|lago|sea|river|ocean|lake)\b[^|]{0,20}\b(pecho"
    r"|cintura|cuello|peito|chest|waist|neck|pescoco)\b",
    r"\b(banera|bathtub|tub|banheira)\b[^|]{0,40}\b(secador|tostadora|hair dryer|toaster|radio|estufa)\b",
    r"\b(i am walking into|me estoy metiendo en|estoy entrando al|to entrando no) (el |la |the |o )?"
    r"(rio|mar|sea|river|lake|lago|ocean)\b",
    r"\b(piedras|pedras|stones|rocks) (en|na|no|in) (la |los |el |my |a |o )?(campera|bolsillos|abrigo|mochila"
    r"|pockets|backpack|bolso|bolsos|mochila)\b",
    r"\b(no hago pie|ya no hago pie|cant touch the bottom|nao da pe|ja nao da pe)\b",
    r"\b(me cubre|me llega|me tapa|cobre|covers|is at|up to|ate) (el |la |my |o |a )?(pecho|cintura|cuelo"
    r"|chest|waist|neck|peito|pescoco)\b",
    r"\b(me meti|me estoy metiendo|entre|i walked|estoy caminando|i am walking) (al|en el|a la|no|na|into the"
    r"|hacia el|towards the|into) (rio|mar|sea|river|lago|lake|ocean|agua)\b",
    # On the ledge, over the railing.
    rf"\b(en|sobre|on|at|na|no) (el |la |the |a |o )?(borde|beira|edge) (de la |del |of the"
    rf" |of my |da |do )?({_HEIGHT}|anden|via|vias|platform|janela|ventana)\b",
    r"\b(cornisa|ledge|parapet|pretil|alfeisar|window sill|windowsill|parapeito|beiral)\b",
    r"\b(me asome|asomad[oa]|leaning) (al|a la|por el|over the) (borde|ventana|baranda|edge|railing)\b",
    r"\b(subid[oa]|sentad[oa]|parad[oa]|de pie|standing|sitting|em pe|sentad[oa]) (a|en|sobre|on|na|no) (la |el"
    r" |the |a |o )?(barandila|baranda|railing|reja|muro|mureta|grade)\b",
    r"\b(al otro lado|del otro lado|other side|lado de afuera) (de |of )?(la |the )?(barandilla"
    r"|baranda|reja|railing|valla|fence)\b",
    r"\b(passei|pase|salte|cruse|climbed over) (a |la |el |the )?(grade|baranda|barandilla|reja"
    r"|railing|valla|barrera)\b",
    r"\b(agarrad[oa]|colgad[oa]|sostenid[oa]|hanging|holding on) (del|al|on the|to the|de) (otro lado"
    r"|other side|lado de afuera|railing|baranda|barandilla|reja)\b",
    r"\b(pernas|piernas|legs|pies|feet|pes) (pra fora|para fora|afuera|para afuera|colgando|hanging|over|out)\b",
    # Exhaust and gas.
    r"\b(motor|engine) (lleva|esta|ta|is|has been) [^|]{0,15}\b(encendido|prendido|running|ligado)\b",
    r"\b(estoy|estou|to|i am|sitting|me meti|sentad[oa]) (en|dentro del|adentro del|no|in) (el |the |o )?"
    r"(auto|coche|carro|car)\b[^|]{0,40}\b(garage|garaje|garagem|manguera|escape|hose|exhaust)\b",
    r"\bmanguera\b[^|]{0,30}\bescape\b", r"\bhose\b[^|]{0,30}\bexhaust\b",
    # The vehicle itself running (said as a state, not a plan's means) in a closed garage.
    r"\b(auto|coche|carro|car|motor|engine) (esta|lleva|ta|is|sigue)\b[^|]{0,12}\b(encendido|prendido"
    r"|en marcha|running|ligado)\b[^|]{0,30}\b(garage|garaje|garagem)\b[^|]{0,15}\b(cerrado|closed"
    r"|fechad[oa]|adentro|inside|dentro)\b",
    r"\b(abri|abri o|deje abierto|dejo abierto|turned on|turned)\b[^|]{0,10}\bgas\b",
    r"\b(gas|hob|hobs)\b[^|]{0,20}\b(on|abierto|aberto)\b",
    r"\bdeje (la |el )?(estufa |llave |hornala |cosina )?(de |del )?gas abiert[oa]\b",
    r"\b(selle|sealed|taped|tape|tampei|vedei|tape) (la |las |the |a |as |o )?(puerta|door|porta|ventanas"
    r"|windows|janelas|rendijas)\b",
    r"\b(cerre todas las ventanas|closed all the windows|fechei todas as janelas)\b",
    r"\b(prendi|encendi|acendi|lit|i lit) (el |o |the |un |some )?(carbon|carvao|charcoal|brasero|brasas)\b"
    r"[^|]{0,30}\b(cuarto|pieza|habitasion|bano|monoambiente|dormitorio|auto|coche|carro|quarto|banheiro"
    r"|room|bathroom|bedroom|car|garage|garaje)\b",
    r"\b(carbon|carvao|charcoal|brasero|brasas)\b[^|]{0,30}\b(prendido|encendido|aceso|lit|burning)\b"
    r"[^|]{0,30}(\| [^|]{0,20})?\b(cerre|cerrado|encerrad[oa]|sealed|closed|monoambiente|cuarto|pieza|bano"
    r"|room|bathroom|fechei)\b",
)

ACT_CUES = patterns(
    # Taken: past or just done, with what.
    rf"\b(ya )?({_TOOK})\b[^|]{{0,50}}\b({_TAKEN})\b",
    # Bleeding now (not a habit: "me rasco hasta que sangra").
    r"\b(?<!hasta que )(?<!hasta que me )(sangra|sangro|sangrando|bleeding)\b",
    r"\b(mucha|tanta|a lot of|lots of|so much|muito|muita) (sangre|sangue|blood)\b",
    r"\b(acabo de|just|already|ive already|i have already) (me )?(cortar|cortarme|cut|cortei)\b",
    # In the water.
    r"\b(metid[oa]|me meti|dentro|estoy en|to no|to dentro)"
    r" (en |al |a |el |la |del |de la |do |da |no |into |the )?(el |la |the )?(rio|mar|agua|sea"
    r"|river|lake|lago)\b",
    r"\bme tire (al|a la|en el|no|na) (arroyo|rio|mar|agua|lago|dique|canal)\b",
    # At a height right now.
    r"\b(es|e|its|it is) (solo |so |just )?(un|um|one) (paso|passo|step)\b",
    rf"\b(estoy|to|estou|i am|sat on|sitting on|standing on|sentad[oa] en|parad[oa] en)"
    rf" (en |na |no |on |at |in )?(el |la |lo |the |a |da |do |my )?(\w+ )?({_HEIGHT})\b",
    rf"\b(estoy|to) n (el|la|lo) ({_HEIGHT})\b",
    r"\b(estoy|to|estou|i am) (en el|no|na|on the) (anden|platform|plataforma|estasao)\b",
    rf"\b(en|sobre|on|at|na|no) (el |la |the |a |o )?(orilla) (de la |del |of the |da |do )?"
    rf"({_HEIGHT}|anden|via|vias|muelle|platform)\b",
    # A burn that is still going on or deep; doing it right now.
    r"\b(me estoy|estoy|i am|im|to me|estou me) (quemando|cortando|lastimando|cutting|burning|queimando)\b(?![^|]{0,30}\b(todas las"
    r"|todos los|cada|de nuevo|otra ves|seguido|siempre|every|again)\b)",
    r"\b(se me esta poniendo blanca|piel (blanca|negra)|skin (is )?(white|black)|carne viva)\b",
    r"\b(a proposito|on purpose) y sigo\b",
    r"\b(lo hago|lo voy a haser|voy a haserlo|i am doing it|im doing it|vou faser)\b[^|]{0,20}"
    r"\b(ahora|ya mismo|right now|agora)\b",
    # Road and tracks.
    r"\b(me acoste|estoy acostad[oa]|lying|tirado|tirada) (en |on )?(la |las |el |the )?(carretera"
    r"|ruta|vias|via|tracks|road|calle)\b",
    r"\b(el tren|the train|o trem) (ya )?(viene|esta viniendo|is coming|vem|se acerca)\b",
)
