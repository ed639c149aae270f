"""Security headers on every response, strict policies on the pages, and no-store on every
response that carries a secret."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from tests.conftest import Account, AppFactory
from tests.support import bearer, client_for


def assert_common(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("no-referrer", "same-origin")
    assert "strict-transport-security" not in response.headers  # http://testserver


class TestEveryResponse:
    @pytest.mark.parametrize(
        "path", ["/healthz", "/no/such/route", "/openapi.json", "/sdk/embedded.js", "/users"]
    )
    async def test_defaults(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(path)
        assert_common(response)
        assert response.headers["x-frame-options"] == "DENY"
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp

    async def test_errors_from_the_middleware_have_them(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/2024-13/healthz")
        assert response.status_code == 400
        assert_common(response)
        assert response.headers["x-frame-options"] == "DENY"

    async def test_https_adds_strict_transport_security(self, limited_app: AppFactory) -> None:
        https = limited_app(public_url="https://tether.example.com")
        async with https as app, client_for(app) as client:
            response = await client.get("/healthz")
        assert response.headers["strict-transport-security"] == "max-age=31536000"


class TestPages:
    async def test_the_modal_may_be_framed_under_a_strict_policy(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/sdk/modal")
        assert response.status_code == 200
        assert "x-frame-options" not in response.headers
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors" not in csp  # customers' pages frame it
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert len(response.headers.get_list("content-security-policy")) == 1
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_the_dashboard_runs_only_its_own_files(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/admin/ui/login")
        if response.status_code == 404:
            pytest.skip("no dashboard in this build")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"

    async def test_swagger_ui_may_run_its_inline_script_and_the_cdn_only(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/docs")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
        assert scripts
        for script in scripts:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp
        script_src = re.search(r"script-src ([^;]*)", csp)
        assert script_src is not None
        assert "unsafe" not in script_src.group(1)
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp

    async def test_redoc_has_a_policy(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/redoc")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src https://cdn.jsdelivr.net" in csp


NO_STORE_PATHS: list[str] = []


class TestNoStore:
    """Every route of API.md whose answer carries a secret: a key, a private key, an admin or
    user token, raw credentials."""

    async def test_every_secret_bearing_response(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        admin, key = account.admin, bearer(account.dev.secret_key)
        env = "/admin/environments/development"
        integration = await client.post(
            f"{env}/integrations", json={"app": "sendgrid"}, headers=admin
        )
        integration_id = integration.json()["integrationId"]
        await client.post("/users", json={"username": "no-store"}, headers=key)
        installed = await client.post(
            "/users/no-store/credentials",
            json={"integrationId": integration_id, "data": {"apiKey": "SG.secret.value"}},
            headers=key,
        )
        credential_id = installed.json()["credentialId"]
        key_id = (await client.get(f"{env}/api-keys", headers=admin)).json()["data"][0]["id"]
        checks: dict[str, httpx.Response] = {
            "POST /admin/login": await client.post(
                "/admin/login", json={"email": account.email, "password": account.password}
            ),
            "POST api-keys": await client.post(
                f"{env}/api-keys", json={"type": "secret"}, headers=admin
            ),
            "POST api-keys/{id}/roll": await client.post(
                f"{env}/api-keys/{key_id}/roll", json={"gracePeriodSeconds": 60}, headers=admin
            ),
            "POST signing-keys": await client.post(f"{env}/signing-keys", json={}, headers=admin),
            "GET /users/{id}/token": await client.get("/users/no-store/token", headers=key),
            "GET /user/{id}/token": await client.get("/user/no-store/token", headers=key),
            "GET credentials/{id}": await client.get(
                f"/users/no-store/credentials/{credential_id}", headers=key
            ),
            "GET linked-sources": await client.get("/tenants/no-store/linked-sources", headers=key),
            "GET linkedSources": await client.get(
                f"/{account.dev.id}/{integration_id}/no-store/linkedSources", headers=key
            ),
            "GET /tenants/{id}/token": await client.get("/tenants/no-store/token", headers=key),
        }
        for name, response in checks.items():
            assert response.is_success, (name, response.text)
            assert response.headers["cache-control"] == "no-store", name
