"""Integration and installation helpers shared by the installation, SDK and OAuth tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.support import bearer

PROVIDER = "https://provider.example"


def stripe_key() -> str:
    """A distinctive value that matches the stripe app's apiKey pattern."""
    return f"sk_test_{secrets.token_hex(16)}"


def integrations_path(env: str = "development", integration_id: str | None = None) -> str:
    path = f"/admin/environments/{env}/integrations"
    return path if integration_id is None else f"{path}/{integration_id}"


def custom_oauth2(client_secret: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The body of a custom_oauth2 integration against a provider at `PROVIDER`."""
    return {
        "app": "custom_oauth2",
        "clientId": "cid",
        "clientSecret": client_secret or f"cs_{secrets.token_hex(16)}",
        "authorizeUrl": f"{PROVIDER}/authorize",
        "tokenUrl": f"{PROVIDER}/token",
        "scopes": ["read"],
        **overrides,
    }


async def create_integration(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], env: str = "development"
) -> dict[str, Any]:
    """An integration made through the admin API; `admin` is `account.admin`."""
    response = await client.post(integrations_path(env), json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def install(
    client: httpx.AsyncClient, key: str, user: str, integration_id: str, data: dict[str, str]
) -> dict[str, str]:
    """A headless install (`POST /users/{user}/credentials`): `{credentialId, installationId}`."""
    response = await client.post(
        f"/users/{user}/credentials",
        json={"integrationId": integration_id, "data": data},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    installed: dict[str, str] = response.json()
    return installed
