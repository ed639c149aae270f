"""Secrets at rest: AES-256-GCM with a key id stored in each ciphertext and the owning row's
identity as associated data, so a ciphertext copied onto another row does not decrypt.

`TETHER_ENCRYPTION_KEYS` is a comma-separated list of `kid:base64(32 bytes)`: the first key
encrypts, every key decrypts, so keys rotate without downtime."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from tether.errors import TetherError

_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE_BYTES = 12


class ConfigurationError(RuntimeError):
    """Tether cannot run with the configuration it was given."""


class UndecryptableSecret(TetherError):
    status, code = 500, "secret_unreadable"
    detail = (
        "A stored secret could not be decrypted: its encryption key is missing or the "
        "record was tampered with."
    )


def row_identity(table: str, row_id: str) -> str:
    """The associated data of a secret stored in a row: it decrypts in that row only."""
    return f"{table}:{row_id}"


def generate_key_spec() -> str:
    """A fresh `kid:base64key` entry for TETHER_ENCRYPTION_KEYS."""
    kid = f"k{datetime.now(UTC):%Y%m%d}{secrets.token_hex(2)}"
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


class Keyring:
    def __init__(self, specs: Sequence[SecretStr | str]) -> None:
        keys: dict[str, AESGCM] = {}
        for spec in specs:
            raw = spec.get_secret_value() if isinstance(spec, SecretStr) else spec
            kid, sep, encoded = raw.partition(":")
            if not sep or not _KID.fullmatch(kid):
                raise ConfigurationError(
                    "Each TETHER_ENCRYPTION_KEYS entry must be `kid:base64key` with a kid of "
                    "letters, digits, '-' or '_'."
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ConfigurationError(f"Encryption key {kid} is not valid base64.") from None
            if len(key) != 32:
                raise ConfigurationError(f"Encryption key {kid} must be 32 bytes (AES-256).")
            if kid in keys:
                raise ConfigurationError(f"Encryption key id {kid} appears twice.")
            keys[kid] = AESGCM(key)
        if not keys:
            raise ConfigurationError(
                "TETHER_ENCRYPTION_KEYS is not set. Generate a key with "
                "`tether secrets generate-key` and set TETHER_ENCRYPTION_KEYS=<that line>."
            )
        self._keys = keys
        self.primary_kid = next(iter(keys))

    def encrypt(self, plaintext: bytes, associated_data: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.primary_kid].encrypt(nonce, plaintext, associated_data.encode())
        return f"{self.primary_kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, associated_data: str) -> bytes:
        kid, _, encoded = ciphertext.partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise UndecryptableSecret()
        try:
            blob = base64.b64decode(encoded, validate=True)
            return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated_data.encode())
        except (binascii.Error, InvalidTag, ValueError):
            raise UndecryptableSecret() from None

    def key_id_of(self, ciphertext: str) -> str:
        return ciphertext.partition(":")[0]

    def needs_rotation(self, ciphertext: str) -> bool:
        return self.key_id_of(ciphertext) != self.primary_kid
