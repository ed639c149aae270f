"""User tokens: their shape, their lifetime, rotation, and every way a forged or stale one is
refused on /sdk/me."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from tests.conftest import Account
from tests.support import bearer
from tests.users.test_routes import create_user
from tether.users import tokens
from tether.users.tokens import TokenService, rotate_token_key


async def mint(client: httpx.AsyncClient, key: str, user: str) -> dict[str, str]:
    response = await client.get(f"/users/{user}/token", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


async def jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


async def private_key(app: FastAPI, environment_id: str) -> Any:
    return await app.state.tokens.signing_key(environment_id, None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user_id: str, environment_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "http://testserver",
        "aud": "tether:sdk",
        "sub": user_id,
        "env": environment_id,
        "iat": now,
        "exp": now + 600,
        "jti": "test",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


class TestMint:
    async def test_header_and_claims(self, client: httpx.AsyncClient, account: Account) -> None:
        user = await create_user(client, account.dev.secret_key, "minty")
        body = await mint(client, account.dev.secret_key, user["userId"])
        header = jwt.get_unverified_header(body["token"])
        assert header["alg"] == "ES256"
        assert header["typ"] == "sdk+jwt"
        key = next(k for k in (await jwks(client))["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(
            body["token"],
            ECAlgorithm.from_jwk(key),
            algorithms=["ES256"],
            audience="tether:sdk",
            issuer="http://testserver",
        )
        assert claims["sub"] == user["userId"]
        assert claims["env"] == account.dev.id
        assert claims["exp"] - claims["iat"] == 1800
        assert claims["jti"]

    async def test_each_call_mints_a_new_token_not_cached(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "fresh")
        first = await client.get("/users/fresh/token", headers=bearer(account.dev.secret_key))
        second = await mint(client, account.dev.secret_key, "fresh")
        assert first.json()["token"] != second["token"]
        assert first.headers["cache-control"] == "no-store"

    async def test_alloy_singular_path_and_username(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "singular")
        response = await client.get("/user/singular/token", headers=bearer(account.dev.secret_key))
        assert response.status_code == 200
        assert set(response.json()) == {"token", "expiresAt"}

    async def test_lifetime_follows_the_environment_setting(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        patched = await client.patch(
            "/admin/environments/development",
            json={"userTokenTtlSeconds": 60},
            headers=account.admin,
        )
        assert patched.status_code == 200
        assert patched.json()["userTokenTtlSeconds"] == 60
        await create_user(client, account.dev.secret_key, "short")
        token = (await mint(client, account.dev.secret_key, "short"))["token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 60

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get("/users/ghost/token", headers=bearer(account.dev.secret_key))
        assert response.status_code == 404

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/users/x/token")).status_code == 401

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/users/x/token", headers=bearer(account.dev.publishable_key))
        assert response.status_code == 403


class TestSdkMe:
    async def test_answers_the_tokens_user(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user = await create_user(client, account.dev.secret_key, "me", fullName="Me Myself")
        token = (await mint(client, account.dev.secret_key, "me"))["token"]
        response = await client.get("/sdk/me", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == {
            "userId": user["userId"],
            "username": "me",
            "fullName": "Me Myself",
            "environmentId": account.dev.id,
        }

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/sdk/me")
        assert response.status_code == 401
        assert response.json()["code"] == "missing_credentials"

    @pytest.mark.parametrize("kind", ["secret", "publishable", "admin"])
    async def test_other_credentials_are_403(
        self, client: httpx.AsyncClient, account: Account, kind: str
    ) -> None:
        credential = {
            "secret": account.dev.secret_key,
            "publishable": account.dev.publishable_key,
            "admin": account.admin_token,
        }[kind]
        response = await client.get("/sdk/me", headers=bearer(credential))
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"

    async def test_user_token_on_a_backend_route_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "scoped")
        token = (await mint(client, account.dev.secret_key, "scoped"))["token"]
        response = await client.get("/users", headers=bearer(token))
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"

    async def test_user_token_in_x_api_key_is_not_accepted(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "header")
        token = (await mint(client, account.dev.secret_key, "header"))["token"]
        response = await client.get("/sdk/me", headers={"x-api-key": token})
        assert response.status_code == 401

    async def test_deleting_the_user_ends_its_tokens(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "leaving")
        token = (await mint(client, account.dev.secret_key, "leaving"))["token"]
        assert (await client.get("/sdk/me", headers=bearer(token))).status_code == 200
        await client.delete("/users/leaving", headers=bearer(account.dev.secret_key))
        response = await client.get("/sdk/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"


class TestForgedTokens:
    """Each way of getting a token wrong is a 401, and never the user."""

    @pytest.fixture
    async def user_id(self, client: httpx.AsyncClient, account: Account) -> str:
        return (await create_user(client, account.dev.secret_key, "target"))["userId"]

    async def assert_refused(
        self, client: httpx.AsyncClient, token: str, code: str = "invalid_token"
    ) -> None:
        response = await client.get("/sdk/me", headers=bearer(token))
        assert response.status_code == 401, response.text
        assert response.json()["code"] == code

    async def sign(
        self, app: FastAPI, environment_id: str, claims: dict[str, Any], **headers: Any
    ) -> str:
        key = await private_key(app, environment_id)
        return jwt.encode(
            claims,
            key.private_key,
            algorithm="ES256",
            headers={"kid": key.kid, "typ": "sdk+jwt", **headers},
        )

    async def test_a_correctly_forged_token_works(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        # The control: the forging helper itself makes valid tokens.
        token = await self.sign(app, account.dev.id, claims_for(user_id, account.dev.id))
        assert (await client.get("/sdk/me", headers=bearer(token))).status_code == 200

    async def test_expired(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        now = int(time.time())
        claims = claims_for(user_id, account.dev.id, iat=now - 600, exp=now - 1)
        token = await self.sign(app, account.dev.id, claims)
        await self.assert_refused(client, token, "token_expired")

    async def test_wrong_audience(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        claims = claims_for(user_id, account.dev.id, aud="someone-else")
        await self.assert_refused(client, await self.sign(app, account.dev.id, claims))

    async def test_wrong_issuer(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        claims = claims_for(user_id, account.dev.id, iss="https://evil.example")
        await self.assert_refused(client, await self.sign(app, account.dev.id, claims))

    @pytest.mark.parametrize("typ", ["JWT", "at+jwt", None])
    async def test_wrong_type(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
        user_id: str,
        typ: str | None,
    ) -> None:
        token = await self.sign(app, account.dev.id, claims_for(user_id, account.dev.id), typ=typ)
        await self.assert_refused(client, token)

    @pytest.mark.parametrize("missing", ["sub", "exp", "iat", "env", "jti", "aud", "iss"])
    async def test_missing_claim(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
        user_id: str,
        missing: str,
    ) -> None:
        claims = claims_for(user_id, account.dev.id, **{missing: None})
        await self.assert_refused(client, await self.sign(app, account.dev.id, claims))

    async def test_alg_none(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        key = await private_key(app, account.dev.id)
        header = {"alg": "none", "typ": "sdk+jwt", "kid": key.kid}
        payload = claims_for(user_id, account.dev.id)
        token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."
        await self.assert_refused(client, token)

    async def test_hs256_signed_with_the_published_public_key(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        key = await private_key(app, account.dev.id)
        published = next(k for k in (await jwks(client))["keys"] if k["kid"] == key.kid)
        for secret in (
            ECAlgorithm.from_jwk(published).public_bytes(  # type: ignore[union-attr]
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            json.dumps(published).encode(),
        ):
            header = {"alg": "HS256", "typ": "sdk+jwt", "kid": key.kid}
            payload = claims_for(user_id, account.dev.id)
            signing_input = (
                f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
            )
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            await self.assert_refused(client, f"{signing_input}.{b64(signature)}")

    async def test_signed_by_another_environments_key(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        # Production's key, claiming development's environment and user.
        claims = claims_for(user_id, account.dev.id)
        await self.assert_refused(client, await self.sign(app, account.prod.id, claims))

    async def test_another_environments_key_id_with_a_bad_signature(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        prod = await private_key(app, account.prod.id)
        dev = await private_key(app, account.dev.id)
        token = jwt.encode(
            claims_for(user_id, account.dev.id),
            prod.private_key,
            algorithm="ES256",
            headers={"kid": dev.kid, "typ": "sdk+jwt"},
        )
        await self.assert_refused(client, token)

    async def test_unknown_key_id(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, user_id: str
    ) -> None:
        token = await self.sign(
            app, account.dev.id, claims_for(user_id, account.dev.id), kid="utk_unknown"
        )
        await self.assert_refused(client, token)

    async def test_garbage(self, client: httpx.AsyncClient) -> None:
        await self.assert_refused(client, "not.a.jwt")


class TestVerifiedTokens:
    """A token that verified once is remembered by its exact text, and only that way."""

    @pytest.mark.parametrize("after", [timedelta(0), timedelta(hours=1)])
    async def test_a_remembered_token_still_expires(
        self,
        client: httpx.AsyncClient,
        account: Account,
        monkeypatch: pytest.MonkeyPatch,
        after: timedelta,
    ) -> None:
        await create_user(client, account.dev.secret_key, "remembered")
        minted = await mint(client, account.dev.secret_key, "remembered")
        assert (await client.get("/sdk/me", headers=bearer(minted["token"]))).status_code == 200
        # At the instant of exp (which has passed, as PyJWT has it), or later.
        moment = datetime.fromisoformat(minted["expiresAt"]) + after
        monkeypatch.setattr(tokens, "utcnow", lambda: moment)
        response = await client.get("/sdk/me", headers=bearer(minted["token"]))
        assert response.status_code == 401
        assert response.json()["code"] == "token_expired"

    async def test_only_the_exact_text_is_remembered(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "exact")
        token = (await mint(client, account.dev.secret_key, "exact"))["token"]
        assert (await client.get("/sdk/me", headers=bearer(token))).status_code == 200
        head, payload, signature = token.split(".")
        changed = "A" if signature[0] != "A" else "B"
        for variant in (f"{head}.{payload}.{changed}{signature[1:]}", f"{head}.{payload}."):
            response = await client.get("/sdk/me", headers=bearer(variant))
            assert response.status_code == 401
            assert response.json()["code"] == "invalid_token"

    async def test_the_memory_is_bounded(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 2)
        await create_user(client, account.dev.secret_key, "bounded")
        service: TokenService = app.state.tokens
        minted = [(await mint(client, account.dev.secret_key, "bounded"))["token"] for _ in "abc"]
        for token in minted:
            assert (await client.get("/sdk/me", headers=bearer(token))).status_code == 200
        assert len(service._verified) == 2
        assert minted[0] not in service._verified  # the oldest went first
        # Forgotten is not refused: it verifies again.
        assert (await client.get("/sdk/me", headers=bearer(minted[0]))).status_code == 200


class TestRotation:
    async def test_new_tokens_use_the_new_key_and_old_ones_keep_working(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "rotator")
        before = (await mint(client, account.dev.secret_key, "rotator"))["token"]
        async with app.state.sessionmaker() as session:
            new_key = await rotate_token_key(session, app.state.keyring, account.dev.id)
            await session.commit()
        after = (await mint(client, account.dev.secret_key, "rotator"))["token"]
        assert jwt.get_unverified_header(after)["kid"] == new_key.id
        assert jwt.get_unverified_header(before)["kid"] != new_key.id
        for token in (before, after):
            assert (await client.get("/sdk/me", headers=bearer(token))).status_code == 200
        kids = {key["kid"] for key in (await jwks(client))["keys"]}
        assert {jwt.get_unverified_header(t)["kid"] for t in (before, after)} <= kids

    async def test_jwks_publishes_public_parts_only(self, client: httpx.AsyncClient) -> None:
        for key in (await jwks(client))["keys"]:
            assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


class TestConcurrentCreates:
    async def test_fifty_creates_of_one_username_make_one_user(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/users", json={"username": "contended"}, headers=bearer(account.dev.secret_key)
                )
                for _ in range(50)
            )
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [409] * 49
        winner = next(r.json()["userId"] for r in responses if r.status_code == 200)
        assert {r.json()["userId"] for r in responses if r.status_code == 409} == {winner}
        listed = await client.get("/users", headers=bearer(account.dev.secret_key))
        assert [u["userId"] for u in listed.json()["data"]] == [winner]


class TestSdkHeaders:
    @pytest.mark.parametrize("kind", ["secret", "publishable"])
    async def test_an_api_key_in_x_api_key_on_an_sdk_route_is_403(
        self, client: httpx.AsyncClient, account: Account, kind: str
    ) -> None:
        key = account.dev.secret_key if kind == "secret" else account.dev.publishable_key
        response = await client.get("/sdk/me", headers={"x-api-key": key})
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"
