"""`tether serve` as a real process: the first-run bootstrap, and several processes that share
one PostgreSQL database."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account
from tests.support import assert_problem, bearer, run_server

KEY = re.compile(r"tether_(?:sk|pk)_(?:dev|prod)_[0-9A-Za-z]{49}")
LOGIN = re.compile(r"Dashboard login\s+(\S+) / (\S+)")
PROBE = "/admin/account"


@pytest.mark.slow
class TestBootstrap:
    async def test_the_first_start_prints_a_login_and_keys_and_no_later_one_does(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        database = tmp_path / "fresh.db"
        env = {**server_env, "TETHER_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
        assert not database.exists()

        with run_server(env, tmp_path, args=["--bootstrap"], name="first") as server:
            log = server.log()
            login = LOGIN.search(log)
            assert login is not None, log
            email, password = login.groups()
            keys = KEY.findall(log)
            dev_secret = next(key for key in keys if key.startswith("tether_sk_dev_"))
            assert any(key.startswith("tether_pk_dev_") for key in keys)
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/docs")).status_code == 200
                assert (await client.get("/readyz")).status_code == 200
                # What it printed works: the login, and the development secret key.
                session = await client.post(
                    "/admin/login", json={"email": email, "password": password}
                )
                assert session.status_code == 200, session.text
                response = await client.get(PROBE, headers=bearer(dev_secret))
                assert_problem(response, 403, "insufficient_scope")

        with run_server(env, tmp_path, args=["--bootstrap"], name="second") as server:
            log = server.log()
            assert KEY.search(log) is None, log
            assert "Dashboard login" not in log
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/readyz")).status_code == 200
                # The first start's account is still the one there.
                again = await client.post(
                    "/admin/login", json={"email": email, "password": password}
                )
                assert again.status_code == 200
                response = await client.get(PROBE, headers=bearer(dev_secret))
                assert_problem(response, 403, "insufficient_scope")


@pytest.fixture
def postgres_only(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip(
            "several server processes share one database on PostgreSQL only: "
            "set TETHER_TEST_DATABASE_URL to run this"
        )


@pytest.mark.slow
class TestSharedDatabase:
    @pytest.mark.usefixtures("postgres_only")
    async def test_a_key_rolled_on_one_server_is_refused_by_another_at_once(
        self, server_env: dict[str, str], tmp_path: Path, account: Account
    ) -> None:
        with (
            run_server(server_env, tmp_path, name="a") as a,
            run_server(server_env, tmp_path, name="b") as b,
        ):
            async with (
                httpx.AsyncClient(base_url=a.url) as on_a,
                httpx.AsyncClient(base_url=b.url) as on_b,
            ):
                created = await on_a.post(
                    "/admin/environments/production/api-keys",
                    json={"type": "secret"},
                    headers=account.admin,
                )
                assert created.status_code == 201, created.text
                old = created.json()
                # B knows the key: a valid key is refused on an admin route with a 403.
                assert_problem(
                    await on_b.get(PROBE, headers=bearer(old["key"])), 403, "insufficient_scope"
                )

                rolled = await on_a.post(
                    f"/admin/environments/production/api-keys/{old['id']}/roll",
                    json={"gracePeriodSeconds": 0},
                    headers=account.admin,
                )
                assert rolled.status_code == 201, rolled.text

                assert_problem(
                    await on_b.get(PROBE, headers=bearer(old["key"])), 401, "api_key_revoked"
                )
                assert_problem(
                    await on_b.get(PROBE, headers={"x-api-key": rolled.json()["key"]}),
                    403,
                    "insufficient_scope",
                )
