"""The dashboard's session: a cookie that holds an admin session token, and CSRF tokens.

The cookie IS an admin session (accounts.service.login/open_session): logging out revokes it,
and it expires with it. It is HttpOnly, SameSite=Strict, scoped to /admin, and Secure when
Tether is served over https. The JSON admin API never reads it: it takes the token only from
the Authorization header, so the cookie cannot be replayed against it by another site.

CSRF: every form of a signed-in page carries HMAC-SHA256(session token, a fixed label). Only
a holder of the session token can compute it, nothing is stored, and it changes with every
login. The login form, which has no session yet, uses a double-submit token: a random value in
its own SameSite=Strict cookie that the form must repeat."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from tether.accounts.service import (
    AdminPrincipal,
    authenticate_admin,
    get_account,
    get_member,
)
from tether.audit.service import note_request
from tether.db.base import utcnow
from tether.db.engine import SessionDep
from tether.errors import InvalidToken, TokenExpired
from tether.security.keys import is_admin_token

BASE = "/admin/ui"
LOGIN_PATH = f"{BASE}/login"
SESSION_COOKIE = "tether_session"
LOGIN_CSRF_COOKIE = "tether_login_csrf"
COOKIE_PATH = "/admin"
CSRF_FIELD = "csrf_token"
LOGIN_CSRF_MAX_AGE = 3600

_CSRF_LABEL = b"tether.dashboard.csrf.v1"
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(32) makes


class LoginRequired(Exception):
    """No session, or one that has ended: the answer is the login page."""

    def __init__(self, *, ended: bool, next_path: str | None) -> None:
        super().__init__("login required")
        self.ended = ended
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form post without the token of the session that rendered the form."""


def csrf_token_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def tokens_match(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def is_https(request: Request) -> bool:
    public_url: str = request.app.state.settings.public_url
    return public_url.startswith("https://")


def set_session_cookie(
    response: Response, request: Request, token: str, expires_at: datetime
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int((expires_at - utcnow()).total_seconds())),
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=is_https(request), httponly=True, samesite="strict"
    )


def login_csrf_token(request: Request) -> str:
    """The login form's token: the one already in the browser's cookie (so two open login
    tabs both work), else a new one."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if _LOGIN_TOKEN.fullmatch(current) else secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_MAX_AGE,
        path=LOGIN_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def clear_login_csrf_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path=LOGIN_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at the console. Plain values, so that a page can still be rendered after
    a failed write has rolled the database session back."""

    principal: AdminPrincipal
    csrf_token: str
    account_name: str
    member_email: str
    environments: tuple[str, ...]


async def current_principal(request: Request, session: SessionDep) -> AdminPrincipal | None:
    """The admin session in the cookie, if there is one and it is still open."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not is_admin_token(token):
        return None
    try:
        return await authenticate_admin(session, token)
    except (InvalidToken, TokenExpired):
        return None


async def require_viewer(request: Request, session: SessionDep) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    principal = await current_principal(request, session)
    if token is None or principal is None:
        next_path = request.url.path if request.method == "GET" else None
        if next_path and request.url.query:
            next_path = f"{next_path}?{request.url.query}"
        raise LoginRequired(ended=token is not None, next_path=next_path)
    # The audit log names this admin, with the request's IP and id, as the JSON API's does.
    note_request(request, "admin", principal.member_id, principal.account_id)
    account, environments = await get_account(session, principal.account_id)
    member = await get_member(session, principal.member_id)
    return Viewer(
        principal=principal,
        csrf_token=csrf_token_for(token),
        account_name=account.name,
        member_email=member.email,
        # Development first: the safe place to try things is the first one offered.
        environments=tuple(
            sorted((env.name for env in environments), key=lambda n: n != "development")
        ),
    )


ViewerDep = Annotated[Viewer, Depends(require_viewer)]


async def checked_form(request: Request, viewer: ViewerDep) -> FormData:
    """The posted form, once its CSRF token is the session's: checked before anything else."""
    form = await request.form()
    if not tokens_match(form.get(CSRF_FIELD), viewer.csrf_token):
        raise CsrfRejected()
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]
