"""Helpers shared by the dashboard tests: a signed-in cookie, the CSRF token of a page, and the
dashboard's routes as the app declares them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from tests.conftest import Account
from tether.dashboard.session import CSRF_FIELD, SESSION_COOKIE, csrf_token_for

UI = "/admin/ui"


def cookie(token: str) -> dict[str, str]:
    """The header a browser holding the dashboard's session cookie sends."""
    return {"cookie": f"{SESSION_COOKIE}={token}"}


def signed_in(account: Account) -> dict[str, str]:
    # The account fixture opened an admin session: the dashboard's cookie holds exactly that.
    return cookie(account.admin_token)


def csrf(account: Account) -> str:
    return csrf_token_for(account.admin_token)


def csrf_in(html: str) -> str:
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def get_page(client: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    response = await client.get(path, headers=signed_in(account))
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    return response


async def post_form(
    client: httpx.AsyncClient, account: Account, path: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """A form post from a page of this session: with its CSRF token."""
    return await client.post(
        path, data={CSRF_FIELD: csrf(account), **(data or {})}, headers=signed_in(account)
    )


def dashboard_routes(app: FastAPI, method: str) -> list[str]:
    """The path of every dashboard route that answers `method`, as the app serves it (FastAPI
    keeps included routers nested: their effective paths carry the prefixes)."""
    return [
        context.path
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and context.path
        and context.path.startswith(UI)
        and method in context.original_route.methods
    ]


class Forms(HTMLParser):
    """Every <form> of a page: its method, action and the names and values of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "form":
            self._open = True
            self.forms.append(
                {
                    "method": (attributes.get("method") or "get").lower(),
                    "action": attributes.get("action"),
                    "inputs": {},
                }
            )
        elif tag in ("input", "textarea", "select", "button") and self._open:
            name = attributes.get("name")
            if name:
                self.forms[-1]["inputs"][name] = attributes.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def parse(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser
