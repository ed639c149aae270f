"""The browser SDK in a real Chromium: a customer's page on its own origin loads embedded.js from
a real `tether serve` process and connects apps through the hosted modal, as an end user would,
with the mouse and with the keyboard alone. OAuth runs against the local provider process in a
real popup. Screenshots of the modal land in artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, FrameLocator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.browser import screenshot_path
from tests.conftest import Account, make_account
from tests.installations.helpers import stripe_key
from tests.oauth_provider import Provider, run_provider
from tests.sdk.host import Host, run_host
from tests.support import Server, bearer, free_port, run_server
from tests.tenants.test_tenant_tokens import private_key_of

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 640}  # the narrowest phone the modal is laid out for


@pytest.fixture(scope="module")
def tether(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One real server for the module, whose TETHER_PUBLIC_URL is its own address: the SDK
    trusts the origin it was loaded from, and OAuth redirects come back to it."""
    port = free_port()
    env = {
        **server_env,
        "TETHER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TETHER_ALLOW_INSECURE_OAUTH_URLS": "true",
    }
    with run_server(env, tmp_path_factory.mktemp("sdk-browser"), port=port, name="sdk") as server:
        yield server


@pytest.fixture(scope="module")
def host(tether: Server) -> Iterator[Host]:
    """The customer's page, on an origin its environment allows."""
    with run_host(tether.url) as host:
        yield host


@pytest.fixture(scope="module")
def foreign(tether: Server) -> Iterator[Host]:
    """A page on an origin that no environment allows."""
    with run_host(tether.url) as host:
        yield host


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with run_provider(tmp_path_factory.mktemp("sdk-provider")) as provider:
        yield provider


@pytest.fixture
async def api(tether: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tether.url, timeout=30) as api:
        yield api


@dataclass
class Customer:
    """A test account's development environment, seen through the real server."""

    account: Account
    api: httpx.AsyncClient
    user_id: str = ""

    @property
    def secret(self) -> dict[str, str]:
        return bearer(self.account.dev.secret_key)

    async def allow(self, *origins: str, **settings: Any) -> None:
        response = await self.api.patch(
            "/admin/environments/development",
            json={"allowedOrigins": list(origins), **settings},
            headers=self.account.admin,
        )
        assert response.status_code == 200, response.text

    async def integration(self, body: dict[str, Any]) -> str:
        response = await self.api.post(
            "/admin/environments/development/integrations", json=body, headers=self.account.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["integrationId"])

    async def user(self, username: str = "end-user") -> str:
        response = await self.api.post("/users", json={"username": username}, headers=self.secret)
        assert response.status_code == 200, response.text
        self.user_id = str(response.json()["userId"])
        return self.user_id

    async def token(self, user: str | None = None) -> str:
        response = await self.api.get(f"/users/{user or self.user_id}/token", headers=self.secret)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def installations(self, user: str | None = None) -> list[dict[str, Any]]:
        response = await self.api.get(
            "/installations", params={"userId": user or self.user_id}, headers=self.secret
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])


@pytest.fixture
async def customer(
    client: httpx.AsyncClient, app: FastAPI, api: httpx.AsyncClient, host: Host
) -> Customer:
    """An account whose development environment allows the host page and has a user."""
    customer = Customer(await make_account(client, app), api)
    await customer.allow(host.origin)
    await customer.user()
    return customer


@dataclass
class Tab:
    page: Page
    console: list[str]

    @property
    def modal(self) -> FrameLocator:
        return self.page.frame_locator("#tether-modal")

    async def call(self, script: str, *args: Any) -> None:
        await self.page.evaluate(script, list(args))

    async def result(self) -> dict[str, Any]:
        """The one result the callback received."""
        try:
            await self.page.wait_for_function("window.results.length > 0")
        except PlaywrightTimeout:
            modal = self.page.frame(url=lambda url: "/sdk/modal" in url)
            shown = await modal.evaluate("document.body.innerText") if modal else "(no modal)"
            fetched = (
                await modal.evaluate(
                    "performance.getEntriesByType('resource')"
                    ".map(e => e.name + ' ' + Math.round(e.duration) + 'ms ' + e.responseStatus)"
                )
                if modal
                else []
            )
            raise AssertionError(
                f"no result; modal shows {shown!r}; fetched {fetched}; console {self.console}"
            ) from None
        results: list[dict[str, Any]] = await self.page.evaluate("window.results")
        assert len(results) == 1, results
        return results[0]

    async def closed(self) -> None:
        await expect(self.page.locator("#tether-modal")).to_have_count(0)

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=screenshot_path(name), animations="disabled")

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]


