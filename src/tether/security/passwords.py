"""Argon2id password hashing through pwdlib, off the event loop and bounded in parallelism
(each hash takes tens of milliseconds and 64 MiB)."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()
_parallel = asyncio.Semaphore(4)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    async with _parallel:
        return await asyncio.to_thread(_hasher.hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(18))


async def warm_up() -> None:
    """Compute the stand-in hash at startup, so the first unknown email is not slower."""
    await asyncio.to_thread(_dummy_hash)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password; with no hash (an unknown user) do the same work and answer False,
    so the two cases cannot be told apart by their timing."""
    target = password_hash if password_hash is not None else _dummy_hash()
    async with _parallel:
        ok = await asyncio.to_thread(_hasher.verify, password, target)
    return ok and password_hash is not None
