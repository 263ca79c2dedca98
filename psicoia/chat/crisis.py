"""
The crisis layer's policy: which tier a message gets, and what that tier adds to its reply
(docs/safety.md). Pure policy: no I/O, no logging.

The session (psicoia/chat/session.py) calls :meth:`CrisisLayer.check` when a message arrives,
before any limit can answer for it, with the conversation's :class:`RiskState`, and passes every
reply to that message through :meth:`CrisisLayer.decorate`, whatever path it took (model,
offline companion, busy, rate limited, failure). If the model's second opinion
(psicoia/chat/second_opinion.py) finds a tier the rules did not, :func:`most_urgent` of the
two is the one to decorate with: the model can add resources, never remove them.

What each tier adds (texts in psicoia/texts.py, resources in the ``safety`` configuration):

=============  =====================================================================
``acute``      the emergency numbers FIRST, asking to call now; then the reply
``risk``       the reply (the support line if the model could not answer), then the
               crisis lines
``third_party`` the reply, then how to help the other person and the lines
``help``       the reply (a short acknowledgement if offline), then where a person
               answers
=============  =====================================================================

After ``acute``, ``risk`` or ``third_party``, the next ``safety.reminder_turns`` replies end
with a short reminder (the count lives in the state, so it survives reconnects).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from psicoia import texts
from psicoia.chat.detector import TIERS, RiskState, assess
from psicoia.chat.detector.learned import default_model
from psicoia.chat.vocabulary import Kind, Reply
from psicoia.config import SafetyConfig
from psicoia.ops.instruments import Instruments

# Tiers that are about a life at risk (counted as detections, start the reminders).
CRISIS_TIERS = ("acute", "risk", "third_party")
# Outcomes whose text is a real answer to the message; any other (busy, rate limited, error,
# shutting down) is replaced, so a person at risk never gets only "busy".
# The offline companion never answers a message with a tier: the support line does.
_ANSWERS = (Kind.ANSWERED,)


def most_urgent(*tiers: Optional[str]) -> Optional[str]:
    """The most urgent of ``tiers`` (TIERS order: acute, risk, third_party, help), or None."""
    for tier in TIERS:
        if tier in tiers:
            return tier
    return None


# The line that replaces a non-answer, by tier; CRISIS_SUPPORT ("¿Estás a salvo?") otherwise:
# it speaks to the writer as the one at risk, wrong for someone asking about another person.
_SUPPORT = {"help": texts.CRISIS_HELP_SUPPORT, "third_party": texts.CRISIS_THIRD_PARTY_SUPPORT}


class CrisisLayer:
    """The crisis layer for one server: ``CrisisLayer(safety_config, instruments)``."""

    def __init__(self, config: SafetyConfig, instruments: Optional[Instruments] = None) -> None:
        self.config = config
        self.instruments = instruments or Instruments()
        self._lines = {
            "acute": config.acute_resources,
            "risk": config.resources,
            "third_party": config.third_party_resources,
            "help": config.help_resources,
        }
        # Read the shipped model now, when the server starts: read at the first message it
        # delayed that person's reply by about 20 ms (a 0.5 MB file parsed).
        default_model()

    # --- arrival -----------------------------------------------------------------------

    def check(self, state: RiskState, text: str, transport: str = "unknown") -> Optional[str]:
        """Read an arriving message as the next turn of its conversation.

        Returns the tier ("acute", "risk", "third_party", "help") or None; updates ``state``
        (numbers only) and counts a detection of a crisis tier in the instruments, labelled by
        transport only: never the text, the tier or who sent it.
        """
        tier = assess(text, state).tier
        if tier in CRISIS_TIERS:
            self.instruments.crisis_detected(transport)
        return tier

    @staticmethod
    def confirm(state: RiskState, tier: Optional[str]) -> None:
        """Tell the state about a tier found later (the model's second opinion), so the next
        turns read with the same alert as if the rules had found it."""
        if tier in ("acute", "risk"):
            state.alert = 1.0

    # --- the reply ---------------------------------------------------------------------

    def resources(self, tier: str) -> tuple:
        """The configured resources of ``tier`` (``"label: number"`` lines), for the reply's
        ``resources`` (the transports turn them into ``tel:`` links)."""
        return tuple(self._lines[tier])

    def resources_text(self, tier: str = "risk") -> str:
        """The resources of ``tier`` as one line ("a; b; c")."""
        return "; ".join(self._lines[tier])

    def lead(self, tier: Optional[str]) -> Optional[str]:
        """What comes before the model's words in a reply to a message of ``tier``: for
        "acute" the emergency line (a streamed reply shows it first, before the model says
        anything: session.py), else None."""
        if tier != "acute":
            return None
        return texts.CRISIS_ACUTE.format(resources=self.resources_text(tier))

    def decorate(self, reply: Reply, state: RiskState, tier: Optional[str]) -> Reply:
        """The crisis layer's last word on ``reply`` to a message of ``tier`` (None: no tier).

        With a tier, the reply gets that tier's resources (see the module docstring) and
        ``crisis``/``tier`` set; a reply that is not an answer (busy, rate limited, error...)
        is replaced by the support line, so the resources never come alone with "busy". Without
        one, a reply in the reminder window after a crisis gets the short reminder (the
        resources in full if it closes the connection). Commands neither carry nor spend a
        reminder; an empty reply (the user left) is returned as is.
        """
        if not reply.text:
            return reply
        if tier is None:
            return self._remind(reply, state)
        if tier in CRISIS_TIERS:
            state.reminders_left = self.config.reminder_turns
        text = reply.text
        if reply.outcome not in _ANSWERS:
            text = _SUPPORT.get(tier, texts.CRISIS_SUPPORT)
        lines = self.resources_text(tier)
        if tier == "acute":
            text = f"{self.lead(tier)} {text}"
        elif tier == "risk":
            text = f"{text} {texts.CRISIS_RESOURCES.format(resources=lines)}"
        elif tier == "third_party":
            text = f"{text} {texts.CRISIS_THIRD_PARTY.format(resources=lines)}"
        else:
            text = f"{text} {texts.CRISIS_HELP.format(resources=lines)}"
        return replace(reply, text=text, crisis=True, tier=tier, resources=self.resources(tier))

    def _remind(self, reply: Reply, state: RiskState) -> Reply:
        if state.reminders_left <= 0 or reply.outcome == Kind.COMMAND:
            return reply
        state.reminders_left -= 1
        if reply.close:
            extra = texts.CRISIS_RESOURCES.format(resources=self.resources_text("risk"))
        else:
            extra = texts.CRISIS_REMINDER
        return replace(reply, text=f"{reply.text} {extra}")
