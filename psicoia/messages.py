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
)
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
SERVER_FULL = "Ahora estoy acompañando a muchas personas. Probá de nuevo en unos minutos, por favor."
TOO_MANY_FROM_ADDRESS = (
    "Hay demasiadas conexiones abiertas desde tu red. Cerrá alguna y volvé a intentar."
)
IDLE_TIMEOUT = "Cierro la charla porque pasó un buen rato sin mensajes. Cuando quieras, volvé."
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
ERROR = "Uy, algo falló de mi lado. Probá escribirme de nuevo, por favor."

# --- Transport-specific notices. ---
BINARY_FRAME = "Solo puedo leer mensajes de texto. Escribime con palabras, por favor."
