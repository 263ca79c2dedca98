"""
Message text encrypted at rest: AES-256-GCM from the ``cryptography`` package.

The keys come from the variable named by ``storage.encryption_key_env`` (``Config.storage_key``):
comma-separated, each 32 random bytes in URL-safe base64 (:func:`parse_keys`). The first key
encrypts; every key decrypts, which is how keys are rotated (docs/operations.md).
A sealed text is ``key id (8 bytes) | nonce (12 bytes) | ciphertext+tag``; the key id is the
first 8 bytes of HMAC-SHA256(key, "psicoia storage key id"), so the database can tell at start
whether it holds text under a key that is not configured (a wrong key) without decrypting
anything. The conversation id is the associated data: a sealed text moved to another
conversation does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Optional, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from psicoia.config import ConfigError

KEY_ID_BYTES = 8
NONCE_BYTES = 12
KEY_HOWTO = ('python3 -c "import base64,secrets; '
             'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"')


class WrongKey(ConfigError):
    """The stored data needs a key that is not configured: the server must not start."""


class UnreadableText(Exception):
    """A sealed text did not open (tampered, or under another key)."""


def parse_keys(env_name: str, raw: Optional[str]) -> tuple[bytes, ...]:
    """The keys in ``raw`` (the variable ``env_name``'s value; None or empty: no encryption),
    32 bytes each. Raises ConfigError (one line naming the variable, never showing a key)
    for anything else, so the server stops at start like for a config error."""
    keys = []
    for position, part in enumerate(filter(None, map(str.strip, (raw or "").split(","))), 1):
        try:
            key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            canonical = base64.urlsafe_b64encode(key).decode().rstrip("=") == part.rstrip("=")
        except (ValueError, binascii.Error):
            key, canonical = b"", False
        if len(key) != 32 or not canonical:
            raise ConfigError(
                f"{env_name} (storage.encryption_key_env): key {position} must be 32 random "
                f"bytes in URL-safe base64 (44 characters), as printed by: {KEY_HOWTO}")
        keys.append(key)
    return tuple(keys)


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
