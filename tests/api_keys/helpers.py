"""API key helpers shared by the key, CLI and database tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tether.api_keys.models import ApiKey

KEY_FIELDS = {
    "id",
    "type",
    "name",
    "prefix",
    "last4",
    "createdAt",
    "expiresAt",
    "revokedAt",
    "lastUsedAt",
}


def keys_path(env: str, key_id: str | None = None, action: str | None = None) -> str:
    path = f"/admin/environments/{env}/api-keys"
    if key_id is not None:
        path += f"/{key_id}"
    if action is not None:
        path += f"/{action}"
    return path


async def list_keys(client: httpx.AsyncClient, admin: dict[str, str], env: str) -> list[Any]:
    response = await client.get(keys_path(env), headers=admin)
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


async def create_key(
    client: httpx.AsyncClient, admin: dict[str, str], env: str = "development", **body: Any
) -> dict[str, Any]:
    body.setdefault("type", "secret")
    response = await client.post(keys_path(env), json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def find_key(
    client: httpx.AsyncClient, admin: dict[str, str], env: str, plaintext: str
) -> dict[str, Any]:
    """The listed key whose plaintext this is (the list shows only its prefix and last four)."""
    matches = [
        key
        for key in await list_keys(client, admin, env)
        if plaintext.startswith(key["prefix"]) and plaintext.endswith(key["last4"])
    ]
    assert len(matches) == 1, matches
    return matches[0]


async def set_key_times(
    sessionmaker: async_sessionmaker[AsyncSession], key_id: str, **values: datetime | None
) -> None:
    """Move a key's timestamps in the database, as time passing would."""
    async with sessionmaker() as session:
        result = await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        assert result.rowcount == 1  # type: ignore[attr-defined]
        await session.commit()
