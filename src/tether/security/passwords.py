"""Argon2id password hashing through pwdlib, off the event loop and bounded in parallelism:
each hash takes tens of milliseconds and 64 MiB, so two at a time (one per core) at most."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()
_parallel = asyncio.Semaphore(2)

# A hash of a random password nobody knows, made with the recommended parameters: checking a
# login of an unknown email against it costs what checking a real one does. Shipped ready-made
# so that no process spends 64 MiB at startup making it.
_STAND_IN = (
    "$argon2id$v=19$m=65536,t=3,p=4$TOWnPiq+n06r9iE3rUSr9g"
    "$/rDL6q1AhSKZA8q989oiyyiSC7I250O1/MIl3gGY0qU"
)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    async with _parallel:
        return await asyncio.to_thread(_hasher.hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Should pwdlib's recommended parameters change, the stand-in would verify faster or
    # slower than a real hash: make one with the current parameters instead.
    if _hasher.hashers[0].check_needs_rehash(_STAND_IN):
        return _hasher.hash(secrets.token_urlsafe(18))
    return _STAND_IN


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password; with no hash (an unknown user) do the same work and answer False,
    so the two cases cannot be told apart by their timing."""
    target = password_hash if password_hash is not None else _dummy_hash()
    async with _parallel:
        ok = await asyncio.to_thread(_hasher.verify, password, target)
    return ok and password_hash is not None
