"""The admin API of an account: login and logout, the account, and environment settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import PASSWORD, Account
from tests.support import (
    api_keys_of,
    assert_admin_only,
    assert_problem,
    bearer,
    mutate,
    rfc3339_utc,
)
from tether.accounts.models import AdminSession
from tether.db.base import utcnow
from tether.security.keys import digest

ENVIRONMENT_FIELDS = {
    "environmentId",
    "name",
    "requireTenantToken",
    "userTokenTtlSeconds",
    "tenantTokenMaxLifetimeSeconds",
    "allowedOrigins",
    "rateLimitPerMinute",
    "createdAt",
}


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/admin/login", json={"email": email, "password": password})


class TestLogin:
    async def test_returns_a_token_and_its_expiry(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        before = utcnow()
        response = await login(client, account.email, PASSWORD)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"token", "expiresAt"}
        assert body["token"].startswith("tether_adm_")
        expires_at = rfc3339_utc(body["expiresAt"])
        assert before + timedelta(hours=12) <= expires_at <= utcnow() + timedelta(hours=12)
        # The token is a secret, like a key: no cache may keep it.
        assert response.headers["cache-control"] == "no-store"

    async def test_the_token_opens_the_admin_api(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        token = (await login(client, account.email, PASSWORD)).json()["token"]
        response = await client.get("/admin/account", headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["accountId"] == account.id

    async def test_each_login_is_a_new_token(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        first = (await login(client, account.email, PASSWORD)).json()["token"]
        second = (await login(client, account.email, PASSWORD)).json()["token"]
        assert first != second != account.admin_token

    @pytest.mark.parametrize("transform", [str.upper, str.title, lambda e: f"  {e}  "])
    async def test_email_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, account: Account, transform: Any
    ) -> None:
        response = await login(client, transform(account.email), PASSWORD)
        assert response.status_code == 200, response.text

    async def test_wrong_password_and_unknown_email_are_the_same_401(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        wrong_password = await login(client, account.email, PASSWORD + "!")
        unknown_email = await login(client, "nobody-" + account.email, PASSWORD)
        bodies = []
        for response in (wrong_password, unknown_email):
            body = assert_problem(response, 401, "invalid_credentials")
            del body["requestId"]
            bodies.append(body)
        assert bodies[0] == bodies[1]
        assert wrong_password.headers["content-length"] == unknown_email.headers["content-length"]

    async def test_password_is_case_sensitive(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await login(client, account.email, PASSWORD.upper())
        assert_problem(response, 401, "invalid_credentials")

    async def test_the_password_never_appears_in_the_error(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/admin/login", json={"email": account.email, "password": PASSWORD, "extra": 1}
        )
        assert_problem(response, 422, "validation_error")
        assert PASSWORD not in response.text

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({}, ["body", "email"]),
            ({"email": "a@example.com"}, ["body", "password"]),
            ({"email": "a@example.com", "password": ""}, ["body", "password"]),
            ({"email": "a@example.com", "password": None}, ["body", "password"]),
            ({"email": None, "password": "x"}, ["body", "email"]),
            ({"email": 42, "password": "x"}, ["body", "email"]),
            ({"email": "a@example.com", "password": ["x"]}, ["body", "password"]),
            (
                {"email": "a@example.com", "password": "x", "accountId": "acc"},
                ["body", "accountId"],
            ),
            ([], ["body"]),
        ],
    )
    async def test_bad_bodies_are_422(
        self, client: httpx.AsyncClient, body: Any, loc: list[str]
    ) -> None:
        response = await client.post("/admin/login", json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert loc in [error["loc"] for error in problem["errors"]]

    async def test_a_body_that_is_not_json_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/admin/login", content=b"email=a&password=b", headers={"content-type": "text/plain"}
        )
        assert_problem(response, 422, "validation_error")


class TestAdminToken:
    async def test_logout_revokes_the_token(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post("/admin/logout", headers=account.admin)
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(
            await client.get("/admin/account", headers=account.admin), 401, "invalid_token"
        )
        assert_problem(
            await client.post("/admin/logout", headers=account.admin), 401, "invalid_token"
        )

    async def test_logout_leaves_other_sessions_alone(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        other = (await login(client, account.email, PASSWORD)).json()["token"]
        assert (await client.post("/admin/logout", headers=account.admin)).status_code == 204
        assert (await client.get("/admin/account", headers=bearer(other))).status_code == 200

    async def test_logout_needs_an_admin_token(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await assert_admin_only(client, "POST", "/admin/logout", api_keys_of(account))
        # None of those calls logged the real session out.
        assert (await client.get("/admin/account", headers=account.admin)).status_code == 200

    async def test_an_expired_session_is_token_expired(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        async with sessionmaker() as session:
            result = await session.execute(
                update(AdminSession)
                .where(AdminSession.digest == digest(account.admin_token))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            assert result.rowcount == 1  # type: ignore[attr-defined]
            await session.commit()
        response = await client.get("/admin/account", headers=account.admin)
        assert_problem(response, 401, "token_expired")

    async def test_a_token_with_one_character_changed_is_invalid(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/admin/account", headers=bearer(mutate(account.admin_token)))
        assert_problem(response, 401, "invalid_token")

    async def test_a_well_formed_unknown_token_is_invalid(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        from tether.security.keys import generate_admin_token

        response = await client.get("/admin/account", headers=bearer(generate_admin_token()))
        assert_problem(response, 401, "invalid_token")

    async def test_the_token_is_accepted_in_any_case_of_the_scheme(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for scheme in ("bearer", "BEARER", "Bearer"):
            headers = {"Authorization": f"{scheme} {account.admin_token}"}
            assert (await client.get("/admin/account", headers=headers)).status_code == 200


class TestGetAccount:
    async def test_returns_the_account_and_both_environments(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/admin/account", headers=account.admin)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"accountId", "name", "createdAt", "environments"}
        assert body["accountId"] == account.id
        assert body["name"] == "Test Co"
        rfc3339_utc(body["createdAt"])
        environments = {env["name"]: env for env in body["environments"]}
        assert set(environments) == {"development", "production"}
        assert environments["development"]["environmentId"] == account.dev.id
        assert environments["production"]["environmentId"] == account.prod.id
        for env in environments.values():
            assert set(env) == ENVIRONMENT_FIELDS
            assert env["requireTenantToken"] is True
            assert env["userTokenTtlSeconds"] == 1800
            assert env["tenantTokenMaxLifetimeSeconds"] == 3600
            assert env["allowedOrigins"] == []
            rfc3339_utc(env["createdAt"])

    async def test_is_served_under_a_version_prefix(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/2024-03/admin/account", headers=account.admin)
        assert response.status_code == 200
        assert response.json()["accountId"] == account.id

    async def test_shows_only_the_callers_account(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        mine = (await client.get("/admin/account", headers=account.admin)).json()
        theirs = (await client.get("/admin/account", headers=other_account.admin)).json()
        assert mine["accountId"] == account.id
        assert theirs["accountId"] == other_account.id
        mine_ids = {env["environmentId"] for env in mine["environments"]}
        their_ids = {env["environmentId"] for env in theirs["environments"]}
        assert not mine_ids & their_ids

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_only(client, "GET", "/admin/account", api_keys_of(account))


# Each bad body, and where its error must point. A null is refused as a whole body ("settings
# cannot be null"): a null would otherwise silently mean "leave unchanged".
BAD_PATCHES: list[tuple[Any, list[str]]] = [
    ({"userTokenTtlSeconds": 0}, ["body", "userTokenTtlSeconds"]),
    ({"userTokenTtlSeconds": 86401}, ["body", "userTokenTtlSeconds"]),
    ({"userTokenTtlSeconds": -5}, ["body", "userTokenTtlSeconds"]),
    ({"userTokenTtlSeconds": 1.5}, ["body", "userTokenTtlSeconds"]),
    ({"userTokenTtlSeconds": "soon"}, ["body", "userTokenTtlSeconds"]),
    ({"userTokenTtlSeconds": None}, ["body"]),
    ({"requireTenantToken": "maybe"}, ["body", "requireTenantToken"]),
    ({"requireTenantToken": [True]}, ["body", "requireTenantToken"]),
    ({"requireTenantToken": None}, ["body"]),
    ({"tenantTokenMaxLifetimeSeconds": 59}, ["body", "tenantTokenMaxLifetimeSeconds"]),
    ({"tenantTokenMaxLifetimeSeconds": 86401}, ["body", "tenantTokenMaxLifetimeSeconds"]),
    ({"allowedOrigins": None}, ["body"]),
    ({"allowedOrigins": "https://x.com"}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": [42]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["not a url"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com/path"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com?q=1"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com/#top"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["ftp://x.com"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["javascript:alert(1)"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["x.com"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://user@x.com"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://:secret@x.com"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com:abc"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com:99999"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x .com"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://ok.example", "not a url"]}, ["body", "allowedOrigins"]),
    ({"allowedOrigins": ["https://x.com"] * 101}, ["body", "allowedOrigins"]),
    ({"environmentId": "env_x"}, ["body", "environmentId"]),
    ({"name": "staging"}, ["body", "name"]),
    ({"accountId": "acc_x"}, ["body", "accountId"]),
    ({"require_tenant_token": False}, ["body", "require_tenant_token"]),
    ([], ["body"]),
    ("requireTenantToken", ["body"]),
]


class TestUpdateEnvironment:
    async def test_changes_the_settings_it_is_given(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.patch(
            "/admin/environments/production",
            json={
                "requireTenantToken": False,
                "userTokenTtlSeconds": 600,
                "allowedOrigins": ["https://App.Example.com/", "http://localhost:3000"],
            },
            headers=account.admin,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == ENVIRONMENT_FIELDS
        assert body["environmentId"] == account.prod.id
        assert body["name"] == "production"
        assert body["requireTenantToken"] is False
        assert body["userTokenTtlSeconds"] == 600
        assert body["tenantTokenMaxLifetimeSeconds"] == 3600
        assert body["allowedOrigins"] == ["https://app.example.com", "http://localhost:3000"]

        stored = (await client.get("/admin/account", headers=account.admin)).json()
        environments = {env["name"]: env for env in stored["environments"]}
        assert environments["production"] == body
        # The other environment is untouched.
        assert environments["development"]["requireTenantToken"] is True
        assert environments["development"]["userTokenTtlSeconds"] == 1800
        assert environments["development"]["allowedOrigins"] == []

    async def test_leaves_out_what_it_is_not_given(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        path = f"/admin/environments/{account.dev.id}"
        first = await client.patch(path, json={"userTokenTtlSeconds": 60}, headers=account.admin)
        assert first.status_code == 200
        second = await client.patch(path, json={"requireTenantToken": False}, headers=account.admin)
        assert second.json()["userTokenTtlSeconds"] == 60
        assert second.json()["requireTenantToken"] is False
        empty = await client.patch(path, json={}, headers=account.admin)
        assert empty.status_code == 200
        assert empty.json() == second.json()

    @pytest.mark.parametrize("ttl", [1, 86400])
    async def test_user_token_ttl_bounds_are_inclusive(
        self, client: httpx.AsyncClient, account: Account, ttl: int
    ) -> None:
        response = await client.patch(
            "/admin/environments/development",
            json={"userTokenTtlSeconds": ttl},
            headers=account.admin,
        )
        assert response.status_code == 200
        assert response.json()["userTokenTtlSeconds"] == ttl

    async def test_allowed_origins_are_deduplicated_and_can_be_cleared(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        path = "/admin/environments/development"
        response = await client.patch(
            path,
            json={"allowedOrigins": ["https://a.example", "HTTPS://A.EXAMPLE/", "https://b.test"]},
            headers=account.admin,
        )
        assert response.json()["allowedOrigins"] == ["https://a.example", "https://b.test"]
        cleared = await client.patch(path, json={"allowedOrigins": []}, headers=account.admin)
        assert cleared.json()["allowedOrigins"] == []

    async def test_a_default_port_is_the_origin_without_it(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        # Browsers leave the default port out of the Origin header they send.
        response = await client.patch(
            "/admin/environments/development",
            json={"allowedOrigins": ["https://a.example:443", "http://b.example:80"]},
            headers=account.admin,
        )
        assert response.json()["allowedOrigins"] == ["https://a.example", "http://b.example"]

    async def test_bad_bodies_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, account: Account, subtests: pytest.Subtests
    ) -> None:
        before = (await client.get("/admin/account", headers=account.admin)).json()
        for body, field in BAD_PATCHES:
            with subtests.test(body=body):
                response = await client.patch(
                    "/admin/environments/development", json=body, headers=account.admin
                )
                problem = assert_problem(response, 422, "validation_error")
                locs = [error["loc"] for error in problem["errors"]]
                assert any(loc[: len(field)] == field for loc in locs), locs
        after = (await client.get("/admin/account", headers=account.admin)).json()
        assert after == before

    async def test_another_accounts_environment_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        for env in (other_account.dev.id, other_account.prod.id):
            response = await client.patch(
                f"/admin/environments/{env}",
                json={"requireTenantToken": False},
                headers=account.admin,
            )
            assert_problem(response, 404, "not_found")
        theirs = (await client.get("/admin/account", headers=other_account.admin)).json()
        assert all(env["requireTenantToken"] for env in theirs["environments"])

    async def test_an_unknown_environment_is_404(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for env in ("staging", "env_nope", "Production"):
            response = await client.patch(
                f"/admin/environments/{env}", json={}, headers=account.admin
            )
            assert_problem(response, 404, "not_found")

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_only(
            client,
            "PATCH",
            "/admin/environments/development",
            api_keys_of(account),
            json={"requireTenantToken": False},
        )
        after = (await client.get("/admin/account", headers=account.admin)).json()
        assert all(env["requireTenantToken"] for env in after["environments"])
