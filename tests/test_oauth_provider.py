"""The OAuth test provider, driven over HTTP as the real process that other tests will use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.oauth_provider import Provider, RegisteredClient, pkce_pair, run_provider

pytestmark = pytest.mark.slow

REDIRECT = "http://testserver/oauth/callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with run_provider(tmp_path_factory.mktemp("oauth")) as provider:
        yield provider


@pytest.fixture(autouse=True)
def fresh(provider: Provider) -> None:
    provider.reset()


@pytest.fixture
def client(provider: Provider) -> RegisteredClient:
    return provider.register_client(redirect_uris=[REDIRECT])


@pytest.fixture
def http(provider: Provider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.url, timeout=10) as http:
        yield http


def query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def authorize(
    provider: Provider, http: httpx.Client, client: RegisteredClient, challenge: str | None
) -> str:
    response = http.get(provider.authorization_url(client, code_challenge=challenge))
    params = query(response)
    assert params["state"] == "state-1"
    return params["code"]


def exchange(
    provider: Provider,
    http: httpx.Client,
    client: RegisteredClient,
    code: str,
    verifier: str | None,
    *,
    basic: bool = True,
    timeout: float = 10,
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    return post_token(provider, http, client, form, basic=basic, timeout=timeout)


def refresh(
    provider: Provider, http: httpx.Client, client: RegisteredClient, token: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return post_token(provider, http, client, form)


def post_token(
    provider: Provider,
    http: httpx.Client,
    client: RegisteredClient,
    form: dict[str, str],
    *,
    basic: bool = True,
    timeout: float = 10,
) -> httpx.Response:
    assert client.client_secret is not None
    if basic:
        auth = httpx.BasicAuth(client.client_id, client.client_secret)
        return http.post("/token", data=form, auth=auth, timeout=timeout)
    form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
    return http.post("/token", data=form, timeout=timeout)


def tokens(provider: Provider, http: httpx.Client, client: RegisteredClient) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    response = exchange(
        provider, http, client, authorize(provider, http, client, challenge), verifier
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: httpx.Response) -> str:
    error: str = response.json()["error"]
    return error


class TestAuthorizationCode:
    def test_full_exchange_with_pkce(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        response = exchange(provider, http, client, code, verifier)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert body["scope"] == "read write"
        me = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200
        assert me.json()["sub"] == "user-1"

    def test_client_secret_post_works_too(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        response = exchange(provider, http, client, code, verifier, basic=False)
        assert response.status_code == 200, response.text
        assert provider.token_requests()[-1]["client_auth"] == "client_secret_post"

    def test_wrong_verifier_is_rejected(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        _, challenge = pkce_pair()
        other_verifier, _ = pkce_pair()
        code = authorize(provider, http, client, challenge)
        response = exchange(provider, http, client, code, other_verifier)
        assert response.status_code == 400
        assert error_of(response) == "invalid_grant"

    def test_missing_verifier_is_rejected(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        _, challenge = pkce_pair()
        response = exchange(
            provider, http, client, authorize(provider, http, client, challenge), None
        )
        assert response.status_code == 400
        assert error_of(response) == "invalid_grant"

    def test_replayed_code_is_rejected_and_revokes_its_tokens(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        first = exchange(provider, http, client, code, verifier)
        assert first.status_code == 200
        replay = exchange(provider, http, client, code, verifier)
        assert replay.status_code == 400
        assert error_of(replay) == "invalid_grant"
        access = first.json()["access_token"]
        me = http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 401
        assert refresh(provider, http, client, first.json()["refresh_token"]).status_code == 400

    def test_redirect_uri_must_match_the_authorization(
        self, provider: Provider, http: httpx.Client
    ) -> None:
        client = provider.register_client(redirect_uris=[REDIRECT, "http://testserver/other"])
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://testserver/other",
            "code_verifier": verifier,
        }
        response = post_token(provider, http, client, form)
        assert response.status_code == 400
        assert error_of(response) == "invalid_grant"

    def test_expired_code_is_rejected(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.configure(code_ttl=0.2)
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        time.sleep(0.4)
        response = exchange(provider, http, client, code, verifier)
        assert response.status_code == 400
        assert "expired" in response.json()["error_description"]

    def test_wrong_client_secret_is_401(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        response = http.post(
            "/token", data={**form, "code_verifier": verifier}, auth=(client.client_id, "wrong")
        )
        assert response.status_code == 401
        assert error_of(response) == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")

    def test_client_auth_method_can_be_restricted(
        self, provider: Provider, http: httpx.Client
    ) -> None:
        client = provider.register_client(
            redirect_uris=[REDIRECT], auth_methods=["client_secret_basic"]
        )
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        response = exchange(provider, http, client, code, verifier, basic=False)
        assert response.status_code == 401
        assert error_of(response) == "invalid_client"

    def test_unknown_client_is_not_redirected(self, provider: Provider, http: httpx.Client) -> None:
        ghost = RegisteredClient("ghost", "x", [REDIRECT])
        response = http.get(provider.authorization_url(ghost, code_challenge=pkce_pair()[1]))
        assert response.status_code == 400
        assert "location" not in response.headers

    def test_unregistered_redirect_uri_is_not_redirected(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        url = provider.authorization_url(
            client, code_challenge=pkce_pair()[1], redirect_uri="https://evil.example/cb"
        )
        response = http.get(url)
        assert response.status_code == 400
        assert "location" not in response.headers

    def test_plain_pkce_is_refused(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, _ = pkce_pair()
        url = provider.authorization_url(client, code_challenge=None)
        response = http.get(f"{url}&code_challenge={verifier[:43]}&code_challenge_method=plain")
        params = query(response)
        assert params["error"] == "invalid_request"
        assert params["state"] == "state-1"

    def test_pkce_is_required_unless_the_client_opts_out(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        response = http.get(provider.authorization_url(client, code_challenge=None))
        assert query(response)["error"] == "invalid_request"
        relaxed = provider.register_client(redirect_uris=[REDIRECT], require_pkce=False)
        code = authorize(provider, http, relaxed, None)
        assert exchange(provider, http, relaxed, code, None).status_code == 200

    def test_authorize_requests_are_recorded(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        _, challenge = pkce_pair()
        url = provider.authorization_url(client, code_challenge=challenge, access_type="offline")
        query(http.get(url))
        (entry,) = provider.authorize_requests()
        assert entry["params"]["access_type"] == "offline"
        assert entry["params"]["code_challenge_method"] == "S256"
        assert entry["outcome"] == "code"

    def test_userinfo_refuses_a_bad_token(self, http: httpx.Client) -> None:
        response = http.get("/userinfo", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


class TestRefresh:
    def test_refresh_rotates_and_counts(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        first = tokens(provider, http, client)
        renewed = refresh(provider, http, client, first["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        assert body["access_token"] != first["access_token"]
        assert body["refresh_token"] != first["refresh_token"]
        stale = refresh(provider, http, client, first["refresh_token"])
        assert stale.status_code == 400
        assert error_of(stale) == "invalid_grant"

        stats = provider.stats()
        assert stats["token_requests"] == {"authorization_code": 1, "refresh_token": 2}
        assert stats["token_requests_total"] == 3
        assert stats["tokens_issued"] == 2
        log = provider.token_requests()
        assert [entry["grant_type"] for entry in log] == [
            "authorization_code",
            "refresh_token",
            "refresh_token",
        ]
        assert [entry["status"] for entry in log] == [200, 200, 400]
        assert log[1]["client_auth"] == "client_secret_basic"
        assert client.client_secret is not None
        text = str(log)
        assert client.client_secret not in text
        assert first["refresh_token"] not in text

    def test_without_rotation_the_refresh_token_stays(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.configure(rotate_refresh_tokens=False)
        first = tokens(provider, http, client)
        for _ in range(2):
            again = refresh(provider, http, client, first["refresh_token"])
            assert again.status_code == 200
            assert again.json()["refresh_token"] == first["refresh_token"]

    def test_revoked_refresh_tokens_fail(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        first = tokens(provider, http, client)
        assert provider.revoke_refresh_tokens() == 1
        response = refresh(provider, http, client, first["refresh_token"])
        assert response.status_code == 400
        assert error_of(response) == "invalid_grant"

    def test_scope_can_narrow_but_not_widen(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        first = tokens(provider, http, client)
        wider = refresh(provider, http, client, first["refresh_token"], scope="read admin")
        assert error_of(wider) == "invalid_scope"
        narrower = refresh(provider, http, client, first["refresh_token"], scope="read")
        assert narrower.json()["scope"] == "read"

    def test_expires_in_is_configurable(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.set_expires_in(1)
        body = tokens(provider, http, client)
        assert body["expires_in"] == 1
        time.sleep(1.1)
        me = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 401

    def test_unknown_grant_type(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        response = post_token(provider, http, client, {"grant_type": "password"})
        assert response.status_code == 400
        assert error_of(response) == "unsupported_grant_type"


class TestModes:
    def test_deny_mode_redirects_with_access_denied(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.set_mode("deny")
        params = query(http.get(provider.authorization_url(client, code_challenge=pkce_pair()[1])))
        assert params["error"] == "access_denied"
        assert params["state"] == "state-1"
        assert "code" not in params

    def test_interactive_mode_shows_an_approve_button(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.set_mode("interactive")
        verifier, challenge = pkce_pair()
        page = http.get(provider.authorization_url(client, code_challenge=challenge))
        assert page.status_code == 200
        assert 'id="approve"' in page.text
        request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
        decided = http.post(
            "/authorize/decision", data={"request_id": request_id, "decision": "approve"}
        )
        assert decided.status_code == 303
        params = query(decided)
        assert params["state"] == "state-1"
        assert exchange(provider, http, client, params["code"], verifier).status_code == 200

    def test_interactive_deny(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.set_mode("interactive")
        page = http.get(provider.authorization_url(client, code_challenge=pkce_pair()[1]))
        request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
        decided = http.post(
            "/authorize/decision", data={"request_id": request_id, "decision": "deny"}
        )
        assert query(decided)["error"] == "access_denied"


class TestFaultInjection:
    def test_fail_next_n_then_recover(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        provider.fail_next(2, status=503, error="temporarily_unavailable")
        for _ in range(2):
            failed = exchange(provider, http, client, code, verifier)
            assert failed.status_code == 503
            assert error_of(failed) == "temporarily_unavailable"
        # An injected failure never reaches the grant logic: the code is still good.
        assert exchange(provider, http, client, code, verifier).status_code == 200
        stats = provider.stats()
        assert stats["faults_applied"] == 2
        assert stats["token_requests"] == {"authorization_code": 3}
        assert [entry["fault"] for entry in provider.token_requests()] == ["fail", "fail", None]

    def test_failures_can_target_one_grant_type(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.fail_next(status=400, error="invalid_grant", grant_type="refresh_token")
        first = tokens(provider, http, client)
        failed = refresh(provider, http, client, first["refresh_token"])
        assert error_of(failed) == "invalid_grant"
        assert refresh(provider, http, client, first["refresh_token"]).status_code == 200

    def test_a_non_json_error_body(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.fail_next(status=502, body="<html>Bad gateway</html>")
        verifier, challenge = pkce_pair()
        response = exchange(
            provider, http, client, authorize(provider, http, client, challenge), verifier
        )
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("text/html")

    def test_hang_times_the_client_out_without_blocking_the_server(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.hang_next(3, then_status=504)
        verifier, challenge = pkce_pair()
        code = authorize(provider, http, client, challenge)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            exchange(provider, http, client, code, verifier, timeout=0.3)
        assert time.monotonic() - started < 2
        # The server keeps serving while one request hangs, and the code was never consumed.
        response = exchange(provider, http, client, code, verifier)
        assert response.status_code == 200
        assert time.monotonic() - started < 2
        assert provider.token_requests()[0]["fault"] == "hang+fail"

    def test_a_hang_alone_is_a_slow_success(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.hang_next(0.3)
        started = time.monotonic()
        body = tokens(provider, http, client)
        assert time.monotonic() - started >= 0.3
        assert body["token_type"] == "Bearer"

    def test_faults_can_be_cleared_and_are_validated(self, provider: Provider) -> None:
        provider.fail_next(5, status=500)
        provider.clear_faults()
        response = provider.http.post("/_control/faults", json={"count": 1})
        assert response.status_code == 422


class TestControl:
    def test_reset_forgets_clients(
        self, provider: Provider, http: httpx.Client, client: RegisteredClient
    ) -> None:
        provider.reset()
        response = http.get(provider.authorization_url(client, code_challenge=pkce_pair()[1]))
        assert response.status_code == 400

    def test_settings_reject_unknown_keys(self, provider: Provider) -> None:
        response = provider.http.patch("/_control/settings", json={"mood": "grumpy"})
        assert response.status_code == 422
        assert provider.configure(expires_in=60)["expires_in"] == 60
