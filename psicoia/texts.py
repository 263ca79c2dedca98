"""
Every sentence a user can see, in one place, so a deployment can reword them.

Spanish, rioplatense, warm and short. Each is a single line (the line protocol forbids line
breaks inside a reply). Placeholders use ``str.format`` names.
"""

# --- Greeting (TCP and WebSocket). First line fixed by the contract; last one names "salir". ---
GREETING_FIRST = "Usuario-{number} conectado."
GREETING_BODY = (
    "Hola, soy PsicoIA, un asistente automático de apoyo emocional: "
    "no soy una persona ni un profesional de la salud.",
    "Contame qué te está pasando, con tus palabras y a tu ritmo. Te leo.",
    "Comandos: /ayuda para ver opciones, /recursos para líneas de ayuda, /reset para empezar de cero, "
    "/olvidar para borrar esta charla.",
)
# The greeting's line before the last: how to continue this conversation on another connection.
GREETING_RESUME = "Para retomar esta charla más tarde o desde otro lado, escribí: /retomar {code}"
GREETING_LAST = "Cuando quieras irte, escribí salir."

GOODBYE = "Gracias por charlar conmigo. Cuidate mucho, ¡hasta pronto!"

# --- Notices about limits. ---
RATE_LIMITED = (
    "Vamos más despacio: mandaste muchos mensajes seguidos. "
    "Esperá unos {seconds} segundos y seguimos charlando."
)
BUSY = (
    "Ahora hay mucha gente hablando conmigo y no llego a responderte. "
    "Dame un ratito y volvé a escribirme, por favor."
)
TOO_LONG = (
    "Tu mensaje es muy largo para mí (el máximo es {limit} bytes). "
    "¿Me lo contás en partes más cortas?"
)
FLOODING = (
    "Estás mandando muchísimos mensajes seguidos y no puedo leerlos así, así que cierro esta "
    "conexión. Cuando quieras, volvé a escribirme con calma."
)
SERVER_FULL = "Ahora estoy acompañando a muchas personas. Probá de nuevo en unos minutos, por favor."
TOO_MANY_FROM_ADDRESS = (
    "Hay demasiadas conexiones abiertas desde tu red. Cerrá alguna y volvé a intentar."
)
IDLE_TIMEOUT = "Cierro la charla porque pasó un buen rato sin mensajes. Cuando quieras, volvé."
# The same on TCP (a terminal keeps no resume code; the greeting's line may be long gone).
IDLE_TIMEOUT_RESUME = (
    "Cierro la charla porque pasó un buen rato sin mensajes. Cuando quieras, volvé: "
    "escribí /retomar {code} y seguimos donde quedamos."
)
SHUTTING_DOWN = (
    "El servicio se está cerrando por mantenimiento. Si esperabas una respuesta, "
    "te la mando si llego. Gracias por tu paciencia; volvé en un rato."
)

# --- When the model cannot answer. ---
OFFLINE = (
    "Ahora estoy funcionando en modo limitado, sin mi modelo de lenguaje, pero sigo acá para "
    "escucharte. ¿Querés contarme un poco más?"
)
FALLBACK = (
    "Perdón, tuve un problema para pensar mi respuesta. Sigo acá: "
    "¿me lo contás de nuevo en un ratito?"
)
# A streamed reply that stopped half-way: said after the words that did arrive.
REPLY_CUT = "(Perdón, se me cortó la respuesta a la mitad. ¿Me lo repetís o seguimos desde acá?)"
ERROR = "Uy, algo falló de mi lado. Probá escribirme de nuevo, por favor."

# --- Transport-specific notices. ---
BINARY_FRAME = "Solo puedo leer mensajes de texto. Escribime con palabras, por favor."
BAD_REQUEST = "No entendí ese mensaje de la página. Probá escribirlo de nuevo, por favor."

# --- Gateway mode (a browser bridged to the chat server over TCP). ---
UPSTREAM_DOWN = (
    "No puedo conectarme con el servidor del chat en este momento. "
    "Vuelvo a intentar en unos segundos; gracias por la paciencia."
)
UPSTREAM_LOST = (
    "Se cortó la conexión con el servidor del chat. "
    "Vuelvo a intentar en unos segundos; si esperabas una respuesta, mandame tu mensaje de nuevo."
)

