"""hotglue's secure-requests guide (shared/reference/004_9953e462513ed4c6.txt), run as written:
its Node.js snippet signs a tenant token with the real `jsonwebtoken` package and the private
key Tether generated, and its curl call reads the tenant's linked sources from a real server
with the publishable key."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account
from tests.installations.helpers import create_integration, install, stripe_key
from tests.support import Server, run_server

pytestmark = pytest.mark.slow

INTEROP = Path(__file__).resolve().parents[1] / "interop"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the hotglue snippet needs Node.js (CI has it)")
    if not (INTEROP / "node_modules" / "jsonwebtoken").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install jsonwebtoken from the lockfile")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True, capture_output=True
        )
    return node


@pytest.fixture(scope="module")
def server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(server_env, tmp_path_factory.mktemp("hotglue")) as server:
        yield server


class TestHotglueGuide:
    async def test_snippet_and_curl_read_the_tenants_credentials(
        self, node: str, server: Server, client: httpx.AsyncClient, account: Account
    ) -> None:
        # The snippet's tenant, with a credential to read.
        stripe = (await create_integration(client, account.admin, {"app": "stripe"}))[
            "integrationId"
        ]
        secret = {"apiKey": stripe_key()}
        created = await client.post(
            "/users", json={"username": "tenant-id"}, headers={"x-api-key": account.dev.secret_key}
        )
        assert created.status_code == 200
        await install(client, account.dev.secret_key, "tenant-id", stripe, secret)

        # "Generate a private signing key in the admin panel".
        generated = await client.post(
            "/admin/environments/development/signing-keys", json={}, headers=account.admin
        )
        assert generated.status_code == 201
        private_key = generated.json()["privateKey"]

        signed = await asyncio.to_thread(
            subprocess.run,
            [node, str(INTEROP / "secure_request.js")],
            env={**os.environ, "HOTGLUE_SIGNING_KEY": private_key},
            cwd=INTEROP,
            capture_output=True,
            text=True,
            check=True,
        )
        token = signed.stdout.strip()
        assert token.count(".") == 2

        url = f"{server.url}/{account.dev.id}/{stripe}/tenant-id/linkedSources?token={token}"
        answer = await asyncio.to_thread(
            subprocess.run,
            [
                "curl", "--silent", "--show-error", "--write-out", "\n%{http_code}",
                "--request", "GET",
                "--url", url,
                "--header", "Accept: application/json",
                "--header", f"x-api-key: {account.dev.publishable_key}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        body, _, status = answer.stdout.rpartition("\n")
        assert status == "200", body
        (source,) = json.loads(body)["data"]
        assert source["integrationId"] == stripe
        assert source["app"] == "stripe"
        assert source["data"] == secret
