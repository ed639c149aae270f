"""Each page of the dashboard, driven through its forms in process: what it shows, what its
forms do (through the same services as the admin API), and how it refuses bad input and
another account's ids."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api_keys.helpers import create_key, find_key, list_keys
from tests.conftest import Account
from tests.dashboard.helpers import UI, get_page, parse, post_form, signed_in
from tests.installations.helpers import create_integration, install, stripe_key
from tests.support import assert_key_accepted, assert_key_refused, bearer
from tether.catalog.apps import get_app
from tether.db.base import utcnow

KEYS = f"{UI}/production/api-keys"
SIGNING = f"{UI}/production/signing-keys"
INTEGRATIONS = f"{UI}/development/integrations"
USERS = f"{UI}/development/users"
SETTINGS = f"{UI}/production/settings"


def new_key_in(html: str) -> str:
    match = re.search(r'id="new-key" type="text" readonly value="([^"]+)"', html)
    assert match, "the page shows no new key"
    return match.group(1)


def alert(html: str) -> str:
    match = re.search(
        r'class="alert alert-(?:error|success)" role="(?:alert|status)">([^<]*)<', html
    )
    assert match, "the page shows no alert"
    return unescape(match.group(1))


def field_error(html: str, name: str) -> str:
    match = re.search(rf'id="{name}-error">([^<]*)<', html)
    assert match, f"no error shown for {name}"
    return unescape(match.group(1))


async def api_get(client: httpx.AsyncClient, account: Account, path: str) -> Any:
    response = await client.get(path, headers=account.admin)
    assert response.status_code == 200, response.text
    return response.json()


class TestLayout:
    async def test_header_navigation_and_environment_switcher(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        html = (await get_page(client, account, f"{UI}/production/users")).text
        assert "Test Co" in html
        assert account.email in html
        # The switcher keeps the section; the current environment is marked.
        assert f'href="{UI}/development/users">Development</a>' in html
        assert f'href="{UI}/production/users" aria-current="page">Production</a>' in html
        for section, label in [
            ("api-keys", "API Keys"),
            ("signing-keys", "Signing keys"),
            ("settings", "Environment"),
            ("integrations", "Integrations"),
            ("users", "Users"),
            ("audit-log", "Audit log"),
        ]:
            assert f'href="{UI}/production/{section}"' in html, label
            assert f">{label}</a>" in html
        assert "Settings</h2>" in html
        assert "Production: changes here affect your live customers" in html

    async def test_pages_are_never_cached_nor_framed(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await get_page(client, account, KEYS)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"

    @pytest.mark.parametrize("env", ["staging", "env_0123"])
    async def test_an_unknown_environment_is_a_404_page(
        self, client: httpx.AsyncClient, account: Account, env: str
    ) -> None:
        response = await client.get(f"{UI}/{env}/api-keys", headers=signed_in(account))
        assert response.status_code == 404
        assert "No such environment." in response.text

    async def test_another_accounts_environment_id_is_a_404_page(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        response = await client.get(
            f"{UI}/{other_account.prod.id}/api-keys", headers=signed_in(account)
        )
        assert response.status_code == 404

    async def test_an_unknown_page_is_a_404_page(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get(f"{UI}/production/nothing-here", headers=signed_in(account))
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "There is no such page" in response.text


class TestApiKeys:
    async def test_lists_keys_by_prefix_and_last_four(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        html = (await get_page(client, account, KEYS)).text
        for key in (account.prod.secret_key, account.prod.publishable_key):
            assert key not in html
            assert f"{key[:15]}…{key[-4:]}" in html
        assert "No active keys" not in html

    async def test_create_shows_the_key_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await post_form(client, account, KEYS, {"type": "secret", "name": "Backend"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        plaintext = new_key_in(response.text)
        assert plaintext.startswith("tether_sk_prod_")
        assert "You won't be able to see it again" in response.text
        # A reload of that page must not post the form again: the script swaps the URL.
        assert f'data-replace-url="{KEYS}"' in response.text
        await assert_key_accepted(client, plaintext)
        listed = await find_key(client, account.admin, "production", plaintext)
        assert listed["name"] == "Backend"
        assert plaintext not in (await get_page(client, account, KEYS)).text

    async def test_create_a_publishable_key_that_expires(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        when = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        response = await post_form(
            client, account, KEYS, {"type": "publishable", "expiresAt": when}
        )
        plaintext = new_key_in(response.text)
        assert plaintext.startswith("tether_pk_prod_")
        listed = await find_key(client, account.admin, "production", plaintext)
        assert listed["expiresAt"] == f"{when}:00Z"

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"type": "root"}, "type", "Must be 'secret' or 'publishable'"),
            ({"type": "secret", "expiresAt": "2001-01-01T00:00"}, "expiresAt", "in the future"),
            ({"type": "secret", "name": "x" * 201}, "name", "at most 200 characters"),
        ],
    )
    async def test_bad_input_is_shown_on_the_form_and_makes_no_key(
        self,
        client: httpx.AsyncClient,
        account: Account,
        data: dict[str, str],
        field: str,
        message: str,
    ) -> None:
        before = await list_keys(client, account.admin, "production")
        response = await post_form(client, account, KEYS, data)
        assert response.status_code == 422
        assert message in field_error(response.text, field)
        assert "The key was not created" in alert(response.text)
        assert 'id="new-key"' not in response.text
        assert await list_keys(client, account.admin, "production") == before

    async def test_roll_with_no_grace_revokes_the_old_key_at_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await find_key(client, account.admin, "production", account.prod.secret_key)
        page = await get_page(client, account, f"{KEYS}/{old['id']}/roll")
        assert "Immediately" in page.text
        assert "In 7 days" in page.text
        response = await post_form(
            client, account, f"{KEYS}/{old['id']}/roll", {"gracePeriodSeconds": "0"}
        )
        assert response.status_code == 200
        new = new_key_in(response.text)
        assert new != account.prod.secret_key
        assert "The previous key was revoked" in response.text
        await assert_key_refused(client, account.prod.secret_key, "api_key_revoked")
        await assert_key_accepted(client, new)
        html = (await get_page(client, account, KEYS)).text
        assert "Revoked and expired keys (1)" in html

    async def test_roll_with_a_grace_period_keeps_the_old_key_for_a_while(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await find_key(client, account.admin, "production", account.prod.secret_key)
        response = await post_form(
            client, account, f"{KEYS}/{old['id']}/roll", {"gracePeriodSeconds": "3600"}
        )
        new = new_key_in(response.text)
        assert "keeps working for 1 hour" in response.text
        await assert_key_accepted(client, account.prod.secret_key)
        await assert_key_accepted(client, new)
        listed = await find_key(client, account.admin, "production", account.prod.secret_key)
        assert listed["expiresAt"] is not None
        assert 'badge-warning">Expires' in (await get_page(client, account, KEYS)).text

    @pytest.mark.parametrize("grace", ["604801", "-1", "soon", ""])
    async def test_roll_refuses_a_bad_grace_period(
        self, client: httpx.AsyncClient, account: Account, grace: str
    ) -> None:
        old = await find_key(client, account.admin, "production", account.prod.secret_key)
        response = await post_form(
            client, account, f"{KEYS}/{old['id']}/roll", {"gracePeriodSeconds": grace}
        )
        assert response.status_code == 422
        assert "The key was not rolled" in alert(response.text)
        await assert_key_accepted(client, account.prod.secret_key)
        assert len(await list_keys(client, account.admin, "production")) == 2

    async def test_rolling_a_revoked_key_is_explained(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        old = await find_key(client, account.admin, "production", account.prod.secret_key)
        await post_form(client, account, f"{KEYS}/{old['id']}/revoke")
        page = await get_page(client, account, f"{KEYS}/{old['id']}/roll")
        assert "only an active key can be rolled" in page.text
        assert not [f for f in parse(page.text).forms if (f["action"] or "").endswith("/roll")]
        response = await post_form(
            client, account, f"{KEYS}/{old['id']}/roll", {"gracePeriodSeconds": "0"}
        )
        assert response.status_code == 409
        assert "Only an active key can be rolled." in alert(response.text)

    async def test_revoke(self, client: httpx.AsyncClient, account: Account) -> None:
        key = await find_key(client, account.admin, "production", account.prod.secret_key)
        response = await post_form(client, account, f"{KEYS}/{key['id']}/revoke")
        assert response.status_code == 303
        assert response.headers["location"] == f"{KEYS}?notice=key-revoked"
        await assert_key_refused(client, account.prod.secret_key, "api_key_revoked")
        html = (await get_page(client, account, response.headers["location"])).text
        assert "The key was revoked." in alert(html)

    async def test_another_environments_or_accounts_key_is_a_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        dev = await find_key(client, account.admin, "development", account.dev.secret_key)
        theirs = await find_key(
            client, other_account.admin, "production", other_account.prod.secret_key
        )
        for key_id in (dev["id"], theirs["id"]):
            page = await client.get(f"{KEYS}/{key_id}/roll", headers=signed_in(account))
            assert page.status_code == 404
            for action, data in (("roll", {"gracePeriodSeconds": "0"}), ("revoke", {})):
                response = await post_form(client, account, f"{KEYS}/{key_id}/{action}", data)
                assert response.status_code == 404, action
                assert "No such API key." in response.text
        await assert_key_accepted(client, account.dev.secret_key)
        await assert_key_accepted(client, other_account.prod.secret_key)


def rsa_public_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class TestSigningKeys:
    async def test_empty_state(self, client: httpx.AsyncClient, account: Account) -> None:
        assert "No signing keys" in (await get_page(client, account, SIGNING)).text

    async def test_generate_shows_the_private_key_once(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await post_form(client, account, f"{SIGNING}/generate")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        b64 = re.search(r'id="private-key-b64" readonly[^>]*>([^<]+)<', response.text)
        link = re.search(
            r'href="data:application/x-pem-file;base64,([^"]+)" download="([^"]+)"', response.text
        )
        assert b64
        assert link
        assert b64.group(1) == link.group(1)
        assert re.fullmatch(
            r"tether-production-signing-key-\d{8}-sgk_[0-9a-f]{32}\.pem", link.group(2)
        )
        listed = (await api_get(client, account, "/admin/environments/production/signing-keys"))[
            "data"
        ]
        assert len(listed) == 1
        assert listed[0]["origin"] == "generated"
        html = (await get_page(client, account, SIGNING)).text
        assert b64.group(1) not in html
        assert listed[0]["publicKey"].strip() in html.replace("&#43;", "+")

    async def test_import_a_public_key(self, client: httpx.AsyncClient, account: Account) -> None:
        pem = rsa_public_pem()
        response = await post_form(client, account, f"{SIGNING}/import", {"publicKey": pem})
        assert response.status_code == 303
        assert response.headers["location"] == f"{SIGNING}?notice=signing-key-imported"
        listed = (await api_get(client, account, "/admin/environments/production/signing-keys"))[
            "data"
        ]
        assert [key["origin"] for key in listed] == ["imported"]
        assert listed[0]["publicKey"].strip() == pem.strip()

    @pytest.mark.parametrize(
        ("pem", "message"),
        [
            ("", "Paste the PEM of an RSA public key."),
            ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "must be a PEM"),
            (None, "at least 2048 bits"),
        ],
        ids=["empty", "garbage", "1024-bit"],
    )
    async def test_import_refuses_what_is_not_a_usable_key(
        self, client: httpx.AsyncClient, account: Account, pem: str | None, message: str
    ) -> None:
        pem = rsa_public_pem(1024) if pem is None else pem
        response = await post_form(client, account, f"{SIGNING}/import", {"publicKey": pem})
        assert response.status_code == 422
        assert message in field_error(response.text, "publicKey")
        listed = await api_get(client, account, "/admin/environments/production/signing-keys")
        assert listed["data"] == []

    async def test_revoke(self, client: httpx.AsyncClient, account: Account) -> None:
        await post_form(client, account, f"{SIGNING}/import", {"publicKey": rsa_public_pem()})
        key = (await api_get(client, account, "/admin/environments/production/signing-keys"))[
            "data"
        ][0]
        response = await post_form(client, account, f"{SIGNING}/{key['id']}/revoke")
        assert response.status_code == 303
        listed = await api_get(client, account, "/admin/environments/production/signing-keys")
        assert listed["data"][0]["revokedAt"] is not None
        assert "Revoked keys (1)" in (await get_page(client, account, SIGNING)).text

    async def test_another_accounts_key_is_a_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        theirs = await client.post(
            "/admin/environments/production/signing-keys", json={}, headers=other_account.admin
        )
        response = await post_form(client, account, f"{SIGNING}/{theirs.json()['id']}/revoke")
        assert response.status_code == 404
        listed = await api_get(client, other_account, "/admin/environments/production/signing-keys")
        assert listed["data"][0]["revokedAt"] is None


class TestIntegrations:
    async def test_empty_state_and_the_whole_catalogue(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        html = (await get_page(client, account, INTEGRATIONS)).text
        assert "No integrations yet" in html
        apps = await client.get("/apps", headers=bearer(account.dev.secret_key))
        for app in apps.json()["data"]:
            assert f'href="{INTEGRATIONS}/new?app={app["app"]}"' in html

    async def test_each_auth_type_asks_for_its_own_fields(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        def inputs(html: str) -> set[str]:
            form = next(f for f in parse(html).forms if f["action"] == INTEGRATIONS)
            return set(form["inputs"]) - {"csrf_token"}

        github = (await get_page(client, account, f"{INTEGRATIONS}/new?app=github")).text
        assert inputs(github) == {"app", "name", "clientId", "clientSecret", "scopes"}
        assert "http://testserver/oauth/callback" in github
        custom = (await get_page(client, account, f"{INTEGRATIONS}/new?app=custom_oauth2")).text
        assert inputs(custom) == {
            "app", "name", "clientId", "clientSecret", "scopes", "authorizeUrl", "tokenUrl",
        }  # fmt: skip
        stripe = (await get_page(client, account, f"{INTEGRATIONS}/new?app=stripe")).text
        assert inputs(stripe) == {"app", "name"}
        assert "What users enter" in stripe
        assert "Secret key" in stripe
        missing = await client.get(f"{INTEGRATIONS}/new?app=nope", headers=signed_in(account))
        assert missing.status_code == 404

    async def test_add_an_api_key_app(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await post_form(client, account, INTEGRATIONS, {"app": "stripe"})
        assert response.status_code == 303
        listed = (await api_get(client, account, "/admin/environments/development/integrations"))[
            "data"
        ]
        assert [(i["app"], i["name"], i["enabled"]) for i in listed] == [("stripe", "Stripe", True)]
        integration_id = listed[0]["integrationId"]
        assert response.headers["location"] == (
            f"{INTEGRATIONS}/{integration_id}?notice=integration-created"
        )
        page = (await get_page(client, account, response.headers["location"])).text
        assert "The integration was added." in alert(page)

    async def test_add_an_oauth_app_whose_secret_is_never_shown(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        secret = f"cs_{'s3cr3t' * 5}"
        response = await post_form(
            client,
            account,
            INTEGRATIONS,
            {
                "app": "custom_oauth2",
                "name": "Acme ID",
                "clientId": "cid",
                "clientSecret": secret,
                "scopes": "read, write\nadmin",
                "authorizeUrl": "https://id.example.com/authorize",
                "tokenUrl": "https://id.example.com/token",
            },
        )
        assert response.status_code == 303
        [created] = (
            await api_get(client, account, "/admin/environments/development/integrations")
        )["data"]
        assert created["scopes"] == ["read", "write", "admin"]
        assert created["hasClientSecret"] is True
        page = (await get_page(client, account, response.headers["location"])).text
        assert secret not in page
        assert "write-only" in page

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"app": "github", "clientId": "cid"}, "needs clientId and clientSecret"),
            (
                {
                    "app": "custom_oauth2",
                    "clientId": "cid",
                    "clientSecret": "cs_abcdefgh",
                    "authorizeUrl": "http://id.example.com/authorize",
                    "tokenUrl": "https://id.example.com/token",
                },
                "authorizeUrl must be an https URL",
            ),
        ],
    )
    async def test_refused_input_is_explained_and_the_secret_not_echoed(
        self, client: httpx.AsyncClient, account: Account, data: dict[str, str], message: str
    ) -> None:
        response = await post_form(client, account, INTEGRATIONS, data)
        assert response.status_code == 422
        assert message in alert(response.text)
        assert "cs_abcdefgh" not in response.text
        assert 'value="cid"' in response.text  # what was typed is kept, but for the secret
        listed = await api_get(client, account, "/admin/environments/development/integrations")
        assert listed["data"] == []

    async def test_edit_keeps_a_blank_secret_and_resets_blank_scopes(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(
            client,
            account.admin,
            {"app": "github", "clientId": "cid", "clientSecret": "cs_1", "scopes": ["repo"]},
        )
        path = f"{INTEGRATIONS}/{created['integrationId']}"
        page = (await get_page(client, account, path)).text
        assert 'value="repo"' in page
        assert 'value="cid"' in page
        response = await post_form(
            client, account, path, {"name": "GitHub (org)", "clientId": "cid2", "scopes": ""}
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"{path}?notice=integration-saved"
        updated = await api_get(
            client,
            account,
            f"/admin/environments/development/integrations/{created['integrationId']}",
        )
        assert updated["name"] == "GitHub (org)"
        assert updated["clientId"] == "cid2"
        assert updated["hasClientSecret"] is True
        # Blank scopes: back to the app's defaults.
        assert updated["scopes"] == list(get_app("github").default_scopes)

    async def test_edit_refuses_a_bad_url(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(
            client,
            account.admin,
            {
                "app": "custom_oauth2",
                "clientId": "cid",
                "clientSecret": "cs_1",
                "authorizeUrl": "https://id.example.com/a",
                "tokenUrl": "https://id.example.com/t",
            },
        )
        path = f"{INTEGRATIONS}/{created['integrationId']}"
        response = await post_form(
            client,
            account,
            path,
            {"name": "x", "tokenUrl": "ftp://id.example.com/t", "authorizeUrl": "https://a.b/c"},
        )
        assert response.status_code == 422
        assert "tokenUrl must be an https URL" in alert(response.text)
        unchanged = await api_get(
            client,
            account,
            f"/admin/environments/development/integrations/{created['integrationId']}",
        )
        assert unchanged["tokenUrl"] == "https://id.example.com/t"
        assert unchanged["name"] == created["name"]

    async def test_disable_enable_and_delete(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        created = await create_integration(client, account.admin, {"app": "stripe"})
        integration = created["integrationId"]
        api_path = f"/admin/environments/development/integrations/{integration}"
        response = await post_form(client, account, f"{INTEGRATIONS}/{integration}/disable")
        assert response.headers["location"] == f"{INTEGRATIONS}?notice=integration-disabled"
        assert (await api_get(client, account, api_path))["enabled"] is False
        listed = await client.get("/integrations", headers=bearer(account.dev.secret_key))
        assert listed.json()["data"] == []
        html = (await get_page(client, account, INTEGRATIONS)).text
        assert f"{integration}/enable" in html
        assert "Disabled" in html
        await post_form(client, account, f"{INTEGRATIONS}/{integration}/enable")
        assert (await api_get(client, account, api_path))["enabled"] is True
        response = await post_form(client, account, f"{INTEGRATIONS}/{integration}/delete")
        assert response.headers["location"] == f"{INTEGRATIONS}?notice=integration-deleted"
        gone = await client.get(api_path, headers=account.admin)
        assert gone.status_code == 404

    async def test_another_accounts_integration_is_a_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        theirs = (await create_integration(client, other_account.admin, {"app": "stripe"}))[
            "integrationId"
        ]
        page = await client.get(f"{INTEGRATIONS}/{theirs}", headers=signed_in(account))
        assert page.status_code == 404
        for action in ("", "/disable", "/delete"):
            response = await post_form(client, account, f"{INTEGRATIONS}/{theirs}{action}")
            assert response.status_code == 404, action
        still = await api_get(
            client, other_account, f"/admin/environments/development/integrations/{theirs}"
        )
        assert still["enabled"] is True


async def make_user(client: httpx.AsyncClient, account: Account, username: str) -> str:
    response = await client.post(
        "/users", json={"username": username}, headers=bearer(account.dev.secret_key)
    )
    assert response.status_code == 200, response.text
    user_id: str = response.json()["userId"]
    return user_id


class TestUsers:
    async def test_empty_state_tells_how_to_create_users(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        html = (await get_page(client, account, USERS)).text
        assert "No users in development yet" in html
        assert "curl -X POST http://testserver/users" in html

    async def test_search_by_part_of_the_username_in_any_case_or_by_id(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        acme = await make_user(client, account, "acme-corp")
        await make_user(client, account, "globex")
        await make_user(client, account, "100%_real")
        html = (await get_page(client, account, USERS)).text
        assert "acme-corp" in html
        assert "globex" in html
        found = (await get_page(client, account, f"{USERS}?q=ACME")).text
        assert "acme-corp" in found
        assert "globex" not in found
        assert "Users matching “ACME”" in found
        by_id = (await get_page(client, account, f"{USERS}?q={acme}")).text
        assert "acme-corp" in by_id
        assert "globex" not in by_id
        # LIKE's wildcards are plain characters in a search.
        percent = (await get_page(client, account, f"{USERS}?q=%25_")).text
        assert "100%_real" in percent
        assert "acme-corp" not in percent
        none = (await get_page(client, account, f"{USERS}?q=initech")).text
        assert "No user matches “initech”" in none

    async def test_pages_through_many_users(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for n in range(51):
            await make_user(client, account, f"user-{n:02d}")
        first = (await get_page(client, account, USERS)).text
        assert "user-00" in first
        assert "user-50" not in first
        next_url = re.search(r'class="pager"><a class="btn" href="([^"]+)"', first)
        assert next_url
        second = (await get_page(client, account, next_url.group(1).replace("&amp;", "&"))).text
        assert "user-50" in second
        assert "user-00" not in second

    async def test_a_users_installations_and_credential_metadata_without_secrets(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user_id = await make_user(client, account, "acme-corp")
        stripe = (await create_integration(client, account.admin, {"app": "stripe"}))[
            "integrationId"
        ]
        secret = stripe_key()
        installed = await install(
            client, account.dev.secret_key, "acme-corp", stripe, {"apiKey": secret}
        )
        html = (await get_page(client, account, f"{USERS}/{user_id}")).text
        assert "acme-corp" in html
        assert installed["installationId"] in html
        assert installed["credentialId"] in html
        assert "Stripe" in html
        assert secret not in html
        by_name = await get_page(client, account, f"{USERS}/acme-corp")
        assert user_id in by_name.text

    async def test_remove_an_installation_then_delete_the_user(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user_id = await make_user(client, account, "acme-corp")
        stripe = (await create_integration(client, account.admin, {"app": "stripe"}))[
            "integrationId"
        ]
        installed = await install(
            client, account.dev.secret_key, "acme-corp", stripe, {"apiKey": stripe_key()}
        )
        response = await post_form(
            client,
            account,
            f"{USERS}/{user_id}/installations/{installed['installationId']}/delete",
        )
        assert response.headers["location"] == f"{USERS}/{user_id}?notice=installation-deleted"
        key = bearer(account.dev.secret_key)
        assert (
            await client.get(f"/installations/{installed['installationId']}", headers=key)
        ).status_code == 404
        assert "No installations" in (await get_page(client, account, f"{USERS}/{user_id}")).text
        response = await post_form(client, account, f"{USERS}/{user_id}/delete")
        assert response.headers["location"] == f"{USERS}?notice=user-deleted"
        assert (await client.get(f"/users/{user_id}", headers=key)).status_code == 404

    async def test_a_user_of_another_environment_is_a_404(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user_id = await make_user(client, account, "acme-corp")
        prod = f"{UI}/production/users/{user_id}"
        assert (await client.get(prod, headers=signed_in(account))).status_code == 404
        assert (await post_form(client, account, f"{prod}/delete")).status_code == 404
        still = await client.get(f"/users/{user_id}", headers=bearer(account.dev.secret_key))
        assert still.status_code == 200


class TestSettings:
    async def test_shows_the_current_settings(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        html = (await get_page(client, account, SETTINGS)).text
        assert account.prod.id in html
        ttl = re.search(r'name="userTokenTtlSeconds"[^>]* value="(\d+)"', html)
        assert ttl
        assert ttl.group(1) == "1800"
        assert 'value="true" checked' in html

    async def test_save(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await post_form(
            client,
            account,
            SETTINGS,
            {
                "userTokenTtlSeconds": "600",
                "tenantTokenMaxLifetimeSeconds": "900",
                "allowedOrigins": "https://App.Example.com\nhttp://localhost:3000\n",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"{SETTINGS}?notice=settings-saved"
        account_out = await api_get(client, account, "/admin/account")
        prod = next(e for e in account_out["environments"] if e["name"] == "production")
        assert prod["requireTenantToken"] is False  # the box was left unticked
        assert prod["userTokenTtlSeconds"] == 600
        assert prod["tenantTokenMaxLifetimeSeconds"] == 900
        assert prod["allowedOrigins"] == ["https://app.example.com", "http://localhost:3000"]
        html = (await get_page(client, account, response.headers["location"])).text
        assert "https://app.example.com\nhttp://localhost:3000</textarea>" in html

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("userTokenTtlSeconds", "0", "greater than or equal to 1"),
            ("userTokenTtlSeconds", "soon", "Enter a whole number."),
            ("tenantTokenMaxLifetimeSeconds", "86401", "less than or equal to 86400"),
            (
                "allowedOrigins",
                "https://ok.example\nftp://nope",
                "Line 2 (ftp://nope): an origin is",
            ),
        ],
    )
    async def test_bad_values_are_shown_by_field_and_nothing_is_saved(
        self, client: httpx.AsyncClient, account: Account, field: str, value: str, message: str
    ) -> None:
        data = {
            "requireTenantToken": "true",
            "userTokenTtlSeconds": "1800",
            "tenantTokenMaxLifetimeSeconds": "3600",
            "allowedOrigins": "",
            field: value,
        }
        response = await post_form(client, account, SETTINGS, data)
        assert response.status_code == 422
        assert message in field_error(response.text, field)
        assert "The settings were not saved" in alert(response.text)
        account_out = await api_get(client, account, "/admin/account")
        prod = next(e for e in account_out["environments"] if e["name"] == "production")
        assert (prod["userTokenTtlSeconds"], prod["allowedOrigins"]) == (1800, [])


class TestAuditLog:
    async def test_lists_what_the_dashboard_did_and_who_did_it(
        self, client: httpx.AsyncClient, account: Account, other_account: Account
    ) -> None:
        key = await find_key(client, account.admin, "production", account.prod.secret_key)
        await post_form(client, account, f"{KEYS}/{key['id']}/revoke")
        theirs = await find_key(
            client, other_account.admin, "production", other_account.prod.secret_key
        )
        await client.delete(
            f"/admin/environments/production/api-keys/{theirs['id']}",
            headers=other_account.admin,
        )
        html = (await get_page(client, account, f"{UI}/development/audit-log")).text
        rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
        revoked = [row for row in rows if "api_key.revoked" in row]
        assert len(revoked) == 1  # this account's only: not the other account's revocation
        assert re.search(rf"You\s*<span[^>]*>{re.escape(account.email)}</span>", revoked[0])
        assert f"api_key {key['id']}" in revoked[0]
        assert "Production" in revoked[0]
        assert "127.0.0.1" in revoked[0]
        # Newest first: the revocation comes before the keys that `tether init` made.
        assert rows.index(revoked[0]) < min(i for i, r in enumerate(rows) if "api_key.created" in r)

    async def test_pages_through_older_events(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for _ in range(50):
            await create_key(client, account.admin, "development")
        first = (await get_page(client, account, f"{UI}/development/audit-log")).text
        older = re.search(r'class="pager"><a class="btn" href="([^"]+)"', first)
        assert older
        second = (await get_page(client, account, older.group(1).replace("&amp;", "&"))).text
        assert "api_key.created" in second
        assert "No events yet" not in second
