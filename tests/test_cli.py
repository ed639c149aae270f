"""The `tether` command, run as a real process against the test database."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api_keys.helpers import KEY_FIELDS, find_key, list_keys
from tests.conftest import Account
from tests.support import (
    assert_key_accepted,
    assert_key_refused,
    bearer,
    run_cli,
)
from tether.accounts.models import Account as AccountRow
from tether.accounts.models import Member
from tether.security.keys import parse_api_key

KEY_PREFIXES = {
    "development": ("tether_sk_dev_", "tether_pk_dev_"),
    "production": ("tether_sk_prod_", "tether_pk_prod_"),
}


def new_email() -> str:
    return f"cli-{secrets.token_hex(6)}@example.com"


def one_json_object(stdout: str) -> dict[str, Any]:
    """`--json` output: one JSON object and nothing else."""
    value = json.loads(stdout)  # raises on anything before or after the object
    assert isinstance(value, dict)
    return value


async def count_accounts(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AccountRow)) or 0)


class TestInit:
    async def test_prints_the_account_its_login_and_its_keys_once(
        self, client: httpx.AsyncClient, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        email = new_email()
        done = await run_cli(
            server_env, tmp_path, "init", "--account", "Acme", "--email", email, "--json"
        )
        assert done.returncode == 0, done.stderr
        result = one_json_object(done.stdout)
        assert set(result) == {"accountId", "email", "password", "environments"}
        assert result["email"] == email
        assert len(result["password"]) >= 16  # generated
        assert set(result["environments"]) == {"development", "production"}
        for name, env in result["environments"].items():
            assert set(env) == {"environmentId", "secretKey", "publishableKey"}
            secret_prefix, publishable_prefix = KEY_PREFIXES[name]
            assert env["secretKey"].startswith(secret_prefix)
            assert env["publishableKey"].startswith(publishable_prefix)
            assert parse_api_key(env["secretKey"]) is not None
            assert parse_api_key(env["publishableKey"]) is not None

        # All of it works against the API.
        login = await client.post(
            "/admin/login", json={"email": email, "password": result["password"]}
        )
        assert login.status_code == 200
        account = (await client.get("/admin/account", headers=bearer(login.json()["token"]))).json()
        assert account["accountId"] == result["accountId"]
        assert account["name"] == "Acme"
        assert {env["name"]: env["environmentId"] for env in account["environments"]} == {
            name: env["environmentId"] for name, env in result["environments"].items()
        }
        for env in result["environments"].values():
            await assert_key_accepted(client, env["secretKey"])
            await assert_key_accepted(client, env["publishableKey"])

    async def test_honours_a_given_password(
        self, client: httpx.AsyncClient, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        email = new_email()
        password = "Tr0ub4dor&3-" + secrets.token_hex(4)
        done = await run_cli(
            server_env,
            tmp_path,
            *("init", "--account", "Acme", "--email", email, "--password", password, "--json"),
        )
        assert done.returncode == 0, done.stderr
        assert one_json_object(done.stdout)["password"] == password
        ok = await client.post("/admin/login", json={"email": email, "password": password})
        assert ok.status_code == 200
        wrong = await client.post("/admin/login", json={"email": email, "password": password[:-1]})
        assert wrong.status_code == 401

    async def test_an_existing_email_fails_and_changes_nothing(
        self,
        server_env: dict[str, str],
        tmp_path: Path,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        email = new_email()
        first = await run_cli(
            server_env, tmp_path, "init", "--account", "A", "--email", email, "--json"
        )
        assert first.returncode == 0, first.stderr
        accounts = await count_accounts(sessionmaker)

        for again in (email, email.upper()):
            done = await run_cli(
                server_env, tmp_path, "init", "--account", "B", "--email", again, "--json"
            )
            assert done.returncode != 0
            assert done.stdout == ""
            assert "already exists" in done.stderr
            assert "Traceback" not in done.stderr
        assert await count_accounts(sessionmaker) == accounts
        async with sessionmaker() as session:
            members = await session.scalar(
                select(func.count()).select_from(Member).where(Member.email == email)
            )
        assert members == 1


class TestKeys:
    async def test_create(
        self,
        client: httpx.AsyncClient,
        account: Account,
        server_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        done = await run_cli(
            server_env,
            tmp_path,
            *("keys", "create", "--account", account.id, "--env", "production"),
            *("--type", "secret", "--name", "Deploys", "--json"),
        )
        assert done.returncode == 0, done.stderr
        key = one_json_object(done.stdout)
        assert set(key) == KEY_FIELDS | {"key"}
        assert key["key"].startswith("tether_sk_prod_")
        assert (key["type"], key["name"], key["prefix"]) == ("secret", "Deploys", "tether_sk_prod_")
        assert key["last4"] == key["key"][-4:]
        await assert_key_accepted(client, key["key"])
        listed = await find_key(client, account.admin, "production", key["key"])
        assert listed["id"] == key["id"]

    async def test_create_for_an_unknown_account_fails(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        done = await run_cli(
            server_env,
            tmp_path,
            *("keys", "create", "--account", "acc_nope", "--env", "development"),
            *("--type", "publishable", "--json"),
        )
        assert done.returncode != 0
        assert done.stdout == ""
        assert "No such environment" in done.stderr

    async def test_list(
        self,
        client: httpx.AsyncClient,
        account: Account,
        server_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        done = await run_cli(
            server_env,
            tmp_path,
            *("keys", "list", "--account", account.id, "--env", "development", "--json"),
        )
        assert done.returncode == 0, done.stderr
        listed = one_json_object(done.stdout)
        assert set(listed) == {"data"}
        assert all(set(key) == KEY_FIELDS for key in listed["data"])
        over_http = await list_keys(client, account.admin, "development")
        assert sorted(k["id"] for k in listed["data"]) == sorted(k["id"] for k in over_http)
        for key in (account.dev.secret_key, account.dev.publishable_key):
            assert key not in done.stdout
            assert key[-20:-6] not in done.stdout

    async def test_roll_with_no_grace(
        self,
        client: httpx.AsyncClient,
        account: Account,
        server_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        old = await find_key(client, account.admin, "development", account.dev.secret_key)
        done = await run_cli(
            server_env, tmp_path, "keys", "roll", old["id"], "--grace-seconds", "0", "--json"
        )
        assert done.returncode == 0, done.stderr
        new = one_json_object(done.stdout)
        assert set(new) == KEY_FIELDS | {"key"}
        assert new["id"] != old["id"]
        assert new["key"].startswith("tether_sk_dev_")
        await assert_key_refused(client, account.dev.secret_key, "api_key_revoked")
        await assert_key_accepted(client, new["key"])

    async def test_roll_an_unknown_key_fails(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        done = await run_cli(server_env, tmp_path, "keys", "roll", "key_nope", "--json")
        assert done.returncode != 0
        assert done.stdout == ""
        assert "No such API key" in done.stderr

    async def test_revoke(
        self,
        client: httpx.AsyncClient,
        account: Account,
        server_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        key = await find_key(client, account.admin, "production", account.prod.publishable_key)
        done = await run_cli(server_env, tmp_path, "keys", "revoke", key["id"])
        assert done.returncode == 0, done.stderr
        assert key["id"] in done.stdout
        await assert_key_refused(client, account.prod.publishable_key, "api_key_revoked")
        await assert_key_accepted(client, account.prod.secret_key)


class TestDbCheck:
    async def test_the_migrated_database_matches_the_models(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        done = await run_cli(server_env, tmp_path, "db", "check")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "agree" in done.stdout
