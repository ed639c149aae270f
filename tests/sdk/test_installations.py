"""What the hosted modal calls with a user token: /sdk/integrations, /sdk/installations and the
provider-free half of POST /sdk/oauth/{id}/start (the flow with a provider is in
tests/installations/test_oauth.py)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Account, Env
from tests.installations.helpers import (
    PROVIDER,
    create_integration,
    custom_oauth2,
    install,
    stripe_key,
)
from tests.support import assert_problem, bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.catalog.apps import get_app
from tether.security.keys import digest

SDK_INTEGRATION_FIELDS = {
    "integrationId",
    "app",
    "name",
    "authType",
    "installed",
    "installationId",
    "status",
    "fields",
}


@dataclass
class SdkUser:
    env: Env
    user_id: str
    token: str
    stripe_id: str
    zendesk_id: str
    oauth_id: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def sdk_user(client: httpx.AsyncClient, account: Account, env: Env) -> SdkUser:
    """A user with a token, in an environment offering stripe, zendesk and a custom_oauth2."""
    user = await create_user(client, env.secret_key, f"sdk-{secrets.token_hex(4)}")
    stripe = await create_integration(client, account.admin, {"app": "stripe"}, env.name)
    zendesk = await create_integration(client, account.admin, {"app": "zendesk"}, env.name)
    oauth = await create_integration(
        client, account.admin, custom_oauth2(scopes=["read", "write"]), env.name
    )
    token = (await mint(client, env.secret_key, user["userId"]))["token"]
    return SdkUser(
        env,
        user["userId"],
        token,
        stripe["integrationId"],
        zendesk["integrationId"],
        oauth["integrationId"],
    )


@pytest.fixture
async def alice(client: httpx.AsyncClient, account: Account) -> SdkUser:
    return await sdk_user(client, account, account.dev)


async def second_user(client: httpx.AsyncClient, of: SdkUser) -> SdkUser:
    """Another user of the same environment and integrations."""
    user = await create_user(client, of.env.secret_key, f"sdk-{secrets.token_hex(4)}")
    token = (await mint(client, of.env.secret_key, user["userId"]))["token"]
    return SdkUser(of.env, user["userId"], token, of.stripe_id, of.zendesk_id, of.oauth_id)


async def sdk_install(
    client: httpx.AsyncClient, user: SdkUser, integration_id: str, data: dict[str, str]
) -> str:
    response = await client.post(
        "/sdk/installations",
        json={"integrationId": integration_id, "data": data},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    installation_id: str = response.json()["installationId"]
    return installation_id


async def catalogue_fields(client: httpx.AsyncClient, key: str, slug: str) -> list[Any]:
    response = await client.get("/apps", headers=bearer(key))
    fields: list[Any] = next(a for a in response.json()["data"] if a["app"] == slug)["fields"]
    return fields


async def assert_user_token_only(
    client: httpx.AsyncClient, account: Account, method: str, path: str, json: Any = None
) -> None:
    """401 without a credential or with a bad token; 403 for API keys and admin tokens."""
    response = await client.request(method, path, json=json)
    assert_problem(response, 401, "missing_credentials")
    bad = await client.request(method, path, json=json, headers=bearer("a.b.c"))
    assert bad.status_code == 401
    for credential in (
        account.dev.secret_key,
        account.dev.publishable_key,
        account.prod.secret_key,
        account.admin_token,
    ):
        response = await client.request(method, path, json=json, headers=bearer(credential))
        assert_problem(response, 403, "insufficient_scope")


class TestSdkIntegrations:
    async def test_fields_and_the_users_state(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        await create_integration(client, account.admin, {"app": "stripe"}, "production")
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        response = await client.get("/sdk/integrations", headers=alice.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data"}
        states = {state["integrationId"]: state for state in body["data"]}
        assert set(states) == {alice.stripe_id, alice.zendesk_id, alice.oauth_id}
        for state in body["data"]:
            assert set(state) == SDK_INTEGRATION_FIELDS
        key = account.dev.publishable_key
        assert states[alice.stripe_id] == {
            "integrationId": alice.stripe_id,
            "app": "stripe",
            "name": "Stripe",
            "authType": "api_key",
            "installed": True,
            "installationId": installation_id,
            "status": "active",
            "fields": await catalogue_fields(client, key, "stripe"),
        }
        assert states[alice.zendesk_id] == {
            "integrationId": alice.zendesk_id,
            "app": "zendesk",
            "name": "Zendesk",
            "authType": "basic",
            "installed": False,
            "installationId": None,
            "status": None,
            "fields": await catalogue_fields(client, key, "zendesk"),
        }
        zendesk = get_app("zendesk")
        assert zendesk is not None
        assert {f["name"]: f["secret"] for f in states[alice.zendesk_id]["fields"]} == {
            field.name: field.secret for field in zendesk.fields
        }
        assert {f["name"]: f["secret"] for f in states[alice.stripe_id]["fields"]} == {
            "apiKey": True
        }
        assert states[alice.oauth_id]["authType"] == "oauth2"
        assert states[alice.oauth_id]["fields"] == []
        assert states[alice.oauth_id]["installed"] is False

    async def test_only_the_token_users_installations(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        bob = await second_user(client, alice)
        await sdk_install(client, bob, alice.stripe_id, {"apiKey": stripe_key()})
        body = (await client.get("/sdk/integrations", headers=alice.headers)).json()
        assert [(s["installed"], s["installationId"], s["status"]) for s in body["data"]] == [
            (False, None, None)
        ] * 3
        body = (await client.get("/sdk/integrations", headers=bob.headers)).json()
        assert sorted(s["installed"] for s in body["data"]) == [False, False, True]

    async def test_only_the_token_users_environment(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        prod = await sdk_user(client, account, account.prod)
        body = (await client.get("/sdk/integrations", headers=prod.headers)).json()
        assert {s["integrationId"] for s in body["data"]} == {
            prod.stripe_id,
            prod.zendesk_id,
            prod.oauth_id,
        }
        assert not {s["integrationId"] for s in body["data"]} & {alice.stripe_id}

    async def test_a_deleted_users_token_is_401(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        await client.delete(f"/users/{alice.user_id}", headers=bearer(account.dev.secret_key))
        response = await client.get("/sdk/integrations", headers=alice.headers)
        assert_problem(response, 401, "invalid_token")

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_user_token_only(client, account, "GET", "/sdk/integrations")


class TestSdkInstall:
    async def test_installs_for_the_token_user(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        api_key = stripe_key()
        response = await client.post(
            "/sdk/installations",
            json={"integrationId": alice.stripe_id, "data": {"apiKey": api_key}},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        assert api_key not in response.text
        body = response.json()
        assert set(body) == {"success", "installationId"}
        assert body["success"] is True
        key = bearer(account.dev.secret_key)
        installation = await client.get(f"/installations/{body['installationId']}", headers=key)
        assert installation.json()["userId"] == alice.user_id
        assert installation.json()["integrationId"] == alice.stripe_id
        credential = await client.get(
            f"/users/{alice.user_id}/credentials/{installation.json()['credentialId']}", headers=key
        )
        assert credential.json()["data"] == {"apiKey": api_key}

    async def test_installs_a_basic_app(self, client: httpx.AsyncClient, alice: SdkUser) -> None:
        data = {"subdomain": "acme", "email": "a@acme.example", "apiToken": "zd-token"}
        await sdk_install(client, alice, alice.zendesk_id, data)

    async def test_second_install_is_409_naming_the_first(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        first = await sdk_install(client, alice, alice.stripe_id, {"apiKey": stripe_key()})
        response = await client.post(
            "/sdk/installations",
            json={"integrationId": alice.stripe_id, "data": {"apiKey": stripe_key()}},
            headers=alice.headers,
        )
        assert assert_problem(response, 409, "already_installed")["installationId"] == first

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"integrationId": "{stripe}"}, id="missing data"),
            pytest.param({"data": {"apiKey": "sk_test_SECRET1"}}, id="missing integrationId"),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_SECRET1"}, "userId": "x"},
                id="unknown body field",
            ),
            pytest.param({"integrationId": "{stripe}", "data": {"apiKey": 1}}, id="wrong type"),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "sk_test_SECRET1", "x": "y"}},
                id="unknown data field",
            ),
            pytest.param({"integrationId": "{stripe}", "data": {}}, id="missing required field"),
            pytest.param(
                {"integrationId": "{stripe}", "data": {"apiKey": "SECRET1"}},
                id="value not matching the pattern",
            ),
            pytest.param({"integrationId": "{oauth}", "data": {}}, id="oauth2 integration"),
        ],
    )
    async def test_bad_bodies_are_422_and_install_nothing(
        self, client: httpx.AsyncClient, alice: SdkUser, body: dict[str, Any]
    ) -> None:
        ids = {"{stripe}": alice.stripe_id, "{oauth}": alice.oauth_id}
        if body.get("integrationId") in ids:
            body = {**body, "integrationId": ids[body["integrationId"]]}
        response = await client.post("/sdk/installations", json=body, headers=alice.headers)
        assert_problem(response, 422, "validation_error")
        assert "SECRET1" not in response.text
        states = (await client.get("/sdk/integrations", headers=alice.headers)).json()["data"]
        assert [s["installed"] for s in states] == [False] * 3

    async def test_another_environments_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account, alice: SdkUser
    ) -> None:
        prod = await sdk_user(client, account, account.prod)
        theirs = await sdk_user(client, other_account, other_account.dev)
        for integration_id in (
            prod.stripe_id,
            theirs.stripe_id,
            "int_00000000000000000000000000000000",
        ):
            response = await client.post(
                "/sdk/installations",
                json={"integrationId": integration_id, "data": {"apiKey": stripe_key()}},
                headers=alice.headers,
            )
            assert_problem(response, 404, "not_found")
        for user in (prod, theirs):
            response = await client.get("/installations", headers=bearer(user.env.secret_key))
            assert response.json()["data"] == []

    async def test_credentials(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        body = {"integrationId": alice.stripe_id, "data": {"apiKey": stripe_key()}}
        await assert_user_token_only(client, account, "POST", "/sdk/installations", body)
        states = (await client.get("/sdk/integrations", headers=alice.headers)).json()["data"]
        assert [s["installed"] for s in states] == [False] * 3


class TestSdkUninstall:
    async def test_uninstalls_the_users_own(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        path = f"/sdk/installations/{installation_id}"
        response = await client.delete(path, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"success": True}
        gone = await client.get(
            f"/installations/{installation_id}", headers=bearer(account.dev.secret_key)
        )
        assert_problem(gone, 404, "not_found")
        credentials = await client.get(
            f"/users/{alice.user_id}/credentials", headers=bearer(account.dev.secret_key)
        )
        assert credentials.json() == {"data": []}
        assert_problem(await client.delete(path, headers=alice.headers), 404, "not_found")

    async def test_another_users_installation_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account, alice: SdkUser
    ) -> None:
        bob = await second_user(client, alice)
        prod = await sdk_user(client, account, account.prod)
        theirs = await sdk_user(client, other_account, other_account.dev)
        victims = [
            (bob, await sdk_install(client, bob, bob.stripe_id, {"apiKey": stripe_key()})),
            (prod, await sdk_install(client, prod, prod.stripe_id, {"apiKey": stripe_key()})),
            (theirs, await sdk_install(client, theirs, theirs.stripe_id, {"apiKey": stripe_key()})),
        ]
        for _, installation_id in victims:
            response = await client.delete(
                f"/sdk/installations/{installation_id}", headers=alice.headers
            )
            assert_problem(response, 404, "not_found")
        for user, installation_id in victims:
            still = await client.get(
                f"/installations/{installation_id}", headers=bearer(user.env.secret_key)
            )
            assert still.status_code == 200

    async def test_credentials(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        await assert_user_token_only(
            client, account, "DELETE", f"/sdk/installations/{installation_id}"
        )
        still = await client.get(
            f"/installations/{installation_id}", headers=bearer(account.dev.secret_key)
        )
        assert still.status_code == 200


class TestSdkOAuthStart:
    async def test_answers_the_providers_url_with_state_and_pkce(
        self, client: httpx.AsyncClient, app: FastAPI, alice: SdkUser
    ) -> None:
        response = await client.post(f"/sdk/oauth/{alice.oauth_id}/start", headers=alice.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"authorizeUrl"}
        url = urlsplit(body["authorizeUrl"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PROVIDER}/authorize"
        query = parse_qs(url.query, strict_parsing=True)
        assert all(len(values) == 1 for values in query.values()), query
        params = {name: values[0] for name, values in query.items()}
        assert set(params) == {
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
        }
        assert params["response_type"] == "code"
        assert params["client_id"] == "cid"
        assert params["redirect_uri"] == "http://testserver/oauth/callback"
        assert params["scope"] == "read write"
        assert params["code_challenge_method"] == "S256"
        # S256: the base64url of a SHA-256 digest, without padding.
        assert len(base64.urlsafe_b64decode(params["code_challenge"] + "=")) == 32
        assert len(params["state"]) >= 32
        # The state is kept only as its digest, bound to this user and integration.
        async with app.state.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT user_id, integration_id, digest FROM oauth_states "
                         "WHERE integration_id = :id"),
                    {"id": alice.oauth_id},
                )
            ).all()  # fmt: skip
        assert [tuple(row) for row in rows] == [
            (alice.user_id, alice.oauth_id, digest(params["state"]))
        ]

    async def test_each_start_has_its_own_state_and_challenge(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        params = []
        for _ in range(2):
            response = await client.post(
                f"/sdk/oauth/{alice.oauth_id}/start", headers=alice.headers
            )
            query = parse_qs(urlsplit(response.json()["authorizeUrl"]).query)
            params.append((query["state"][0], query["code_challenge"][0]))
        assert params[0][0] != params[1][0]
        assert params[0][1] != params[1][1]

    async def test_a_catalogue_app_uses_its_url_and_default_scopes(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        github = get_app("github")
        assert github is not None
        created = await create_integration(
            client, account.admin, {"app": "github", "clientId": "gh-id", "clientSecret": "gh-s"}
        )
        response = await client.post(
            f"/sdk/oauth/{created['integrationId']}/start", headers=alice.headers
        )
        assert response.status_code == 200, response.text
        url = urlsplit(response.json()["authorizeUrl"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == str(github.authorize_url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert params["client_id"] == "gh-id"
        assert params["scope"] == github.scope_separator.join(github.default_scopes)
        assert params["redirect_uri"] == "http://testserver/oauth/callback"

    async def test_an_api_key_integration_is_422(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        for integration_id in (alice.stripe_id, alice.zendesk_id):
            response = await client.post(
                f"/sdk/oauth/{integration_id}/start", headers=alice.headers
            )
            assert_problem(response, 422, "validation_error")

    async def test_another_environments_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account, alice: SdkUser
    ) -> None:
        prod = await sdk_user(client, account, account.prod)
        theirs = await sdk_user(client, other_account, other_account.dev)
        for integration_id in (
            prod.oauth_id,
            theirs.oauth_id,
            "int_00000000000000000000000000000000",
        ):
            response = await client.post(
                f"/sdk/oauth/{integration_id}/start", headers=alice.headers
            )
            assert_problem(response, 404, "not_found")

    async def test_a_disabled_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        response = await client.patch(
            f"/admin/environments/development/integrations/{alice.oauth_id}",
            json={"enabled": False},
            headers=account.admin,
        )
        assert response.status_code == 200
        response = await client.post(f"/sdk/oauth/{alice.oauth_id}/start", headers=alice.headers)
        assert_problem(response, 404, "not_found")

    async def test_credentials(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        await assert_user_token_only(client, account, "POST", f"/sdk/oauth/{alice.oauth_id}/start")


class TestHeadlessAndSdkAgree:
    async def test_a_headless_install_shows_in_the_sdk(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        done = await install(
            client, account.dev.secret_key, alice.user_id, alice.stripe_id, {"apiKey": stripe_key()}
        )
        states = (await client.get("/sdk/integrations", headers=alice.headers)).json()["data"]
        stripe = next(s for s in states if s["integrationId"] == alice.stripe_id)
        assert (stripe["installed"], stripe["installationId"]) == (True, done["installationId"])
        response = await client.delete(
            f"/sdk/installations/{done['installationId']}", headers=alice.headers
        )
        assert response.json() == {"success": True}
