"""OAuth 2.0 against a real provider process (tests/oauth_provider.py), through custom_oauth2:
connect, refusals, replays, provider failures, refresh, and concurrent refreshes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from tests.conftest import Account
from tests.oauth_provider import Provider, RegisteredClient, run_provider
from tests.support import bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.config import Settings
from tether.db.base import utcnow
from tether.installations.models import Credential
from tether.main import create_app

REDIRECT_URI = "http://testserver/oauth/callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with run_provider(tmp_path_factory.mktemp("provider")) as provider:
        yield provider


@pytest.fixture
def oauth_client(provider: Provider) -> RegisteredClient:
    provider.reset()
    return provider.register_client(redirect_uris=[REDIRECT_URI])


@pytest.fixture(scope="module")
async def oauth_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with http:// provider URLs allowed (the provider is local) and a short
    timeout, so a hanging token endpoint is tested in a second."""
    local = settings.model_copy(
        update={"allow_insecure_oauth_urls": True, "oauth_timeout_seconds": 1.0}
    )
    app = create_app(local)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def web(oauth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=oauth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await oauth_app.state.key_usage.drain()


class Flow:
    """One user connecting one custom_oauth2 integration, step by step."""

    def __init__(self, web: httpx.AsyncClient, account: Account, integration_id: str) -> None:
        self.web = web
        self.account = account
        self.integration_id = integration_id
        self.user_token = ""
        self.user_id = ""

    @classmethod
    async def make(
        cls, web: httpx.AsyncClient, account: Account, provider: Provider, client: RegisteredClient
    ) -> Flow:
        created = await web.post(
            "/admin/environments/development/integrations",
            json={
                "app": "custom_oauth2",
                "clientId": client.client_id,
                "clientSecret": client.client_secret,
                "authorizeUrl": provider.authorize_endpoint,
                "tokenUrl": provider.token_endpoint,
                "scopes": ["read", "write"],
            },
            headers=account.admin,
        )
        assert created.status_code == 201, created.text
        flow = cls(web, account, created.json()["integrationId"])
        flow.user_id = (await create_user(web, account.dev.secret_key, "oauth-user"))["userId"]
        flow.user_token = (await mint(web, account.dev.secret_key, flow.user_id))["token"]
        return flow

    async def authorize_url(self) -> str:
        response = await self.web.post(
            f"/sdk/oauth/{self.integration_id}/start", headers=bearer(self.user_token)
        )
        assert response.status_code == 200, response.text
        return str(response.json()["authorizeUrl"])

    async def consent(self) -> str:
        """Follow the authorize URL at the provider; answer the callback path it redirects to."""
        async with httpx.AsyncClient() as browser:
            answer = await browser.get(await self.authorize_url())
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI)
        return location.removeprefix("http://testserver")

    async def callback(self, path: str) -> tuple[int, dict[str, Any]]:
        page = await self.web.get(path)
        assert page.headers["content-type"].startswith("text/html")
        match = re.search(
            r'<script id="tether-result" type="application/json">(.*?)</script>', page.text
        )
        assert match, page.text
        return page.status_code, json.loads(match.group(1))

    async def connect(self) -> str:
        status, result = await self.callback(await self.consent())
        assert (status, result["success"]) == (200, True), result
        return str(result["installationId"])

    async def credential(self) -> httpx.Response:
        key = bearer(self.account.dev.secret_key)
        listed = await self.web.get(f"/users/{self.user_id}/credentials", headers=key)
        (meta,) = listed.json()["data"]
        return await self.web.get(
            f"/users/{self.user_id}/credentials/{meta['credentialId']}", headers=key
        )


@pytest.fixture
async def flow(
    web: httpx.AsyncClient, account: Account, provider: Provider, oauth_client: RegisteredClient
) -> Flow:
    return await Flow.make(web, account, provider, oauth_client)


async def installations(flow: Flow) -> list[dict[str, Any]]:
    response = await flow.web.get(
        "/installations",
        params={"userId": flow.user_id},
        headers=bearer(flow.account.dev.secret_key),
    )
    return list(response.json()["data"])


async def expire_soon(oauth_app: FastAPI, flow: Flow, seconds: int = 60) -> None:
    """Move the user's credential to `seconds` before expiry, inside the refresh window."""
    async with oauth_app.state.sessionmaker() as session:
        await session.execute(
            update(Credential)
            .where(Credential.user_id == flow.user_id)
            .values(expires_at=utcnow() + timedelta(seconds=seconds))
        )
        await session.commit()


