"""What the database holds: no key, password or admin token in clear, in any column of any
table, whichever way the secret was made."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from tests.api_keys.helpers import create_key, find_key, keys_path
from tests.conftest import PASSWORD, Account
from tests.support import api_keys_of, run_cli
from tether.security.keys import digest


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return raw.hex() + "\n" + raw.decode("latin-1")
    return str(value)


async def dump_database(app: FastAPI) -> dict[str, list[str]]:
    """Every value of every column of every row, as text, by table."""

    def tables(connection: Connection) -> list[str]:
        return inspect(connection).get_table_names()

    dump: dict[str, list[str]] = {}
    async with app.state.engine.connect() as connection:
        for table in await connection.run_sync(tables):
            rows = await connection.execute(text(f'SELECT * FROM "{table}"'))
            dump[table] = [_as_text(value) for row in rows for value in row]
    return dump


def secret_parts(secret: str) -> list[str]:
    """The secret, and a long slice of its random part (the part after any prefix), so that a
    copy without its prefix or checksum is caught too."""
    random_part = secret.rsplit("_", 1)[-1]
    return [secret, random_part[:24]] if len(random_part) >= 24 else [secret]


class TestSecretsAtRest:
    async def test_no_secret_is_stored_in_clear(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        account: Account,
        server_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        # Keys made every way there is: by `tether init` in process (the fixture) and as a
        # command, by the admin API's create and roll, and by the command's create.
        created = await create_key(client, account.admin, "production", type="publishable")
        old = await find_key(client, account.admin, "development", account.dev.secret_key)
        rolled = await client.post(
            keys_path("development", old["id"], "roll"),
            json={"gracePeriodSeconds": 60},
            headers=account.admin,
        )
        assert rolled.status_code == 201
        cli_password = "cli-" + secrets.token_urlsafe(12)
        init = await run_cli(
            server_env,
            tmp_path,
            *("init", "--account", "Raw", "--email", f"raw-{secrets.token_hex(4)}@example.com"),
            *("--password", cli_password, "--json"),
        )
        assert init.returncode == 0, init.stderr
        initialized = json.loads(init.stdout)
        cli_key = await run_cli(
            server_env,
            tmp_path,
            *("keys", "create", "--account", account.id, "--env", "development"),
            *("--type", "secret", "--json"),
        )
        assert cli_key.returncode == 0, cli_key.stderr

        keys = [
            *api_keys_of(account),
            created["key"],
            rolled.json()["key"],
            json.loads(cli_key.stdout)["key"],
            *(
                key
                for env in initialized["environments"].values()
                for key in (env["secretKey"], env["publishableKey"])
            ),
        ]
        assert len(set(keys)) == 11
        secrets_in_clear = [
            *(part for secret in [*keys, account.admin_token] for part in secret_parts(secret)),
            PASSWORD,
            cli_password,
        ]

        dump = await dump_database(app)
        assert {"accounts", "environments", "members", "admin_sessions", "api_keys"} <= set(dump)
        everything = "\n".join(value for values in dump.values() for value in values)
        for secret in secrets_in_clear:
            assert secret not in everything, f"{secret[:12]}... is stored in clear"
        # The scan does see what is stored: the keys' and the session's digests.
        for secret in [*keys, account.admin_token]:
            assert digest(secret) in everything
