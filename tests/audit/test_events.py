"""Audit events: one for every change to keys, signing keys, integrations, settings, users and
installations, written with the change, naming who, from where and in which request, never a
secret."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.installations.helpers import create_integration, install, stripe_key
from tests.support import bearer
from tests.users.test_routes import create_user

EVENTS = "/admin/audit-events"


async def events(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(EVENTS, params=params, headers=account.admin)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def last(client: httpx.AsyncClient, account: Account, action: str) -> dict[str, Any]:
    matching = await events(client, account, action=action)
    assert matching, f"no {action} event"
    return matching[0]


class TestRecorded:
    async def test_key_lifecycle(self, client: httpx.AsyncClient, account: Account) -> None:
        path = "/admin/environments/production/api-keys"
        created = await client.post(path, json={"type": "secret"}, headers=account.admin)
        key_id = created.json()["id"]
        event = await last(client, account, "api_key.created")
        assert event["targetId"] == key_id
        assert event["environmentId"] == account.prod.id
        assert event["actor"]["type"] == "admin"
        assert event["requestId"] == created.headers["x-request-id"]
        assert event["ip"]
        assert event["details"]["last4"] == created.json()["key"][-4:]

        rolled = await client.post(
            f"{path}/{key_id}/roll", json={"gracePeriodSeconds": 60}, headers=account.admin
        )
        event = await last(client, account, "api_key.rolled")
        assert (event["targetId"], event["details"]) == (
            key_id, {"replacedBy": rolled.json()["id"], "gracePeriodSeconds": 60}
        )  # fmt: skip
        await client.delete(f"{path}/{rolled.json()['id']}", headers=account.admin)
        assert (await last(client, account, "api_key.revoked"))["targetId"] == rolled.json()["id"]

    async def test_signing_keys(self, client: httpx.AsyncClient, account: Account) -> None:
        path = "/admin/environments/development/signing-keys"
        created = (await client.post(path, json={}, headers=account.admin)).json()
        await client.delete(f"{path}/{created['id']}", headers=account.admin)
        assert (await last(client, account, "signing_key.created"))["targetId"] == created["id"]
        assert (await last(client, account, "signing_key.revoked"))["targetId"] == created["id"]

    async def test_integrations_never_with_the_client_secret(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        body = {"app": "github", "clientId": "cid", "clientSecret": "gh-secret-value-123"}
        integration = await create_integration(client, account.admin, body)
        path = f"/admin/environments/development/integrations/{integration['integrationId']}"
        await client.patch(
            path, json={"clientSecret": "gh-secret-value-456", "name": "GH"}, headers=account.admin
        )
        await client.delete(path, headers=account.admin)
        updated = await last(client, account, "integration.updated")
        assert updated["details"] == {"changed": ["client_secret", "name"]}
        for action in ("integration.created", "integration.deleted"):
            assert (await last(client, account, action))["targetId"] == integration["integrationId"]
        everything = json.dumps(await events(client, account, limit=200))
        assert "gh-secret-value" not in everything

    async def test_environment_settings(self, client: httpx.AsyncClient, account: Account) -> None:
        await client.patch(
            "/admin/environments/development",
            json={"userTokenTtlSeconds": 60},
            headers=account.admin,
        )
        event = await last(client, account, "environment.updated")
        assert event["details"] == {"changed": ["user_token_ttl_seconds"]}

    async def test_users_by_a_secret_key(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(
            "/users",
            json={"username": "audited"},
            headers={**bearer(account.dev.secret_key), "x-request-id": "create-audited"},
        )
        user = response.json()
        key = bearer(account.dev.secret_key)
        await client.put("/users/audited", json={"fullName": "A"}, headers=key)
        await client.delete("/users/audited", headers=key)
        created = await last(client, account, "user.created")
        assert created["targetId"] == user["userId"]
        assert created["environmentId"] == account.dev.id
        assert created["details"] == {"username": "audited"}
        assert created["requestId"] == "create-audited"
        assert created["ip"] == "127.0.0.1"
        assert created["actor"]["type"] == "secret_key"
        keys = await client.get("/admin/environments/development/api-keys", headers=account.admin)
        secret_key_id = next(k["id"] for k in keys.json()["data"] if k["type"] == "secret")
        assert created["actor"]["id"] == secret_key_id
        assert (await last(client, account, "user.updated"))["details"] == {
            "changed": ["full_name"]
        }
        assert (await last(client, account, "user.deleted"))["targetId"] == user["userId"]

    async def test_installations(self, client: httpx.AsyncClient, account: Account) -> None:
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        await create_user(client, account.dev.secret_key, "installer")
        secret = stripe_key()
        installed = await install(
            client, account.dev.secret_key, "installer", stripe["integrationId"], {"apiKey": secret}
        )
        created = await last(client, account, "installation.created")
        assert created["targetId"] == installed["installationId"]
        await client.delete(
            f"/installations/{installed['installationId']}", headers=bearer(account.dev.secret_key)
        )
        assert (await last(client, account, "installation.deleted"))["targetId"] == installed[
            "installationId"
        ]
        assert secret not in json.dumps(await events(client, account, limit=200))

    async def test_deleting_a_credential_records_its_installation(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        user = await create_user(client, account.dev.secret_key, "credential-owner")
        installed = await install(
            client, account.dev.secret_key, "credential-owner", stripe["integrationId"],
            {"apiKey": stripe_key()},
        )  # fmt: skip
        deleted = await client.delete(
            f"/users/credential-owner/credentials/{installed['credentialId']}",
            headers=bearer(account.dev.secret_key),
        )
        assert deleted.status_code == 200
        event = await last(client, account, "installation.deleted")
        assert event["targetId"] == installed["installationId"]
        assert event["details"] == {
            "userId": user["userId"], "integrationId": stripe["integrationId"]
        }  # fmt: skip

    async def test_admin_login(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(
            "/admin/login", json={"email": account.email, "password": account.password}
        )
        event = await last(client, account, "admin.login")
        assert event["requestId"] == response.headers["x-request-id"]
        assert account.password not in json.dumps(event)


class TestSameTransaction:
    async def test_a_refused_change_leaves_no_event(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "once")
        before = len(await events(client, account, action="user.created"))
        taken = await client.post(
            "/users", json={"username": "once"}, headers=bearer(account.dev.secret_key)
        )
        assert taken.status_code == 409
        assert len(await events(client, account, action="user.created")) == before


class TestRoute:
    async def test_newest_first_with_cursor_pages(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for name in ("a", "b", "c"):
            await create_user(client, account.dev.secret_key, name)
        first = await client.get(
            EVENTS, params={"limit": 2, "action": "user.created"}, headers=account.admin
        )
        page = first.json()
        assert [e["details"]["username"] for e in page["data"]] == ["c", "b"]
        second = await client.get(
            EVENTS, params={"limit": 2, "action": "user.created", "cursor": page["nextCursor"]},
            headers=account.admin,
        )  # fmt: skip
        assert [e["details"]["username"] for e in second.json()["data"]] == ["a"]
        assert second.json()["nextCursor"] is None

    async def test_filter_by_environment(self, client: httpx.AsyncClient, account: Account) -> None:
        await create_user(client, account.prod.secret_key, "prod-user")
        dev = await events(client, account, environment="development", action="user.created")
        prod = await events(client, account, environment="production", action="user.created")
        assert dev == []
        assert [e["details"]["username"] for e in prod] == ["prod-user"]

    async def test_only_the_accounts_own_events(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        await create_user(client, other_account.dev.secret_key, "theirs")
        assert await events(client, account, action="user.created") == []
        response = await client.get(
            EVENTS, params={"environment": other_account.dev.id}, headers=account.admin
        )
        assert response.status_code == 404

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(EVENTS)).status_code == 401

    @pytest.mark.parametrize("kind", ["secret", "publishable"])
    async def test_api_keys_are_403(
        self, client: httpx.AsyncClient, account: Account, kind: str
    ) -> None:
        key = account.dev.secret_key if kind == "secret" else account.dev.publishable_key
        assert (await client.get(EVENTS, headers=bearer(key))).status_code == 403

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "nope"}])
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, account: Account, params: dict[str, Any]
    ) -> None:
        assert (await client.get(EVENTS, params=params, headers=account.admin)).status_code == 422


class TestOperator:
    async def test_the_cli_is_the_actor_of_a_rotation(
        self, client: httpx.AsyncClient, account: Account, server_env: dict[str, str]
    ) -> None:
        from tests.users.test_cli import tether

        done = await tether(server_env, "token-keys", "rotate", "--environment", account.dev.id)
        assert done.returncode == 0, done.stderr
        event = await last(client, account, "token_key.rotated")
        assert event["actor"] == {"type": "cli", "id": None}
        assert event["environmentId"] == account.dev.id
