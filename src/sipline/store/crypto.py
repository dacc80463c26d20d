"""Secrets at rest: AES-256-GCM for values the API must give back, SHA-256 for bearer codes.

The key is 32 random bytes in `<data dir>/secret.key` (mode 0600), or given as
base64 in SIPLINE_SECRET_KEY. Ciphertext layout: version byte 1 ‖ 12-byte nonce ‖
AES-GCM(ciphertext ‖ tag). Webhook codes and tokens are random with ≥ 120 bits of
entropy, so a plain SHA-256 is a sufficient one-way hash (no password stretching).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"
_VERSION = b"\x01"
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit nonces from a CSPRNG


class KeyMaterialError(ValueError):
    """The key material is missing, malformed, or does not open stored data."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KeyMaterialError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def open(self, sealed: bytes) -> str:
        """Raises: KeyMaterialError when the data was sealed with another key or is damaged."""
        if sealed[:1] != _VERSION:
            raise KeyMaterialError("unknown ciphertext version")
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, None).decode()
        except InvalidTag:
            raise KeyMaterialError("stored secret does not open with this key") from None


def load_or_create_key(data_dir: Path, from_env: str | None) -> bytes:
    """The key from SIPLINE_SECRET_KEY (base64) if set, else the key file, created on first use."""
    if from_env:
        try:
            key = base64.b64decode(from_env, validate=True)
        except binascii.Error:
            raise KeyMaterialError("SIPLINE_SECRET_KEY is not valid base64") from None
        if len(key) != 32:
            raise KeyMaterialError("SIPLINE_SECRET_KEY must decode to 32 bytes")
        return key
    path = data_dir / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
            out.flush()
            os.fsync(out.fileno())
    key = path.read_bytes()
    if len(key) != 32:
        raise KeyMaterialError(f"{path} must hold exactly 32 bytes")
    return key


def write_key(path: Path, key: bytes) -> None:
    """A key file written whole (fsync) before it is used, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def new_code(length: int = 24) -> str:
    """A webhook code: lower-case letters and digits like Bitrix24's (24 chars ≈ 124 bits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
