"""CSRF: every form route of the dashboard, taken from the app's own routes so that a new one
cannot be forgotten, refuses a post without this session's token, and changes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account
from tests.dashboard.helpers import (
    UI,
    csrf,
    dashboard_routes,
    get_page,
    parse,
    post_form,
    signed_in,
)
from tests.installations.helpers import create_integration, install, stripe_key
from tests.support import bearer

LOGIN = f"{UI}/login"  # its own double-submit token: tested in test_session


@dataclass
class World:
    """One of everything a form can act on, in the production environment."""

    key_id: str
    signing_key_id: str
    integration_id: str
    user_id: str
    installation_id: str

    def fill(self, path: str) -> str:
        values = {
            "env": "production",
            "key_id": self.key_id,
            "integration_id": self.integration_id,
            "user_ref": self.user_id,
            "installation_id": self.installation_id,
        }
        if "/signing-keys/" in path:
            values["key_id"] = self.signing_key_id
        for name, value in values.items():
            path = path.replace(f"{{{name}}}", value)
        assert "{" not in path, path
        return path


async def api(client: httpx.AsyncClient, account: Account, method: str, path: str) -> Any:
    response = await client.request(method, path, headers=account.admin)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def world(client: httpx.AsyncClient, account: Account) -> World:
    keys = await api(client, account, "GET", "/admin/environments/production/api-keys")
    signing = await client.post(
        "/admin/environments/production/signing-keys", json={}, headers=account.admin
    )
    integration = await create_integration(client, account.admin, {"app": "stripe"}, "production")
    key = account.prod.secret_key
    user = await client.post("/users", json={"username": "acme"}, headers=bearer(key))
    installed = await install(
        client, key, "acme", integration["integrationId"], {"apiKey": stripe_key()}
    )
    return World(
        key_id=next(k["id"] for k in keys["data"] if k["type"] == "secret"),
        signing_key_id=signing.json()["id"],
        integration_id=integration["integrationId"],
        user_id=user.json()["userId"],
        installation_id=installed["installationId"],
    )


def form_routes(app: FastAPI) -> list[str]:
    return [path for path in dashboard_routes(app, "POST") if path != LOGIN]


async def snapshot(client: httpx.AsyncClient, account: Account, world: World) -> dict[str, Any]:
    """What any of the forms could change."""
    env = "/admin/environments/production"
    keys = await api(client, account, "GET", f"{env}/api-keys")
    for key in keys["data"]:
        del key["lastUsedAt"]  # the snapshot's own reads with the secret key set it
    return {
        "keys": keys,
        "signing": await api(client, account, "GET", f"{env}/signing-keys"),
        "integrations": await api(client, account, "GET", f"{env}/integrations"),
        "account": await api(client, account, "GET", "/admin/account"),
        "user": (
            await client.get(f"/users/{world.user_id}", headers=bearer(account.prod.secret_key))
        ).json(),
        "installation": (
            await client.get(
                f"/installations/{world.installation_id}",
                headers=bearer(account.prod.secret_key),
            )
        ).json(),
    }


class TestEveryFormRoute:
    def test_the_form_routes_are_all_found(self, app: FastAPI) -> None:
        routes = form_routes(app)
        # logout, keys (create, roll, revoke), signing keys (generate, import, revoke),
        # integrations (create, update, enable, disable, delete), users (delete, uninstall),
        # settings.
        assert len(routes) == 15, routes

    @pytest.mark.parametrize(
        "token",
        [None, "", "wrong", "0" * 64],
        ids=["missing", "empty", "wrong", "wrong-length-right"],
    )
    async def test_a_post_without_this_sessions_token_is_refused(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
        world: World,
        token: str | None,
    ) -> None:
        before = await snapshot(client, account, world)
        for route in form_routes(app):
            path = world.fill(route)
            data = {"type": "secret", "gracePeriodSeconds": "0", "name": "x"}
            if token is not None:
                data["csrf_token"] = token
            response = await client.post(path, data=data, headers=signed_in(account))
            assert response.status_code == 403, (path, response.status_code)
            assert response.headers["content-type"].startswith("text/html")
            assert "This form could not be accepted" in response.text
            assert "Nothing was changed" in response.text
        assert await snapshot(client, account, world) == before

    async def test_another_sessions_token_is_refused(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
        other_account: Account,
        world: World,
    ) -> None:
        before = await snapshot(client, account, world)
        for route in form_routes(app):
            response = await client.post(
                world.fill(route),
                data={"csrf_token": csrf(other_account)},
                headers=signed_in(account),
            )
            assert response.status_code == 403, route
        assert await snapshot(client, account, world) == before

    async def test_a_json_body_is_no_way_around_the_token(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, world: World
    ) -> None:
        for route in form_routes(app):
            response = await client.post(
                world.fill(route), json={"type": "secret"}, headers=signed_in(account)
            )
            assert response.status_code == 403, route

    async def test_the_token_is_accepted_where_it_belongs(
        self, client: httpx.AsyncClient, account: Account, world: World
    ) -> None:
        response = await post_form(
            client, account, f"{UI}/production/api-keys/{world.key_id}/revoke"
        )
        assert response.status_code == 303


PAGES = [
    "api-keys",
    "api-keys/{key_id}/roll",
    "signing-keys",
    "integrations",
    "integrations/new?app=github",
    "integrations/{integration_id}",
    "users",
    "users/{user_ref}",
    "settings",
    "audit-log",
]


class TestEveryForm:
    async def test_every_post_form_carries_the_token_and_posts_to_a_form_route(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, world: World
    ) -> None:
        patterns = [
            re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route) + "$")
            for route in form_routes(app)
        ]
        seen = set()
        pages = [*PAGES, "disable", "integrations", "integrations/{integration_id}"]
        for page in pages:
            if page == "disable":  # an enabled integration offers Disable, a disabled one Enable
                patched = await client.patch(
                    f"/admin/environments/production/integrations/{world.integration_id}",
                    json={"enabled": False},
                    headers=account.admin,
                )
                assert patched.status_code == 200
                continue
            html = (await get_page(client, account, world.fill(f"{UI}/{{env}}/{page}"))).text
            forms = [form for form in parse(html).forms if form["method"] == "post"]
            assert forms, page
            for form in forms:
                assert form["inputs"].get("csrf_token") == csrf(account), (page, form)
                matching = [p.pattern for p in patterns if p.match(form["action"])]
                assert matching, (page, form["action"])
                seen.update(matching)
        # Every form route is reachable from a page, and each of those forms is protected.
        assert len(seen) == len(patterns)
