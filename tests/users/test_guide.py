"""The Alloy guide (shared/reference/000_e8ab45ef8f1cb95e.txt), replayed with curl as written
against a real `tether serve` process, and its token verified by a third party that knows
nothing but the JWKS URL."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import jwt
import pytest

from tests.conftest import Account
from tests.support import Server, run_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(server_env, tmp_path_factory.mktemp("guide")) as server:
        yield server


def curl(*args: str) -> dict[str, str]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(
        ["curl", "--silent", "--show-error", *args], capture_output=True, check=True
    )
    return json.loads(out.stdout)


class TestAlloyGuide:
    def test_create_user_then_token_as_documented(self, server: Server, account: Account) -> None:
        base = f"{server.url}/2024-03"
        created = curl(
            "--request", "POST",
            "--url", f"{base}/users",
            "--header", f"Authorization: bearer {account.dev.secret_key}",
            "--header", "accept: application/json",
            "--header", "content-type: application/json",
            "--data", '{ "username": "YOUR_USERNAME" }',
        )  # fmt: skip
        assert created["userId"].startswith("usr_")

        token = curl(
            "--request", "GET",
            "--url", f"{base}/users/{created['userId']}/token",
            "--header", "Accept: application/json",
            "--header", f"Authorization: bearer {account.dev.secret_key}",
        )  # fmt: skip
        assert token["token"].count(".") == 2

        # The guide also names it GET /user/:userId/token.
        singular = curl(
            "--url", f"{base}/user/{created['userId']}/token",
            "--header", f"Authorization: bearer {account.dev.secret_key}",
        )  # fmt: skip
        assert singular["token"] != token["token"]

    def test_a_third_party_verifies_the_token_from_the_jwks_url(
        self, server: Server, account: Account
    ) -> None:
        created = curl(
            "-X", "POST", f"{server.url}/users",
            "-H", f"Authorization: Bearer {account.prod.secret_key}",
            "-H", "content-type: application/json",
            "-d", '{"username": "verified"}',
        )  # fmt: skip
        token = curl(
            f"{server.url}/users/verified/token",
            "-H", f"Authorization: Bearer {account.prod.secret_key}",
        )["token"]  # fmt: skip

        jwks_client = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json")
        signing_key = jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, signing_key.key, algorithms=["ES256"], audience="tether:sdk")
        assert claims["sub"] == created["userId"]
        assert claims["env"] == account.prod.id
