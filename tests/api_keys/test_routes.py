"""The admin API for keys: list, create, roll and revoke, per environment."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api_keys.helpers import (
    KEY_FIELDS,
    create_key,
    find_key,
    keys_path,
    list_keys,
    set_key_times,
)
from tests.conftest import Account
from tests.support import (
    api_keys_of,
    assert_admin_only,
    assert_key_accepted,
    assert_key_refused,
    assert_problem,
    rfc3339_utc,
)
from tether.db.base import utcnow
from tether.security.keys import parse_api_key

PREFIXES = {
    ("development", "secret"): "tether_sk_dev_",
    ("development", "publishable"): "tether_pk_dev_",
    ("production", "secret"): "tether_sk_prod_",
    ("production", "publishable"): "tether_pk_prod_",
}


def later(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


async def assert_foreign_ids_are_404(
    client: httpx.AsyncClient,
    account: Account,
    other_account: Account,
    method: str,
    action: str | None,
    json: Any = None,
) -> None:
    """Another account's environment, another account's key, and a key of the account's other
    environment are all 404, and none of those keys is touched."""
    mine_in_prod = await find_key(client, account.admin, "production", account.prod.secret_key)
    theirs = await find_key(
        client, other_account.admin, "development", other_account.dev.secret_key
    )
    attempts = [
        # another account's environment, by id, with the caller's own key id in it
        keys_path(other_account.dev.id, mine_in_prod["id"], action),
        # another account's key, under the caller's environment, by name and by id
        keys_path("development", theirs["id"], action),
        keys_path(account.dev.id, theirs["id"], action),
        # the caller's own key, under its other environment
        keys_path("development", mine_in_prod["id"], action),
        keys_path(account.dev.id, mine_in_prod["id"], action),
        # no such key or environment
        keys_path("development", "key_nope", action),
        keys_path("staging", mine_in_prod["id"], action),
    ]
    for path in attempts:
        response = await client.request(method, path, json=json, headers=account.admin)
        assert_problem(response, 404, "not_found")
    await assert_key_accepted(client, account.prod.secret_key)
    await assert_key_accepted(client, other_account.dev.secret_key)
    assert len(await list_keys(client, account.admin, "production")) == 2
    assert len(await list_keys(client, other_account.admin, "development")) == 2


class TestListKeys:
    async def test_lists_the_environments_keys_without_their_secrets(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get(keys_path("development"), headers=account.admin)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"data"}
        assert len(body["data"]) == 2
        by_type = {key["type"]: key for key in body["data"]}
        for key_type, plaintext in (
            ("secret", account.dev.secret_key),
            ("publishable", account.dev.publishable_key),
        ):
            key = by_type[key_type]
            assert set(key) == KEY_FIELDS
            assert key["id"].startswith("key_")
            assert key["prefix"] == PREFIXES["development", key_type]
            assert key["last4"] == plaintext[-4:]
            assert (
                key["name"] == {"secret": "Secret key", "publishable": "Publishable key"}[key_type]
            )
            rfc3339_utc(key["createdAt"])
            assert key["expiresAt"] is None
            assert key["revokedAt"] is None
        for plaintext in api_keys_of(account):
            assert plaintext not in response.text
            assert plaintext[len("tether_sk_dev_") :][:20] not in response.text

    async def test_names_the_environment_by_id_or_by_name(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        by_name = await list_keys(client, account.admin, "production")
        by_id = await list_keys(client, account.admin, account.prod.id)
        assert by_name == by_id
        assert {key["prefix"] for key in by_name} == {"tether_sk_prod_", "tether_pk_prod_"}

    async def test_shows_only_that_environments_keys(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        created = await create_key(client, account.admin, "production")
        dev_ids = {key["id"] for key in await list_keys(client, account.admin, "development")}
        prod_ids = {key["id"] for key in await list_keys(client, account.admin, "production")}
        theirs = {key["id"] for key in await list_keys(client, other_account.admin, "production")}
        assert created["id"] in prod_ids
        assert created["id"] not in dev_ids | theirs
        assert not dev_ids & prod_ids
        assert not prod_ids & theirs

    async def test_lists_revoked_and_expiring_keys_too(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        revoked = await create_key(client, account.admin)
        expiring = await create_key(client, account.admin, expiresAt=later(days=1))
        await client.delete(keys_path("development", revoked["id"]), headers=account.admin)
        listed = {key["id"]: key for key in await list_keys(client, account.admin, "development")}
        assert listed[revoked["id"]]["revokedAt"] is not None
        assert listed[expiring["id"]]["expiresAt"] is not None
        assert listed[expiring["id"]]["revokedAt"] is None

    async def test_another_accounts_environment_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        for env in (other_account.dev.id, other_account.prod.id, "staging"):
            response = await client.get(keys_path(env), headers=account.admin)
            assert_problem(response, 404, "not_found")

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_only(client, "GET", keys_path("development"), api_keys_of(account))


class TestCreateKey:
    async def test_creates_a_key_and_shows_it_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        before = utcnow()
        response = await client.post(
            keys_path("development"), json={"type": "secret"}, headers=account.admin
        )
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        key = response.json()
        assert set(key) == KEY_FIELDS | {"key"}
        plaintext = key["key"]
        assert plaintext.startswith("tether_sk_dev_")
        parsed = parse_api_key(plaintext)
        assert parsed is not None
        assert (parsed.type, parsed.env_tag) == ("secret", "dev")
        assert key["type"] == "secret"
        assert key["name"] == "Secret key"
        assert key["prefix"] == "tether_sk_dev_"
        assert key["last4"] == plaintext[-4:]
        assert before <= rfc3339_utc(key["createdAt"]) <= utcnow()
        assert key["expiresAt"] is None
        assert key["revokedAt"] is None
        assert key["lastUsedAt"] is None
        await assert_key_accepted(client, plaintext)

        listing = await client.get(keys_path("development"), headers=account.admin)
        listed = {k["id"]: k for k in listing.json()["data"]}
        # The same key, less its plaintext (lastUsedAt moved: the key was just used).
        shown_once = {k: v for k, v in key.items() if k not in {"key", "lastUsedAt"}}
        assert {k: v for k, v in listed[key["id"]].items() if k != "lastUsedAt"} == shown_once
        assert plaintext not in listing.text
        assert "cache-control" not in listing.headers

    async def test_each_environment_and_type_has_its_prefix(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for (env, key_type), prefix in PREFIXES.items():
            key = await create_key(client, account.admin, env, type=key_type)
            assert key["type"] == key_type
            assert key["prefix"] == prefix
            assert key["key"].startswith(prefix)
            assert parse_api_key(key["key"]) is not None
            await assert_key_accepted(client, key["key"])

    async def test_names_the_environment_by_id(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await create_key(client, account.admin, account.prod.id, type="publishable")
        assert key["key"].startswith("tether_pk_prod_")
        ids = {k["id"] for k in await list_keys(client, account.admin, "production")}
        assert key["id"] in ids

    async def test_takes_a_name_and_an_expiry(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        expires_at = (utcnow() + timedelta(days=30)).replace(microsecond=0)
        key = await create_key(
            client,
            account.admin,
            name="CI deploys",
            expiresAt=expires_at.isoformat().replace("+00:00", "Z"),
        )
        assert key["name"] == "CI deploys"
        assert rfc3339_utc(key["expiresAt"]) == expires_at
        await assert_key_accepted(client, key["key"])

    async def test_an_expiry_in_another_offset_is_stored_in_utc(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await create_key(client, account.admin, expiresAt="2999-01-01T09:00:00+09:00")
        assert rfc3339_utc(key["expiresAt"]) == datetime.fromisoformat("2999-01-01T00:00:00Z")

    async def test_every_key_is_new(self, client: httpx.AsyncClient, account: Account) -> None:
        keys = [await create_key(client, account.admin) for _ in range(3)]
        assert len({key["key"] for key in keys}) == 3
        assert len({key["id"] for key in keys}) == 3

    async def test_bad_bodies_are_422_and_create_nothing(
        self, client: httpx.AsyncClient, account: Account, subtests: pytest.Subtests
    ) -> None:
        bad: list[tuple[Any, list[str]]] = [
            ({}, ["body", "type"]),
            ({"type": None}, ["body", "type"]),
            ({"type": "bogus"}, ["body", "type"]),
            ({"type": "Secret"}, ["body", "type"]),
            ({"type": 1}, ["body", "type"]),
            ({"type": "secret", "name": ""}, ["body", "name"]),
            ({"type": "secret", "name": "x" * 201}, ["body", "name"]),
            ({"type": "secret", "name": 5}, ["body", "name"]),
            ({"type": "secret", "expiresAt": later(seconds=-1)}, ["body", "expiresAt"]),
            ({"type": "secret", "expiresAt": "2001-01-01T00:00:00Z"}, ["body", "expiresAt"]),
            ({"type": "secret", "expiresAt": "2999-01-01T00:00:00"}, ["body", "expiresAt"]),
            ({"type": "secret", "expiresAt": "tomorrow"}, ["body", "expiresAt"]),
            ({"type": "secret", "expiresAt": [2999]}, ["body", "expiresAt"]),
            ({"type": "secret", "environmentId": account.prod.id}, ["body", "environmentId"]),
            ({"type": "secret", "keyHash": "0" * 64}, ["body", "keyHash"]),
            ({"type": "secret", "digest": "0" * 64}, ["body", "digest"]),
            ({"type": "secret", "key": account.dev.secret_key}, ["body", "key"]),
            ({"type": "secret", "id": "key_mine"}, ["body", "id"]),
            ({"type": "secret", "revokedAt": None}, ["body", "revokedAt"]),
            ({"type": "secret", "expires_at": later(days=1)}, ["body", "expires_at"]),
            ([{"type": "secret"}], ["body"]),
            ("secret", ["body"]),
        ]
        for body, loc in bad:
            with subtests.test(body=body):
                response = await client.post(
                    keys_path("development"), json=body, headers=account.admin
                )
                problem = assert_problem(response, 422, "validation_error")
                locs = [error["loc"] for error in problem["errors"]]
                assert any(found[: len(loc)] == loc for found in locs), locs
                assert account.dev.secret_key not in response.text
        assert len(await list_keys(client, account.admin, "development")) == 2

    async def test_no_body_is_422(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(keys_path("development"), headers=account.admin)
        assert_problem(response, 422, "validation_error")

    async def test_another_accounts_environment_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        for env in (other_account.dev.id, other_account.prod.id, "staging"):
            response = await client.post(
                keys_path(env), json={"type": "secret"}, headers=account.admin
            )
            assert_problem(response, 404, "not_found")
        assert len(await list_keys(client, other_account.admin, "development")) == 2
        assert len(await list_keys(client, other_account.admin, "production")) == 2

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_admin_only(
            client, "POST", keys_path("development"), api_keys_of(account), json={"type": "secret"}
        )
        assert len(await list_keys(client, account.admin, "development")) == 2


class TestRollKey:
    async def test_grace_zero_replaces_the_key_at_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await create_key(client, account.admin, name="Backend")
        response = await client.post(
            keys_path("development", old["id"], "roll"),
            json={"gracePeriodSeconds": 0},
            headers=account.admin,
        )
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        new = response.json()
        assert set(new) == KEY_FIELDS | {"key"}
        assert new["id"] != old["id"]
        assert new["key"] != old["key"]
        assert new["key"].startswith("tether_sk_dev_")
        assert (new["type"], new["name"], new["prefix"]) == ("secret", "Backend", old["prefix"])
        assert new["revokedAt"] is None
        assert new["expiresAt"] is None

        # Alloy's "Generate": the previous key fails on its very next request.
        await assert_key_refused(client, old["key"], "api_key_revoked")
        await assert_key_accepted(client, new["key"])
        listed = {k["id"]: k for k in await list_keys(client, account.admin, "development")}
        assert listed[old["id"]]["revokedAt"] is not None
        assert listed[new["id"]]["revokedAt"] is None

    async def test_without_a_body_the_grace_is_zero(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await find_key(client, account.admin, "development", account.dev.secret_key)
        response = await client.post(
            keys_path(account.dev.id, old["id"], "roll"), headers=account.admin
        )
        assert response.status_code == 201, response.text
        await assert_key_refused(client, account.dev.secret_key, "api_key_revoked")

    async def test_concurrent_rolls_replace_a_key_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await create_key(client, account.admin)
        path = keys_path("development", old["id"], "roll")
        responses = await asyncio.gather(
            *(
                client.post(path, json={"gracePeriodSeconds": 0}, headers=account.admin)
                for _ in range(4)
            )
        )
        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        assert len(await list_keys(client, account.admin, "development")) == 4

    async def test_a_grace_period_keeps_the_old_key_until_it_ends(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        old = await find_key(client, account.admin, "production", account.prod.publishable_key)
        before = utcnow()
        response = await client.post(
            keys_path("production", old["id"], "roll"),
            json={"gracePeriodSeconds": 3600},
            headers=account.admin,
        )
        assert response.status_code == 201, response.text
        new = response.json()
        assert new["key"].startswith("tether_pk_prod_")
        await assert_key_accepted(client, account.prod.publishable_key)
        await assert_key_accepted(client, new["key"])

        listed = {k["id"]: k for k in await list_keys(client, account.admin, "production")}
        assert listed[old["id"]]["revokedAt"] is None
        ends = rfc3339_utc(listed[old["id"]]["expiresAt"])
        assert before + timedelta(seconds=3600) <= ends <= utcnow() + timedelta(seconds=3600)

        await set_key_times(sessionmaker, old["id"], expires_at=utcnow() - timedelta(seconds=1))
        await assert_key_refused(client, account.prod.publishable_key, "api_key_expired")
        await assert_key_accepted(client, new["key"])

    async def test_a_grace_period_never_extends_an_earlier_expiry(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await create_key(client, account.admin, expiresAt=later(seconds=120))
        await client.post(
            keys_path("development", old["id"], "roll"),
            json={"gracePeriodSeconds": 604800},
            headers=account.admin,
        )
        listed = {k["id"]: k for k in await list_keys(client, account.admin, "development")}
        assert listed[old["id"]]["expiresAt"] == old["expiresAt"]

    async def test_the_longest_grace_is_a_week(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await create_key(client, account.admin)
        response = await client.post(
            keys_path("development", old["id"], "roll"),
            json={"gracePeriodSeconds": 604800},
            headers=account.admin,
        )
        assert response.status_code == 201
        listed = {k["id"]: k for k in await list_keys(client, account.admin, "development")}
        ends = rfc3339_utc(listed[old["id"]]["expiresAt"])
        assert abs(ends - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)

    async def test_a_revoked_or_expired_key_cannot_be_rolled(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        revoked = await create_key(client, account.admin)
        await client.delete(keys_path("development", revoked["id"]), headers=account.admin)
        expired = await create_key(client, account.admin, expiresAt=later(days=1))
        await set_key_times(sessionmaker, expired["id"], expires_at=utcnow() - timedelta(1))
        for key in (revoked, expired):
            response = await client.post(
                keys_path("development", key["id"], "roll"), headers=account.admin
            )
            assert_problem(response, 409, "api_key_not_active")
        assert len(await list_keys(client, account.admin, "development")) == 4

    async def test_bad_bodies_are_422_and_roll_nothing(
        self, client: httpx.AsyncClient, account: Account, subtests: pytest.Subtests
    ) -> None:
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        path = keys_path("development", key["id"], "roll")
        bad: list[tuple[Any, list[str]]] = [
            ({"gracePeriodSeconds": -1}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": 604801}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": 10**12}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": 1.5}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": "an hour"}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": None}, ["body", "gracePeriodSeconds"]),
            ({"gracePeriodSeconds": [60]}, ["body", "gracePeriodSeconds"]),
            ({"grace": 60}, ["body", "grace"]),
            ({"gracePeriodSeconds": 0, "type": "publishable"}, ["body", "type"]),
            ({"grace_period_seconds": 60}, ["body", "grace_period_seconds"]),
            ([60], ["body"]),
        ]
        for body, loc in bad:
            with subtests.test(body=body):
                response = await client.post(path, json=body, headers=account.admin)
                problem = assert_problem(response, 422, "validation_error")
                locs = [error["loc"] for error in problem["errors"]]
                assert any(found[: len(loc)] == loc for found in locs), locs
        await assert_key_accepted(client, account.dev.secret_key)
        listed = await list_keys(client, account.admin, "development")
        assert len(listed) == 2
        assert all(k["expiresAt"] is None and k["revokedAt"] is None for k in listed)

    async def test_foreign_ids_are_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        await assert_foreign_ids_are_404(
            client, account, other_account, "POST", "roll", json={"gracePeriodSeconds": 0}
        )

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        await assert_admin_only(
            client,
            "POST",
            keys_path("development", key["id"], "roll"),
            api_keys_of(account),
            json={"gracePeriodSeconds": 0},
        )
        await assert_key_accepted(client, account.dev.secret_key)
        assert len(await list_keys(client, account.admin, "development")) == 2


class TestRevokeKey:
    async def test_revokes_at_once(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await find_key(client, account.admin, "production", account.prod.secret_key)
        response = await client.delete(keys_path("production", key["id"]), headers=account.admin)
        assert response.status_code == 204
        assert response.content == b""
        await assert_key_refused(client, account.prod.secret_key, "api_key_revoked")
        listed = {k["id"]: k for k in await list_keys(client, account.admin, "production")}
        assert listed[key["id"]]["revokedAt"] is not None
        # The environment's other key is untouched.
        await assert_key_accepted(client, account.prod.publishable_key)

    async def test_by_environment_id(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await find_key(client, account.admin, "development", account.dev.publishable_key)
        response = await client.delete(keys_path(account.dev.id, key["id"]), headers=account.admin)
        assert response.status_code == 204
        await assert_key_refused(client, account.dev.publishable_key, "api_key_revoked")

    async def test_revoking_twice_changes_nothing(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await create_key(client, account.admin)
        path = keys_path("development", key["id"])
        assert (await client.delete(path, headers=account.admin)).status_code == 204
        first = await find_key(client, account.admin, "development", key["key"])
        assert (await client.delete(path, headers=account.admin)).status_code == 204
        second = await find_key(client, account.admin, "development", key["key"])
        assert first["revokedAt"] is not None
        assert second == first

    async def test_a_key_in_its_grace_period_can_be_revoked(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await create_key(client, account.admin)
        await client.post(
            keys_path("development", old["id"], "roll"),
            json={"gracePeriodSeconds": 3600},
            headers=account.admin,
        )
        await assert_key_accepted(client, old["key"])
        await client.delete(keys_path("development", old["id"]), headers=account.admin)
        await assert_key_refused(client, old["key"], "api_key_revoked")

    async def test_foreign_ids_are_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        await assert_foreign_ids_are_404(client, account, other_account, "DELETE", None)

    async def test_needs_an_admin_token(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        await assert_admin_only(
            client, "DELETE", keys_path("development", key["id"]), api_keys_of(account)
        )
        await assert_key_accepted(client, account.dev.secret_key)
