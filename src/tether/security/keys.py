"""Prefixed random secrets with a checksum: API keys and admin session tokens.

`{prefix}{body}{crc}`: `body` is 43 base62 characters of 256-bit randomness and `crc` the CRC32
of the body in 6 base62 characters, so a mistyped key is refused before any database query.
Only the SHA-256 digest of the whole string is stored: 256 random bits need no slow hash."""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43
CRC_LENGTH = 6

KeyType = Literal["secret", "publishable"]
EnvTag = Literal["dev", "prod"]

_TYPE_TAGS: dict[KeyType, str] = {"secret": "sk", "publishable": "pk"}
_API_KEY = re.compile(r"tether_(sk|pk)_(dev|prod)_([0-9A-Za-z]{43})([0-9A-Za-z]{6})")
ADMIN_TOKEN_PREFIX = "tether_adm_"  # noqa: S105 (a prefix, not a secret)
_ADMIN_TOKEN = re.compile(r"tether_adm_([0-9A-Za-z]{43})([0-9A-Za-z]{6})")


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    if number:
        raise ValueError("number too large for width")
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CRC_LENGTH)


def _random_secret(prefix: str) -> str:
    body = _base62(secrets.randbits(256), BODY_LENGTH)
    return f"{prefix}{body}{_checksum(body)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_prefix(key_type: KeyType, env_tag: EnvTag) -> str:
    return f"tether_{_TYPE_TAGS[key_type]}_{env_tag}_"


def generate_api_key(key_type: KeyType, env_tag: EnvTag) -> str:
    return _random_secret(key_prefix(key_type, env_tag))


def generate_admin_token() -> str:
    return _random_secret(ADMIN_TOKEN_PREFIX)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    type: KeyType
    env_tag: EnvTag


def parse_api_key(candidate: str) -> ParsedKey | None:
    """The key's type and environment tag if it is well formed with a valid checksum."""
    match = _API_KEY.fullmatch(candidate)
    if match is None or _checksum(match.group(3)) != match.group(4):
        return None
    key_type: KeyType = "secret" if match.group(1) == "sk" else "publishable"
    env_tag: EnvTag = "prod" if match.group(2) == "prod" else "dev"
    return ParsedKey(key_type, env_tag)


def is_admin_token(candidate: str) -> bool:
    match = _ADMIN_TOKEN.fullmatch(candidate)
    return match is not None and _checksum(match.group(1)) == match.group(2)