# =============================================================================================
# --- Safety (psicoia/safety.py, docs/safety.md): crisis resources and commands. ---
# The resource list itself is configuration (safety.resources in config.yaml); these are the
# defaults. Keep each entry free of commas: PSICOIA_SAFETY_RESOURCES splits on them.
CRISIS_RESOURCES_DEFAULT = (
    "Argentina: Centro de Asistencia al Suicida 135 (desde CABA y Gran Buenos Aires) "
    "o (011) 5275-1135 (desde el resto del país)",
    "Argentina: Línea de Salud Mental 0800-999-0091",
    "España: 024",
    "Emergencias: 911 (Argentina) o 112 (España y Europa)",
)
# Tier "acute" (an act in progress or done): emergency numbers, shown first. The first entry
# is the one the reply asks to call now.
ACUTE_RESOURCES_DEFAULT = (
    "Emergencias Argentina: 911",
    "SAME (emergencias médicas CABA): 107",
    "Emergencias España: 112",
)
# Tier "third_party" (someone else at risk).
THIRD_PARTY_RESOURCES_DEFAULT = (
    "Emergencias: 911 (Argentina) o 112 (España)",
    "Argentina: Centro de Asistencia al Suicida 135 o (011) 5275-1135",
    "Argentina: Línea de Salud Mental 0800-999-0091",
    "España: 024",
)
# Tier "help" (asks for a person): lines where a person answers.
HELP_RESOURCES_DEFAULT = (
    "Argentina: Centro de Asistencia al Suicida 135 o (011) 5275-1135",
    "Argentina: Línea de Salud Mental 0800-999-0091",
    "España: 024",
    "Emergencias: 911 (Argentina) o 112 (España)",
)
# Tier "acute", first in the reply: the first acute resource is {first}.
CRISIS_ACUTE = (
    "Esto es una emergencia y tu vida importa: llamá ahora mismo a {resources}. "
    "Si hay alguien cerca, avisale ya y no te quedes sin compañía."
)
# Tier "third_party", after the reply: how to help, then the lines.
CRISIS_THIRD_PARTY = (
    "Gracias por cuidar a esa persona. Si corre peligro ahora, llamá a emergencias. "
    "Quedate cerca, escuchala sin juzgar, preguntale directo si piensa hacerse daño "
    "y acompañala a pedir ayuda: {resources}."
)
# Tier "help", after the reply (or instead of an offline one): a person, now.
CRISIS_HELP = (
    "Soy un asistente automático, no una persona. Para hablar ahora con alguien de verdad: "
    "{resources}. Del otro lado te atiende una persona."
)
# Said instead of an offline or failed reply to someone asking for a person.
CRISIS_HELP_SUPPORT = "Te entiendo, y está muy bien pedir ayuda."
# Instead of a non-answer (offline, busy...) to someone worried about another person.
CRISIS_THIRD_PARTY_SUPPORT = "Qué bueno que me lo cuentes; acompañar a alguien así pesa mucho."
# Appended to every reply to a message at risk, whatever else happened to it.
CRISIS_RESOURCES = (
    "Si sentís que podés hacerte daño, pedí ayuda ahora; no tenés que pasar por esto en soledad: "
    "{resources}."
)
# Said instead of the model's words when the model cannot answer a message at risk (offline,
# failing, busy, rate limited, shutting down): never only "too many messages" or "busy".
CRISIS_SUPPORT = (
    "Gracias por contarme esto; lo que sentís importa mucho y merecés que te acompañen ahora mismo. "
    "¿Estás a salvo en este momento? Si podés, escribile o llamá a alguien de confianza."
)
# Added to the next few replies after a message at risk (safety.reminder_turns).
CRISIS_REMINDER = "Si lo necesitás, las líneas de ayuda siguen ahí: escribí /recursos para verlas."
RESOURCES_REPLY = "Líneas de ayuda: {resources}. Del otro lado te atiende una persona."