class TestConnect:
    async def test_full_install(self, flow: Flow, provider: Provider) -> None:
        url = await flow.authorize_url()
        params = parse_qs(urlsplit(url).query)
        assert params["redirect_uri"] == [REDIRECT_URI]
        assert params["code_challenge_method"] == ["S256"]
        assert params["scope"] == ["read write"]

        installation_id = await flow.connect()
        (listed,) = await installations(flow)
        assert listed["installationId"] == installation_id
        assert listed["status"] == "active"

        response = await flow.credential()
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["accessToken"]
        assert data["refreshToken"]
        assert data["expiresAt"]
        (exchange,) = provider.token_requests()
        assert exchange["grant_type"] == "authorization_code"
        assert exchange["has_code_verifier"]

    async def test_state_is_bound_to_the_user_who_started(self, flow: Flow) -> None:
        sdk = await flow.web.get("/sdk/integrations", headers=bearer(flow.user_token))
        (integration,) = sdk.json()["data"]
        assert integration["installed"] is False
        await flow.connect()
        sdk = await flow.web.get("/sdk/integrations", headers=bearer(flow.user_token))
        assert sdk.json()["data"][0]["installed"] is True

    async def test_denied_consent(self, flow: Flow, provider: Provider) -> None:
        provider.set_mode("deny")
        status, result = await flow.callback(await flow.consent())
        assert status == 400
        assert result == {"success": False, "error": "access_denied"}
        assert await installations(flow) == []

    async def test_replayed_state(self, flow: Flow) -> None:
        path = await flow.consent()
        assert (await flow.callback(path))[1]["success"] is True
        status, result = await flow.callback(path)
        assert status == 400
        assert result == {"success": False, "error": "invalid_state"}

    async def test_forged_state(self, flow: Flow) -> None:
        path = await flow.consent()
        forged = re.sub(r"state=[^&]+", "state=forged", path)
        status, result = await flow.callback(forged)
        assert (status, result["error"]) == (400, "invalid_state")
        assert await installations(flow) == []

    async def test_missing_state(self, flow: Flow) -> None:
        status, result = await flow.callback("/oauth/callback?code=abc")
        assert (status, result["error"]) == (400, "invalid_state")

    async def test_expired_state(self, flow: Flow, oauth_app: FastAPI) -> None:
        path = await flow.consent()
        async with oauth_app.state.engine.begin() as connection:
            await connection.execute(
                text("UPDATE oauth_states SET expires_at = created_at WHERE user_id = :u"),
                {"u": flow.user_id},
            )
        status, result = await flow.callback(path)
        assert (status, result["error"]) == (400, "invalid_state")

    async def test_provider_error_at_the_token_endpoint(
        self, flow: Flow, provider: Provider
    ) -> None:
        provider.fail_next(status=500, error="server_error")
        status, result = await flow.callback(await flow.consent())
        assert status == 502
        assert result == {"success": False, "error": "server_error"}
        assert await installations(flow) == []

    async def test_token_endpoint_timeout(self, flow: Flow, provider: Provider) -> None:
        provider.hang_next(3, then_status=504)
        status, result = await flow.callback(await flow.consent())
        assert status == 504
        assert result == {"success": False, "error": "oauth_provider_timeout"}

    async def test_reconnecting_replaces_the_tokens(self, flow: Flow) -> None:
        first = await flow.connect()
        before = (await flow.credential()).json()["data"]["accessToken"]
        assert await flow.connect() == first
        after = (await flow.credential()).json()["data"]["accessToken"]
        assert after != before
        assert len(await installations(flow)) == 1


class TestRefresh:
    async def test_a_credential_near_expiry_is_refreshed_on_read(
        self, flow: Flow, provider: Provider, oauth_app: FastAPI
    ) -> None:
        await flow.connect()
        before = (await flow.credential()).json()["data"]
        assert provider.stats()["token_requests"].get("refresh_token", 0) == 0
        await expire_soon(oauth_app, flow)
        response = await flow.credential()
        assert response.status_code == 200
        after = response.json()["data"]
        assert after["accessToken"] != before["accessToken"]
        assert provider.stats()["token_requests"]["refresh_token"] == 1
        # Fresh now: the next read does not refresh again.
        assert (await flow.credential()).json()["data"] == after
        assert provider.stats()["token_requests"]["refresh_token"] == 1

    async def test_twenty_concurrent_reads_cause_one_refresh(
        self, flow: Flow, provider: Provider, oauth_app: FastAPI
    ) -> None:
        await flow.connect()
        await expire_soon(oauth_app, flow)
        responses = await asyncio.gather(*(flow.credential() for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert len({r.json()["data"]["accessToken"] for r in responses}) == 1
        assert provider.stats()["token_requests"]["refresh_token"] == 1

    async def test_a_rejected_refresh_marks_the_installation_error(
        self, flow: Flow, provider: Provider, oauth_app: FastAPI
    ) -> None:
        await flow.connect()
        provider.revoke_refresh_tokens()
        await expire_soon(oauth_app, flow)
        response = await flow.credential()
        assert response.status_code == 409
        assert response.json()["code"] == "credential_refresh_failed"
        (installation,) = await installations(flow)
        assert installation["status"] == "error"
        # Refused once is refused: the provider is not asked again.
        assert (await flow.credential()).status_code == 409
        assert provider.stats()["token_requests"]["refresh_token"] == 1
        # Reconnecting heals it.
        await flow.connect()
        assert (await installations(flow))[0]["status"] == "active"

    async def test_a_transient_failure_returns_the_still_valid_token(
        self, flow: Flow, provider: Provider, oauth_app: FastAPI
    ) -> None:
        await flow.connect()
        before = (await flow.credential()).json()["data"]
        await expire_soon(oauth_app, flow)
        provider.fail_next(status=503, error="temporarily_unavailable", grant_type="refresh_token")
        response = await flow.credential()
        assert response.status_code == 200
        assert response.json()["data"]["accessToken"] == before["accessToken"]
        # The lease was released: the next read refreshes.
        assert (await flow.credential()).json()["data"]["accessToken"] != before["accessToken"]

    async def test_an_expired_token_with_the_provider_down_is_a_clean_502(
        self, flow: Flow, provider: Provider, oauth_app: FastAPI
    ) -> None:
        await flow.connect()
        await expire_soon(oauth_app, flow, seconds=-10)
        provider.fail_next(status=503, error="temporarily_unavailable", grant_type="refresh_token")
        response = await flow.credential()
        assert response.status_code == 502
        assert response.json()["code"] == "oauth_provider_error"
