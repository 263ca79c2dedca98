"""twistd plugins for PsicoIA; they name modules and import nothing heavy."""

from twisted.application.service import ServiceMaker

psicoia = ServiceMaker(
    "PsicoIA",
    "psicoia.app.tap",
    "Emotional-support chat server (TCP line protocol, WebSocket, web page).",
    "psicoia",
)

psicoia_gateway = ServiceMaker(
    "PsicoIA gateway",
    "psicoia.app.gateway_tap",
    "The chat page and WebSocket only, each browser bridged to a PsicoIA server over TCP.",
    "psicoia-gateway",
)