# Commands (both transports), listed in GREETING_BODY above; that line must not contain the
# word that ends the chat, since clients read the greeting up to the line that has it.
HELP = (
    "Podés escribir /recursos (líneas de ayuda en crisis), /reset (olvido lo que charlamos "
    "hasta ahora), /retomar CÓDIGO (seguir una charla anterior), /olvidar (borrar esta charla "
    "de mi memoria), /ayuda (este mensaje) o salir (terminar la charla)."
)
RESET_DONE = "Listo, borré lo que veníamos charlando. Empezamos de nuevo cuando quieras."
UNKNOWN_COMMAND = "No conozco ese comando. Escribí /ayuda para ver los que hay."

# --- Conversations that survive: /retomar and /olvidar (docs/protocol.md). ---
RESUMED = "Seguimos nuestra charla, Usuario-{number}. Me acuerdo de lo que hablamos; te leo."
RESUME_SAME = "Ya estamos en esa charla. Te leo."
RESUME_UNKNOWN = (
    "No encontré una charla con ese código: quizás venció o se borró. Seguimos con esta, "
    "acá estoy."
)
RESUME_USAGE = "Para retomar una charla escribí /retomar y el código que te di, por ejemplo /retomar ABCDE-FGHJK."
RESUME_SLOW_DOWN = (
    "Probaste varios códigos que no encontré. Esperá un minuto y volvé a intentar, por favor."
)
TAKEN_OVER = "Esta charla siguió en otra conexión, así que cierro esta. Cuidate mucho."
FORGOTTEN = (
    "Listo, borré esta charla por completo. Si querés seguir, empezamos una nueva: sos "
    "Usuario-{number} y para retomarla escribí /retomar {code}"
)

# --- The web site's own answers (psicoia/transports/http.py, static.py): short pages, no chat. ---
PAGE_NOT_FOUND_TITLE = "No encontramos esta página"
PAGE_NOT_FOUND = "Esta dirección no existe, pero el chat sigue acá."
PAGE_NOT_FOUND_LINK = "Volver al chat"
HTTP_BAD_REQUEST = "No entendimos ese pedido. Revisá la dirección y probá de nuevo."
HTTP_METHOD_NOT_ALLOWED = "Este sitio solo se puede mirar: no recibe envíos."
HTTP_FORBIDDEN = "Esta página no está disponible desde tu red."
HTTP_BODY_TOO_LARGE = "Lo que mandaste es demasiado grande para este sitio (el máximo es {limit} bytes)."
HTTP_TIMEOUT = "El pedido tardó demasiado en llegar. Probá de nuevo, por favor."