@pytest.fixture
async def open_tab(browser: Browser) -> AsyncIterator[Any]:
    """open_tab(host, viewport=DESKTOP) -> a Tab on the host page; contexts closed after."""
    contexts = []

    async def open_tab(host: Host, viewport: dict[str, int] = DESKTOP) -> Tab:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        contexts.append(context)
        page = await context.new_page()
        console: list[str] = []

        def record(message: ConsoleMessage) -> None:
            console.append(message.text)

        page.on("console", record)
        await page.goto(host.url)
        await page.wait_for_function("window.Tether && window.Alloy === window.Tether")
        return Tab(page, console)

    yield open_tab
    for context in contexts:
        await context.close()


INSTALL = (
    "([token, id]) => { Alloy.setToken(token); "
    "Alloy.install({integrationId: id, callback: record}); }"
)
AUTHENTICATE = (
    "([token, id]) => { Tether.setToken(token); "
    "Tether.authenticate({integrationId: id, callback: record}); }"
)
LIST = "([token]) => { Tether.setToken(token); Tether.install({callback: record}); }"
OPEN = (
    "([tenant, jwt, key]) => "
    "Tether.open(tenant, {jwtToken: jwt, publishableKey: key, callback: record})"
)


class TestInstallApiKeyApp:
    async def test_the_form_installs_and_the_backend_lists_it(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), stripe)

        secret = tab.modal.locator("input[name=apiKey]")
        await expect(secret).to_be_focused()
        assert await secret.get_attribute("type") == "password"
        assert await secret.get_attribute("placeholder") == "sk_live_..."
        assert await secret.get_attribute("required") is not None
        assert await secret.get_attribute("pattern")
        await expect(tab.modal.get_by_text("Secret key", exact=True)).to_be_visible()
        await tab.screenshot("sdk-modal-form-desktop")

        # A value the catalogue's pattern refuses is explained beside the field.
        await secret.fill("not-a-stripe-key")
        await tab.modal.locator("button[type=submit]").click()
        await expect(tab.modal.locator("#field-apiKey-error")).to_have_text(
            "Secret key doesn't look right. It should look like sk_live_..."
        )
        await expect(secret).to_have_attribute("aria-invalid", "true")
        await tab.screenshot("sdk-modal-form-error-desktop")

        key = stripe_key()
        await secret.fill(key)
        await tab.modal.locator("button[type=submit]").click()
        result = await tab.result()
        assert result["success"] is True
        await tab.closed()
        (installation,) = await customer.installations()
        assert installation["installationId"] == result["installationId"]
        assert installation["integrationId"] == stripe
        credential = await customer.api.get(
            f"/users/{customer.user_id}/credentials/{installation['credentialId']}",
            headers=customer.secret,
        )
        assert credential.json()["data"] == {"apiKey": key}
        assert tab.csp_violations() == []

    async def test_the_servers_validation_errors_reach_the_field(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        """The browser's pattern and the server's differ for Zendesk's email (none client side):
        what the server refuses is shown beside the field it names."""
        zendesk = await customer.integration({"app": "zendesk"})
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), zendesk)
        form = tab.modal.locator("form")
        await form.locator("input[name=subdomain]").fill("acme")
        await form.locator("input[name=email]").fill("agent@acme.test")
        token = form.locator("input[name=apiToken]")
        await token.fill("zd-token")
        assert await token.get_attribute("type") == "password"
        await form.get_by_role("button", name="Show API token").click()
        assert await token.get_attribute("type") == "text"
        await form.locator("button[type=submit]").click()
        assert (await tab.result())["success"] is True
        assert len(await customer.installations()) == 1

    async def test_already_installed_says_so(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        installed = await customer.api.post(
            f"/users/{customer.user_id}/credentials",
            json={"integrationId": stripe, "data": {"apiKey": stripe_key()}},
            headers=customer.secret,
        )
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), stripe)
        await expect(tab.modal.get_by_text("Stripe is already connected")).to_be_visible()
        await tab.modal.get_by_role("button", name="Close", exact=True).last.click()
        assert await tab.result() == {
            "success": False,
            "error": "already_installed",
            "installationId": installed.json()["installationId"],
        }


