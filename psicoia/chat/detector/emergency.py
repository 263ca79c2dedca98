"""
Physical emergencies that give the "acute" tier by themselves, whatever the intent
(docs/safety.md, "Acute: the emergency number first").

An overdose already taken or bleeding that will not stop needs the emergency number now, even
when it was an accident or the writer says nothing about wanting to die: giving it first costs
an accident little and a person at risk everything. So these two families are part of the
strong "acute" group (:mod:`psicoia.chat.detector.index`), not act cues; they are written
narrow (a first-person past act and an amount, a poison or a container; blood that does not
stop, everywhere, or a cut too deep), and their everyday frames (a course of antibiotics taken
as prescribed, a nosebleed, a film) are masked in :mod:`psicoia.chat.detector.lookalikes`.
Someone else's overdose stays "third_party" (its verbs are third person: "se tomó").
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import patterns

__all__ = ["EMERGENCY"]

# First-person past (or just done) swallowing, drinking or injecting; English "took" only
# when nobody else is its subject.
_TOOK = (r"tome|me tome|trague|me trague|trage|me trage|he tomado|me he tomado|acabo de tomar"
         r"|acabo de tomarme|acabo de tragar|acabo de tragarme|tomei|engoli|me pase con"
         r"|(?<!he )(?<!she )(?<!they )(?<!it )(?<!who )(took|swallowed|overdosed on|injected)"
         r"|i just took|me inyecte|inyecte|tragei")
_PILLS = (r"pastillas|pastila|pastilla|pastis|pills|pils|meds|medication|medicine|tablets|tabletas"
          r"|capsulas|comprimidos|remedios|medicamentos|antidepressants|antidepresivos|blister"
          r"|frasco|caja|cartela|bottle")
_NAMED = (r"litio|lithium|rivotril|clonasepam|alprasolam|sertralina|quetiapina|paracetamol|tylenol"
          r"|ibuprofeno|ibuprofen|aspirinas|insulina|insulin|somniferos|ansioliticos|benzos|xanax"
          r"|diasepam|lorasepam")
_MEDS = _PILLS + "|" + _NAMED
_FIREARM = r"arma|escopeta|pistola|revolver|rifle|gun|shotgun|fusil|pistol"
_WEAPON = (_FIREARM + r"|cuchilo|cuchila|navaja|faca|knife|blade|gilete|hoja|hojita|trincheta|cuter"
           r"|bisturi|tijera|vidrio|lamina|rasor")
_BOX = r"blister|blisters|frasco|frascos|caja|cajas|cartela|cartelas|bottle|bottles|bote|tira|pack"
_POISON = (r"veneno|lavandina|lejia|bleach|raticida|rasiticida|veneno de rato|veneno para ratas"
           r"|mata ratas|matarratas|soda caustica|anticongelante|antifreeze|pesticida|insecticida"
           r"|chumbinho|agua sanitaria|cloro|rat poison|poison|weed killer")
_MANY = (r"[0-9]{2,}|veinte|treinta|cuarenta|cincuenta|sesenta|twenty|thirty|forty|fifty|sixty"
         r"|vinte|trinta|quarenta|cinquenta")

EMERGENCY = patterns(
    # An overdose already taken: all of them, an amount, a whole container, or a poison.
    rf"\b({_TOOK}) (\w+ )?(todo|toda|todas|todos|tudo|all|every)\b[^|]{{0,25}}\b({_MEDS})\b",
    *(rf"\b({_TOOK})\b[^|]{{0,12}}\b({meds})\b[^|]{{0,30}}(\| )?\b(todas|todos|tudo|all of them"
      rf"|enteras|enteros|entero|entera|inteira|inteiro|juntas|de un saque)\b" for meds in (_PILLS, _NAMED)),
    *(rf"\b({_TOOK}) (\w+ )?({_MANY})\b[^|]{{0,20}}\b({meds})\b" for meds in (_PILLS, _NAMED)),
    rf"\b({_TOOK}) (dos|tres|cuatro|varias|varios|two|three|four|duas|several) ({_BOX}|boxes|packs)\b",
    rf"\b({_TOOK}) (\w+ )?({_BOX}) (entero|entera|inteiro|inteira|completo|completa|whole)\b",
    rf"\b({_TOOK}|drank|i drank|just drank|bebi|me bebi|he bebido|bebido|he tomado) (\w+ )?(\w+ )?({_POISON})\b",
    *(rf"\b({_TOOK})\b[^|]{{0,30}}\b({meds}) (de|for|of) [^|]{{0,8}}\b(meses|semanas|months|weeks)\b"
      for meds in (_PILLS, _NAMED)),
    rf"\beverything in (the|my) (medicine cabinet|cabinet)\b",
    r"\b(me )?inyecte (la|toda la|todo el) (insulina|insulin)\b[^|]{0,30}\b(toda|de toda la semana"
    r"|de la semana|junta|entera)\b",
    # An attempt just made: the cord broke, on the floor, passed out.
    r"\b(me )?(ahorque|colgue|he colgado|enforquei|hanged myself|tried to hang myself|intente ahorcarme"
    r"|intente colgarme)\b[^|]{0,60}(\| [^|]{0,40})?\b(se rompio|se ha soltado|se solto|arebento|snaped|broke"
    r"|se corto|me desmaye|desmaie|passed out|on the floor|en el piso|no chao|en el suelo)\b",
    # On the tracks waiting for the train; a weapon at the head or a blade at the throat.
    r"\b(en|on|nos|no|sobre) (la |las |the |o |os )?(via|vias|tracks|trilho|trilhos|rieles)\b[^|]{0,20}"
    r"\b(esperando|waiting)\b",
    rf"\b({_WEAPON})\b[^|]{{0,30}}\b(en la sien|en la boca|en la garganta|en el cuelo|na garganta|no pescoco"
    r"|na cabesa|to my (head|throat|temple)|against my (throat|wrist|neck)|in my mouth|encostad[oa] n[ao]"
    r" (garganta|pescoco|cabesa|pulso)|apoyad[oa] en (la|el) (cuelo|garganta|muneca|sien))\b",
    rf"\b({_FIREARM})\b[^|]{{0,40}}(\| [^|]{{0,20}})?\b(safety of|sin el seguro|le saque el seguro|sem trava)\b",
    r"\b(pies|piernas|feet|legs|pernas|pes) (para afuera|afuera|out|outside|pra fora|colgando|hanging)\b[^|]{0,40}"
    r"\b(ventana|window|sill|cornisa|ledge|baranda|railing|piso|floors|andar)\b",
    r"\b(ventana|window|sill|cornisa|ledge|baranda|railing|floors up|pisos)\b[^|]{0,40}\b(pies|piernas|feet|legs"
    r"|pernas|pes) (para afuera|afuera|out|outside|pra fora|colgando|hanging)\b",
    # Bleeding that will not stop, everywhere, a cut too deep.
    r"\b(sangre|sangue|blood)\b[^|]{0,20}\b(no para|no se detiene|nao para|wont stop|will not stop"
    r"|doesnt stop|isnt stopping|is not stopping|everywhere|por todos lados|por todas partes"
    r"|pra todo lado)\b",
    r"\b(cant|can not|no puedo|nao consigo|no consigo) (stop|parar|detener|frenar) (the |la |a |o )?"
    r"(bleeding|sangre|sangue|sangramento|hemorragia)\b",
    r"\b(corte|cut|cortei|tajo|herida|wound) (es |is |its |esta |ta |e |fue )?(muy |re |bien |to |so"
    r" |very |demasiado |mui |muito )(profundo|profunda|hondo|honda|deep|dep|fundo|funda)\b",
    r"\bcut (to|so) dep\b",
    r"\b(i am |im )?bleeding (out|a lot|so much|everywhere|badly|heavily)\b",
    r"\b(sangrando|sangra) (muchisimo|un monton|por todos lados|muito|sem parar|sin parar)\b",
)