# =============================================================================================
# --- COMPANION: the offline, rule-based companion (psicoia/companion.py). ---
# Used when the model cannot answer (no key, breaker open, retries exhausted). Rogerian style:
# reflect, validate, at most one grounding idea, one open question. Keys are theme names;
# None is "no theme recognised". Gender-neutral wording on purpose: we do not know who writes.
COMPANION_LIMITED = (
    "Te cuento con honestidad: ahora estoy en modo limitado, sin mi modelo de lenguaje, así que "
    "mis respuestas son más simples, pero te sigo leyendo."
)
COMPANION_THEMES = {
    "ansiedad": "la ansiedad y el estrés",
    "tristeza": "la tristeza",
    "soledad": "la soledad",
    "apoyo": "la gente que tenés cerca",
    "esperanza": "las ganas y la motivación",
    "sueno": "el sueño y el descanso",
    "trabajo": "el trabajo y el estudio",
}
# The companion's next reply after a message that got crisis resources, when the person's
# new message names no theme of its own ("gracias, ya llamé"): a check-in, not the old topic.
COMPANION_AFTER_CRISIS = (
    "Gracias por seguir escribiéndome. ¿Cómo estás ahora mismo? ¿Hay alguien con vos?",
    "Acá sigo, con vos. ¿Cómo te sentís en este momento? ¿Pudiste hablar con alguien?",
    "Me alegra que sigas acá. ¿Estás a salvo ahora? Contame cómo estás.",
)
# {reflection} is the user's own words with the pronouns turned to "vos".
COMPANION_REFLECT = (
    "Decís que {reflection}.",
    "Decís que {reflection}, ¿es así?",
    "Si te entiendo bien, {reflection}.",
    "Me contás que {reflection}.",
)
COMPANION_CONTINUE = (
    "Sigo pensando en lo que me contabas sobre {theme}.",
    "Volviendo a {theme}, que me contabas antes.",
    "Me quedé con lo que me dijiste de {theme}.",
)
COMPANION_VALIDATE = {
    "ansiedad": (
        "Tiene mucho sentido sentir tanta tensión con todo eso encima.",
        "La ansiedad cansa muchísimo, y se nota que la venís remando.",
        "Es muy entendible que te sientas con la cabeza a mil.",
    ),
    "tristeza": (
        "Lo que sentís es válido, y está bien no estar bien.",
        "Se nota que es algo que te pesa mucho.",
        "Gracias por animarte a poner en palabras algo tan triste.",
    ),
    "soledad": (
        "Sentir soledad duele de verdad, y me alegra que me lo cuentes.",
        "La soledad pesa, y tiene sentido que te afecte así.",
        "Tiene sentido que te haga falta compañía.",
    ),
    "apoyo": (
        "Los vínculos importan mucho, y se nota que esto te mueve.",
        "Es entendible que lo que pasa con tu gente te afecte tanto.",
        "Qué valioso que pienses en las personas que te rodean.",
    ),
    "esperanza": (
        "Perder las ganas por un tiempo le pasa a mucha gente, y no dice nada malo de vos.",
        "Se nota que estás buscando un poco de fuerza, y eso ya es un paso.",
        "Es muy valioso que sigas buscando algo que te dé ganas.",
    ),
    "sueno": (
        "Dormir mal hace que todo cueste el doble; tiene sentido que estés sin energía.",
        "El cansancio acumulado pesa un montón.",
        "Es muy entendible que el descanso te esté haciendo falta.",
    ),
    "trabajo": (
        "La presión del trabajo o del estudio puede ser enorme, y se nota que la sentís.",
        "Tiene sentido que eso te tenga sin resto.",
        "Es mucho para sostener, y lo estás intentando.",
    ),
    None: (
        "Gracias por contármelo.",
        "Te leo con atención.",
        "Está bien tomarte tu tiempo para contarlo.",
        "Lo que te pasa me importa.",
    ),
}
COMPANION_GROUNDING = {
    "ansiedad": (
        "Si querés, probemos algo corto: inhalá contando 4, sostené 4, exhalá en 4 y esperá 4; repetilo cuatro veces.",
        "Una idea para bajar un cambio: nombrá 5 cosas que ves, 4 que podés tocar, 3 que escuchás, 2 que olés y 1 que saboreás.",
        "Probá apoyar bien los pies en el piso y notar durante un minuto el peso de tu cuerpo en la silla.",
    ),
    "tristeza": (
        "A veces ayuda algo chiquito: un vaso de agua, abrir la ventana o una ducha tibia.",
        "Si te sirve, escribí en un papel lo que sentís, sin corregir nada, aunque sean tres líneas.",
        "Una idea: salí cinco minutos a caminar o a mirar el cielo, sin exigirte nada más.",
    ),
    "soledad": (
        "Una idea: mandale un mensaje corto a alguien con quien te sientas cómodo o cómoda, aunque sea un saludo.",
        "Si te sirve, pensá en un lugar donde haya gente con tus mismos intereses: un taller, un club, una biblioteca.",
    ),
    "apoyo": (
        "Podrías pensar en una persona con la que te sientas en confianza y contarle aunque sea una parte de esto.",
        "Una idea: anotá quiénes te hicieron bien alguna vez; a veces la lista es más larga de lo que parece.",
    ),
    "esperanza": (
        "Una idea: elegí una sola cosa pequeña para hoy, algo que puedas terminar en diez minutos.",
        "Probá anotar una cosa, por mínima que sea, que hoy salió un poco mejor.",
    ),
    "sueno": (
        "Para esta noche: dejá el celular un rato antes de acostarte y probá respirar 4-4-4-4 ya en la cama.",
        "Si te despertás y no podés dormir, levantarte un ratito con luz baja y volver cuando tengas sueño suele ayudar.",
    ),
    "trabajo": (
        "Una idea: partí la tarea en un paso tan chico que puedas hacerlo en cinco minutos, y empezá solo por ese.",
        "Probá trabajar 25 minutos y cortar 5 para moverte o tomar agua.",
    ),
    None: (
        "Si querés, probemos respirar juntos: inhalá en 4, sostené 4, exhalá en 4 y esperá 4.",
        "Una idea para anclarte: nombrá 5 cosas que ves, 4 que podés tocar, 3 que escuchás, 2 que olés y 1 que saboreás.",
    ),
}
COMPANION_QUESTIONS = {
    "ansiedad": (
        "¿Qué es lo que más te preocupa en este momento?",
        "¿En qué parte del cuerpo sentís esa tensión?",
        "¿Cuándo empezaste a sentirte así?",
    ),
    "tristeza": (
        "¿Qué es lo que más te pesa hoy?",
        "¿Desde cuándo te sentís así?",
        "¿Hay algo que antes te hacía bien y ahora extrañás?",
    ),
    "soledad": (
        "¿Con quién te gustaría poder hablar más?",
        "¿En qué momentos del día se siente más esa soledad?",
        "¿Qué te ayudaba a sentirte en compañía en otras épocas?",
    ),
    "apoyo": (
        "¿Quién de tu entorno sabe lo que estás pasando?",
        "¿Cómo te gustaría que te acompañen?",
        "¿Con quién te sentís en confianza?",
    ),
    "esperanza": (
        "¿Qué te daba ganas antes, aunque sea un poquito?",
        "¿Qué pequeño cambio te gustaría ver en tu semana?",
        "¿Qué te ayudó a seguir en otros momentos difíciles?",
    ),
    "sueno": (
        "¿Cómo vienen siendo tus noches últimamente?",
        "¿Qué te da vueltas en la cabeza cuando te acostás?",
        "¿Qué solés hacer antes de dormir?",
    ),
    "trabajo": (
        "¿Qué parte de todo eso te pesa más?",
        "¿Qué necesitarías para que sea un poco más llevadero?",
        "¿Cómo te estás organizando con todo eso?",
    ),
    None: (
        "¿Querés contarme un poco más?",
        "¿Cómo te sentís ahora mismo?",
        "¿Qué te gustaría que cambie?",
        "¿Qué fue lo más difícil de tu día?",
    ),
}

