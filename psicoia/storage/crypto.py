"""
Message text encrypted at rest: AES-256-GCM from the ``cryptography`` package.

The keys come decoded from the configuration (``Config.storage_keys``: 32 bytes each). The
first key encrypts; every key decrypts, which is how keys are rotated (docs/operations.md).
A sealed text is ``key id (8 bytes) | nonce (12 bytes) | ciphertext+tag``; the key id is the
first 8 bytes of HMAC-SHA256(key, "psicoia storage key id"), so the database can tell at start
whether it holds text under a key that is not configured (a wrong key) without decrypting
anything. The conversation id is the associated data: a sealed text moved to another
conversation does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from psicoia.config import ConfigError

KEY_ID_BYTES = 8
NONCE_BYTES = 12


class WrongKey(ConfigError):
    """The stored data needs a key that is not configured: the server must not start."""


class UnreadableText(Exception):
    """A sealed text did not open (tampered, or under another key)."""


def key_id(key: bytes) -> bytes:
    """The public 8-byte identifier of ``key`` (safe to store next to the data)."""
    return hmac.new(key, b"psicoia storage key id", hashlib.sha256).digest()[:KEY_ID_BYTES]


class TextCipher:
    """Seals and opens message text with the configured keys (first one seals)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("TextCipher needs at least one key")
        self._aeads = {key_id(k): AESGCM(k) for k in keys}
        self.current_id = key_id(keys[0])
        self._current = self._aeads[self.current_id]

    @property
    def key_ids(self) -> frozenset[bytes]:
        return frozenset(self._aeads)

    def seal(self, text: str, context: str) -> bytes:
        """Encrypt ``text`` bound to ``context`` (the conversation id); returns bytes."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, text.encode("utf-8"), context.encode("utf-8"))
        return self.current_id + nonce + sealed

    def open(self, blob: bytes, context: str) -> str:
        """Decrypt what :meth:`seal` returned; raises UnreadableText."""
        aead = self._aeads.get(bytes(blob[:KEY_ID_BYTES]))
        if aead is None:
            raise UnreadableText("sealed under a key that is not configured")
        nonce = bytes(blob[KEY_ID_BYTES:KEY_ID_BYTES + NONCE_BYTES])
        try:
            plain = aead.decrypt(nonce, bytes(blob[KEY_ID_BYTES + NONCE_BYTES:]),
                                 context.encode("utf-8"))
        except InvalidTag:
            raise UnreadableText("authentication failed") from None
        return plain.decode("utf-8")