class TestInstallOAuthApp:
    @staticmethod
    async def acme_identity(
        customer: Customer, provider: Provider, tether: Server, mode: str
    ) -> str:
        """A custom_oauth2 integration on the local provider, which answers in `mode`."""
        provider.reset()
        provider.set_mode(mode)
        client = provider.register_client(redirect_uris=[f"{tether.url}/oauth/callback"])
        return await customer.integration(
            {
                "app": "custom_oauth2",
                "name": "Acme Identity",
                "clientId": client.client_id,
                "clientSecret": client.client_secret,
                "authorizeUrl": provider.authorize_endpoint,
                "tokenUrl": provider.token_endpoint,
                "scopes": ["read"],
            }
        )

    async def test_the_popup_connects_a_custom_oauth2_app(
        self, open_tab: Any, host: Host, customer: Customer, provider: Provider, tether: Server
    ) -> None:
        integration = await self.acme_identity(customer, provider, tether, "interactive")
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), integration)
        go = tab.modal.get_by_role("button", name="Continue to Acme Identity")
        await expect(go).to_be_focused()
        await tab.screenshot("sdk-modal-oauth-desktop")

        async with tab.page.context.expect_page() as popup_info:
            await go.click()
        popup = await popup_info.value
        await expect(tab.modal.get_by_text("Waiting for Acme Identity")).to_be_visible()
        await tab.screenshot("sdk-modal-oauth-waiting-desktop")
        await popup.locator("#approve").click()  # the provider's consent page

        result = await tab.result()
        assert result["success"] is True, result
        (installation,) = await customer.installations()
        assert installation["installationId"] == result["installationId"]
        (authorize,) = provider.authorize_requests()
        assert authorize["params"]["code_challenge_method"] == "S256"
        assert authorize["params"]["redirect_uri"] == f"{tether.url}/oauth/callback"

    async def test_a_refusal_is_shown_and_closing_cancels(
        self, open_tab: Any, host: Host, customer: Customer, provider: Provider, tether: Server
    ) -> None:
        integration = await self.acme_identity(customer, provider, tether, "deny")
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), integration)
        async with tab.page.context.expect_page():
            await tab.modal.get_by_role("button", name="Continue to Acme Identity").click()
        await expect(tab.modal.get_by_role("alert")).to_contain_text("didn't allow access")
        await tab.modal.get_by_role("button", name="Close").click()
        assert await tab.result() == {"success": False, "error": "cancelled"}
        assert await customer.installations() == []


