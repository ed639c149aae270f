"""`lastUsedAt`: set by an authenticated request, written at most once a minute, off the
request's path (the tests drain the background writes before they look)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api_keys.helpers import create_key, find_key, keys_path, list_keys, set_key_times
from tests.conftest import Account
from tests.support import (
    assert_key_accepted,
    assert_key_refused,
    recorded_statements,
    rfc3339_utc,
)
from tether.api_keys.usage import KeyUsageRecorder
from tether.db.base import utcnow


async def use_key(client: httpx.AsyncClient, key: str) -> None:
    """A request the key is accepted on: both kinds of key may read the catalogue."""
    response = await client.get("/apps", headers={"x-api-key": key})
    assert response.status_code == 200, response.text


def updates_of(statements: list[tuple[str, Any]], key_id: str) -> list[str]:
    """The UPDATEs of api_keys that name this key."""
    return [
        statement
        for statement, parameters in statements
        if statement.lstrip().upper().startswith("UPDATE API_KEYS") and key_id in str(parameters)
    ]


class TestLastUsedAt:
    async def test_a_key_refused_for_the_route_is_not_marked_used(
        self, app: FastAPI, client: httpx.AsyncClient, account: Account
    ) -> None:
        await assert_key_accepted(client, account.dev.secret_key)  # a 403 on an admin route
        await app.state.key_usage.drain()
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        assert key["lastUsedAt"] is None

    async def test_is_null_until_the_key_is_used(
        self, app: FastAPI, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await create_key(client, account.admin)
        assert key["lastUsedAt"] is None
        await app.state.key_usage.drain()
        assert (await find_key(client, account.admin, "development", key["key"]))[
            "lastUsedAt"
        ] is None
        for env in ("development", "production"):
            assert all(k["lastUsedAt"] is None for k in await list_keys(client, account.admin, env))

    async def test_is_set_by_an_authenticated_request(
        self, app: FastAPI, client: httpx.AsyncClient, account: Account
    ) -> None:
        before = utcnow()
        await use_key(client, account.prod.publishable_key)
        await app.state.key_usage.drain()
        used = await find_key(client, account.admin, "production", account.prod.publishable_key)
        assert used["lastUsedAt"] is not None
        assert before <= rfc3339_utc(used["lastUsedAt"]) <= utcnow()
        # Only the key that was used.
        other = await find_key(client, account.admin, "production", account.prod.secret_key)
        assert other["lastUsedAt"] is None

    async def test_is_written_once_within_a_minute(
        self, app: FastAPI, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await find_key(client, account.admin, "development", account.dev.secret_key)
        with recorded_statements(app.state.engine) as statements:
            await use_key(client, account.dev.secret_key)
            await app.state.key_usage.drain()
            assert len(updates_of(statements, key["id"])) == 1
            first = await find_key(client, account.admin, "development", account.dev.secret_key)

            await use_key(client, account.dev.secret_key)
            await use_key(client, account.dev.secret_key)
            await app.state.key_usage.drain()
            assert len(updates_of(statements, key["id"])) == 1
        second = await find_key(client, account.admin, "development", account.dev.secret_key)
        assert first["lastUsedAt"] is not None
        assert second["lastUsedAt"] == first["lastUsedAt"]

    async def test_is_written_again_after_a_minute(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        key = await create_key(client, account.admin)
        long_ago = utcnow() - timedelta(minutes=5)
        await set_key_times(sessionmaker, key["id"], last_used_at=long_ago)
        before = utcnow()
        await use_key(client, key["key"])
        await app.state.key_usage.drain()
        used = await find_key(client, account.admin, "development", key["key"])
        assert rfc3339_utc(used["lastUsedAt"]) >= before

    async def test_another_process_does_not_write_it_again_within_a_minute(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        # A second process has its own recorder and may have read the key before the first
        # write: the conditional UPDATE still leaves the first timestamp in place.
        key = await create_key(client, account.admin)
        await use_key(client, key["key"])
        await app.state.key_usage.drain()
        first = (await find_key(client, account.admin, "development", key["key"]))["lastUsedAt"]
        assert first is not None

        elsewhere = KeyUsageRecorder(sessionmaker)
        with recorded_statements(app.state.engine) as statements:
            elsewhere.seen(key["id"], None)
            await elsewhere.drain()
        assert len(updates_of(statements, key["id"])) == 1  # it tried...
        after = (await find_key(client, account.admin, "development", key["key"]))["lastUsedAt"]
        assert after == first  # ...and changed nothing

    async def test_a_refused_key_is_not_marked_used(
        self, app: FastAPI, client: httpx.AsyncClient, account: Account
    ) -> None:
        key = await create_key(client, account.admin)
        await client.delete(keys_path("development", key["id"]), headers=account.admin)
        await assert_key_refused(client, key["key"], "api_key_revoked")
        await app.state.key_usage.drain()
        assert (await find_key(client, account.admin, "development", key["key"]))[
            "lastUsedAt"
        ] is None
