"""The dashboard's session: login and logout, the cookie's attributes, and the redirect to the
login page for every page when the session is missing, expired or revoked."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import PASSWORD, Account
from tests.dashboard.helpers import UI, cookie, csrf_in, dashboard_routes, post_form, signed_in
from tests.support import assert_problem, bearer
from tether.accounts.models import AdminSession
from tether.config import Settings
from tether.dashboard.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from tether.db.base import utcnow
from tether.main import create_app
from tether.security.keys import digest

LOGIN = f"{UI}/login"
HOME = f"{UI}/development/api-keys"


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie header of a response, parsed, by cookie name."""
    parsed: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            parsed[name] = jar
    return parsed


async def open_login(client: httpx.AsyncClient) -> tuple[str, str]:
    """GET the login page: its CSRF token, and the login cookie that must come back with it."""
    page = await client.get(LOGIN)
    assert page.status_code == 200
    client.cookies.clear()  # the tests send cookies explicitly, as a browser would or would not
    login_cookie = set_cookies(page)[LOGIN_CSRF_COOKIE][LOGIN_CSRF_COOKIE].value
    return csrf_in(page.text), login_cookie


async def log_in(
    client: httpx.AsyncClient, email: str, password: str, **extra: str
) -> httpx.Response:
    token, login_cookie = await open_login(client)
    response = await client.post(
        LOGIN,
        data={"csrf_token": token, "email": email, "password": password, **extra},
        headers={"cookie": f"{LOGIN_CSRF_COOKIE}={login_cookie}"},
    )
    client.cookies.clear()
    return response


def session_token(response: httpx.Response) -> str:
    return set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE].value


async def set_session(
    sessionmaker: async_sessionmaker[AsyncSession], token: str, **values: object
) -> None:
    async with sessionmaker() as session:
        await session.execute(
            update(AdminSession).where(AdminSession.digest == digest(token)).values(**values)
        )
        await session.commit()