class TestFailures:
    async def test_an_expired_token_is_token_expired(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        await customer.allow(host.origin, userTokenTtlSeconds=1)
        token = await customer.token()
        deadline = time.monotonic() + 10
        while True:  # until the server itself says the token has expired
            me = await customer.api.get("/sdk/me", headers=bearer(token))
            if me.status_code == 401:
                assert me.json()["code"] == "token_expired"
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        tab = await open_tab(host)
        await tab.call(INSTALL, token, stripe)
        assert (await tab.result())["error"] == "token_expired"
        assert (await tab.result())["success"] is False
        await tab.closed()

    async def test_escape_cancels(self, open_tab: Any, host: Host, customer: Customer) -> None:
        stripe = await customer.integration({"app": "stripe"})
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), stripe)
        await expect(tab.modal.locator("input[name=apiKey]")).to_be_focused()
        await tab.page.keyboard.press("Escape")
        assert await tab.result() == {"success": False, "error": "cancelled"}
        await tab.closed()
        assert await customer.installations() == []
        # Focus is back on the host page, and another install can start.
        assert await tab.page.evaluate("document.activeElement === document.body") is True

    async def test_the_close_button_cancels(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        tab = await open_tab(host)
        await tab.call(LIST, await customer.token())
        await tab.modal.get_by_role("button", name="Close").click()
        assert await tab.result() == {"success": False, "error": "cancelled"}
        await tab.closed()

    async def test_an_unknown_integration_is_explained_then_reported(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), "int_00000000000000000000000000000000")
        await expect(tab.modal.get_by_role("alert")).to_contain_text("This app isn't available")
        await tab.screenshot("sdk-modal-error-desktop")
        await tab.modal.get_by_role("button", name="Close").last.click()
        assert await tab.result() == {"success": False, "error": "integration_not_found"}

    async def test_a_blocked_popup_is_explained(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        integration = await customer.integration(
            {
                "app": "custom_oauth2",
                "name": "Acme Identity",
                "clientId": "cid",
                "clientSecret": "cs",
                "authorizeUrl": "http://127.0.0.1:9/authorize",
                "tokenUrl": "http://127.0.0.1:9/token",
            }
        )
        tab = await open_tab(host)
        await tab.call(INSTALL, await customer.token(), integration)
        go = tab.modal.get_by_role("button", name="Continue to Acme Identity")
        await expect(go).to_be_focused()
        frame = tab.page.frame(url=lambda url: url.endswith("/sdk/modal"))
        assert frame is not None
        await frame.evaluate("window.open = () => null")  # what a popup blocker answers
        await go.click()
        await expect(tab.modal.get_by_role("alert")).to_contain_text("blocked")
        await expect(go).to_be_focused()  # ready to try again
        await tab.page.keyboard.press("Escape")
        assert await tab.result() == {"success": False, "error": "cancelled"}

    async def test_install_before_set_token_reaches_the_callback(
        self, open_tab: Any, host: Host
    ) -> None:
        tab = await open_tab(host)
        await tab.call("() => Tether.install({integrationId: 'int_x', callback: record})")
        result = await tab.result()
        assert (result["success"], result["error"]) == (False, "token_missing")
        assert await tab.page.locator("#tether-modal").count() == 0

    async def test_an_origin_not_allowed_is_refused(
        self, open_tab: Any, foreign: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        tab = await open_tab(foreign)
        await tab.call(INSTALL, await customer.token(), stripe)
        result = await tab.result()
        assert (result["success"], result["error"]) == (False, "origin_not_allowed")
        assert await tab.page.locator("#tether-modal").count() == 0

    async def test_an_origin_allowed_only_by_another_environment_is_refused(
        self, open_tab: Any, host: Host, foreign: Host, customer: Customer
    ) -> None:
        """The preflight passes (some environment lists the origin), the token's own
        environment does not: the server refuses the request itself."""
        production = await customer.api.patch(
            "/admin/environments/production",
            json={"allowedOrigins": [foreign.origin]},
            headers=customer.account.admin,
        )
        assert production.status_code == 200
        try:
            tab = await open_tab(foreign)
            await tab.call(LIST, await customer.token())
            result = await tab.result()
            assert (result["success"], result["error"]) == (False, "origin_not_allowed")
        finally:
            # The foreign origin must stay foreign for the module's other tests.
            await customer.api.patch(
                "/admin/environments/production",
                json={"allowedOrigins": []},
                headers=customer.account.admin,
            )

    async def test_open_from_an_origin_not_allowed_is_refused_by_the_modal(
        self, open_tab: Any, foreign: Host, customer: Customer
    ) -> None:
        tenant = await tenant_token(customer, "tenant-foreign")
        tab = await open_tab(foreign)
        await tab.call(
            OPEN,
            "tenant-foreign",
            tenant,
            customer.account.dev.publishable_key,
        )
        result = await tab.result()
        assert (result["success"], result["error"]) == (False, "origin_not_allowed")
        await tab.closed()


async def tenant_token(customer: Customer, tenant: str) -> str:
    """A tenant token signed with a signing key Tether generated, as hotglue's guide does."""
    response = await customer.api.post(
        "/admin/environments/development/signing-keys", json={}, headers=customer.account.admin
    )
    assert response.status_code == 201, response.text
    now = int(time.time())
    return jwt.encode(
        {"sub": tenant, "iat": now, "exp": now + 600},
        private_key_of(response.json()),
        algorithm="RS256",
    )


class TestAuthenticate:
    async def test_re_entering_replaces_the_credential(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        installed = await customer.api.post(
            f"/users/{customer.user_id}/credentials",
            json={"integrationId": stripe, "data": {"apiKey": stripe_key()}},
            headers=customer.secret,
        )
        before = installed.json()
        tab = await open_tab(host)
        await tab.call(AUTHENTICATE, await customer.token(), stripe)
        await expect(tab.modal.locator("h1")).to_have_text("Update Stripe")
        key = stripe_key()
        await tab.modal.locator("input[name=apiKey]").fill(key)
        await tab.modal.locator("button[type=submit]").click()
        assert await tab.result() == {"success": True, "installationId": before["installationId"]}
        credential = await customer.api.get(
            f"/users/{customer.user_id}/credentials/{before['credentialId']}",
            headers=customer.secret,
        )
        assert credential.json()["data"] == {"apiKey": key}


class TestOpen:
    async def test_hotglue_launch_lists_and_installs(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        await customer.integration({"app": "zendesk"})
        tenant = await tenant_token(customer, "tenant-42")
        tab = await open_tab(host)
        await tab.call(
            OPEN,
            "tenant-42",
            tenant,
            customer.account.dev.publishable_key,
        )
        item = tab.modal.locator(f"button[data-integration-id='{stripe}']")
        await expect(item).to_have_attribute("data-state", "not_installed")
        await item.click()
        await tab.modal.locator("input[name=apiKey]").fill(stripe_key())
        await tab.modal.locator("button[type=submit]").click()
        await expect(item).to_have_attribute("data-state", "installed")
        await expect(tab.modal.get_by_role("status").first).to_contain_text("Stripe is connected")
        await tab.modal.get_by_role("button", name="Close").click()
        result = await tab.result()
        assert result["success"] is True
        (installation,) = await customer.installations("tenant-42")
        assert installation["installationId"] == result["installationId"]

    async def test_a_tenant_token_for_another_tenant_is_refused(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        tenant = await tenant_token(customer, "tenant-a")
        tab = await open_tab(host)
        await tab.call(
            OPEN,
            "tenant-b",
            tenant,
            customer.account.dev.publishable_key,
        )
        result = await tab.result()
        assert (result["success"], result["error"]) == (False, "invalid_token")


class TestManage:
    async def test_disconnect_from_the_list(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        await customer.api.post(
            f"/users/{customer.user_id}/credentials",
            json={"integrationId": stripe, "data": {"apiKey": stripe_key()}},
            headers=customer.secret,
        )
        tab = await open_tab(host)
        await tab.call(LIST, await customer.token())
        item = tab.modal.locator(f"button[data-integration-id='{stripe}']")
        await expect(item).to_have_attribute("data-state", "installed")
        await item.click()
        await tab.modal.get_by_role("button", name="Disconnect").click()
        await tab.screenshot("sdk-modal-disconnect-desktop")
        await tab.modal.get_by_role("button", name="Yes, disconnect").click()
        await expect(item).to_have_attribute("data-state", "not_installed")
        assert await customer.installations() == []
        await tab.modal.get_by_role("button", name="Close").click()
        assert await tab.result() == {"success": False, "error": "cancelled"}


class TestKeyboard:
    async def test_keyboard_alone_installs_and_focus_stays_in_the_dialog(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        await customer.integration({"app": "zendesk"})
        stripe = await customer.integration({"app": "stripe"})
        tab = await open_tab(host)
        await tab.call(LIST, await customer.token())
        modal = tab.modal
        await expect(modal.locator("#dialog")).to_have_attribute("data-view", "list")
        await expect(modal.locator("h1")).to_be_focused()
        frame = tab.page.frame(url=lambda url: url.endswith("/sdk/modal"))
        assert frame is not None

        async def focused() -> str:
            return str(
                await frame.evaluate(
                    "document.getElementById('dialog').contains(document.activeElement)"
                    " ? (document.activeElement.dataset.integrationId"
                    "    || document.activeElement.getAttribute('aria-label')"
                    "    || document.activeElement.textContent.trim()) : 'OUTSIDE'"
                )
            )

        seen = []
        for _ in range(8):  # more Tabs than controls: focus wraps around, never leaves
            await tab.page.keyboard.press("Tab")
            seen.append(await focused())
        assert "OUTSIDE" not in seen
        assert seen[0] == "Close"
        assert stripe in seen
        # Shift+Tab goes backwards and wraps too.
        await tab.page.keyboard.press("Shift+Tab")
        assert await focused() != "OUTSIDE"

        while await focused() != stripe:
            await tab.page.keyboard.press("Tab")
        await tab.page.keyboard.press("Enter")
        await expect(modal.locator("input[name=apiKey]")).to_be_focused()
        await tab.page.keyboard.type(stripe_key())
        await tab.page.keyboard.press("Enter")
        await expect(modal.locator(f"button[data-integration-id='{stripe}']")).to_have_attribute(
            "data-state", "installed"
        )
        await tab.page.keyboard.press("Escape")
        result = await tab.result()
        assert result["success"] is True
        assert len(await customer.installations()) == 1


class TestScreenshots:
    async def test_list_and_form_at_desktop_and_phone_widths(
        self, open_tab: Any, host: Host, customer: Customer
    ) -> None:
        stripe = await customer.integration({"app": "stripe"})
        zendesk = await customer.integration({"app": "zendesk"})
        await customer.integration({"app": "github", "clientId": "cid", "clientSecret": "cs"})
        await customer.integration({"app": "hubspot", "clientId": "cid", "clientSecret": "cs"})
        await customer.api.post(
            f"/users/{customer.user_id}/credentials",
            json={"integrationId": stripe, "data": {"apiKey": stripe_key()}},
            headers=customer.secret,
        )
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE), ("narrow", NARROW)):
            tab = await open_tab(host, viewport)
            await tab.call(LIST, await customer.token())
            await expect(
                tab.modal.locator(f"button[data-integration-id='{stripe}']")
            ).to_have_attribute("data-state", "installed")
            await tab.screenshot(f"sdk-modal-{name}")
            await tab.modal.locator(f"button[data-integration-id='{zendesk}']").click()
            await expect(tab.modal.locator("input[name=subdomain]")).to_be_focused()
            # Submitted empty: every field shows its message, the longest the form gets.
            await tab.modal.locator("button[type=submit]").click()
            await expect(tab.modal.locator("#field-apiToken-error")).to_be_visible()
            await tab.screenshot(f"sdk-modal-form-{name}")
            frame = tab.page.frame(url=lambda url: url.endswith("/sdk/modal"))
            assert frame is not None
            overflow = await frame.evaluate(
                "[...document.querySelectorAll('#dialog *')]"
                ".filter(e => e.getBoundingClientRect().right > innerWidth + 0.5).length"
            )
            assert overflow == 0, f"{name}: something sticks out of the dialog"
            await tab.page.keyboard.press("Escape")
            await tab.result()
            assert tab.csp_violations() == []

    async def test_empty_state(self, open_tab: Any, host: Host, customer: Customer) -> None:
        tab = await open_tab(host, PHONE)
        await tab.call(LIST, await customer.token())
        await expect(tab.modal.get_by_text("No apps to connect yet")).to_be_visible()
        await tab.screenshot("sdk-modal-empty-phone")
