"""twistd plugins for PsicoIA; they name modules and import nothing heavy."""

from twisted.application.service import ServiceMaker

psicoia = ServiceMaker(
    "PsicoIA",
    "psicoia.tap",
    "Emotional-support chat server (TCP line protocol, WebSocket, web page).",
    "psicoia",
)
