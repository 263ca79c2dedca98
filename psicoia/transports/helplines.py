"""
Helplines as the page shows them: each configured entry with its phone numbers marked, so a
person on a phone can tap to call (``tel:`` links) instead of copying digits.

An entry is a configured string such as ``"Argentina: Línea de Salud Mental 0800-999-0091"``
(config ``safety.*resources``). Numbers are runs of digits with the separators people write
(spaces, dashes, dots, parentheses), at least three digits long.
"""

from __future__ import annotations

import re
from typing import Iterable

_PHONE = re.compile(r"\+?\(?\d[\d\s().-]*\d")


def phones_in(entry: str) -> list[dict]:
    """``[{"shown": "(011) 5275-1135", "tel": "01152751135"}, ...]`` in order of appearance."""
    found = []
    for match in _PHONE.finditer(entry):
        shown = match.group(0).strip()
        digits = re.sub(r"[^\d+]", "", shown)
        if len(digits.lstrip("+")) >= 3:
            found.append({"shown": shown, "tel": digits})
    return found


def helplines(entries: Iterable[str]) -> list[dict]:
    """``[{"text": entry, "phones": phones_in(entry)}, ...]`` for the JSON events."""
    return [{"text": entry, "phones": phones_in(entry)} for entry in entries]
