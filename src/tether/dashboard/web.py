"""Rendering for the dashboard: the Jinja2 environment, page and redirect responses, and the
route class that turns a missing session into a redirect, and a refused form or a domain error
into a page instead of a problem document."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tether.dashboard.session import (
    BASE,
    LOGIN_PATH,
    CsrfRejected,
    LoginRequired,
    clear_session_cookie,
)
from tether.db.base import utcnow
from tether.errors import TetherError

STATIC_PATH = f"{BASE}/static"
STATIC_DIR = Path(__file__).parent / "static"

PAGE_HEADERS = {
    # Admin pages, some carrying a secret once: no cache keeps them, and the back button after
    # logging out does not show them again.
    "Cache-Control": "no-store",
    # No page of the console may be framed: a framed "Revoke" button could be clickjacked.
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

# Messages shown after a redirect, named in the query string (?notice=key-revoked). Only these
# texts can appear: nothing a link carries is echoed into the page.
NOTICES = {
    "key-revoked": "The key was revoked. Requests that use it are refused from now on.",
    "signing-key-imported": "The public key was added. Tokens signed with its private half "
    "are accepted now.",
    "signing-key-revoked": "The signing key was revoked. Tokens signed with it are refused.",
    "integration-created": "The integration was added. Your users can install it now.",
    "integration-saved": "The integration was saved.",
    "integration-enabled": "The integration was enabled: users see it again.",
    "integration-disabled": "The integration was disabled: users no longer see it.",
    "integration-deleted": "The integration and every installation of it were deleted.",
    "user-deleted": "The user was deleted, with its installations and credentials.",
    "installation-deleted": "The installation and its credential were deleted.",
    "settings-saved": "The settings were saved.",
}


def _static_versions() -> dict[str, str]:
    # A digest per file in its URL: browsers may cache the assets, and a new release is fetched.
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in STATIC_DIR.iterdir()
        if path.is_file()
    }


_VERSIONS = _static_versions()


def static_url(name: str) -> str:
    return f"{STATIC_PATH}/{name}?v={_VERSIONS[name]}"


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


def format_when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def format_duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def format_iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat().replace("+00:00", "Z")


templates = Environment(
    loader=PackageLoader("tether.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt variable fails the page (and its test), not silently
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(static=static_url, base=BASE, login_path=LOGIN_PATH)
templates.filters.update(when=format_when, iso=format_iso, duration=format_duration)


def render(template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    html = templates.get_template(template).render({"now": utcnow(), **context})
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a form post's redirect with a GET.
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def with_query(path: str, **params: str | None) -> str:
    query = urlencode({key: value for key, value in params.items() if value})
    return f"{path}?{query}" if query else path


def safe_next(value: str | None) -> str | None:
    """A path inside the dashboard to return to after logging in; anything else (another
    site, a protocol-relative URL, a backslash trick) is dropped."""
    if (
        not value
        or not value.startswith(f"{BASE}/")
        or "//" in value
        or "\\" in value
        or any(ord(char) < 0x20 for char in value)
        or value.startswith(LOGIN_PATH)
    ):
        return None
    return value


def error_page(status: int, title: str, message: str) -> HTMLResponse:
    return render(
        "error.html", {"status": status, "title": title, "message": message}, status=status
    )


_TITLES = {400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found"}


def _login_redirect(request: Request, exc: LoginRequired) -> Response:
    response = redirect(
        with_query(LOGIN_PATH, next=safe_next(exc.next_path), reason="ended" if exc.ended else None)
    )
    if exc.ended:
        clear_session_cookie(response, request)
    return response


class DashboardRoute(APIRoute):
    """Every dashboard route answers HTML, whatever goes wrong."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return _login_redirect(request, exc)
            except CsrfRejected:
                return error_page(
                    403,
                    "This form could not be accepted",
                    "It did not carry this session's security token, so it may not have come "
                    "from a Tether page. Nothing was changed. Go back, reload the page and try "
                    "again.",
                )
            except TetherError as exc:
                title = _TITLES.get(exc.status, "Something went wrong")
                return error_page(exc.status, title, exc.detail)
            except RequestValidationError:
                return error_page(422, "Bad request", "The request is not valid.")

        return route
