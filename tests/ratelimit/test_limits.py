"""Rate limits: per API key (per environment), per client IP for refused credentials and for
admin login attempts, counted before the expensive work."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Account, AppFactory, make_account
from tests.support import (
    assert_problem,
    bearer,
    clear_of_window_edge,
    client_for,
    mutate,
    recorded_statements,
)
from tether.security import passwords

RATE_HEADERS = ("retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def assert_rate_limited(response: httpx.Response, limit: int) -> None:
    assert_problem(response, 429, "rate_limited")
    for name in RATE_HEADERS:
        assert response.headers[name].isdigit(), name
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"


class TestPerKey:
    async def test_an_environment_sets_its_own_budget(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await clear_of_window_edge()
        response = await client.patch(
            "/admin/environments/development", json={"rateLimitPerMinute": 3}, headers=account.admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["rateLimitPerMinute"] == 3
        key = bearer(account.dev.secret_key)
        for _ in range(3):
            assert (await client.get("/users", headers=key)).status_code == 200
        assert_rate_limited(await client.get("/users", headers=key), 3)
        # Every route the key reaches shares the budget, by either header.
        limited = await client.get("/apps", headers={"x-api-key": account.dev.secret_key})
        assert_rate_limited(limited, 3)
        # Another key of the same environment has a budget of its own; so has production.
        assert (
            await client.get("/apps", headers={"x-api-key": account.dev.publishable_key})
        ).is_success
        assert (await client.get("/users", headers=bearer(account.prod.secret_key))).is_success

    async def test_null_returns_to_the_servers_default(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await clear_of_window_edge()
        path = "/admin/environments/production"
        await client.patch(path, json={"rateLimitPerMinute": 1}, headers=account.admin)
        key = bearer(account.prod.secret_key)
        assert (await client.get("/users", headers=key)).is_success
        assert (await client.get("/users", headers=key)).status_code == 429
        response = await client.patch(
            path, json={"rateLimitPerMinute": None}, headers=account.admin
        )
        assert response.json()["rateLimitPerMinute"] is None
        account_view = await client.get("/admin/account", headers=account.admin)
        envs = {env["name"]: env for env in account_view.json()["environments"]}
        assert envs["production"]["rateLimitPerMinute"] is None
        assert (await client.get("/users", headers=key)).is_success

    @pytest.mark.parametrize("value", [0, -1, 1_000_001, "60", 1.5, True])
    async def test_bad_values_are_422(
        self, client: httpx.AsyncClient, account: Account, value: object
    ) -> None:
        await clear_of_window_edge()
        response = await client.patch(
            "/admin/environments/development",
            json={"rateLimitPerMinute": value},
            headers=account.admin,
        )
        assert_problem(response, 422, "validation_error")

    async def test_the_token_route_counts_too(self, limited_app: AppFactory) -> None:
        await clear_of_window_edge()
        async with limited_app(rate_limit_per_minute=2) as app, client_for(app) as client:
            account = await make_account(client, app)
            user = await client.post(
                "/users", json={"username": "rl-user"}, headers=bearer(account.dev.secret_key)
            )
            assert user.status_code == 200
            key = bearer(account.dev.secret_key)
            assert (await client.get("/users/rl-user/token", headers=key)).status_code == 200
            assert_rate_limited(await client.get("/user/rl-user/token", headers=key), 2)

    async def test_zero_turns_the_default_off(self, limited_app: AppFactory) -> None:
        await clear_of_window_edge()
        async with limited_app(rate_limit_per_minute=0) as app, client_for(app) as client:
            account = await make_account(client, app)
            for _ in range(20):
                assert (
                    await client.get("/apps", headers=bearer(account.dev.secret_key))
                ).is_success


class TestRefusedCredentials:
    async def test_an_address_over_its_budget_is_refused_before_any_lookup(
        self, limited_app: AppFactory
    ) -> None:
        await clear_of_window_edge()
        async with limited_app(rate_limit_auth_failures="3/minute") as app:
            async with client_for(app) as client:
                account = await make_account(client, app)
            async with client_for(app, "203.0.113.7") as attacker:
                wrong = mutate(account.dev.secret_key, -12)  # a bad checksum: no query at all
                unknown_admin = "tether_at_" + "A" * 43
                for headers in (bearer(wrong), bearer(unknown_admin), {}):
                    assert (await attacker.get("/users", headers=headers)).status_code == 401
                # Over budget: even a valid key is refused, and nothing reaches the database.
                with recorded_statements(app.state.engine) as statements:
                    response = await attacker.get("/users", headers=bearer(account.dev.secret_key))
                assert_rate_limited(response, 3)
                assert statements == []
                for path in ("/sdk/me", "/users/someone/token", "/admin/account"):
                    assert (await attacker.get(path, headers=bearer(wrong))).status_code == 429
            # Another address is not affected; a request with no credential is not limited.
            async with client_for(app, "203.0.113.8") as other:
                ok = await other.get("/users", headers=bearer(account.dev.secret_key))
                assert ok.status_code == 200
            async with client_for(app, "203.0.113.7") as attacker:
                assert (await attacker.get("/healthz")).status_code == 200

    async def test_refused_tenant_tokens_count(self, limited_app: AppFactory) -> None:
        await clear_of_window_edge()
        async with limited_app(rate_limit_auth_failures="2/minute") as app:
            async with client_for(app) as client:
                account = await make_account(client, app)
                await client.patch(
                    "/admin/environments/development",
                    json={"requireTenantToken": True},
                    headers=account.admin,
                )
            async with client_for(app, "198.51.100.1") as caller:
                headers = {"x-api-key": account.dev.publishable_key, "x-tenant-token": "a.b.c"}
                for _ in range(2):
                    response = await caller.get("/tenants/t1/linked-sources", headers=headers)
                    assert response.status_code == 401
                response = await caller.get("/tenants/t1/linked-sources", headers=headers)
                assert_rate_limited(response, 2)

    async def test_a_trusted_proxy_names_the_client(self, limited_app: AppFactory) -> None:
        await clear_of_window_edge()
        async with limited_app(
            rate_limit_auth_failures="1/minute", trusted_proxies=["10.0.0.0/8"]
        ) as app:
            async with client_for(app, "10.1.2.3") as proxy:
                bad = bearer("tether_sk_dev_" + "A" * 49)

                def via(client_ip: str) -> dict[str, str]:
                    # What the client wrote first proves nothing; the proxy appended the peer.
                    return {**bad, "x-forwarded-for": f"6.6.6.6, {client_ip}"}

                assert (await proxy.get("/users", headers=via("192.0.2.1"))).status_code == 401
                assert (await proxy.get("/users", headers=via("192.0.2.1"))).status_code == 429
                assert (await proxy.get("/users", headers=via("192.0.2.2"))).status_code == 401
            # A peer that is not a trusted proxy cannot choose its address with the header.
            async with client_for(app, "192.0.2.50") as direct:
                spoof = {**bad, "x-forwarded-for": "192.0.2.77"}
                assert (await direct.get("/users", headers=spoof)).status_code == 401
                assert (await direct.get("/users", headers=spoof)).status_code == 429


class TestLoginAttempts:
    async def test_attempts_are_counted_before_the_password_hash(
        self, limited_app: AppFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await clear_of_window_edge()
        verified = 0
        real_verify = passwords.verify_password

        async def counting_verify(password: str, password_hash: str | None) -> bool:
            nonlocal verified
            verified += 1
            return await real_verify(password, password_hash)

        monkeypatch.setattr("tether.accounts.service.verify_password", counting_verify)
        async with limited_app(rate_limit_login="2/minute") as app:
            async with client_for(app) as client:
                account = await make_account(client, app)
            async with client_for(app, "192.0.2.9") as guesser:
                body = {"email": account.email, "password": "wrong"}
                for _ in range(2):
                    response = await guesser.post("/admin/login", json=body)
                    assert_problem(response, 401, "invalid_credentials")
                # Even the right password: the address is out of attempts.
                right = {"email": account.email, "password": account.password}
                assert_rate_limited(await guesser.post("/2024-03/admin/login", json=right), 2)
                assert verified == 2
                # The dashboard's form shares the budget, and answers a page.
                form = await guesser.post("/admin/ui/login", data=right)
                assert form.status_code == 429
                assert form.headers["content-type"].startswith("text/html")
                assert form.headers["retry-after"].isdigit()
            async with client_for(app, "192.0.2.10") as other:
                assert (await other.post("/admin/login", json=right)).status_code == 200
