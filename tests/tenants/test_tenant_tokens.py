"""Secure requests: every rule of API.md section 6 refuses with 401 and its stable reason, and
never answers another tenant's data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import Account
from tests.installations.helpers import create_integration, install, stripe_key
from tests.support import bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint

KEYS = "/admin/environments/{env}/signing-keys"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def signing_key(
    client: httpx.AsyncClient, account: Account, env: str = "development"
) -> dict[str, Any]:
    response = await client.post(KEYS.format(env=env), json={}, headers=account.admin)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def private_key_of(generated: dict[str, Any]) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(base64.b64decode(generated["privateKey"]), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def claims(sub: str = "tenant-a", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"sub": sub, "iat": now, "exp": now + 600, **overrides}
    return {k: v for k, v in body.items() if v is not None}


def sign(key: dict[str, Any], payload: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(payload, private_key_of(key), algorithm="RS256", headers=headers or None)


class Tenant:
    """Tenant A with an installed credential, and tenant B beside it."""

    def __init__(self, client: httpx.AsyncClient, account: Account) -> None:
        self.client = client
        self.account = account
        self.secret = {"apiKey": stripe_key()}
        self.key: dict[str, Any] = {}

    async def setup(self) -> Tenant:
        stripe = await create_integration(self.client, self.account.admin, {"app": "stripe"})
        self.integration_id = stripe["integrationId"]
        for name in ("tenant-a", "tenant-b"):
            await create_user(self.client, self.account.dev.secret_key, name)
        await install(
            self.client, self.account.dev.secret_key, "tenant-a", self.integration_id, self.secret
        )
        await install(
            self.client,
            self.account.dev.secret_key,
            "tenant-b",
            self.integration_id,
            {"apiKey": stripe_key()},
        )
        self.key = await signing_key(self.client, self.account)
        return self

    async def read(
        self, token: str | None, *, key: str | None = None, tenant: str = "tenant-a"
    ) -> httpx.Response:
        params = {"token": token} if token is not None else {}
        headers = {"x-api-key": key or self.account.dev.publishable_key}
        return await self.client.get(
            f"/tenants/{tenant}/linked-sources", params=params, headers=headers
        )

    async def refused(
        self, token: str, reason: str, code: str = "invalid_token", **kw: Any
    ) -> None:
        response = await self.read(token, **kw)
        assert response.status_code == 401, response.text
        body = response.json()
        assert (body["code"], body["reason"]) == (code, reason)
        assert "apiKey" not in response.text


@pytest.fixture
async def tenant(client: httpx.AsyncClient, account: Account) -> Tenant:
    return await Tenant(client, account).setup()


class TestAccepted:
    async def test_publishable_key_and_tenant_token(self, tenant: Tenant) -> None:
        response = await tenant.read(sign(tenant.key, claims()))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        (source,) = response.json()["data"]
        assert set(source) == {
            "installationId",
            "integrationId",
            "app",
            "credentialId",
            "status",
            "data",
        }
        assert source["data"] == tenant.secret

    async def test_in_the_x_tenant_token_header(self, tenant: Tenant) -> None:
        response = await tenant.client.get(
            "/tenants/tenant-a/linked-sources",
            headers={"x-api-key": tenant.account.dev.publishable_key,
                     "x-tenant-token": sign(tenant.key, claims())},
        )  # fmt: skip
        assert response.json()["data"][0]["data"] == tenant.secret

    async def test_with_a_kid(self, tenant: Tenant) -> None:
        response = await tenant.read(sign(tenant.key, claims(), kid=tenant.key["kid"]))
        assert response.status_code == 200

    async def test_the_sub_may_be_the_user_id(self, tenant: Tenant) -> None:
        user = await tenant.client.get(
            "/users/tenant-a", headers=bearer(tenant.account.dev.secret_key)
        )
        user_id = user.json()["userId"]
        assert (await tenant.read(sign(tenant.key, claims(user_id)))).status_code == 200
        assert (
            await tenant.read(sign(tenant.key, claims(user_id)), tenant=user_id)
        ).status_code == 200

    async def test_several_active_keys_for_rotation(self, tenant: Tenant) -> None:
        second = await signing_key(tenant.client, tenant.account)
        for key in (tenant.key, second):
            assert (await tenant.read(sign(key, claims()))).status_code == 200

    async def test_an_imported_public_key(self, tenant: Tenant) -> None:
        own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = (
            own.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        imported = await tenant.client.post(
            KEYS.format(env="development"), json={"publicKey": pem}, headers=tenant.account.admin
        )
        assert imported.status_code == 201
        assert imported.json()["privateKey"] is None
        token = jwt.encode(claims(), own, algorithm="RS256")
        assert (await tenant.read(token)).status_code == 200

    async def test_within_the_30_second_leeway(self, tenant: Tenant) -> None:
        now = int(time.time())
        token = sign(tenant.key, claims(iat=now - 100, exp=now - 10))
        assert (await tenant.read(token)).status_code == 200

    async def test_a_secret_key_needs_no_tenant_token(self, tenant: Tenant) -> None:
        response = await tenant.read(None, key=tenant.account.dev.secret_key)
        assert response.json()["data"][0]["data"] == tenant.secret

    async def test_hotglue_path(self, tenant: Tenant) -> None:
        path = f"/{tenant.account.dev.id}/{tenant.integration_id}/tenant-a/linkedSources"
        response = await tenant.client.get(
            path, params={"token": sign(tenant.key, claims())},
            headers={"x-api-key": tenant.account.dev.publishable_key},
        )  # fmt: skip
        assert response.status_code == 200
        assert response.json()["data"][0]["data"] == tenant.secret


class TestRefused:
    async def test_alg_none(self, tenant: Tenant) -> None:
        header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        await tenant.refused(
            f"{header}.{b64(json.dumps(claims()).encode())}.", "algorithm_not_allowed"
        )

    async def test_hs256_signed_with_the_public_key(self, tenant: Tenant) -> None:
        signing_input = (
            f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}."
            f"{b64(json.dumps(claims()).encode())}"
        )
        mac = hmac.new(tenant.key["publicKey"].encode(), signing_input.encode(), hashlib.sha256)
        await tenant.refused(f"{signing_input}.{b64(mac.digest())}", "algorithm_not_allowed")

    async def test_another_environments_key(self, tenant: Tenant) -> None:
        prod_key = await signing_key(tenant.client, tenant.account, "production")
        await tenant.refused(sign(prod_key, claims()), "bad_signature")
        await tenant.refused(sign(prod_key, claims(), kid=prod_key["kid"]), "unknown_key")

    async def test_a_key_of_no_one(self, tenant: Tenant) -> None:
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # A jku/jwk header pointing elsewhere is never followed.
        token = jwt.encode(
            claims(), stranger, algorithm="RS256",
            headers={"jku": "https://attacker.example/jwks.json", "kid": "attacker"},
        )  # fmt: skip
        await tenant.refused(token, "unknown_key")
        await tenant.refused(jwt.encode(claims(), stranger, algorithm="RS256"), "bad_signature")

    async def test_a_revoked_key(self, tenant: Tenant) -> None:
        revoked = await tenant.client.delete(
            f"{KEYS.format(env='development')}/{tenant.key['id']}", headers=tenant.account.admin
        )
        assert revoked.status_code == 204
        await tenant.refused(sign(tenant.key, claims()), "key_revoked")
        await tenant.refused(sign(tenant.key, claims(), kid=tenant.key["kid"]), "key_revoked")

    @pytest.mark.parametrize("missing", ["sub", "iat", "exp"])
    async def test_a_missing_claim(self, tenant: Tenant, missing: str) -> None:
        await tenant.refused(sign(tenant.key, claims(**{missing: None})), "missing_claim")

    async def test_expired(self, tenant: Tenant) -> None:
        now = int(time.time())
        token = sign(tenant.key, claims(iat=now - 600, exp=now - 31))
        await tenant.refused(token, "expired", code="token_expired")

    async def test_issued_in_the_future(self, tenant: Tenant) -> None:
        now = int(time.time())
        await tenant.refused(
            sign(tenant.key, claims(iat=now + 120, exp=now + 600)), "issued_in_future"
        )

    async def test_lifetime_over_the_maximum(self, tenant: Tenant) -> None:
        now = int(time.time())
        await tenant.refused(sign(tenant.key, claims(iat=now, exp=now + 3601)), "lifetime_too_long")

    async def test_lifetime_follows_the_environment_setting(self, tenant: Tenant) -> None:
        patched = await tenant.client.patch(
            "/admin/environments/development",
            json={"tenantTokenMaxLifetimeSeconds": 300},
            headers=tenant.account.admin,
        )
        assert patched.status_code == 200
        now = int(time.time())
        await tenant.refused(sign(tenant.key, claims(iat=now, exp=now + 301)), "lifetime_too_long")

    async def test_a_token_for_another_tenant(self, tenant: Tenant) -> None:
        await tenant.refused(sign(tenant.key, claims("tenant-b")), "tenant_mismatch")

    async def test_on_another_environments_publishable_key(self, tenant: Tenant) -> None:
        await create_user(tenant.client, tenant.account.prod.secret_key, "tenant-a")
        response = await tenant.read(
            sign(tenant.key, claims()), key=tenant.account.prod.publishable_key
        )
        assert response.status_code == 401
        assert response.json()["reason"] in {"bad_signature", "unknown_key"}

    async def test_garbage(self, tenant: Tenant) -> None:
        await tenant.refused("not-a-jwt", "malformed")

    async def test_a_user_token_is_not_a_tenant_token(self, tenant: Tenant) -> None:
        user_token = (await mint(tenant.client, tenant.account.dev.secret_key, "tenant-a"))["token"]
        await tenant.refused(user_token, "algorithm_not_allowed")


class TestAccess:
    async def test_publishable_key_alone_needs_a_tenant_token(self, tenant: Tenant) -> None:
        response = await tenant.read(None)
        assert response.status_code == 401
        assert response.json()["code"] == "tenant_token_required"

    async def test_require_tenant_token_off(self, tenant: Tenant) -> None:
        await tenant.client.patch(
            "/admin/environments/development",
            json={"requireTenantToken": False},
            headers=tenant.account.admin,
        )
        response = await tenant.read(None)
        assert response.json()["data"][0]["data"] == tenant.secret

    async def test_publishable_key_alone_reaches_only_apps_and_integrations(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = {"x-api-key": account.dev.publishable_key}
        assert (await client.get("/apps", headers=key)).status_code == 200
        assert (await client.get("/integrations", headers=key)).status_code == 200
        for path in ("/users", "/installations", "/users/x/credentials", "/users/x/token"):
            assert (await client.get(path, headers=key)).status_code == 403, path

    async def test_no_credential_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/tenants/x/linked-sources")
        assert response.status_code == 401
        assert response.json()["code"] == "missing_credentials"

    async def test_user_and_admin_tokens_are_403(self, tenant: Tenant) -> None:
        user_token = (await mint(tenant.client, tenant.account.dev.secret_key, "tenant-a"))["token"]
        for credential in (user_token, tenant.account.admin_token):
            response = await tenant.client.get(
                "/tenants/tenant-a/linked-sources", headers=bearer(credential)
            )
            assert response.status_code == 403

    async def test_another_environments_tenant_is_404(self, tenant: Tenant) -> None:
        response = await tenant.read(None, key=tenant.account.prod.secret_key)
        assert response.status_code == 404

    async def test_hotglue_path_of_another_environment_is_404(self, tenant: Tenant) -> None:
        key = {"x-api-key": tenant.account.dev.secret_key}
        wrong_env = f"/{tenant.account.prod.id}/{tenant.integration_id}/tenant-a/linkedSources"
        wrong_integration = f"/{tenant.account.dev.id}/int_nope/tenant-a/linkedSources"
        for path in (wrong_env, wrong_integration):
            assert (await tenant.client.get(path, headers=key)).status_code == 404, path

    async def test_oversized_token_is_422(self, tenant: Tenant) -> None:
        assert (await tenant.read("x" * 9000)).status_code == 422


class TestTenantToken:
    async def test_creates_an_unknown_tenant_on_first_use(self, tenant: Tenant) -> None:
        token = sign(tenant.key, claims("brand-new"))
        response = await tenant.client.get(
            "/tenants/brand-new/token", params={"token": token},
            headers={"x-api-key": tenant.account.dev.publishable_key},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        me = await tenant.client.get("/sdk/me", headers=bearer(response.json()["token"]))
        assert me.json()["username"] == "brand-new"

    async def test_other_tenant_routes_do_not_create(self, tenant: Tenant) -> None:
        response = await tenant.read(sign(tenant.key, claims("ghost")), tenant="ghost")
        assert response.status_code == 404

    async def test_a_publishable_key_alone_never_creates(self, tenant: Tenant) -> None:
        await tenant.client.patch(
            "/admin/environments/development",
            json={"requireTenantToken": False},
            headers=tenant.account.admin,
        )
        response = await tenant.client.get(
            "/tenants/nobody/token", headers={"x-api-key": tenant.account.dev.publishable_key}
        )
        assert response.status_code == 404

    async def test_refused_for_another_tenant(self, tenant: Tenant) -> None:
        response = await tenant.client.get(
            "/tenants/tenant-a/token", params={"token": sign(tenant.key, claims("tenant-b"))},
            headers={"x-api-key": tenant.account.dev.publishable_key},
        )  # fmt: skip
        assert response.status_code == 401


class TestSigningKeys:
    async def test_generated_private_key_is_shown_once(self, tenant: Tenant) -> None:
        assert set(tenant.key) == {
            "id", "kid", "algorithm", "privateKey", "publicKey", "origin", "createdAt", "revokedAt"
        }  # fmt: skip
        assert tenant.key["algorithm"] == "RS256"
        pem = base64.b64decode(tenant.key["privateKey"]).decode()
        assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
        assert private_key_of(tenant.key).key_size == 2048
        listed = await tenant.client.get(
            KEYS.format(env="development"), headers=tenant.account.admin
        )
        assert tenant.key["privateKey"] not in listed.text
        assert "privateKey" not in listed.json()["data"][0]

    @pytest.mark.parametrize("bad", ["not a pem", "small", "ec"])
    async def test_bad_public_keys_are_422(
        self, client: httpx.AsyncClient, account: Account, bad: str
    ) -> None:
        if bad == "small":
            key: Any = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505 (refused)
        elif bad == "ec":
            key = ec.generate_private_key(ec.SECP256R1()).public_key()
        pem = (
            bad
            if bad == "not a pem"
            else key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
        )
        response = await client.post(
            KEYS.format(env="development"), json={"publicKey": pem}, headers=account.admin
        )
        assert response.status_code == 422

    async def test_unknown_fields_are_422(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            KEYS.format(env="development"), json={"private": 1}, headers=account.admin
        )
        assert response.status_code == 422

    async def test_no_credential_is_401_and_api_keys_are_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        path = KEYS.format(env="development")
        assert (await client.get(path)).status_code == 401
        assert (
            await client.post(path, json={}, headers=bearer(account.dev.secret_key))
        ).status_code == 403

    async def test_another_accounts_environment_and_key_are_404(
        self, tenant: Tenant, other_account: Account
    ) -> None:
        theirs = KEYS.format(env=tenant.account.dev.id)
        assert (await tenant.client.get(theirs, headers=other_account.admin)).status_code == 404
        mine_in_theirs = f"{KEYS.format(env='development')}/{tenant.key['id']}"
        assert (
            await tenant.client.delete(mine_in_theirs, headers=other_account.admin)
        ).status_code == 404
        in_prod = f"{KEYS.format(env='production')}/{tenant.key['id']}"
        assert (
            await tenant.client.delete(in_prod, headers=tenant.account.admin)
        ).status_code == 404