class TestLogin:
    async def test_the_entry_point_sends_a_stranger_to_the_login_page(
        self, client: httpx.AsyncClient
    ) -> None:
        entry = await client.get("/admin")
        assert entry.status_code == 303
        assert entry.headers["location"] == HOME
        home = await client.get(HOME)
        assert home.status_code == 303
        assert home.headers["location"] == f"{LOGIN}?next=%2Fadmin%2Fui%2Fdevelopment%2Fapi-keys"
        page = await client.get(home.headers["location"])
        assert page.status_code == 200
        assert "Log in to your account" in page.text

    async def test_login_sets_the_session_cookie_and_goes_home(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await log_in(client, account.email, PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == HOME
        token = session_token(response)
        assert token.startswith("tether_adm_")
        # The login CSRF cookie has done its job.
        assert set_cookies(response)[LOGIN_CSRF_COOKIE][LOGIN_CSRF_COOKIE]["max-age"] == "0"
        page = await client.get(HOME, headers=cookie(token))
        assert page.status_code == 200
        assert "Test Co" in page.text
        assert account.email in page.text

    async def test_login_returns_to_the_page_that_asked(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await log_in(
            client, account.email, PASSWORD, next=f"{UI}/production/users?q=acme"
        )
        assert response.headers["location"] == f"{UI}/production/users?q=acme"

    @pytest.mark.parametrize(
        "target",
        [
            "https://evil.example/admin/ui/x",
            "//evil.example/admin/ui/",
            "/admin/ui//evil.example",
            "/admin/ui/\\evil.example",
            "/admin/account",
            "javascript:alert(1)",
        ],
    )
    async def test_login_never_redirects_off_the_dashboard(
        self, client: httpx.AsyncClient, account: Account, target: str
    ) -> None:
        response = await log_in(client, account.email, PASSWORD, next=target)
        assert response.headers["location"] == HOME

    async def test_wrong_password_and_unknown_email_say_the_same(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        wrong_password = await log_in(client, account.email, "not the password")
        unknown_email = await log_in(client, "nobody-at-all@example.com", PASSWORD)
        for response in (wrong_password, unknown_email):
            assert response.status_code == 401
            assert SESSION_COOKIE not in set_cookies(response)
        message = re.compile(r'id="login-error">([^<]*)<')
        first, second = message.search(wrong_password.text), message.search(unknown_email.text)
        assert first
        assert second
        assert first.group(1) == second.group(1) == "The email or password is not correct."
        # The typed email is kept; the password never comes back.
        assert f'value="{account.email}"' in wrong_password.text
        assert "not the password" not in wrong_password.text

    async def test_empty_fields_are_asked_for(self, client: httpx.AsyncClient) -> None:
        response = await log_in(client, "", "")
        assert response.status_code == 422
        assert "Enter your email and password." in response.text

    async def test_login_without_its_csrf_cookie_is_refused(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        token, _ = await open_login(client)
        # What another site's form would send: the fields, but not the SameSite=Strict cookie.
        response = await client.post(
            LOGIN, data={"csrf_token": token, "email": account.email, "password": PASSWORD}
        )
        assert response.status_code == 403
        assert SESSION_COOKIE not in set_cookies(response)
        assert "could not be accepted" in response.text

    async def test_login_with_a_token_that_is_not_its_cookie_is_refused(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        _, login_cookie = await open_login(client)
        response = await client.post(
            LOGIN,
            data={"csrf_token": "x" * 43, "email": account.email, "password": PASSWORD},
            headers={"cookie": f"{LOGIN_CSRF_COOKIE}={login_cookie}"},
        )
        assert response.status_code == 403

    async def test_a_malformed_login_cookie_is_replaced_not_echoed(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get(
            LOGIN, headers={"cookie": f'{LOGIN_CSRF_COOKIE}="><script>x</script>'}
        )
        client.cookies.clear()
        assert "<script>x" not in page.text
        fresh = set_cookies(page)[LOGIN_CSRF_COOKIE][LOGIN_CSRF_COOKIE].value
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", fresh)
        assert csrf_in(page.text) == fresh

    async def test_a_signed_in_browser_skips_the_login_page(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.get(LOGIN, headers=signed_in(account))
        assert response.status_code == 303
        assert response.headers["location"] == HOME

    async def test_get_admin_login_in_a_browser_shows_the_form(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/admin/login")
        assert response.status_code == 303
        assert response.headers["location"] == LOGIN


class TestCookie:
    async def test_attributes_over_http(self, client: httpx.AsyncClient, account: Account) -> None:
        response = await log_in(client, account.email, PASSWORD)
        header = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        assert "httponly" in attributes
        assert "secure" not in attributes  # TETHER_PUBLIC_URL is http://testserver
        morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
        assert morsel["path"] == "/admin"
        assert morsel["samesite"].lower() == "strict"
        # It lives as long as the admin session it holds (12 hours by default).
        assert 12 * 3600 - 60 <= int(morsel["max-age"]) <= 12 * 3600

    async def test_attributes_over_https(self, settings: Settings, account: Account) -> None:
        app = create_app(settings.model_copy(update={"public_url": "https://tether.example"}))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://tether.example"
            ) as client,
        ):
            page = await client.get(LOGIN)
            assert "secure" in page.headers["set-cookie"].lower()
            response = await client.post(
                LOGIN,
                data={
                    "csrf_token": csrf_in(page.text),
                    "email": account.email,
                    "password": PASSWORD,
                },
            )
        assert response.status_code == 303, response.text
        morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() == "strict"
        assert morsel["path"] == "/admin"

    async def test_the_cookie_holds_an_admin_session(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        token = session_token(await log_in(client, account.email, PASSWORD))
        response = await client.get("/admin/account", headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["accountId"] == account.id

    async def test_the_json_api_never_reads_the_cookie(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        # The cookie is sent to all of /admin; only the Authorization header opens the API, so
        # another site cannot ride on the browser's session there.
        response = await client.get("/admin/account", headers=signed_in(account))
        assert_problem(response, 401, "missing_credentials")
        created = await client.post(
            "/admin/environments/production/api-keys",
            json={"type": "secret"},
            headers=signed_in(account),
        )
        assert_problem(created, 401, "missing_credentials")


class TestLogout:
    async def test_logout_revokes_the_session(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        token = session_token(await log_in(client, account.email, PASSWORD))
        page = await client.get(HOME, headers=cookie(token))
        response = await client.post(
            f"{UI}/logout", data={"csrf_token": csrf_in(page.text)}, headers=cookie(token)
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"{LOGIN}?reason=logged-out"
        assert set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
        # The same token is dead for the dashboard and for the JSON API alike.
        assert (await client.get(HOME, headers=cookie(token))).status_code == 303
        assert_problem(
            await client.get("/admin/account", headers=bearer(token)), 401, "invalid_token"
        )
        login_page = await client.get(response.headers["location"])
        assert "You have logged out." in login_page.text

    async def test_logout_needs_the_csrf_token(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(f"{UI}/logout", headers=signed_in(account))
        assert response.status_code == 403
        assert (await client.get("/admin/account", headers=account.admin)).status_code == 200

    async def test_the_json_logout_ends_the_dashboard_session_too(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        assert (await client.post("/admin/logout", headers=account.admin)).status_code == 204
        response = await client.get(HOME, headers=signed_in(account))
        assert response.status_code == 303


# Open to strangers: the login form, and the entry points that only redirect to a page.
PUBLIC = {LOGIN, UI, f"{UI}/"}


def page_paths(app: FastAPI) -> list[str]:
    """Every GET page of the dashboard behind the session, with its path parameters filled
    in."""
    values = {
        "env": "production",
        "key_id": "key_0",
        "integration_id": "int_0",
        "user_ref": "someone",
        "rest": "no/such/page",
    }
    paths = []
    for path in dashboard_routes(app, "GET"):
        if path in PUBLIC:
            continue
        for name, value in values.items():
            path = path.replace(f"{{{name}}}", value).replace(f"{{{name}:path}}", value)
        assert "{" not in path, path
        paths.append(path)
    return paths


class TestLoggedOut:
    @pytest.fixture
    async def ended(
        self,
        request: pytest.FixtureRequest,
        client: httpx.AsyncClient,
        account: Account,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> dict[str, str]:
        """The cookie of a session that ended, each way a session can end."""
        how = request.param
        if how == "expired":
            await set_session(
                sessionmaker, account.admin_token, expires_at=utcnow() - timedelta(seconds=1)
            )
        elif how == "revoked":
            await set_session(sessionmaker, account.admin_token, revoked_at=utcnow())
        return signed_in(account) if how != "forged" else cookie("tether_adm_" + "A" * 49)

    async def test_every_page_sends_a_stranger_to_the_login(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        paths = page_paths(app)
        assert len(paths) >= 11
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 303, path
            location = response.headers["location"]
            assert location.startswith(f"{LOGIN}?next="), (path, location)
            assert SESSION_COOKIE not in set_cookies(response)

    @pytest.mark.parametrize("ended", ["expired", "revoked", "forged"], indirect=True)
    async def test_an_ended_session_is_sent_to_the_login_and_its_cookie_cleared(
        self, client: httpx.AsyncClient, app: FastAPI, ended: dict[str, str]
    ) -> None:
        for path in page_paths(app):
            response = await client.get(path, headers=ended)
            assert response.status_code == 303, path
            assert "reason=ended" in response.headers["location"]
            assert set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
        page = await client.get(f"{LOGIN}?reason=ended")
        assert "Your session has ended" in page.text

    @pytest.mark.parametrize("ended", ["expired", "revoked"], indirect=True)
    async def test_a_form_post_of_an_ended_session_changes_nothing(
        self,
        client: httpx.AsyncClient,
        account: Account,
        ended: dict[str, str],
    ) -> None:
        response = await post_form(client, account, f"{UI}/production/api-keys", {"type": "secret"})
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"{LOGIN}?reason=ended")
        # No key was made: the account still has the one secret key it started with.
        login = await client.post(
            "/admin/login", json={"email": account.email, "password": PASSWORD}
        )
        keys = await client.get(
            "/admin/environments/production/api-keys", headers=bearer(login.json()["token"])
        )
        assert len(keys.json()["data"]) == 2
