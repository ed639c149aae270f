"""How an API key authenticates a request, and every way it is refused.

Over HTTP the probe is an admin route: a key that authenticates gets 403 insufficient_scope
there (API keys are not admin credentials), one that does not gets a 401 with the reason."""

from __future__ import annotations

import string
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api_keys.helpers import create_key, find_key, keys_path, set_key_times
from tests.conftest import Account
from tests.support import (
    PROBE,
    assert_key_accepted,
    assert_key_refused,
    assert_problem,
    bearer,
    mutate,
    recorded_statements,
)
from tether.api_keys.service import authenticate_key
from tether.db.base import utcnow
from tether.errors import ApiKeyExpired, ApiKeyRevoked, InvalidApiKey
from tether.security.keys import BASE62, generate_admin_token, generate_api_key


def header_sets(key: str) -> list[dict[str, str]]:
    """Every way a key may be sent: the bearer scheme in any case, or x-api-key."""
    return [
        {"Authorization": f"bearer {key}"},
        {"Authorization": f"BEARER {key}"},
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bEaReR {key}"},
        {"x-api-key": key},
    ]


class TestKeyHeaders:
    async def test_every_scheme_spelling_and_x_api_key_authenticate(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for key in (account.dev.secret_key, account.prod.publishable_key):
            for headers in header_sets(key):
                response = await client.get(PROBE, headers=headers)
                assert_problem(response, 403, "insufficient_scope")

    async def test_every_header_reaches_the_same_check(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        await client.delete(keys_path("development", key["id"]), headers=account.admin)
        for headers in header_sets(account.dev.secret_key):
            response = await client.get(PROBE, headers=headers)
            assert_problem(response, 401, "api_key_revoked")

    async def test_an_empty_credential_is_missing(self, client: httpx.AsyncClient) -> None:
        for headers in ({"Authorization": "Bearer "}, {"x-api-key": ""}):
            response = await client.get(PROBE, headers=headers)
            assert_problem(response, 401, "missing_credentials")
            assert response.headers["www-authenticate"] == "Bearer"


class TestRefusedKeys:
    async def test_a_revoked_key(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await create_key(client, account.admin)
        await assert_key_accepted(client, key["key"])
        await client.delete(keys_path("development", key["id"]), headers=account.admin)
        await assert_key_refused(client, key["key"], "api_key_revoked")

    async def test_a_key_past_its_expiry(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        expires_at = utcnow() + timedelta(hours=1)
        key = await create_key(
            client, account.admin, "production", expiresAt=expires_at.isoformat()
        )
        await assert_key_accepted(client, key["key"])
        await set_key_times(sessionmaker, key["id"], expires_at=utcnow() - timedelta(seconds=1))
        await assert_key_refused(client, key["key"], "api_key_expired")

    async def test_a_revoked_key_that_also_expired_is_revoked(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        key = await create_key(client, account.admin)
        await client.delete(keys_path("development", key["id"]), headers=account.admin)
        await set_key_times(sessionmaker, key["id"], expires_at=utcnow() - timedelta(days=1))
        await assert_key_refused(client, key["key"], "api_key_revoked")

    async def test_one_character_changed_anywhere(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = account.prod.secret_key
        for index in (0, 7, 10, 14, 15, 30, -7, -6, -1):
            await assert_key_refused(client, mutate(key, index), "invalid_api_key")
        await assert_key_accepted(client, key)

    async def test_a_valid_body_under_another_prefix(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        # The checksum covers the body only, so these parse; the digest covers the whole key.
        body = account.dev.secret_key.removeprefix("tether_sk_dev_")
        for prefix in ("tether_pk_dev_", "tether_sk_prod_", "tether_pk_prod_"):
            await assert_key_refused(client, prefix + body, "invalid_api_key")

    async def test_a_well_formed_key_nobody_issued(self, client: httpx.AsyncClient) -> None:
        for key_type, env in (("secret", "dev"), ("publishable", "prod")):
            key = generate_api_key(key_type, env)  # type: ignore[arg-type]
            await assert_key_refused(client, key, "invalid_api_key")

    @pytest.mark.parametrize(
        "credential",
        ["tether_sk_dev_", "tether_", "sk_live_abc", "null", "Bearer", "tether_sk_dev_" + "a" * 49],
    )
    async def test_malformed_keys(self, client: httpx.AsyncClient, credential: str) -> None:
        await assert_key_refused(client, credential, "invalid_api_key")
        response = await client.get(PROBE, headers={"x-api-key": credential})
        assert_problem(response, 401, "invalid_api_key")

    async def test_things_that_look_like_tokens_are_invalid_tokens(
        self, client: httpx.AsyncClient
    ) -> None:
        for credential in ("a.b.c", generate_admin_token()[:-1], "tether_adm_x"):
            response = await client.get(PROBE, headers=bearer(credential))
            assert_problem(response, 401, "invalid_token")

    async def test_a_refusal_never_echoes_the_key(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        changed = mutate(account.dev.secret_key)
        response = await client.get(PROBE, headers=bearer(changed))
        assert response.status_code == 401
        body = changed.removeprefix("tether_sk_dev_")
        assert body[:20] not in response.text


class TestAuthenticateKey:
    async def test_names_the_key_its_environment_and_account(
        self,
        client: httpx.AsyncClient,
        account: Account,
        app: FastAPI,
    ) -> None:
        secret = await find_key(client, account.admin, "production", account.prod.secret_key)
        publishable = await find_key(
            client, account.admin, "development", account.dev.publishable_key
        )
        by_secret = await authenticate_key(app.state.readonly, account.prod.secret_key)
        by_publishable = await authenticate_key(app.state.readonly, account.dev.publishable_key)
        assert by_secret.key_id == secret["id"]
        assert by_secret.key_type == "secret"
        assert by_secret.environment_id == account.prod.id
        assert by_secret.account_id == account.id
        assert by_publishable.key_id == publishable["id"]
        assert by_publishable.key_type == "publishable"
        assert by_publishable.environment_id == account.dev.id
        assert by_publishable.account_id == account.id

    async def test_raises_the_reason_for_a_refusal(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        revoked = await create_key(client, account.admin)
        await client.delete(keys_path("development", revoked["id"]), headers=account.admin)
        expired = await create_key(
            client, account.admin, expiresAt=(utcnow() + timedelta(days=1)).isoformat()
        )
        await set_key_times(sessionmaker, expired["id"], expires_at=utcnow())
        with pytest.raises(ApiKeyRevoked):
            await authenticate_key(app.state.readonly, revoked["key"])
        # An expiry that is exactly now has passed.
        with pytest.raises(ApiKeyExpired):
            await authenticate_key(app.state.readonly, expired["key"])
        with pytest.raises(InvalidApiKey):
            await authenticate_key(app.state.readonly, generate_api_key("secret", "dev"))

    async def test_a_bad_checksum_is_refused_before_any_query(
        self, app: FastAPI, account: Account
    ) -> None:
        await app.state.key_usage.drain()  # no background write may run while we count
        key = account.dev.secret_key
        mutated = [
            key[:index] + char + key[index + 1 :]
            for index in range(len(key))
            for char in ("0", "z")
            if key[index] != char
        ]
        with recorded_statements(app.state.engine) as statements:
            for candidate in mutated:
                with pytest.raises(InvalidApiKey):
                    await authenticate_key(app.state.readonly, candidate)
        assert statements == []

        # The counter does see the query a well-formed key costs.
        with recorded_statements(app.state.engine) as statements:
            await authenticate_key(app.state.readonly, key)
        assert any("api_keys" in statement for statement, _ in statements)


def _header_safe(text: str) -> bool:
    return not any(char in text for char in "\r\n\x00")


# What a client could put in a header value: printable ASCII, and any Unicode character that
# is not a control character or a lone surrogate, sent as UTF-8.
printable = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c") + " \t", max_size=120)
unicode_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=120
)
near_keys = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["tether_sk_dev_", "tether_pk_prod_", "tether_adm_", "tether_"]),
    st.text(alphabet=BASE62, min_size=0, max_size=60),
)
candidates = st.one_of(printable, unicode_text, near_keys).filter(_header_safe)
REFUSALS = {"missing_credentials", "invalid_api_key", "invalid_token"}


class TestRandomCredentials:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(candidate=candidates, as_bearer=st.booleans())
    async def test_random_strings_never_authenticate(
        self, client: httpx.AsyncClient, candidate: str, as_bearer: bool
    ) -> None:
        value = candidate.encode()
        headers = {"Authorization": b"Bearer " + value} if as_bearer else {"x-api-key": value}
        response = await client.get(PROBE, headers=headers)  # type: ignore[arg-type]
        assert response.status_code == 401, (candidate, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in REFUSALS
