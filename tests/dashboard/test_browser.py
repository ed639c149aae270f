"""The dashboard in a real Chromium against a real `tether serve` process: log in, make and roll
keys as Alloy's guide describes, download a signing key, refuse a form without its CSRF token,
and walk every page. Each page is saved as a screenshot in artifacts/screenshots/."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.browser import screenshot_path
from tests.conftest import Account
from tests.installations.helpers import stripe_key
from tests.support import Server, bearer, run_server

pytestmark = pytest.mark.slow

UI = "/admin/ui"
WIDE = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with run_server(server_env, tmp_path_factory.mktemp("dashboard")) as server:
        yield server


@pytest.fixture
async def context(browser: Browser, server: Server) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=server.url, viewport=WIDE, accept_downloads=True)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=screenshot_path(f"dashboard-{name}"), full_page=True)


async def log_in(page: Page, account: Account) -> None:
    await page.goto("/admin")
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"**{UI}/development/api-keys")


def api(server: Server, key: str, path: str = "/users") -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=bearer(key), timeout=10)


async def confirm(page: Page, action: str) -> None:
    """Accept the confirmation dialog that a destructive form opens."""
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=action).click()


class TestLogin:
    async def test_a_wrong_password_and_an_unknown_email_get_the_same_message(
        self, page: Page, context: BrowserContext, account: Account
    ) -> None:
        await page.goto("/admin")
        await page.wait_for_url(f"**{UI}/login?next=*")
        await shoot(page, "login")
        messages = []
        for email, password in (
            (account.email, "not the password"),
            ("nobody-here@example.com", account.password),
        ):
            await page.get_by_label("Email").fill(email)
            await page.get_by_label("Password").fill(password)
            await page.get_by_role("button", name="Log in").click()
            error = page.locator("#login-error")
            await expect(error).to_be_visible()
            messages.append(await error.text_content())
        await shoot(page, "login-error")
        assert messages == ["The email or password is not correct."] * 2
        assert not [c for c in await context.cookies() if c["name"] == "tether_session"]

    async def test_log_in_with_the_keyboard_alone(self, page: Page, account: Account) -> None:
        await page.goto(f"{UI}/login")
        # The email field has the focus; Tab reaches the password; Enter submits.
        await expect(page.get_by_label("Email")).to_be_focused()
        await page.keyboard.type(account.email)
        await page.keyboard.press("Tab")
        await page.keyboard.type(account.password)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**{UI}/development/api-keys")
        # The first Tab reaches the skip link, which takes the focus to the content.
        await page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        await expect(skip).to_be_focused()
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"

    async def test_log_out_ends_the_session(
        self, page: Page, context: BrowserContext, account: Account, server: Server
    ) -> None:
        await log_in(page, account)
        token = next(c for c in await context.cookies() if c["name"] == "tether_session")
        assert token["httpOnly"]
        assert token["sameSite"] == "Strict"
        assert token["path"] == "/admin"
        await page.get_by_role("button", name="Log out").click()
        await expect(page.get_by_text("You have logged out.")).to_be_visible()
        # The admin session the cookie held is revoked for the JSON API too.
        response = api(server, token["value"], "/admin/account")
        assert response.status_code == 401
        await page.goto(f"{UI}/production/api-keys")
        await page.wait_for_url(f"**{UI}/login?*")


class TestApiKeys:
    async def test_generate_read_once_reload_roll_and_the_old_key_is_refused(
        self, page: Page, account: Account, server: Server
    ) -> None:
        await log_in(page, account)
        await (
            page.get_by_role("navigation", name="Environment")
            .get_by_role("link", name="Production")
            .click()
        )
        await page.wait_for_url(f"**{UI}/production/api-keys")
        await shoot(page, "api-keys-empty-form")

        # Generate a production key: shown once, with a copy button and a warning.
        await page.get_by_label("Name").fill("Backend")
        await page.get_by_role("button", name="Create key").click()
        panel = page.get_by_test_id("new-key-panel")
        await expect(panel).to_be_visible()
        await expect(panel).to_contain_text("You won't be able to see it again")
        plaintext = await page.locator("#new-key").input_value()
        assert re.fullmatch(r"tether_sk_prod_[0-9A-Za-z]{49}", plaintext)
        await panel.get_by_role("button", name="Copy key").click()
        await expect(panel.get_by_role("button", name="Copied")).to_be_visible()
        assert await page.evaluate("navigator.clipboard.readText()") == plaintext
        await shoot(page, "api-keys-created")
        assert api(server, plaintext).status_code == 200

        # Reload: the form is not posted again, and only the last four characters remain.
        await page.reload()
        await expect(page.get_by_test_id("new-key-panel")).to_have_count(0)
        assert plaintext not in await page.content()
        row = page.locator("tr", has_text="Backend")
        await expect(row).to_have_count(1)
        await expect(row.get_by_test_id("masked-key")).to_have_text(
            f"tether_sk_prod_…{plaintext[-4:]}"
        )
        await shoot(page, "api-keys")

        # Roll it with no grace period: Alloy's "Generate" button.
        await row.get_by_role("link", name=re.compile("^Roll")).click()
        await page.wait_for_url(f"**{UI}/production/api-keys/*/roll")
        await page.get_by_role("radio", name=re.compile("^Immediately")).check()
        await shoot(page, "api-keys-roll")
        await page.locator("form[action$='/roll']").get_by_role("button", name="Roll key").click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await shoot(page, "confirm-dialog")
        await confirm(page, "Roll key")
        await expect(page.get_by_test_id("new-key-panel")).to_contain_text(
            "The previous key was revoked"
        )
        rolled = await page.locator("#new-key").input_value()
        assert rolled != plaintext
        await shoot(page, "api-keys-rolled")

        old = api(server, plaintext)
        assert old.status_code == 401
        assert old.json()["code"] == "api_key_revoked"
        assert api(server, rolled).status_code == 200

        await page.reload()
        assert rolled not in await page.content()
        revoked = page.locator("details.inactive")
        await revoked.locator("summary").click()
        await expect(revoked).to_contain_text(f"tether_sk_prod_…{plaintext[-4:]}")
        await expect(revoked).to_contain_text("Revoked")

    async def test_revoke_asks_first_and_escape_keeps_the_key(
        self, page: Page, account: Account, server: Server
    ) -> None:
        await log_in(page, account)
        await page.goto(f"{UI}/production/api-keys")
        masked = f"tether_sk_prod_…{account.prod.secret_key[-4:]}"
        row = page.locator("tr", has_text=masked)
        await row.get_by_role("button", name=re.compile("^Revoke")).click()
        dialog = page.locator("#confirm-dialog")
        await expect(dialog).to_be_visible()
        # The safe choice has the focus, and Escape cancels.
        await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        assert api(server, account.prod.secret_key).status_code == 200
        await row.get_by_role("button", name=re.compile("^Revoke")).click()
        await confirm(page, "Revoke key")
        await expect(page.get_by_role("status").first).to_contain_text("The key was revoked")
        assert api(server, account.prod.secret_key).json()["code"] == "api_key_revoked"


class TestSigningKeys:
    async def test_generate_download_and_sign_a_tenant_token(
        self, page: Page, account: Account, server: Server
    ) -> None:
        await log_in(page, account)
        await page.goto(f"{UI}/production/signing-keys")
        await expect(page.get_by_text("No signing keys")).to_be_visible()
        await shoot(page, "signing-keys-empty")
        await page.get_by_role("button", name="Generate key pair").click()
        panel = page.get_by_test_id("private-key-panel")
        await expect(panel).to_contain_text("Tether did not keep it")
        kid = (await panel.locator("dd code").first.text_content()) or ""
        assert kid.startswith("sgk_")
        b64 = await page.locator("#private-key-b64").input_value()
        await shoot(page, "signing-keys-generated")

        async with page.expect_download() as info:
            await page.get_by_role("link", name="Download private key (.pem)").click()
        download = await info.value
        assert download.suggested_filename.endswith(f"-{kid}.pem")
        pem = Path(await download.path()).read_bytes()
        assert base64.b64decode(b64) == pem  # the base64 is hotglue's HOTGLUE_SIGNING_KEY form
        private_key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private_key, rsa.RSAPrivateKey)

        # After a reload the private key is gone; the listed public key is its public half.
        await page.reload()
        content = await page.content()
        assert b64 not in content
        assert "PRIVATE KEY" not in content
        row = page.locator(f"tr[data-signing-key-id='{kid}']")
        await row.locator("summary").click()
        listed = (await row.locator("pre").text_content()) or ""
        public_key = serialization.load_pem_public_key(listed.encode())
        assert isinstance(public_key, rsa.RSAPublicKey)
        assert public_key.public_numbers() == private_key.public_key().public_numbers()
        await shoot(page, "signing-keys")

        # And the downloaded key signs a tenant token the real server accepts.
        now = int(time.time())
        token = jwt.encode(
            {"sub": "tenant-from-dashboard", "iat": now, "exp": now + 600},
            private_key,
            algorithm="RS256",
            headers={"kid": kid},
        )
        response = httpx.get(
            f"{server.url}/tenants/tenant-from-dashboard/token",
            params={"token": token},
            headers={"x-api-key": account.prod.publishable_key},
            timeout=10,
        )
        assert response.status_code == 200, response.text


class TestCsrf:
    async def test_a_form_posted_without_its_token_is_refused(
        self, page: Page, account: Account, server: Server
    ) -> None:
        await log_in(page, account)
        await page.goto(f"{UI}/production/api-keys")
        # A form that lost its token, as one forged elsewhere would be.
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
        )
        async with page.expect_response(f"**{UI}/production/api-keys") as info:
            await page.get_by_role("button", name="Create key").click()
        assert (await info.value).status == 403
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "This form could not be accepted"
        )
        await shoot(page, "csrf-refused")

        # The same through the page's request context, which carries the session cookie.
        key_id = httpx.get(
            f"{server.url}/admin/environments/production/api-keys",
            headers=bearer(account.admin_token),
            timeout=10,
        ).json()["data"][0]["id"]
        for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": "0" * 64}):
            response = await page.request.post(
                f"{UI}/production/api-keys/{key_id}/revoke", form=form
            )
            assert response.status == 403
        keys = httpx.get(
            f"{server.url}/admin/environments/production/api-keys",
            headers=bearer(account.admin_token),
            timeout=10,
        ).json()["data"]
        assert len(keys) == 2  # no key was created ...
        assert all(key["revokedAt"] is None for key in keys)  # ... and none revoked


STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class TestEveryPage:
    async def test_walk_every_page_under_a_strict_csp(
        self, browser: Browser, account: Account, server: Server
    ) -> None:
        # Issue 8 will send a strict Content-Security-Policy; the pages must already work
        # under one. The header is added here, to every dashboard response.
        context = await browser.new_context(base_url=server.url, viewport=WIDE)
        violations: list[str] = []

        async def with_csp(route: Route) -> None:
            response = await route.fetch(max_redirects=0)
            headers = {**response.headers, "content-security-policy": STRICT_CSP}
            await route.fulfill(response=response, headers=headers)

        await context.route(re.compile(r".*/admin(/.*)?$|.*/admin/ui/.*"), with_csp)
        page = await context.new_page()
        page.on(
            "console",
            lambda msg: (
                violations.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        try:
            await self.walk(page, account, server)
        finally:
            await context.close()
        assert violations == []

    async def walk(self, page: Page, account: Account, server: Server) -> None:
        # Data to look at: two users, one with a Stripe installation.
        key = account.dev.secret_key
        for username in ("acme-corp", "globex"):
            httpx.post(f"{server.url}/users", json={"username": username}, headers=bearer(key))

        await log_in(page, account)

        # Integrations: the catalogue, an API-key app, an OAuth app, edit, disable, enable.
        await page.goto(f"{UI}/development/integrations")
        await expect(page.get_by_text("No integrations yet")).to_be_visible()
        await shoot(page, "integrations-empty")
        await page.get_by_role("link", name="Add Stripe").click()
        await shoot(page, "integration-new-api-key")
        await page.get_by_role("button", name="Add integration").click()
        await expect(page.get_by_role("status").first).to_contain_text("The integration was added")
        stripe_id = (await page.locator("#integration-id").text_content()) or ""

        await page.goto(f"{UI}/development/integrations")
        await page.get_by_role("link", name="Add Custom OAuth 2.0").click()
        await page.get_by_label("Name").fill("Acme ID")
        await page.get_by_label("Client id").fill("acme-client")
        await page.get_by_label("Client secret").fill("cs_dashboard_secret_value")
        await page.get_by_label("Scopes").fill("read write")
        await page.get_by_label("Authorization URL").fill("http://id.example.com/authorize")
        await page.get_by_label("Token URL").fill("https://id.example.com/token")
        await page.get_by_role("button", name="Add integration").click()
        await expect(page.get_by_role("alert")).to_contain_text("must be an https URL")
        await shoot(page, "integration-new-error")
        await page.get_by_label("Client secret").fill("cs_dashboard_secret_value")
        await page.get_by_label("Authorization URL").fill("https://id.example.com/authorize")
        await page.get_by_role("button", name="Add integration").click()
        await expect(page.get_by_role("status").first).to_contain_text("The integration was added")
        assert "cs_dashboard_secret_value" not in await page.content()
        await shoot(page, "integration-edit")
        await page.get_by_label("Name").fill("Acme Identity")
        await page.get_by_role("button", name="Save changes").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Acme Identity")

        await page.goto(f"{UI}/development/integrations")
        row = page.locator("tr", has_text="Acme Identity")
        await row.get_by_role("button", name="Disable Acme Identity").click()
        await confirm(page, "Disable")
        await expect(page.locator("tr", has_text="Acme Identity")).to_contain_text("Disabled")
        await shoot(page, "integrations")
        await (
            page.locator("tr", has_text="Acme Identity")
            .get_by_role("button", name="Enable Acme Identity")
            .click()
        )
        await expect(page.locator("tr", has_text="Acme Identity")).to_contain_text("Enabled")

        # Users: search, a user's installation and credential metadata, never the secret.
        secret = stripe_key()
        installed = httpx.post(
            f"{server.url}/users/acme-corp/credentials",
            json={"integrationId": stripe_id, "data": {"apiKey": secret}},
            headers=bearer(key),
            timeout=10,
        )
        assert installed.status_code == 200, installed.text
        await page.get_by_role("link", name="Users").click()
        await expect(page.get_by_role("link", name="globex")).to_be_visible()
        await page.get_by_label("Search users by username or userId").fill("ACME")
        await page.get_by_label("Search users by username or userId").press("Enter")
        await expect(page.get_by_role("link", name="globex")).to_have_count(0)
        await shoot(page, "users")
        await page.get_by_role("link", name="acme-corp").click()
        await expect(page.locator("[data-credential-id]")).to_have_count(1)
        assert secret not in await page.content()
        await shoot(page, "user")
        await page.get_by_role("button", name="Delete user").click()
        await confirm(page, "Delete user")
        await expect(page.get_by_role("status").first).to_contain_text("The user was deleted")
        assert api(server, key, "/users/acme-corp").status_code == 404

        # Environment settings: a bad origin is explained; good values are saved.
        await page.get_by_role("link", name="Environment", exact=True).click()
        await page.get_by_label("Allowed origins").fill("https://app.example.com\nnot an origin")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.locator("#allowedOrigins-error")).to_contain_text("Line 2")
        await shoot(page, "settings-error")
        await page.get_by_label("Allowed origins").fill("https://app.example.com")
        await page.get_by_label("User token lifetime (seconds)").fill("900")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_role("status").first).to_contain_text("The settings were saved")
        await shoot(page, "settings")

        # The audit log, and a page that does not exist.
        await page.get_by_role("link", name="Audit log").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
        await shoot(page, "audit-log")
        await page.goto(f"{UI}/development/no-such-page")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        await shoot(page, "not-found")

        # The copy button works under the policy too (it is in the static script).
        await page.goto(f"{UI}/production/settings")
        await page.get_by_role("button", name="Copy").click()
        await expect(
            page.get_by_role("button", name=re.compile("Copied|Press Ctrl"))
        ).to_be_visible()

    async def test_small_screens(self, browser: Browser, account: Account, server: Server) -> None:
        context = await browser.new_context(
            base_url=server.url, viewport={"width": 390, "height": 844}
        )
        page = await context.new_page()
        try:
            await log_in(page, account)
            await page.goto(f"{UI}/production/api-keys")
            await expect(page.get_by_role("link", name="API Keys")).to_be_visible()
            # Nothing wider than the screen but the tables, which scroll inside their card.
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            await shoot(page, "api-keys-mobile")
            await page.goto(f"{UI}/production/integrations")
            await shoot(page, "integrations-mobile")
        finally:
            await context.close()
