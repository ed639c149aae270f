"""The dashboard's URLs. Everything lives under /admin/ui, beside the JSON admin API (which
keeps /admin/login, /admin/account, /admin/environments/...); /admin is the entry point.

    GET  /admin                         -> the console, or the login page
    GET  /admin/ui/login                   the login form (POST: log in)
    POST /admin/ui/logout                  revoke the session
    GET  /admin/ui/{env}/api-keys          Settings > API Keys (and .../signing-keys,
         .../settings, .../integrations, .../users, .../audit-log)
    GET  /admin/ui/static/...              stylesheet and script, public
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import ValidationError

from tether.accounts import service as accounts
from tether.accounts.schemas import LoginBody
from tether.audit.service import note_request
from tether.dashboard import audit, environment, integrations, keys, users
from tether.dashboard.forms import text
from tether.dashboard.pages import dashboard_router, section_url
from tether.dashboard.session import (
    BASE,
    CSRF_FIELD,
    LOGIN_PATH,
    CheckedForm,
    CsrfRejected,
    ViewerDep,
    clear_login_csrf_cookie,
    clear_session_cookie,
    current_principal,
    login_csrf_token,
    set_login_csrf_cookie,
    set_session_cookie,
    tokens_match,
)
from tether.dashboard.session import LOGIN_CSRF_COOKIE as LOGIN_COOKIE
from tether.dashboard.web import (
    STATIC_PATH,
    DashboardRoute,
    redirect,
    render,
    safe_next,
    static_files,
    with_query,
)
from tether.db.engine import SessionDep
from tether.errors import InvalidCredentials, NotFound

HOME = section_url("development", "api-keys")

LOGIN_MESSAGES = {
    "ended": "Your session has ended. Log in again to continue.",
    "logged-out": "You have logged out.",
}

# The entry points outside /admin/ui: what an operator types into the address bar.
entry = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@entry.get("/admin")
@entry.get(BASE)
@entry.get(f"{BASE}/")
async def home() -> Response:
    # The first page asks for the session: without one, it sends the browser to the login.
    return redirect(HOME)


@entry.get("/admin/login")
async def login_alias() -> Response:
    """The JSON API logs in with POST /admin/login; a browser that GETs it gets the form."""
    return redirect(LOGIN_PATH)


router = dashboard_router(prefix=BASE)


def _login_page(
    request: Request,
    csrf: str,
    *,
    email: str = "",
    next_path: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    message = LOGIN_MESSAGES.get(request.query_params.get("reason", ""))
    response = render(
        "login.html",
        {
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf,
            "email": email,
            "next_path": next_path or "",
            "message": message,
            "error": error,
        },
        status=status,
    )
    set_login_csrf_cookie(response, request, csrf)
    return response


@router.get("/login")
async def login_page(request: Request, session: SessionDep, next: str = "") -> Response:
    if await current_principal(request, session) is not None:
        return redirect(safe_next(next) or HOME)
    return _login_page(request, login_csrf_token(request), next_path=safe_next(next))


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    # Login CSRF (logging a victim into the attacker's account): the form must repeat the
    # value of a SameSite=Strict cookie, which another site's form cannot carry.
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not tokens_match(form.get(CSRF_FIELD), cookie):
        raise CsrfRejected()
    note_request(request)  # the login is audited with the request's IP, as the JSON login is
    email, next_path = text(form, "email"), safe_next(text(form, "next"))
    password = form.get("password")
    try:
        body = LoginBody.model_validate({"email": email, "password": password})
        token, expires_at = await accounts.login(
            session,
            email=body.email,
            password=body.password,
            ttl_seconds=request.app.state.settings.admin_session_ttl_seconds,
        )
    except (ValidationError, InvalidCredentials) as exc:
        # One message for an unknown email and a wrong password, as the JSON API answers.
        error = (
            InvalidCredentials.detail
            if isinstance(exc, InvalidCredentials)
            else "Enter your email and password."
        )
        return _login_page(
            request,
            cookie,
            email=email,
            next_path=next_path,
            error=error,
            status=401 if isinstance(exc, InvalidCredentials) else 422,
        )
    response = redirect(next_path or HOME)
    set_session_cookie(response, request, token, expires_at)
    clear_login_csrf_cookie(response, request)
    return response


@router.post("/logout")
async def logout(
    request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    await accounts.logout(session, viewer.principal)
    response = redirect(with_query(LOGIN_PATH, reason="logged-out"))
    clear_session_cookie(response, request)
    return response


for module in (keys, integrations, users, environment, audit):
    router.include_router(module.router)


@router.get("/{rest:path}")
async def not_found(rest: str, viewer: ViewerDep) -> Response:
    # Behind the session like every page, so that a stranger learns nothing from the URLs.
    raise NotFound("There is no such page in the dashboard.")


def install(app: FastAPI) -> None:
    """Mount the dashboard: its static files first, so that no page route shadows them."""
    app.mount(STATIC_PATH, static_files(), name="dashboard-static")
    app.include_router(entry)
    app.include_router(router)
