"""The routes the browser SDK added: GET /sdk/config, PUT /sdk/installations/{id}/credential,
the origin rule and CORS of every /sdk/* API route, and the static files (embedded.js, the modal
and its assets). The browser half is tests/sdk/test_browser.py."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update

from tests.conftest import Account
from tests.installations.helpers import stripe_key
from tests.sdk.test_installations import (
    SdkUser,
    assert_user_token_only,
    sdk_install,
    sdk_user,
    second_user,
)
from tests.support import assert_problem, bearer
from tether.catalog.service import get_integration
from tether.installations import service as installations
from tether.installations.models import Installation
from tether.sdk import routes as sdk_routes
from tether.sdk.assets import assets


@pytest.fixture
async def alice(client: httpx.AsyncClient, account: Account) -> SdkUser:
    return await sdk_user(client, account, account.dev)


def new_origin() -> str:
    """An origin no other test uses: the preflight rule looks at every environment."""
    return f"https://app-{secrets.token_hex(5)}.example.com"


async def allow(
    client: httpx.AsyncClient, account: Account, origins: list[str], env: str = "development"
) -> None:
    response = await client.patch(
        f"/admin/environments/{env}", json={"allowedOrigins": origins}, headers=account.admin
    )
    assert response.status_code == 200, response.text


async def credential_data(client: httpx.AsyncClient, user: SdkUser) -> dict[str, Any]:
    key = bearer(user.env.secret_key)
    (meta,) = (await client.get(f"/users/{user.user_id}/credentials", headers=key)).json()["data"]
    response = await client.get(
        f"/users/{user.user_id}/credentials/{meta['credentialId']}", headers=key
    )
    body: dict[str, Any] = response.json()
    return body


class TestSdkConfig:
    async def test_answers_the_environments_origins(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        origins = [new_origin(), new_origin()]
        await allow(client, account, origins)
        await allow(client, account, [new_origin()], "production")
        response = await client.get("/sdk/config", headers=alice.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "userId": alice.user_id,
            "environmentId": account.dev.id,
            "accountName": "Test Co",
            "allowedOrigins": origins,
        }

    async def test_empty_by_default(self, client: httpx.AsyncClient, alice: SdkUser) -> None:
        response = await client.get("/sdk/config", headers=alice.headers)
        assert response.json()["allowedOrigins"] == []

    async def test_another_environments_user_sees_its_own(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        dev, prod = new_origin(), new_origin()
        await allow(client, account, [dev])
        await allow(client, account, [prod], "production")
        prod_user = await sdk_user(client, account, account.prod)
        body = (await client.get("/sdk/config", headers=prod_user.headers)).json()
        assert (body["environmentId"], body["allowedOrigins"]) == (account.prod.id, [prod])

    async def test_credentials(self, client: httpx.AsyncClient, account: Account) -> None:
        await assert_user_token_only(client, account, "GET", "/sdk/config")


class TestSdkReplaceCredential:
    @staticmethod
    def path(installation_id: str) -> str:
        return f"/sdk/installations/{installation_id}/credential"

    async def test_replaces_the_fields_and_keeps_the_ids(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account, alice: SdkUser
    ) -> None:
        admin = account.admin
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        before = await credential_data(client, alice)
        # A broken installation (its provider refused a refresh) is active again after.
        async with app.state.sessionmaker() as session:
            await session.execute(
                update(Installation)
                .where(Installation.id == installation_id)
                .values(status="error")
            )
            await session.commit()
        new_key = stripe_key()
        response = await client.put(
            self.path(installation_id), json={"data": {"apiKey": new_key}}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "installationId": installation_id}
        assert new_key not in response.text
        after = await credential_data(client, alice)
        assert after["data"] == {"apiKey": new_key}
        assert after["credentialId"] == before["credentialId"]
        states = (await client.get("/sdk/integrations", headers=alice.headers)).json()["data"]
        (stripe,) = [s for s in states if s["integrationId"] == alice.stripe_id]
        assert (stripe["installationId"], stripe["status"]) == (installation_id, "active")
        audit = await client.get(
            "/admin/audit-events", params={"action": "installation.reconnected"}, headers=admin
        )
        (event,) = audit.json()["data"]
        assert (event["targetId"], event["actor"]["type"]) == (installation_id, "user")
        assert new_key not in audit.text

    async def test_replaces_a_basic_apps_fields(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        data = {"subdomain": "acme", "email": "a@acme.example", "apiToken": "one"}
        installation_id = await sdk_install(client, alice, alice.zendesk_id, data)
        response = await client.put(
            self.path(installation_id),
            json={"data": {**data, "apiToken": "two"}},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        assert (await credential_data(client, alice))["data"]["apiToken"] == "two"

    async def test_another_users_installation_is_404(
        self, client: httpx.AsyncClient, account: Account, other_account: Account, alice: SdkUser
    ) -> None:
        bob = await second_user(client, alice)
        prod = await sdk_user(client, account, account.prod)
        theirs = await sdk_user(client, other_account, other_account.dev)
        victims = [
            (bob, await sdk_install(client, bob, bob.stripe_id, {"apiKey": stripe_key()})),
            (prod, await sdk_install(client, prod, prod.stripe_id, {"apiKey": stripe_key()})),
            (theirs, await sdk_install(client, theirs, theirs.stripe_id, {"apiKey": stripe_key()})),
        ]
        for victim, installation_id in victims:
            before = await credential_data(client, victim)
            response = await client.put(
                self.path(installation_id),
                json={"data": {"apiKey": stripe_key()}},
                headers=alice.headers,
            )
            assert_problem(response, 404, "not_found")
            assert (await credential_data(client, victim))["data"] == before["data"]
        unknown = await client.put(
            self.path("ins_00000000000000000000000000000000"),
            json={"data": {"apiKey": stripe_key()}},
            headers=alice.headers,
        )
        assert_problem(unknown, 404, "not_found")

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({}, id="missing data"),
            pytest.param(
                {"data": {"apiKey": "sk_test_SECRET1"}, "userId": "x"}, id="unknown field"
            ),
            pytest.param({"data": {"apiKey": 1}}, id="wrong type"),
            pytest.param({"data": {"apiKey": "sk_test_SECRET1", "x": "y"}}, id="unknown data"),
            pytest.param({"data": {}}, id="missing required field"),
            pytest.param({"data": {"apiKey": "SECRET1"}}, id="value not matching the pattern"),
        ],
    )
    async def test_bad_bodies_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, alice: SdkUser, body: dict[str, Any]
    ) -> None:
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        before = await credential_data(client, alice)
        response = await client.put(self.path(installation_id), json=body, headers=alice.headers)
        assert_problem(response, 422, "validation_error")
        assert "SECRET1" not in response.text
        assert (await credential_data(client, alice))["data"] == before["data"]

    async def test_an_oauth2_installation_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, alice: SdkUser
    ) -> None:
        async with app.state.sessionmaker() as session:
            integration = await get_integration(session, alice.env.id, alice.oauth_id)
            installation, _ = await installations.install(
                session,
                app.state.keyring,
                environment_id=alice.env.id,
                user_id=alice.user_id,
                integration=integration,
                data={"accessToken": "at", "refreshToken": "rt"},
                credential_type="oauth2",
            )
            await session.commit()
        response = await client.put(
            self.path(installation.id), json={"data": {"apiKey": "x"}}, headers=alice.headers
        )
        body = assert_problem(response, 422, "validation_error")
        assert "/sdk/oauth/" in body["detail"]

    async def test_credentials(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        installation_id = await sdk_install(
            client, alice, alice.stripe_id, {"apiKey": stripe_key()}
        )
        before = await credential_data(client, alice)
        await assert_user_token_only(
            client, account, "PUT", self.path(installation_id), {"data": {"apiKey": stripe_key()}}
        )
        assert (await credential_data(client, alice))["data"] == before["data"]


class TestFieldErrors:
    """A refused field is named in `errors`, so the modal can show the message beside it."""

    async def test_the_sdk_and_the_backend_name_the_field(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        for path, headers in (
            ("/sdk/installations", alice.headers),
            (f"/users/{alice.user_id}/credentials", bearer(account.dev.secret_key)),
        ):
            response = await client.post(
                path,
                json={"integrationId": alice.stripe_id, "data": {"apiKey": "nope"}},
                headers=headers,
            )
            body = assert_problem(response, 422, "validation_error")
            assert body["errors"] == [
                {
                    "loc": ["body", "data", "apiKey"],
                    "msg": "Secret key (apiKey) is not in the expected format.",
                    "type": "pattern_mismatch",
                }
            ]
        missing = await client.post(
            "/sdk/installations",
            json={"integrationId": alice.zendesk_id, "data": {"subdomain": "acme"}},
            headers=alice.headers,
        )
        assert [(e["loc"][-1], e["type"]) for e in missing.json()["errors"]] == [
            ("email", "missing")
        ]


class TestOriginRule:
    async def test_an_allowed_origin_gets_cors_headers(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        origin = new_origin()
        await allow(client, account, [origin])
        for path in ("/sdk/me", "/2024-03/sdk/integrations", "/sdk/config"):
            response = await client.get(path, headers={**alice.headers, "Origin": origin})
            assert response.status_code == 200, response.text
            assert response.headers["access-control-allow-origin"] == origin
            assert "origin" in response.headers["vary"].lower()
            assert "x-request-id" in response.headers["access-control-expose-headers"]
            assert "access-control-allow-credentials" not in response.headers

    async def test_a_foreign_origin_is_403_and_nothing_happens(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        await allow(client, account, [new_origin()])
        origin = new_origin()
        response = await client.post(
            "/sdk/installations",
            json={"integrationId": alice.stripe_id, "data": {"apiKey": stripe_key()}},
            headers={**alice.headers, "Origin": origin},
        )
        assert_problem(response, 403, "origin_not_allowed")
        assert "access-control-allow-origin" not in response.headers
        states = (await client.get("/sdk/integrations", headers=alice.headers)).json()["data"]
        assert [s["installed"] for s in states] == [False] * 3

    async def test_every_sdk_route_refuses_a_foreign_origin(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        await allow(client, account, [new_origin()])
        headers = {**alice.headers, "Origin": new_origin()}
        routes = [route for route in sdk_routes.router.routes if isinstance(route, APIRoute)]
        assert len(routes) >= 7
        for route in routes:
            path = re.sub(r"\{[^}]+\}", "unknown", route.path)
            for method in route.methods:
                response = await client.request(method, path, headers=headers)
                assert_problem(response, 403, "origin_not_allowed")

    async def test_an_origin_of_another_environment_is_403(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        prod_origin = new_origin()
        await allow(client, account, [prod_origin], "production")
        response = await client.get("/sdk/me", headers={**alice.headers, "Origin": prod_origin})
        assert_problem(response, 403, "origin_not_allowed")
        assert "access-control-allow-origin" not in response.headers

    async def test_tethers_own_origin_is_the_modal(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        for headers in (
            {"Origin": "http://testserver"},  # TETHER_PUBLIC_URL of the test app
            {"Origin": new_origin(), "Sec-Fetch-Site": "same-origin"},
        ):
            response = await client.post(
                f"/sdk/oauth/{alice.oauth_id}/start", headers={**alice.headers, **headers}
            )
            assert response.status_code == 200, response.text

    async def test_without_origin_it_is_not_a_browser_request(
        self, client: httpx.AsyncClient, alice: SdkUser
    ) -> None:
        response = await client.get("/sdk/me", headers=alice.headers)
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        assert "origin" in response.headers["vary"].lower()

    async def test_a_refused_token_is_readable_only_by_an_allowed_origin(
        self, client: httpx.AsyncClient, account: Account, alice: SdkUser
    ) -> None:
        """No verified token names the environment: an origin that some environment allows
        may read why (the SDK reports token_expired from it); any other may not."""
        allowed = new_origin()
        await allow(client, account, [allowed], "production")
        for origin, readable in ((allowed, True), (new_origin(), False)):
            for headers in ({}, bearer("a.b.c"), bearer(account.dev.secret_key)):
                response = await client.get("/sdk/me", headers={**headers, "Origin": origin})
                assert response.status_code in (401, 403)
                assert response.headers.get("access-control-allow-origin") == (
                    origin if readable else None
                )


class TestPreflight:
    @staticmethod
    def preflight(origin: str, method: str = "POST") -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        }

    async def test_an_origin_some_environment_allows_may_ask(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        origin = new_origin()
        await allow(client, account, [origin], "production")
        for path in ("/sdk/installations", "/2024-03/sdk/me", "/sdk/installations/x/credential"):
            response = await client.options(path, headers=self.preflight(origin))
            assert response.status_code == 204, response.text
            assert response.headers["access-control-allow-origin"] == origin
            methods = response.headers["access-control-allow-methods"]
            assert {"GET", "POST", "PUT", "DELETE"} <= {m.strip() for m in methods.split(",")}
            allowed_headers = response.headers["access-control-allow-headers"]
            assert {"authorization", "content-type"} <= {
                h.strip() for h in allowed_headers.split(",")
            }
            assert int(response.headers["access-control-max-age"]) > 0
            assert "origin" in response.headers["vary"].lower()
            assert "access-control-allow-credentials" not in response.headers

    async def test_any_other_origin_is_refused(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        await allow(client, account, [new_origin()])
        for origin in (new_origin(), "null", "https://%.example.com", "http://testserver"):
            response = await client.options("/sdk/installations", headers=self.preflight(origin))
            assert_problem(response, 403, "origin_not_allowed")
            assert "access-control-allow-origin" not in response.headers

    async def test_a_prefix_of_an_allowed_origin_is_not_allowed(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        origin = new_origin()
        await allow(client, account, [f"{origin}:8443"])
        for candidate in (origin, f"{origin}:844", origin.replace("https", "http")):
            response = await client.options("/sdk/me", headers=self.preflight(candidate, "GET"))
            assert response.status_code == 403

    async def test_only_the_sdk_api(self, client: httpx.AsyncClient, account: Account) -> None:
        origin = new_origin()
        await allow(client, account, [origin])
        for path in ("/users", "/admin/account"):
            response = await client.options(path, headers=self.preflight(origin))
            assert "access-control-allow-origin" not in response.headers


class TestEmbeddedJs:
    async def test_served_as_cacheable_javascript_to_anyone(
        self, client: httpx.AsyncClient
    ) -> None:
        for path in ("/sdk/embedded.js", "/2024-03/sdk/embedded.js"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/javascript; charset=utf-8"
            assert "max-age=300" in response.headers["cache-control"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cross-origin-resource-policy"] == "cross-origin"
            assert "window.Tether = Tether" in response.text
            assert "window.Alloy = Tether" in response.text
            etag = response.headers["etag"]
            again = await client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304
            assert again.content == b""

    async def test_never_puts_a_token_in_a_url(self) -> None:
        script = assets()["embedded.js"].body.decode()
        # The iframe's address is the bare modal; tokens travel by postMessage to one origin.
        assert 'iframe.src = BASE + "/sdk/modal";' in script
        assert "postMessage(init, TETHER_ORIGIN)" in script
        assert not re.search(r"[?&](token|jwt)=", script)


class TestModal:
    async def test_page_scripts_and_styles_are_separate_files(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/sdk/modal")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "x-frame-options" not in response.headers  # customers' pages frame it
        page = response.text
        assert re.findall(r"<script\b[^>]*>", page) == [
            f'<script src="assets/modal.js?v={assets()["modal.js"].version}" defer>'
        ]
        assert "<style" not in page
        assert " style=" not in page
        again = await client.get("/sdk/modal", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304

    async def test_assets_are_immutable_at_their_current_version(
        self, client: httpx.AsyncClient
    ) -> None:
        for name, media_type in (("modal.js", "text/javascript"), ("modal.css", "text/css")):
            version = assets()[name].version
            response = await client.get(f"/sdk/assets/{name}?v={version}")
            assert response.status_code == 200
            assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            stale = await client.get(f"/sdk/assets/{name}?v=0123456789abcdef")
            assert stale.headers["cache-control"] == "no-cache"
        for missing in ("modal.html", "embedded.js", "nope.js", "..%2Fassets.py"):
            assert_problem(await client.get(f"/sdk/assets/{missing}"), 404, "not_found")

    async def test_the_modal_builds_no_html_from_data(self) -> None:
        script = assets()["modal.js"].body.decode()
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert risky not in script
        # Every message to the framing page names its origin; none goes to "*".
        assert '"*"' not in script
        assert "postMessage(message, state.hostOrigin)" in script


class TestOpenApi:
    async def test_documents_the_sdk_routes(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/sdk/embedded.js" in paths
        assert "/sdk/modal" in paths
        assert "/sdk/config" in paths
        assert "put" in paths["/sdk/installations/{installation_id}/credential"]
        assert "403" in paths["/sdk/config"]["get"]["responses"]
