"""The two service functions the dashboard added: a username search and a member lookup."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Account
from tests.support import bearer
from tether.accounts.service import get_member
from tether.errors import NotFound
from tether.users.service import search_users


async def make_users(client: httpx.AsyncClient, key: str, *usernames: str) -> dict[str, str]:
    ids = {}
    for username in usernames:
        response = await client.post("/users", json={"username": username}, headers=bearer(key))
        assert response.status_code == 200, response.text
        ids[username] = response.json()["userId"]
    return ids


class TestSearchUsers:
    async def test_matches_part_of_a_username_in_any_case_or_a_whole_id(
        self,
        client: httpx.AsyncClient,
        account: Account,
        other_account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        ids = await make_users(
            client, account.dev.secret_key, "Acme-Corp", "acme-labs", "globex", "a_b", "a%b"
        )
        await make_users(client, account.prod.secret_key, "acme-prod")
        await make_users(client, other_account.dev.secret_key, "acme-other")

        async def search(text: str, limit: int = 50, cursor: str | None = None) -> list[str]:
            async with sessionmaker() as session:
                users, _ = await search_users(
                    session, account.dev.id, text, limit=limit, cursor=cursor
                )
            return [user.username for user in users]

        assert await search("ACME") == ["Acme-Corp", "acme-labs"]  # one environment only
        assert await search("corp") == ["Acme-Corp"]
        assert await search(ids["globex"]) == ["globex"]
        assert await search(ids["globex"][:-1]) == []  # an id matches whole or not at all
        assert await search("_") == ["a_b"]  # wildcards are plain characters
        assert await search("%") == ["a%b"]
        assert await search("initech") == []

    async def test_pages_with_a_cursor(
        self,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await make_users(client, account.dev.secret_key, "team-1", "team-2", "team-3")
        async with sessionmaker() as session:
            first, cursor = await search_users(
                session, account.dev.id, "team", limit=2, cursor=None
            )
            assert [u.username for u in first] == ["team-1", "team-2"]
            assert cursor is not None
            rest, end = await search_users(session, account.dev.id, "team", limit=2, cursor=cursor)
        assert [u.username for u in rest] == ["team-3"]
        assert end is None


class TestGetMember:
    async def test_the_member_or_a_404(
        self, account: Account, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from tether.accounts.service import authenticate_admin

        async with sessionmaker() as session:
            principal = await authenticate_admin(session, account.admin_token)
            member = await get_member(session, principal.member_id)
            assert member.email == account.email
            with pytest.raises(NotFound):
                await get_member(session, "mem_unknown")
