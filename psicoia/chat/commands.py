"""
What a user can type besides a message: ``salir`` and the slash commands.

Parsing only; the session carries them out (they change its conversation). Commands are never
rate limited and never reach the model.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

GOODBYE = "salir"
HELP = "/ayuda"
RESOURCES = "/recursos"
RESET = "/reset"
RESUME = "/retomar"
FORGET = "/olvidar"
UNKNOWN = "/"

# Commands that take no argument.
_PLAIN = frozenset({HELP, RESOURCES, RESET, FORGET})


class Command(NamedTuple):
    """A parsed command: ``name`` is one of the constants above; ``argument`` what follows."""

    name: str
    argument: str = ""


def is_goodbye(text: str) -> bool:
    """The user's way out: "salir", in any case, surrounding spaces ignored."""
    return text.strip().lower() == GOODBYE


def parse(text: str) -> Optional[Command]:
    """The command in ``text``, ``Command(UNKNOWN)`` for an unknown one, None for a message.

    A message that starts with "/" and has no space is a command; ``/retomar`` takes the code
    after it (``/retomar ABCDE-FGHJK``).
    """
    stripped = text.strip()
    if stripped.lower() == GOODBYE:
        return Command(GOODBYE)
    if not stripped.startswith("/"):
        return None
    word, _, rest = stripped.partition(" ")
    word = word.lower()
    if word == RESUME:
        return Command(RESUME, rest.strip())
    if rest.strip():
        return None  # "/ a veces pienso..." is a message, not a command
    return Command(word if word in _PLAIN else UNKNOWN)
