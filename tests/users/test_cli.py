"""`tether token-keys rotate` and `tether secrets generate-key` as real commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import jwt

from tests.conftest import Account
from tests.support import bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint


async def tether(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the app under test shares this event loop and must keep serving.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tether", *args],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestTokenKeysRotate:
    async def test_rotates_one_environment(
        self, client: httpx.AsyncClient, account: Account, server_env: dict[str, str]
    ) -> None:
        await create_user(client, account.dev.secret_key, "cli-rotated")
        before = (await mint(client, account.dev.secret_key, "cli-rotated"))["token"]
        result = await tether(
            server_env, "token-keys", "rotate", "--environment", account.dev.id, "--json"
        )
        assert result.returncode == 0, result.stderr
        rotated = json.loads(result.stdout)["rotated"]
        assert [item["environmentId"] for item in rotated] == [account.dev.id]
        after = (await mint(client, account.dev.secret_key, "cli-rotated"))["token"]
        assert jwt.get_unverified_header(after)["kid"] == rotated[0]["kid"]
        assert (await client.get("/sdk/me", headers=bearer(before))).status_code == 200

    async def test_unknown_environment_fails(self, server_env: dict[str, str]) -> None:
        result = await tether(server_env, "token-keys", "rotate", "--environment", "env_nope")
        assert result.returncode != 0
        assert "env_nope" in result.stderr


class TestSecretsGenerateKey:
    async def test_prints_a_usable_key(self) -> None:
        result = await tether({}, "secrets", "generate-key")
        assert result.returncode == 0
        spec = result.stdout.strip()
        kid, _, key = spec.partition(":")
        assert kid
        assert len(key) == 44

    async def test_serve_refuses_to_start_without_a_key(self, server_env: dict[str, str]) -> None:
        env = {**server_env, "TETHER_ENCRYPTION_KEYS": ""}
        result = await tether(env, "serve", "--port", "1")
        assert result.returncode != 0
        assert "TETHER_ENCRYPTION_KEYS" in result.stderr
