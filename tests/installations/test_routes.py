"""The backend installation routes (secret key): GET /integrations, installations, credentials and
the headless install. Every route's happy path, credentials, isolation and bad input."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Account, Env
from tests.installations.helpers import (
    create_integration,
    custom_oauth2,
    install,
    integrations_path,
    stripe_key,
)
from tests.support import assert_problem, bearer, rfc3339_utc
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.db.pagination import encode_cursor

INTEGRATION_STATE_FIELDS = {
    "integrationId",
    "app",
    "name",
    "authType",
    "installed",
    "installationId",
}
INSTALLATION_FIELDS = {
    "installationId",
    "integrationId",
    "userId",
    "status",
    "credentialId",
    "createdAt",
}
CREDENTIAL_FIELDS = {
    "credentialId",
    "installationId",
    "integrationId",
    "userId",
    "type",
    "expiresAt",
    "createdAt",
    "updatedAt",
}


def zendesk_data() -> dict[str, str]:
    return {
        "subdomain": "acme",
        "email": "ops@acme.example",
        "apiToken": f"zd-{secrets.token_hex(16)}",
    }


@dataclass
class Installed:
    """One environment with a user who installed stripe, and a zendesk integration besides."""

    env: Env
    user_id: str
    username: str
    stripe_id: str
    zendesk_id: str
    installation_id: str
    credential_id: str
    api_key: str


async def installed_env(client: httpx.AsyncClient, account: Account, env: Env) -> Installed:
    username = f"{env.name}-{secrets.token_hex(4)}"
    user = await create_user(client, env.secret_key, username)
    stripe = await create_integration(client, account.admin, {"app": "stripe"}, env.name)
    zendesk = await create_integration(client, account.admin, {"app": "zendesk"}, env.name)
    api_key = stripe_key()
    done = await install(
        client, env.secret_key, user["userId"], stripe["integrationId"], {"apiKey": api_key}
    )
    return Installed(
        env=env,
        user_id=user["userId"],
        username=username,
        stripe_id=stripe["integrationId"],
        zendesk_id=zendesk["integrationId"],
        installation_id=done["installationId"],
        credential_id=done["credentialId"],
        api_key=api_key,
    )


@pytest.fixture
async def dev(client: httpx.AsyncClient, account: Account) -> Installed:
    return await installed_env(client, account, account.dev)


async def get_json(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


async def still_installed(client: httpx.AsyncClient, setup: Installed) -> None:
    """The installation and its credential are intact."""
    key = setup.env.secret_key
    fetched = await client.get(f"/installations/{setup.installation_id}", headers=bearer(key))
    assert fetched.status_code == 200, fetched.text
    credential = await get_json(
        client, key, f"/users/{setup.user_id}/credentials/{setup.credential_id}"
    )
    assert credential["data"] == {"apiKey": setup.api_key}


class TestListIntegrationStates:
    async def test_publishable_key_lists_the_environments_integrations(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        await create_integration(client, account.admin, {"app": "stripe"}, "production")
        custom = await create_integration(client, account.admin, custom_oauth2(name="Acme"))
        for headers in (
            bearer(account.dev.publishable_key),
            {"x-api-key": account.dev.publishable_key},
            bearer(account.dev.secret_key),
        ):
            response = await client.get("/integrations", headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"data"}
            assert sorted(body["data"], key=lambda i: i["integrationId"]) == sorted(
                [
                    {
                        "integrationId": dev.stripe_id,
                        "app": "stripe",
                        "name": "Stripe",
                        "authType": "api_key",
                        "installed": False,
                        "installationId": None,
                    },
                    {
                        "integrationId": dev.zendesk_id,
                        "app": "zendesk",
                        "name": "Zendesk",
                        "authType": "basic",
                        "installed": False,
                        "installationId": None,
                    },
                    {
                        "integrationId": custom["integrationId"],
                        "app": "custom_oauth2",
                        "name": "Acme",
                        "authType": "oauth2",
                        "installed": False,
                        "installationId": None,
                    },
                ],
                key=lambda i: i["integrationId"],
            )

    async def test_secret_key_with_user_shows_installations(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        other = await create_user(client, account.dev.secret_key, "no-installs")
        for ref in (dev.user_id, dev.username):
            body = await get_json(client, account.dev.secret_key, "/integrations", userId=ref)
            states = {state["integrationId"]: state for state in body["data"]}
            assert set(states) == {dev.stripe_id, dev.zendesk_id}
            for state in states.values():
                assert set(state) == INTEGRATION_STATE_FIELDS
            assert states[dev.stripe_id]["installed"] is True
            assert states[dev.stripe_id]["installationId"] == dev.installation_id
            assert states[dev.zendesk_id]["installed"] is False
            assert states[dev.zendesk_id]["installationId"] is None
        body = await get_json(client, account.dev.secret_key, "/integrations", userId="no-installs")
        assert other["userId"]
        assert [state["installed"] for state in body["data"]] == [False, False]

    async def test_publishable_key_with_user_needs_a_tenant_token(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        for ref in (dev.user_id, dev.username, "nobody"):
            response = await client.get(
                "/integrations",
                params={"userId": ref},
                headers=bearer(account.dev.publishable_key),
            )
            assert_problem(response, 401, "tenant_token_required")

    async def test_an_empty_environment(self, client: httpx.AsyncClient, account: Account) -> None:
        body = await get_json(client, account.prod.publishable_key, "/integrations")
        assert body == {"data": []}

    async def test_another_environments_user_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account, dev: Installed
    ) -> None:
        theirs = await installed_env(client, other_account, other_account.dev)
        for key, ref in (
            (account.prod.secret_key, dev.user_id),
            (account.prod.secret_key, dev.username),
            (other_account.dev.secret_key, dev.user_id),
            (account.dev.secret_key, theirs.user_id),
            (account.dev.secret_key, "ghost"),
        ):
            response = await client.get(
                "/integrations", params={"userId": ref}, headers=bearer(key)
            )
            assert_problem(response, 404, "not_found")

    async def test_bad_query_is_422(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get(
            "/integrations", params={"userId": "u" * 256}, headers=bearer(account.dev.secret_key)
        )
        assert_problem(response, 422, "validation_error")

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        assert_problem(await client.get("/integrations"), 401, "missing_credentials")
        await create_user(client, account.dev.secret_key, "sdk-user")
        token = (await mint(client, account.dev.secret_key, "sdk-user"))["token"]
        for headers in (account.admin, bearer(token)):
            response = await client.get("/integrations", headers=headers)
            assert_problem(response, 403, "insufficient_scope")


class TestHeadlessInstall:
    async def test_installs_an_api_key_app(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.dev.secret_key
        user = await create_user(client, key, "installer")
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        api_key = stripe_key()
        response = await client.post(
            f"/users/{user['userId']}/credentials",
            json={"integrationId": stripe["integrationId"], "data": {"apiKey": api_key}},
            headers=bearer(key),
        )
        assert response.status_code == 200, response.text
        assert api_key not in response.text
        body = response.json()
        assert set(body) == {"credentialId", "installationId"}
        assert body["credentialId"].startswith("cred_")
        assert body["installationId"].startswith("ins_")
        installation = await get_json(client, key, f"/installations/{body['installationId']}")
        assert installation["credentialId"] == body["credentialId"]
        assert installation["userId"] == user["userId"]

    async def test_installs_a_basic_app_by_username(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.dev.secret_key
        user = await create_user(client, key, "basic user")
        zendesk = await create_integration(client, account.admin, {"app": "zendesk"})
        data = zendesk_data()
        body = await install(client, key, "basic user", zendesk["integrationId"], data)
        credential = await get_json(
            client, key, f"/users/{user['userId']}/credentials/{body['credentialId']}"
        )
        assert credential["type"] == "basic"
        assert credential["data"] == data

    async def test_second_install_is_409_naming_the_first(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        response = await client.post(
            f"/users/{dev.username}/credentials",
            json={"integrationId": dev.stripe_id, "data": {"apiKey": stripe_key()}},
            headers=bearer(account.dev.secret_key),
        )
        body = assert_problem(response, 409, "already_installed")
        assert body["installationId"] == dev.installation_id
        await still_installed(client, dev)

    async def test_each_user_installs_separately(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        other = await create_user(client, account.dev.secret_key, "second user")
        body = await install(
            client, account.dev.secret_key, other["userId"], dev.stripe_id, {"apiKey": stripe_key()}
        )
        assert body["installationId"] != dev.installation_id

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"data": {"apiKey": "sk_test_SECRET1"}}, id="missing integrationId"),
            pytest.param({"integrationId": "{stripe}"}, id="missing data"),
            pytest.param({"integrationId": "{stripe}", "data": "sk_test_SECRET1"}, id="data text"),
            pytest.param({"integrationId": "{stripe}", "data": ["x"]}, id="data a list"),
            pytest.param({"integrationId": 12, "data": {"apiKey": "sk_test_SECRET1"}}, id="id int"),
            pytest.param({"integrationId": "", "data": {}}, id="empty integrationId"),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_SECRET1"}, "x": 1},
                id="unknown body field",
            ),
            pytest.param(
                {"integration_id": "{stripe}", "data": {"apiKey": "sk_test_SECRET1"}},
                id="snake case",
            ),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": 42}}, id="value not a string"
            ),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_SECRET1", "x": "y"}},
                id="unknown data field",
            ),
            pytest.param({"integrationId": "{stripe}", "data": {}}, id="missing required field"),
            pytest.param({"integrationId": "{stripe}", "data": {"apiKey": ""}}, id="empty value"),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "pk_live_SECRET1"}},
                id="value not matching the pattern",
            ),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_SECRET1\n"}},
                id="pattern must match the whole value",
            ),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_" + "A" * 4000}},
                id="value too long",
            ),
            pytest.param(
                {
                    "integrationId": "{zendesk}",
                    "data": {"subdomain": "acme", "email": "a@b.example"},
                },
                id="basic app without its secret",
            ),
            pytest.param(
                {
                    "integrationId": "{zendesk}",
                    "data": {"subdomain": "a b", "email": "a@b.example", "apiToken": "SECRET1"},
                },
                id="basic app with a bad subdomain",
            ),
            pytest.param({"integrationId": "{oauth}", "data": {}}, id="oauth2 integration"),
            pytest.param(
                {"integrationId": "{oauth}", "data": {"accessToken": "SECRET1"}},
                id="oauth2 integration with a token",
            ),
        ],
    )
    async def test_bad_bodies_are_422_and_install_nothing(
        self, client: httpx.AsyncClient, account: Account, body: dict[str, Any]
    ) -> None:
        key = account.dev.secret_key
        user = await create_user(client, key, "careful")
        ids = {
            "{stripe}": (await create_integration(client, account.admin, {"app": "stripe"})),
            "{zendesk}": (await create_integration(client, account.admin, {"app": "zendesk"})),
            "{oauth}": (await create_integration(client, account.admin, custom_oauth2())),
        }
        for field in ("integrationId", "integration_id"):
            if body.get(field) in ids:
                body = {**body, field: ids[body[field]]["integrationId"]}
        response = await client.post(
            f"/users/{user['userId']}/credentials", json=body, headers=bearer(key)
        )
        assert_problem(response, 422, "validation_error")
        assert "SECRET1" not in response.text  # messages name fields, never values
        assert await get_json(client, key, "/installations") == {"data": [], "nextCursor": None}

    async def test_unknown_integration_or_user_is_404(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        for user, integration in (
            (dev.user_id, "int_00000000000000000000000000000000"),
            ("ghost", dev.zendesk_id),
        ):
            response = await client.post(
                f"/users/{user}/credentials",
                json={"integrationId": integration, "data": zendesk_data()},
                headers=bearer(key),
            )
            assert_problem(response, 404, "not_found")


class TestListInstallations:
    async def test_lists_with_credentials(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        body = await get_json(client, account.dev.secret_key, "/installations")
        assert set(body) == {"data", "nextCursor"}
        assert body["nextCursor"] is None
        [installation] = body["data"]
        assert set(installation) == INSTALLATION_FIELDS
        rfc3339_utc(installation.pop("createdAt"))
        assert installation == {
            "installationId": dev.installation_id,
            "integrationId": dev.stripe_id,
            "userId": dev.user_id,
            "status": "active",
            "credentialId": dev.credential_id,
        }

    async def test_filters_by_user_and_integration(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        other = await create_user(client, key, "other user")
        theirs = await install(client, key, "other user", dev.zendesk_id, zendesk_data())
        mine = await install(client, key, dev.user_id, dev.zendesk_id, zendesk_data())

        async def ids(**params: str) -> set[str]:
            body = await get_json(client, key, "/installations", **params)
            return {i["installationId"] for i in body["data"]}

        everything = {dev.installation_id, theirs["installationId"], mine["installationId"]}
        assert await ids() == everything
        assert await ids(userId=dev.user_id) == {dev.installation_id, mine["installationId"]}
        assert await ids(userId=dev.username) == {dev.installation_id, mine["installationId"]}
        assert await ids(userId=other["userId"]) == {theirs["installationId"]}
        assert await ids(integrationId=dev.stripe_id) == {dev.installation_id}
        assert await ids(integrationId=dev.zendesk_id) == {
            theirs["installationId"],
            mine["installationId"],
        }
        assert await ids(userId="other user", integrationId=dev.stripe_id) == set()
        assert await ids(integrationId="int_00000000000000000000000000000000") == set()

    async def test_pages_walk_every_installation_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.dev.secret_key
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        zendesk = await create_integration(client, account.admin, {"app": "zendesk"})
        created = []
        for n in range(3):
            user = await create_user(client, key, f"pager-{n}")
            created.append(
                (await install(client, key, user["userId"], stripe["integrationId"], {
                    "apiKey": stripe_key()
                }))["installationId"]
            )  # fmt: skip
            created.append(
                (await install(client, key, user["userId"], zendesk["integrationId"],
                               zendesk_data()))["installationId"]
            )  # fmt: skip
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 1}
            if cursor:
                params["cursor"] = cursor
            body = await get_json(client, key, "/installations", **params)
            pages += 1
            assert len(body["data"]) == 1
            seen += [i["installationId"] for i in body["data"]]
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert pages == 6
        assert len(seen) == len(set(seen))
        assert sorted(seen) == sorted(created)
        assert seen == [
            i["installationId"] for i in (await get_json(client, key, "/installations"))["data"]
        ]

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 201},
            {"limit": "ten"},
            {"cursor": "%%%"},
            {"cursor": encode_cursor("usr_" + "0" * 32)},  # a cursor of another list
            {"cursor": "x" * 201},
            {"userId": "u" * 256},
            {"integrationId": "i" * 41},
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, account: Account, params: dict[str, str | int]
    ) -> None:
        response = await client.get(
            "/installations", params=params, headers=bearer(account.dev.secret_key)
        )
        assert_problem(response, 422, "validation_error")

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get(
            "/installations", params={"userId": "ghost"}, headers=bearer(account.dev.secret_key)
        )
        assert_problem(response, 404, "not_found")


class TestGetInstallation:
    async def test_answers_the_installation(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        body = await get_json(
            client, account.dev.secret_key, f"/installations/{dev.installation_id}"
        )
        listed = await get_json(client, account.dev.secret_key, "/installations")
        assert body == listed["data"][0]
        assert body["credentialId"] == dev.credential_id

    async def test_unknown_is_404(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get(
            "/installations/ins_00000000000000000000000000000000",
            headers=bearer(account.dev.secret_key),
        )
        assert_problem(response, 404, "not_found")


class TestDeleteInstallation:
    async def test_deletes_it_with_its_credential(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        response = await client.delete(f"/installations/{dev.installation_id}", headers=bearer(key))
        assert response.status_code == 200
        assert response.json() == {"success": True}
        gone = await client.get(f"/installations/{dev.installation_id}", headers=bearer(key))
        assert_problem(gone, 404, "not_found")
        credential = await client.get(
            f"/users/{dev.user_id}/credentials/{dev.credential_id}", headers=bearer(key)
        )
        assert_problem(credential, 404, "not_found")
        assert await get_json(client, key, f"/users/{dev.user_id}/credentials") == {"data": []}
        again = await client.delete(f"/installations/{dev.installation_id}", headers=bearer(key))
        assert_problem(again, 404, "not_found")
        # Uninstalled, it can be installed again.
        await install(client, key, dev.user_id, dev.stripe_id, {"apiKey": stripe_key()})


class TestListCredentials:
    async def test_metadata_only(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        zendesk = zendesk_data()
        second = await install(client, key, dev.user_id, dev.zendesk_id, zendesk)
        other = await create_user(client, key, "someone else")
        await install(client, key, other["userId"], dev.zendesk_id, zendesk_data())
        for ref in (dev.user_id, dev.username):
            response = await client.get(f"/users/{ref}/credentials", headers=bearer(key))
            assert response.status_code == 200
            assert dev.api_key not in response.text
            assert zendesk["apiToken"] not in response.text
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert set(body) == {"data"}
            by_id = {c["credentialId"]: c for c in body["data"]}
            assert set(by_id) == {dev.credential_id, second["credentialId"]}
            for credential in body["data"]:
                assert set(credential) == CREDENTIAL_FIELDS
                assert credential["userId"] == dev.user_id
                assert credential["expiresAt"] is None
            stripe = by_id[dev.credential_id]
            assert (stripe["installationId"], stripe["integrationId"], stripe["type"]) == (
                dev.installation_id,
                dev.stripe_id,
                "api_key",
            )
            assert by_id[second["credentialId"]]["type"] == "basic"

    async def test_a_user_without_credentials(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "bare")
        body = await get_json(client, account.dev.secret_key, "/users/bare/credentials")
        assert body == {"data": []}


class TestGetCredential:
    async def test_answers_the_raw_data_uncached(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        for ref in (dev.user_id, dev.username):
            response = await client.get(
                f"/users/{ref}/credentials/{dev.credential_id}",
                headers=bearer(account.dev.secret_key),
            )
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store"
            body = response.json()
            assert set(body) == CREDENTIAL_FIELDS | {"data"}
            assert body["data"] == {"apiKey": dev.api_key}
            assert body["credentialId"] == dev.credential_id
            assert body["installationId"] == dev.installation_id
            assert body["type"] == "api_key"

    async def test_another_users_credential_is_404(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        await create_user(client, account.dev.secret_key, "nosy")
        response = await client.get(
            f"/users/nosy/credentials/{dev.credential_id}", headers=bearer(account.dev.secret_key)
        )
        assert_problem(response, 404, "not_found")
        assert dev.api_key not in response.text


class TestDeleteCredential:
    async def test_deletes_it_with_its_installation(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        path = f"/users/{dev.username}/credentials/{dev.credential_id}"
        response = await client.delete(path, headers=bearer(key))
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert_problem(await client.get(path, headers=bearer(key)), 404, "not_found")
        gone = await client.get(f"/installations/{dev.installation_id}", headers=bearer(key))
        assert_problem(gone, 404, "not_found")
        assert_problem(await client.delete(path, headers=bearer(key)), 404, "not_found")

    async def test_another_users_credential_is_404(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        await create_user(client, account.dev.secret_key, "vandal")
        response = await client.delete(
            f"/users/vandal/credentials/{dev.credential_id}", headers=bearer(account.dev.secret_key)
        )
        assert_problem(response, 404, "not_found")
        await still_installed(client, dev)


class TestDeleteUser:
    async def test_removes_its_installations_and_credentials(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        await install(client, key, dev.user_id, dev.zendesk_id, zendesk_data())
        bystander = await create_user(client, key, "bystander")
        await install(client, key, bystander["userId"], dev.stripe_id, {"apiKey": stripe_key()})

        async def rows(table: str, user_id: str) -> int:
            async with app.state.engine.connect() as conn:
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE user_id = :user_id"),
                    {"user_id": user_id},
                )
            return int(count)

        assert await rows("installations", dev.user_id) == 2
        assert await rows("credentials", dev.user_id) == 2
        response = await client.delete(f"/users/{dev.user_id}", headers=bearer(key))
        assert response.json() == {"success": True}
        assert await rows("installations", dev.user_id) == 0
        assert await rows("credentials", dev.user_id) == 0
        assert await rows("installations", bystander["userId"]) == 1
        assert await rows("credentials", bystander["userId"]) == 1
        gone = await client.get(f"/installations/{dev.installation_id}", headers=bearer(key))
        assert_problem(gone, 404, "not_found")


class TestDisabledIntegration:
    async def test_disappears_from_users_but_not_from_the_admin(
        self, client: httpx.AsyncClient, account: Account, dev: Installed
    ) -> None:
        key = account.dev.secret_key
        response = await client.patch(
            integrations_path(integration_id=dev.zendesk_id),
            json={"enabled": False},
            headers=account.admin,
        )
        assert response.json()["enabled"] is False
        token = (await mint(client, key, dev.user_id))["token"]
        for path, headers in (
            ("/integrations", bearer(account.dev.publishable_key)),
            (f"/integrations?userId={dev.user_id}", bearer(key)),
            ("/sdk/integrations", bearer(token)),
        ):
            body = await client.get(path, headers=headers)
            assert [i["integrationId"] for i in body.json()["data"]] == [dev.stripe_id], path
        headless = await client.post(
            f"/users/{dev.user_id}/credentials",
            json={"integrationId": dev.zendesk_id, "data": zendesk_data()},
            headers=bearer(key),
        )
        assert_problem(headless, 404, "not_found")
        sdk = await client.post(
            "/sdk/installations",
            json={"integrationId": dev.zendesk_id, "data": zendesk_data()},
            headers=bearer(token),
        )
        assert_problem(sdk, 404, "not_found")
        admin = await client.get(integrations_path(), headers=account.admin)
        assert {i["integrationId"]: i["enabled"] for i in admin.json()["data"]} == {
            dev.stripe_id: True,
            dev.zendesk_id: False,
        }
        # Enabled again, it installs.
        await client.patch(
            integrations_path(integration_id=dev.zendesk_id),
            json={"enabled": True},
            headers=account.admin,
        )
        await install(client, key, dev.user_id, dev.zendesk_id, zendesk_data())


class TestConcurrentInstalls:
    async def test_twenty_racing_installs_make_one_installation(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.dev.secret_key
        user = await create_user(client, key, "racer")
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        body = {"integrationId": stripe["integrationId"], "data": {"apiKey": stripe_key()}}
        responses = await asyncio.gather(
            *(
                client.post(f"/users/{user['userId']}/credentials", json=body, headers=bearer(key))
                for _ in range(20)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [409] * 19, [r.text for r in responses if r.status_code != 409]
        [winner] = [r.json() for r in responses if r.status_code == 200]
        losers = [
            assert_problem(r, 409, "already_installed") for r in responses if r.status_code == 409
        ]
        assert {loser["installationId"] for loser in losers} == {winner["installationId"]}
        listed = await get_json(client, key, "/installations", userId=user["userId"])
        assert [i["installationId"] for i in listed["data"]] == [winner["installationId"]]
        credentials = await get_json(client, key, f"/users/{user['userId']}/credentials")
        assert [c["credentialId"] for c in credentials["data"]] == [winner["credentialId"]]


ROUTES = [
    ("GET", "/installations", None),
    ("GET", "/installations/{installation}", None),
    ("DELETE", "/installations/{installation}", None),
    ("GET", "/users/{user}/credentials", None),
    ("POST", "/users/{user}/credentials", "zendesk"),
    ("GET", "/users/{user}/credentials/{credential}", None),
    ("DELETE", "/users/{user}/credentials/{credential}", None),
]


def route(setup: Installed, method: str, template: str, body: str | None) -> dict[str, Any]:
    url = template.format(
        user=setup.user_id, installation=setup.installation_id, credential=setup.credential_id
    )
    json = {"integrationId": setup.zendesk_id, "data": zendesk_data()} if body else None
    return {"method": method, "url": url, "json": json}


class TestCredentialKinds:
    """Every secret-key route: 401 without a credential, 403 with any other kind."""

    @pytest.mark.parametrize(("method", "template", "body"), ROUTES)
    async def test_only_a_secret_key(
        self,
        client: httpx.AsyncClient,
        account: Account,
        dev: Installed,
        method: str,
        template: str,
        body: str | None,
    ) -> None:
        request = route(dev, method, template, body)
        response = await client.request(**request)
        assert_problem(response, 401, "missing_credentials")
        assert response.headers["www-authenticate"] == "Bearer"
        token = (await mint(client, account.dev.secret_key, dev.user_id))["token"]
        for headers in (
            bearer(account.dev.publishable_key),
            {"x-api-key": account.dev.publishable_key},
            account.admin,
            bearer(token),
        ):
            response = await client.request(**request, headers=headers)
            assert_problem(response, 403, "insufficient_scope")
        await still_installed(client, dev)
        zendesk = await get_json(
            client, account.dev.secret_key, "/installations", integrationId=dev.zendesk_id
        )
        assert zendesk["data"] == []


class TestIsolation:
    """A secret key never reaches another environment's user, installation or credential, and
    never installs another environment's integration: each is a 404, and nothing changes."""

    @pytest.mark.parametrize("direction", ["dev-to-prod", "prod-to-dev", "other-account"])
    async def test_every_route_is_404(
        self,
        client: httpx.AsyncClient,
        account: Account,
        other_account: Account,
        dev: Installed,
        direction: str,
    ) -> None:
        prod = await installed_env(client, account, account.prod)
        theirs = await installed_env(client, other_account, other_account.dev)
        victim, intruder = {
            "dev-to-prod": (prod, dev),
            "prod-to-dev": (dev, prod),
            "other-account": (theirs, dev),
        }[direction]
        headers = bearer(intruder.env.secret_key)
        own = intruder.user_id
        calls = [
            ("GET", f"/installations/{victim.installation_id}", None),
            ("DELETE", f"/installations/{victim.installation_id}", None),
            ("GET", "/installations", {"userId": victim.user_id}),
            ("GET", "/installations", {"userId": victim.username}),
            ("GET", "/integrations", {"userId": victim.user_id}),
            ("GET", f"/users/{victim.user_id}/credentials", None),
            ("GET", f"/users/{victim.username}/credentials", None),
            ("GET", f"/users/{victim.user_id}/credentials/{victim.credential_id}", None),
            ("GET", f"/users/{own}/credentials/{victim.credential_id}", None),
            ("DELETE", f"/users/{victim.user_id}/credentials/{victim.credential_id}", None),
            ("DELETE", f"/users/{own}/credentials/{victim.credential_id}", None),
        ]
        for method, url, params in calls:
            response = await client.request(method, url, params=params, headers=headers)
            assert_problem(response, 404, "not_found")
            assert victim.api_key not in response.text
        for user, integration in ((victim.user_id, victim.zendesk_id), (own, victim.zendesk_id)):
            response = await client.post(
                f"/users/{user}/credentials",
                json={"integrationId": integration, "data": zendesk_data()},
                headers=headers,
            )
            assert_problem(response, 404, "not_found")
        # Filtering by a foreign integration finds nothing rather than a foreign installation.
        body = await get_json(
            client, intruder.env.secret_key, "/installations", integrationId=victim.stripe_id
        )
        assert body == {"data": [], "nextCursor": None}
        await still_installed(client, victim)
        assert (await get_json(client, victim.env.secret_key, "/installations"))["data"] == [
            await get_json(
                client, victim.env.secret_key, f"/installations/{victim.installation_id}"
            )
        ]