# =============================================================================================
# --- The notices by kind (the values of psicoia.chat.vocabulary.Kind), one table: the gateway
# reads the core's lines back into kinds with it (psicoia/app/gateway.py). A kind may have
# several texts; the first that matches wins.
NOTICES = (
    ("goodbye", GOODBYE),
    ("rate_limited", RATE_LIMITED),
    ("rate_limited", FLOODING),
    ("busy", BUSY),
    ("too_long", TOO_LONG),
    ("offline", OFFLINE),
    ("fallback", FALLBACK),
    ("shutting_down", SHUTTING_DOWN),
    ("error", ERROR),
    ("idle_timeout", IDLE_TIMEOUT),
    ("server_full", SERVER_FULL),
    ("per_address", TOO_MANY_FROM_ADDRESS),
    ("taken_over", TAKEN_OVER),
    # The model did not answer a message at risk (offline, failed, busy...): the support line;
    # the resources follow it.
    ("fallback", CRISIS_SUPPORT),
    ("command", HELP),
    ("command", RESOURCES_REPLY),
    ("command", RESET_DONE),
    ("command", UNKNOWN_COMMAND),
    ("command", RESUMED),
    ("command", RESUME_SAME),
    ("command", RESUME_UNKNOWN),
    ("command", RESUME_USAGE),
    ("command", RESUME_SLOW_DOWN),
    ("command", FORGOTTEN),
)
