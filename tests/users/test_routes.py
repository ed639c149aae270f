"""The Alloy-compatible users API: every route's happy path, 401, 403, foreign-id 404, 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support import bearer
from tether.users import service


async def create_user(
    client: httpx.AsyncClient, key: str, username: str, **extra: str
) -> dict[str, str]:
    response = await client.post(
        "/users", json={"username": username, **extra}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestCreateUser:
    async def test_creates_and_answers_the_user(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/users",
            json={"username": "acme-corp", "fullName": "Acme Corp"},
            headers=bearer(account.dev.secret_key),
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"userId", "username", "fullName", "createdAt"}
        assert body["userId"].startswith("usr_")
        assert (body["username"], body["fullName"]) == ("acme-corp", "Acme Corp")

    async def test_second_create_is_409_naming_the_user(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        first = await create_user(client, account.dev.secret_key, "dup")
        response = await client.post(
            "/users", json={"username": "dup"}, headers=bearer(account.dev.secret_key)
        )
        assert response.status_code == 409
        assert response.json()["code"] == "username_taken"
        assert response.json()["userId"] == first["userId"]

    async def test_a_name_freed_while_the_create_ran_is_taken(
        self,
        client: httpx.AsyncClient,
        account: Account,
        monkeypatch: pytest.MonkeyPatch,
        on_postgres: bool,
    ) -> None:
        """The create found the name taken, but its holder was renamed before the create
        could name it in the 409: the create tries again, and gets the name."""
        if not on_postgres:
            pytest.skip("SQLite creates through the ORM, in a transaction that holds the lock")
        key = bearer(account.dev.secret_key)
        holder = await create_user(client, account.dev.secret_key, "contested")
        find_user = service.find_user

        async def renamed_meanwhile(*args: Any) -> Any:
            monkeypatch.setattr(service, "find_user", find_user)
            renamed = await client.put("/users/contested", json={"username": "moved"}, headers=key)
            assert renamed.status_code == 200
            return await find_user(*args)

        monkeypatch.setattr(service, "find_user", renamed_meanwhile)
        response = await client.post("/users", json={"username": "contested"}, headers=key)
        assert response.status_code == 200, response.text
        assert response.json()["userId"] != holder["userId"]

    async def test_same_username_in_each_environment(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        dev = await create_user(client, account.dev.secret_key, "same")
        prod = await create_user(client, account.prod.secret_key, "same")
        assert dev["userId"] != prod["userId"]

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/users", json={"username": "x"})
        assert response.status_code == 401
        assert response.json()["code"] == "missing_credentials"

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/users", json={"username": "x"}, headers=bearer(account.dev.publishable_key)
        )
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"

    async def test_admin_token_is_403(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post("/users", json={"username": "x"}, headers=account.admin)
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"username": ""},
            {"username": 42},
            {"username": "a/b"},
            {"username": " padded "},
            {"username": "tab\there"},
            {"username": "usr_0123456789abcdef0123456789abcdef"},
            {"username": "x" * 256},
            {"username": "ok", "environmentId": "env_x"},
            {"username": "ok", "full_name": "snake case is not the wire format"},
        ],
    )
    async def test_bad_bodies_are_422(
        self, client: httpx.AsyncClient, account: Account, body: dict[str, object]
    ) -> None:
        response = await client.post("/users", json=body, headers=bearer(account.dev.secret_key))
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


class TestGetUser:
    async def test_by_id_and_by_username(self, client: httpx.AsyncClient, account: Account) -> None:
        user = await create_user(client, account.dev.secret_key, "lookup me")
        for ref in (user["userId"], "lookup me"):
            response = await client.get(f"/users/{ref}", headers=bearer(account.dev.secret_key))
            assert response.status_code == 200
            assert response.json() == user

    async def test_unknown_is_404(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.get("/users/nobody", headers=bearer(account.dev.secret_key))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/users/x")).status_code == 401

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/users/x", headers=bearer(account.dev.publishable_key))
        assert response.status_code == 403


class TestListUsers:
    async def test_pages_with_a_cursor(self, client: httpx.AsyncClient, account: Account) -> None:
        created = [
            (await create_user(client, account.dev.secret_key, f"user-{i}"))["userId"]
            for i in range(5)
        ]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(
                "/users", params=params, headers=bearer(account.dev.secret_key)
            )
            assert response.status_code == 200
            page = response.json()
            assert len(page["data"]) <= 2
            seen += [user["userId"] for user in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == created

    async def test_lists_only_this_environment(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.prod.secret_key, "prod-only")
        response = await client.get("/users", headers=bearer(account.dev.secret_key))
        assert response.json() == {"data": [], "nextCursor": None}

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "%%%"}])
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, account: Account, params: dict[str, object]
    ) -> None:
        response = await client.get("/users", params=params, headers=bearer(account.dev.secret_key))
        assert response.status_code == 422

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/users")).status_code == 401

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get("/users", headers=bearer(account.dev.publishable_key))
        assert response.status_code == 403


class TestUpdateUser:
    async def test_renames_and_sets_full_name(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user = await create_user(client, account.dev.secret_key, "old-name")
        response = await client.put(
            "/users/old-name",
            json={"username": "new-name", "fullName": "New"},
            headers=bearer(account.dev.secret_key),
        )
        assert response.status_code == 200
        assert response.json()["userId"] == user["userId"]
        assert (response.json()["username"], response.json()["fullName"]) == ("new-name", "New")

    async def test_clears_full_name_with_null(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await create_user(client, account.dev.secret_key, "named", fullName="Named")
        response = await client.put(
            "/users/named", json={"fullName": None}, headers=bearer(account.dev.secret_key)
        )
        assert response.json()["fullName"] is None

    async def test_taking_another_username_is_409(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        taken = await create_user(client, account.dev.secret_key, "taken")
        await create_user(client, account.dev.secret_key, "mover")
        response = await client.put(
            "/users/mover", json={"username": "taken"}, headers=bearer(account.dev.secret_key)
        )
        assert response.status_code == 409
        assert response.json()["userId"] == taken["userId"]

    @pytest.mark.parametrize("body", [{"username": None}, {"username": ""}, {"extra": 1}])
    async def test_bad_bodies_are_422(
        self, client: httpx.AsyncClient, account: Account, body: dict[str, object]
    ) -> None:
        await create_user(client, account.dev.secret_key, "target")
        response = await client.put(
            "/users/target", json=body, headers=bearer(account.dev.secret_key)
        )
        assert response.status_code == 422

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.put("/users/x", json={})).status_code == 401

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.put(
            "/users/x", json={}, headers=bearer(account.dev.publishable_key)
        )
        assert response.status_code == 403


class TestDeleteUser:
    async def test_deletes(self, client: httpx.AsyncClient, account: Account) -> None:
        user = await create_user(client, account.dev.secret_key, "doomed")
        response = await client.delete(
            f"/users/{user['userId']}", headers=bearer(account.dev.secret_key)
        )
        assert response.status_code == 200
        assert response.json() == {"success": True}
        gone = await client.get(f"/users/{user['userId']}", headers=bearer(account.dev.secret_key))
        assert gone.status_code == 404

    async def test_without_credentials_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.delete("/users/x")).status_code == 401

    async def test_publishable_key_is_403(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.delete("/users/x", headers=bearer(account.dev.publishable_key))
        assert response.status_code == 403


class TestIsolation:
    """A key of one environment never reaches a user of another, by id or by username."""

    @pytest.mark.parametrize("direction", ["dev-to-prod", "prod-to-dev"])
    async def test_every_route_is_404_across_environments(
        self, client: httpx.AsyncClient, account: Account, direction: str
    ) -> None:
        owner, intruder = (
            (account.prod, account.dev)
            if direction == "dev-to-prod"
            else (account.dev, account.prod)
        )
        user = await create_user(client, owner.secret_key, "isolated")
        for ref in (user["userId"], "isolated-other-name"):
            if ref != user["userId"]:
                ref = "isolated"
            headers = bearer(intruder.secret_key)
            calls = [
                client.get(f"/users/{ref}", headers=headers),
                client.put(f"/users/{ref}", json={"fullName": "x"}, headers=headers),
                client.get(f"/users/{ref}/token", headers=headers),
                client.get(f"/user/{ref}/token", headers=headers),
                client.delete(f"/users/{ref}", headers=headers),
            ]
            for call in calls:
                response = await call
                assert response.status_code == 404, (ref, response.request.method, response.url)
        still_there = await client.get(f"/users/{user['userId']}", headers=bearer(owner.secret_key))
        assert still_there.json()["fullName"] is None

    async def test_another_accounts_user_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        user = await create_user(client, other_account.dev.secret_key, "theirs")
        for ref in (user["userId"], "theirs"):
            response = await client.get(f"/users/{ref}", headers=bearer(account.dev.secret_key))
            assert response.status_code == 404


class TestAlloyPaths:
    async def test_dated_prefix_and_lowercase_bearer(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/2024-03/users",
            json={"username": "dated"},
            headers={"Authorization": f"bearer {account.dev.secret_key}"},
        )
        assert response.status_code == 200
        assert response.headers["x-api-version"] == "2024-03"

    async def test_x_api_key_header(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await client.post(
            "/users", json={"username": "via-header"}, headers={"x-api-key": account.dev.secret_key}
        )
        assert response.status_code == 200
