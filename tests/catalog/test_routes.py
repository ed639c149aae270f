"""GET /apps and the admin integrations CRUD: shapes, the write-only client secret, the
credential each route takes, isolation between environments and accounts, and bad input."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Account
from tests.installations.helpers import (
    PROVIDER,
    create_integration,
    custom_oauth2,
    install,
    integrations_path,
    stripe_key,
)
from tests.support import (
    api_keys_of,
    assert_admin_only,
    assert_problem,
    bearer,
    mutate,
    rfc3339_utc,
)
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.catalog.apps import all_apps, get_app
from tether.catalog.models import Integration
from tether.catalog.service import oauth_client

INTEGRATION_FIELDS = {
    "integrationId",
    "app",
    "name",
    "authType",
    "clientId",
    "hasClientSecret",
    "scopes",
    "authorizeUrl",
    "tokenUrl",
    "redirectUri",
    "enabled",
    "createdAt",
    "updatedAt",
}
REDIRECT_URI = "http://testserver/oauth/callback"


def client_secret() -> str:
    return f"client-secret-{secrets.token_hex(16)}"


async def user_token(client: httpx.AsyncClient, account: Account) -> str:
    await create_user(client, account.dev.secret_key, "token-holder")
    return (await mint(client, account.dev.secret_key, "token-holder"))["token"]


async def assert_admin_route(
    client: httpx.AsyncClient, account: Account, method: str, path: str, json: Any = None
) -> None:
    """401 without a credential; 403 for every API key and for a user token."""
    await assert_admin_only(client, method, path, api_keys_of(account), json=json)
    token = await user_token(client, account)
    response = await client.request(method, path, json=json, headers=bearer(token))
    assert_problem(response, 403, "insufficient_scope")


class TestListApps:
    @pytest.mark.parametrize("key_type", ["secret", "publishable"])
    async def test_the_catalogue_with_either_key(
        self, client: httpx.AsyncClient, account: Account, key_type: str
    ) -> None:
        key = account.dev.secret_key if key_type == "secret" else account.dev.publishable_key
        response = await client.get("/apps", headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data"}
        apps = body["data"]
        assert [app["app"] for app in apps] == [app.app for app in all_apps()]
        assert len([app for app in apps if app["app"] != "custom_oauth2"]) >= 10
        assert "custom_oauth2" in {app["app"] for app in apps}
        for app in apps:
            # Only what a form needs: no OAuth endpoint, client or docs detail.
            assert set(app) == {"app", "name", "authType", "fields"}, app
            assert app["authType"] in {"oauth2", "api_key", "basic"}
            if app["authType"] == "oauth2":
                assert app["fields"] == []
            else:
                assert any(field["secret"] for field in app["fields"]), app
            for field in app["fields"]:
                assert set(field) == {
                    "name",
                    "label",
                    "secret",
                    "required",
                    "placeholder",
                    "pattern",
                }

    async def test_stripe_entry(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get("/apps", headers={"x-api-key": account.prod.publishable_key})
        stripe = next(app for app in response.json()["data"] if app["app"] == "stripe")
        catalogued = get_app("stripe")
        assert catalogued is not None
        assert stripe["name"] == catalogued.name
        assert stripe["authType"] == "api_key"
        [field] = stripe["fields"]
        assert (field["name"], field["secret"], field["required"]) == ("apiKey", True, True)
        assert field["pattern"] == catalogued.fields[0].pattern

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/apps")
        assert_problem(response, 401, "missing_credentials")

    async def test_admin_token_and_user_token_are_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        token = await user_token(client, account)
        for headers in (account.admin, bearer(token)):
            assert_problem(await client.get("/apps", headers=headers), 403, "insufficient_scope")

    async def test_invalid_key_is_401(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get("/apps", headers=bearer(mutate(account.dev.publishable_key)))
        assert_problem(response, 401, "invalid_api_key")


class TestCreateIntegration:
    async def test_api_key_app(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(
            integrations_path(), json={"app": "stripe"}, headers=account.admin
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == INTEGRATION_FIELDS
        assert body["integrationId"].startswith("int_")
        assert rfc3339_utc(body["createdAt"]) <= rfc3339_utc(body["updatedAt"])
        del body["integrationId"], body["createdAt"], body["updatedAt"]
        assert body == {
            "app": "stripe",
            "name": "Stripe",
            "authType": "api_key",
            "clientId": None,
            "hasClientSecret": False,
            "scopes": [],
            "authorizeUrl": None,
            "tokenUrl": None,
            "redirectUri": None,
            "enabled": True,
        }

    async def test_basic_app_with_a_name(self, client: httpx.AsyncClient, account: Account) -> None:
        body = await create_integration(
            client, account.admin, {"app": "zendesk", "name": "Support desk"}
        )
        assert (body["app"], body["name"], body["authType"]) == ("zendesk", "Support desk", "basic")
        assert body["redirectUri"] is None

    async def test_catalogue_oauth2_app(self, client: httpx.AsyncClient, account: Account) -> None:
        secret = client_secret()
        response = await client.post(
            integrations_path(),
            json={"app": "slack", "clientId": "slack-client", "clientSecret": secret},
            headers=account.admin,
        )
        assert response.status_code == 201, response.text
        assert secret not in response.text
        body = response.json()
        slack = get_app("slack")
        assert slack is not None
        assert body["authType"] == "oauth2"
        assert body["clientId"] == "slack-client"
        assert body["hasClientSecret"] is True
        assert body["scopes"] == list(slack.default_scopes)
        assert body["authorizeUrl"] == str(slack.authorize_url)
        assert body["tokenUrl"] == str(slack.token_url)
        assert body["redirectUri"] == REDIRECT_URI

    async def test_custom_oauth2(self, client: httpx.AsyncClient, account: Account) -> None:
        secret = client_secret()
        response = await client.post(
            integrations_path(),
            json=custom_oauth2(secret, name="Acme", scopes=["read", "write"]),
            headers=account.admin,
        )
        assert response.status_code == 201, response.text
        assert secret not in response.text
        body = response.json()
        assert body["name"] == "Acme"
        assert body["authorizeUrl"] == f"{PROVIDER}/authorize"
        assert body["tokenUrl"] == f"{PROVIDER}/token"
        assert body["scopes"] == ["read", "write"]
        assert body["hasClientSecret"] is True
        assert body["redirectUri"] == REDIRECT_URI

    async def test_the_secret_is_stored_encrypted_and_decrypts(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        secret = client_secret()
        body = await create_integration(client, account.admin, custom_oauth2(secret))
        async with app.state.sessionmaker() as session:
            integration = await session.get(Integration, body["integrationId"])
        assert integration is not None
        assert integration.client_secret_ciphertext is not None
        assert secret not in integration.client_secret_ciphertext
        assert oauth_client(app.state.keyring, integration).client_secret == secret

    async def test_environment_by_id_or_name(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        by_id = await create_integration(client, account.admin, {"app": "stripe"}, account.prod.id)
        by_name = await create_integration(client, account.admin, {"app": "stripe"}, "production")
        listed = await client.get(integrations_path("production"), headers=account.admin)
        ids = [i["integrationId"] for i in listed.json()["data"]]
        assert sorted(ids) == sorted([by_id["integrationId"], by_name["integrationId"]])

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({}, id="missing app"),
            pytest.param({"app": ""}, id="empty app"),
            pytest.param({"app": 7}, id="app not a string"),
            pytest.param({"app": "myspace"}, id="unknown app"),
            pytest.param({"app": "stripe", "environmentId": "env_x"}, id="unknown field"),
            pytest.param({"app": "stripe", "name": ""}, id="empty name"),
            pytest.param({"app": "stripe", "name": ["x"]}, id="name not a string"),
            pytest.param({"app": "slack", "client_id": "x", "clientSecret": "y"}, id="snake case"),
            pytest.param({"app": "slack", "clientSecret": "SECRET"}, id="oauth2 without clientId"),
            pytest.param({"app": "slack", "clientId": "x"}, id="oauth2 without clientSecret"),
            pytest.param(
                {"app": "slack", "clientId": "x", "clientSecret": "SECRET", "scopes": "read"},
                id="scopes not a list",
            ),
            pytest.param(
                {"app": "slack", "clientId": "x", "clientSecret": "SECRET", "scopes": [""]},
                id="empty scope",
            ),
            pytest.param(
                {"app": "slack", "clientId": 5, "clientSecret": "SECRET"}, id="clientId a number"
            ),
            pytest.param(
                {
                    "app": "slack",
                    "clientId": "x",
                    "clientSecret": "SECRET",
                    "authorizeUrl": f"{PROVIDER}/authorize",
                    "tokenUrl": f"{PROVIDER}/token",
                },
                id="authorizeUrl on a catalogue oauth2 app",
            ),
            pytest.param(
                {
                    "app": "slack",
                    "clientId": "x",
                    "clientSecret": "SECRET",
                    "tokenUrl": f"{PROVIDER}/token",
                },
                id="tokenUrl on a catalogue oauth2 app",
            ),
            pytest.param(custom_oauth2("SECRET", authorizeUrl=None), id="custom no authorizeUrl"),
            pytest.param(custom_oauth2("SECRET", tokenUrl=None), id="custom no tokenUrl"),
            pytest.param(custom_oauth2("SECRET", clientId=None), id="custom no clientId"),
            pytest.param(custom_oauth2("SECRET", clientSecret=None), id="custom no clientSecret"),
            pytest.param(
                custom_oauth2("SECRET", authorizeUrl="http://provider.example/authorize"),
                id="custom http authorizeUrl",
            ),
            pytest.param(
                custom_oauth2("SECRET", tokenUrl="http://provider.example/token"),
                id="custom http tokenUrl",
            ),
            pytest.param(
                custom_oauth2("SECRET", authorizeUrl="https:///authorize"), id="custom no host"
            ),
            pytest.param(
                custom_oauth2("SECRET", tokenUrl="https://provider.example/token#x"),
                id="custom URL with a fragment",
            ),
            pytest.param(
                custom_oauth2("SECRET", authorizeUrl="javascript:alert(1)"),
                id="custom javascript URL",
            ),
            pytest.param({"app": "stripe", "clientId": "x"}, id="clientId on api_key app"),
            pytest.param({"app": "stripe", "clientSecret": "SECRET"}, id="secret on api_key app"),
            pytest.param({"app": "stripe", "scopes": ["read"]}, id="scopes on api_key app"),
            pytest.param(
                {"app": "zendesk", "authorizeUrl": f"{PROVIDER}/authorize"},
                id="authorizeUrl on basic app",
            ),
            pytest.param(
                {"app": "stripe", "tokenUrl": f"{PROVIDER}/token"}, id="tokenUrl on api_key app"
            ),
        ],
    )
    async def test_bad_bodies_are_422_and_create_nothing(
        self, client: httpx.AsyncClient, account: Account, body: dict[str, Any]
    ) -> None:
        body = {k: v for k, v in body.items() if v is not None}
        response = await client.post(integrations_path(), json=body, headers=account.admin)
        assert_problem(response, 422, "validation_error")
        assert "SECRET" not in response.text
        listed = await client.get(integrations_path(), headers=account.admin)
        assert listed.json() == {"data": []}

    async def test_not_json_is_422(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(
            integrations_path(),
            content=b"app=stripe",
            headers={**account.admin, "content-type": "application/x-www-form-urlencoded"},
        )
        assert_problem(response, 422, "validation_error")

    async def test_another_accounts_environment_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        for env in (other_account.dev.id, other_account.prod.id, "staging"):
            response = await client.post(
                integrations_path(env), json={"app": "stripe"}, headers=account.admin
            )
            assert_problem(response, 404, "not_found")
        listed = await client.get(integrations_path(), headers=other_account.admin)
        assert listed.json() == {"data": []}

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_route(client, account, "POST", integrations_path(), {"app": "stripe"})
        listed = await client.get(integrations_path(), headers=account.admin)
        assert listed.json() == {"data": []}


class TestListIntegrations:
    async def test_lists_this_environments_integrations_without_secrets(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        secret = client_secret()
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        custom = await create_integration(client, account.admin, custom_oauth2(secret))
        await create_integration(client, account.admin, {"app": "zendesk"}, "production")
        response = await client.get(integrations_path(), headers=account.admin)
        assert response.status_code == 200
        assert secret not in response.text
        body = response.json()
        assert set(body) == {"data"}
        assert sorted(body["data"], key=lambda i: i["integrationId"]) == sorted(
            [stripe, custom], key=lambda i: i["integrationId"]
        )

    async def test_another_accounts_environment_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        await create_integration(client, other_account.admin, {"app": "stripe"})
        response = await client.get(integrations_path(other_account.dev.id), headers=account.admin)
        assert_problem(response, 404, "not_found")

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_route(client, account, "GET", integrations_path())


class TestGetIntegration:
    async def test_answers_the_integration_without_its_secret(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        secret = client_secret()
        created = await create_integration(client, account.admin, custom_oauth2(secret))
        response = await client.get(
            integrations_path(integration_id=created["integrationId"]), headers=account.admin
        )
        assert response.status_code == 200
        assert secret not in response.text
        assert response.json() == created

    async def test_another_environments_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        prod = await create_integration(client, account.admin, {"app": "stripe"}, "production")
        theirs = await create_integration(client, other_account.admin, {"app": "stripe"})
        for path in (
            integrations_path("development", prod["integrationId"]),
            integrations_path("development", theirs["integrationId"]),
            integrations_path(other_account.dev.id, theirs["integrationId"]),
            integrations_path("development", "int_00000000000000000000000000000000"),
        ):
            assert_problem(await client.get(path, headers=account.admin), 404, "not_found")

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        created = await create_integration(client, account.admin, {"app": "stripe"})
        path = integrations_path(integration_id=created["integrationId"])
        await assert_admin_route(client, account, "GET", path)


class TestUpdateIntegration:
    async def test_changes_name_scopes_and_enabled(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(client, account.admin, custom_oauth2())
        path = integrations_path(integration_id=created["integrationId"])
        response = await client.patch(
            path,
            json={"name": "Renamed", "scopes": ["read", "admin"], "enabled": False},
            headers=account.admin,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == INTEGRATION_FIELDS
        assert (body["name"], body["scopes"], body["enabled"]) == (
            "Renamed",
            ["read", "admin"],
            False,
        )
        assert body["clientId"] == "cid"
        assert body["hasClientSecret"] is True
        assert rfc3339_utc(body["updatedAt"]) >= rfc3339_utc(created["updatedAt"])
        assert (await client.get(path, headers=account.admin)).json() == body

    async def test_null_scopes_means_the_apps_defaults(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(
            client,
            account.admin,
            {"app": "github", "clientId": "gh", "clientSecret": "s", "scopes": ["repo"]},
        )
        response = await client.patch(
            integrations_path(integration_id=created["integrationId"]),
            json={"scopes": None},
            headers=account.admin,
        )
        github = get_app("github")
        assert github is not None
        assert response.json()["scopes"] == list(github.default_scopes)

    async def test_a_new_client_secret_replaces_the_old_and_is_never_shown(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        old, new = client_secret(), client_secret()
        created = await create_integration(client, account.admin, custom_oauth2(old))
        path = integrations_path(integration_id=created["integrationId"])
        response = await client.patch(path, json={"clientSecret": new}, headers=account.admin)
        assert response.status_code == 200, response.text
        assert new not in response.text
        assert old not in response.text
        assert response.json()["hasClientSecret"] is True
        async with app.state.sessionmaker() as session:
            integration = await session.scalar(
                select(Integration).where(Integration.id == created["integrationId"])
            )
        assert integration is not None
        assert oauth_client(app.state.keyring, integration).client_secret == new

    async def test_custom_urls_can_change(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(client, account.admin, custom_oauth2())
        response = await client.patch(
            integrations_path(integration_id=created["integrationId"]),
            json={
                "authorizeUrl": "https://other.example/auth",
                "tokenUrl": "https://other.example/t",
            },
            headers=account.admin,
        )
        assert response.status_code == 200, response.text
        assert response.json()["authorizeUrl"] == "https://other.example/auth"
        assert response.json()["tokenUrl"] == "https://other.example/t"

    @pytest.mark.parametrize(
        ("slug", "body"),
        [
            pytest.param("stripe", {"app": "zendesk"}, id="app cannot change"),
            pytest.param("stripe", {"environmentId": "env_x"}, id="unknown field"),
            pytest.param("stripe", {"enabled": "maybe"}, id="enabled not a boolean"),
            pytest.param("stripe", {"name": ""}, id="empty name"),
            pytest.param("stripe", {"name": None}, id="null name"),
            pytest.param("stripe", {"enabled": None}, id="null enabled"),
            pytest.param("stripe", {"clientSecret": None}, id="null clientSecret on api_key"),
            pytest.param("stripe", {"clientId": "x"}, id="clientId on api_key app"),
            pytest.param("stripe", {"clientSecret": "SECRET"}, id="secret on api_key app"),
            pytest.param("stripe", {"scopes": ["read"]}, id="scopes on api_key app"),
            pytest.param(
                "zendesk", {"authorizeUrl": f"{PROVIDER}/a"}, id="authorizeUrl on basic app"
            ),
            pytest.param("custom_oauth2", {"clientId": None}, id="removing the clientId"),
            pytest.param("custom_oauth2", {"clientSecret": None}, id="removing the secret"),
            pytest.param("custom_oauth2", {"authorizeUrl": None}, id="removing authorizeUrl"),
            pytest.param(
                "custom_oauth2", {"tokenUrl": "http://provider.example/t"}, id="http tokenUrl"
            ),
            pytest.param(
                "custom_oauth2",
                {"authorizeUrl": "http://provider.example/a"},
                id="http authorizeUrl",
            ),
            pytest.param("custom_oauth2", {"scopes": "read"}, id="scopes not a list"),
            pytest.param("slack", {"authorizeUrl": f"{PROVIDER}/a"}, id="authorizeUrl on slack"),
        ],
    )
    async def test_bad_bodies_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, account: Account, slug: str, body: dict[str, Any]
    ) -> None:
        created_body = (
            custom_oauth2()
            if slug == "custom_oauth2"
            else {"app": "slack", "clientId": "c", "clientSecret": "s"}
            if slug == "slack"
            else {"app": slug}
        )
        created = await create_integration(client, account.admin, created_body)
        path = integrations_path(integration_id=created["integrationId"])
        response = await client.patch(path, json=body, headers=account.admin)
        assert_problem(response, 422, "validation_error")
        assert "SECRET" not in response.text
        assert (await client.get(path, headers=account.admin)).json() == created

    async def test_another_environments_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        prod = await create_integration(client, account.admin, {"app": "stripe"}, "production")
        theirs = await create_integration(client, other_account.admin, {"app": "stripe"})
        for path in (
            integrations_path("development", prod["integrationId"]),
            integrations_path("development", theirs["integrationId"]),
            integrations_path(other_account.dev.id, theirs["integrationId"]),
        ):
            response = await client.patch(path, json={"name": "Hijacked"}, headers=account.admin)
            assert_problem(response, 404, "not_found")
        for owner, created in ((account, prod), (other_account, theirs)):
            path = integrations_path("production" if created is prod else "development")
            fetched = await client.get(f"{path}/{created['integrationId']}", headers=owner.admin)
            assert fetched.json()["name"] == "Stripe"

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        created = await create_integration(client, account.admin, {"app": "stripe"})
        path = integrations_path(integration_id=created["integrationId"])
        await assert_admin_route(client, account, "PATCH", path, {"name": "x"})
        assert (await client.get(path, headers=account.admin)).json()["name"] == "Stripe"


class TestDeleteIntegration:
    async def test_deletes_with_its_installations_and_credentials(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.dev.secret_key
        created = await create_integration(client, account.admin, {"app": "stripe"})
        user = await create_user(client, key, "installer")
        installed = await install(
            client, key, user["userId"], created["integrationId"], {"apiKey": stripe_key()}
        )
        path = integrations_path(integration_id=created["integrationId"])
        response = await client.delete(path, headers=account.admin)
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await client.get(path, headers=account.admin), 404, "not_found")
        gone = await client.get(
            f"/installations/{installed['installationId']}", headers=bearer(key)
        )
        assert_problem(gone, 404, "not_found")
        credential = await client.get(
            f"/users/{user['userId']}/credentials/{installed['credentialId']}", headers=bearer(key)
        )
        assert_problem(credential, 404, "not_found")
        listed = await client.get(f"/users/{user['userId']}/credentials", headers=bearer(key))
        assert listed.json() == {"data": []}

    async def test_another_environments_integration_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        prod = await create_integration(client, account.admin, {"app": "stripe"}, "production")
        theirs = await create_integration(client, other_account.admin, {"app": "stripe"})
        for path in (
            integrations_path("development", prod["integrationId"]),
            integrations_path("development", theirs["integrationId"]),
            integrations_path(other_account.dev.id, theirs["integrationId"]),
        ):
            assert_problem(await client.delete(path, headers=account.admin), 404, "not_found")
        still = await client.get(
            integrations_path("production", prod["integrationId"]), headers=account.admin
        )
        assert still.status_code == 200
        still = await client.get(
            integrations_path(integration_id=theirs["integrationId"]), headers=other_account.admin
        )
        assert still.status_code == 200

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        created = await create_integration(client, account.admin, {"app": "stripe"})
        path = integrations_path(integration_id=created["integrationId"])
        await assert_admin_route(client, account, "DELETE", path)
        assert (await client.get(path, headers=account.admin)).status_code == 200
