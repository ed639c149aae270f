"""No page of the dashboard ever shows a secret after the one response that created it: API
keys (made by `tether init`, the admin API or the dashboard, and rolled), generated private
keys, integrations' client secrets, and users' credentials."""

from __future__ import annotations

import base64
import re

import httpx

from tests.conftest import Account
from tests.dashboard.helpers import UI, get_page, post_form
from tests.installations.helpers import create_integration, custom_oauth2, install, stripe_key
from tests.support import api_keys_of, bearer


def new_key_in(html: str) -> str:
    match = re.search(r'id="new-key" type="text" readonly value="([^"]+)"', html)
    assert match
    return match.group(1)


async def every_page(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    """The HTML of every page of the account, in both environments, with every id filled."""
    pages: dict[str, str] = {}
    for env in ("development", "production"):
        base = f"{UI}/{env}"
        for section in (
            "api-keys",
            "signing-keys",
            "settings",
            "integrations",
            "users",
            "audit-log",
        ):
            pages[f"{base}/{section}"] = (await get_page(client, account, f"{base}/{section}")).text
        for key_id in re.findall(r'data-key-id="(key_[0-9a-f]+)"', pages[f"{base}/api-keys"]):
            path = f"{base}/api-keys/{key_id}/roll"
            pages[path] = (await get_page(client, account, path)).text
        integrations = set(
            re.findall(r'data-integration-id="(int_[0-9a-f]+)"', pages[f"{base}/integrations"])
        )
        for integration_id in integrations:
            path = f"{base}/integrations/{integration_id}"
            pages[path] = (await get_page(client, account, path)).text
        for user_id in re.findall(r'data-user-id="(usr_[0-9a-f]+)"', pages[f"{base}/users"]):
            path = f"{base}/users/{user_id}"
            pages[path] = (await get_page(client, account, path)).text
    pages["login"] = (await client.get(f"{UI}/login")).text
    return pages


class TestNoSecretAfterItsCreation:
    async def test_no_page_shows_a_secret_once_it_was_made(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        secrets = list(api_keys_of(account))  # made by tether init

        # Keys made and rolled through the dashboard: in their creation response, once.
        for env, key_type in (("production", "secret"), ("development", "publishable")):
            created = await post_form(client, account, f"{UI}/{env}/api-keys", {"type": key_type})
            assert created.headers["cache-control"] == "no-store"
            secrets.append(new_key_in(created.text))
        key_id = re.search(
            r'data-key-id="(key_[0-9a-f]+)"',
            (await get_page(client, account, f"{UI}/production/api-keys")).text,
        )
        assert key_id
        rolled = await post_form(
            client,
            account,
            f"{UI}/production/api-keys/{key_id.group(1)}/roll",
            {"gracePeriodSeconds": "3600"},
        )
        secrets.append(new_key_in(rolled.text))
        # A key made through the admin API.
        made = await client.post(
            "/admin/environments/production/api-keys",
            json={"type": "secret"},
            headers=account.admin,
        )
        secrets.append(made.json()["key"])

        # A generated private key, as base64 and as the PEM inside it.
        generated = await post_form(client, account, f"{UI}/production/signing-keys/generate")
        b64 = re.search(r'id="private-key-b64" readonly[^>]*>([^<]+)<', generated.text)
        assert b64
        pem = base64.b64decode(b64.group(1)).decode()
        secrets.append(b64.group(1))
        secrets.extend(line for line in pem.splitlines()[1:-1])  # every line of the key body

        # A client secret and a user's credential.
        client_secret = f"cs_{'x9' * 16}"
        await create_integration(client, account.admin, custom_oauth2(client_secret))
        secrets.append(client_secret)
        stripe = (await create_integration(client, account.admin, {"app": "stripe"}))[
            "integrationId"
        ]
        await client.post(
            "/users", json={"username": "acme"}, headers=bearer(account.dev.secret_key)
        )
        credential = stripe_key()
        await install(client, account.dev.secret_key, "acme", stripe, {"apiKey": credential})
        secrets.append(credential)

        pages = await every_page(client, account)
        assert len(pages) >= 20
        for path, html in pages.items():
            for secret in secrets:
                assert secret not in html, (path, secret[:12])
        # What the pages do show of a key: its prefix and last four characters.
        keys_page = pages[f"{UI}/production/api-keys"]
        assert (
            f"{account.prod.publishable_key[:15]}…{account.prod.publishable_key[-4:]}" in keys_page
        )
