"""
Resume codes: what a person copies by hand to continue a conversation elsewhere.

Ten characters of Crockford's base32 (no I, L, O or U), shown as ``XXXXX-XXXXX``: 50 bits of
randomness from ``secrets``. Case, spaces and dashes do not matter when typed back, and the
letters people confuse with digits (O, I, L) read as the digits. Only a SHA-256 hash of the
normalised code is ever stored.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Optional

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code, e.g. ``"7QK2M-XH4TD"``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize(typed: str) -> Optional[str]:
    """The canonical form of a typed code (10 characters, no dash), or None if it is not one."""
    cleaned = "".join(typed.split()).replace("-", "").upper().translate(_CONFUSED)
    if len(cleaned) != LENGTH or any(char not in ALPHABET for char in cleaned):
        return None
    return cleaned


def display(code: str) -> str:
    """A code as people see it (``XXXXX-XXXXX``), from any typed form of it."""
    canonical = normalize(code) or code
    return f"{canonical[:5]}-{canonical[5:]}" if len(canonical) == LENGTH else canonical


def hash_code(code: str) -> bytes:
    """The stored form of a code (typed or fresh); raises ValueError for a malformed one."""
    canonical = normalize(code)
    if canonical is None:
        raise ValueError("not a resume code")
    return hashlib.sha256(canonical.encode("ascii")).digest()
