"""Secrets at rest: AES-256-GCM for values the API must give back, SHA-256 for bearer codes.

The key is 32 random bytes (store/keys.py: the data dir's `secret.key`, or base64 in
SIPLINE_SECRET_KEY). Ciphertext layout: version byte ‖ 12-byte nonce ‖ AES-GCM(ciphertext ‖ tag).
Version 2 binds each value to its place: the associated data (authenticated, not encrypted)
names the table, column and row id, so a ciphertext copied into another row or column does not
open. Version 1 (before migration 0009) had no associated data; only that migration opens it.
Webhook codes and tokens are random with ≥ 120 bits of entropy, so a plain SHA-256 is a sufficient
one-way hash (no password stretching).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
_UNBOUND = b"\x01"
_BOUND = b"\x02"
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit nonces from a CSPRNG


class KeyMaterialError(ValueError):
    """The key material is missing, malformed, or does not open stored data."""


class Cell(NamedTuple):
    """Where a sealed value lives: it opens only there."""

    table: str
    column: str
    row_id: int

    def associated_data(self) -> bytes:
        return _BOUND + f"sipline:{self.table}.{self.column}:{self.row_id}".encode()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyMaterialError("the secret key must be 32 bytes")
        self._key = key
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, cell: Cell) -> bytes:
        return self._seal(plaintext, _BOUND, cell.associated_data())

    def seal_unbound(self, plaintext: str) -> bytes:
        """The layout before migration 0009, for its downgrade."""
        return self._seal(plaintext, _UNBOUND, None)

    def _seal(self, plaintext: str, version: bytes, associated_data: bytes | None) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return version + nonce + self._aead.encrypt(nonce, plaintext.encode(), associated_data)

    def derive(self, label: bytes) -> bytes:
        """A 32-byte key of its own for another use, named by `label` (SHA-256 of label ‖ key)."""
        return hashlib.sha256(label + self._key).digest()

    def open(self, sealed: bytes, cell: Cell) -> str:
        """Raises: KeyMaterialError when the data was sealed with another key, for another cell,
        or is damaged."""
        return self._open(sealed, _BOUND, cell.associated_data())

    def open_unbound(self, sealed: bytes) -> str:
        """A value sealed before migration 0009, with no associated data. Raises: KeyMaterialError."""
        return self._open(sealed, _UNBOUND, None)

    def _open(self, sealed: bytes, version: bytes, associated_data: bytes | None) -> str:
        if sealed[:1] != version:
            raise KeyMaterialError("unknown ciphertext version")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated_data).decode()
        except InvalidTag:
            raise KeyMaterialError("stored secret does not open with this key") from None


def key_from_env(text: str) -> bytes:
    """SIPLINE_SECRET_KEY: base64 of 32 bytes. Raises: KeyMaterialError."""
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise KeyMaterialError("SIPLINE_SECRET_KEY is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyMaterialError("SIPLINE_SECRET_KEY must decode to 32 bytes")
    return key


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def new_code(length: int = 24) -> str:
    """A webhook code: lower-case letters and digits like Bitrix24's (24 chars ≈ 124 bits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
