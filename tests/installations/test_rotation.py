"""`tether secrets rotate`: install, rotate the encryption key while a server serves, restart
on the new key alone, and read everything back. It rewrites every secret of a database, so it
runs on a database of its own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import (
    bearer,
    create_scratch_database,
    drop_database,
    is_postgres,
    run_server,
)
from tether.config import Settings
from tether.security.crypto import generate_key_spec
from tether.security.rotation import ENCRYPTED_COLUMNS

pytestmark = pytest.mark.slow


@pytest.fixture
def own_database(settings: Settings, tmp_path: Path) -> Iterator[str]:
    if is_postgres(settings.database_url):
        url = create_scratch_database(settings.database_url)
        try:
            yield url
        finally:
            drop_database(settings.database_url, url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'rotation.db'}"


async def tether(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tether", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


async def key_ids_in_use(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    kids: set[str] = set()
    try:
        async with engine.connect() as connection:
            for target in ENCRYPTED_COLUMNS:
                column = target.column.key
                rows = await connection.execute(
                    text(f"SELECT {column} FROM {target.table} WHERE {column} IS NOT NULL")
                )
                kids |= {value.partition(":")[0] for (value,) in rows}
    finally:
        await engine.dispose()
    return kids


class TestSecretsRotate:
    async def test_rotate_while_serving_restart_and_read(
        self, own_database: str, tmp_path: Path
    ) -> None:
        old_spec, new_spec = generate_key_spec(), generate_key_spec()
        base = {"TETHER_DATABASE_URL": own_database, "TETHER_PUBLIC_URL": "http://testserver"}
        old = {**base, "TETHER_ENCRYPTION_KEYS": old_spec}
        both = {**base, "TETHER_ENCRYPTION_KEYS": f"{new_spec},{old_spec}"}
        only_new = {**base, "TETHER_ENCRYPTION_KEYS": new_spec}

        init = json.loads(
            (
                await tether(
                    old, "init", "--account", "Rot", "--email", "rot@example.com", "--json"
                )
            ).stdout
        )
        key = bearer(init["environments"]["development"]["secretKey"])
        secret = {"apiKey": "sk_test_" + "R" * 24}

        with run_server(old, tmp_path, name="before") as server:
            async with httpx.AsyncClient(base_url=server.url) as live:
                login = await live.post(
                    "/admin/login", json={"email": init["email"], "password": init["password"]}
                )
                admin = bearer(login.json()["token"])
                integration = await live.post(
                    "/admin/environments/development/integrations",
                    json={"app": "stripe"},
                    headers=admin,
                )
                await live.post(
                    "/admin/environments/development/integrations",
                    json={
                        "app": "github",
                        "clientId": "gh-client",
                        "clientSecret": "gh-client-secret",
                    },
                    headers=admin,
                )
                await live.post("/users", json={"username": "rotating"}, headers=key)
                installed = await live.post(
                    "/users/rotating/credentials",
                    json={"integrationId": integration.json()["integrationId"], "data": secret},
                    headers=key,
                )
                assert installed.status_code == 200, installed.text
                credential_id = installed.json()["credentialId"]
                old_token = (await live.get("/users/rotating/token", headers=key)).json()["token"]
        assert await key_ids_in_use(own_database) == {old_spec.partition(":")[0]}

        with run_server(both, tmp_path, name="during") as server:
            done = await tether(both, "secrets", "rotate", "--json")
            rewritten = json.loads(done.stdout)["rewritten"]
            assert rewritten["credentials"] == 1
            assert rewritten["integrations"] == 1
            assert rewritten["token_keys"] == 2
            async with httpx.AsyncClient(base_url=server.url) as live:  # it kept serving
                read = await live.get(f"/users/rotating/credentials/{credential_id}", headers=key)
                assert read.json()["data"] == secret
        assert await key_ids_in_use(own_database) == {new_spec.partition(":")[0]}

        again = json.loads((await tether(both, "secrets", "rotate", "--json")).stdout)
        assert set(again["rewritten"].values()) == {0}

        with run_server(only_new, tmp_path, name="after") as server:
            async with httpx.AsyncClient(base_url=server.url) as live:
                read = await live.get(f"/users/rotating/credentials/{credential_id}", headers=key)
                assert read.status_code == 200, read.text
                assert read.json()["data"] == secret
                token = (await live.get("/users/rotating/token", headers=key)).json()["token"]
                for user_token in (token, old_token):
                    me = await live.get("/sdk/me", headers=bearer(user_token))
                    assert me.json()["username"] == "rotating"
