"""The markup of the dashboard: ready for a strict Content-Security-Policy (no inline script,
style or event handler anywhere), labelled for keyboard and screen-reader users, and served
with its static files."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account
from tests.dashboard.helpers import UI, get_page, parse, post_form, signed_in
from tether.dashboard import web

TEMPLATES = Path(web.__file__).parent / "templates"

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event-handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def inline_code(html: str) -> list[str]:
    return [what for pattern, what in INLINE if pattern.search(html)]


async def all_pages(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    key_page = (await get_page(client, account, f"{UI}/production/api-keys")).text
    key_id = re.search(r'data-key-id="(key_[0-9a-f]+)"', key_page)
    assert key_id
    created = await post_form(client, account, f"{UI}/production/api-keys", {"type": "secret"})
    generated = await post_form(client, account, f"{UI}/production/signing-keys/generate")
    integration = await post_form(
        client, account, f"{UI}/production/integrations", {"app": "stripe"}
    )
    pages = {
        "created": created.text,
        "generated": generated.text,
        "login": (await client.get(f"{UI}/login")).text,
        "error": (await client.post(f"{UI}/logout", headers=signed_in(account))).text,
        "not-found": (await client.get(f"{UI}/x", headers=signed_in(account))).text,
    }
    for path in (
        "api-keys",
        f"api-keys/{key_id.group(1)}/roll",
        "signing-keys",
        "settings",
        "integrations",
        "integrations/new?app=custom_oauth2",
        integration.headers["location"].removeprefix(f"{UI}/production/"),
        "users",
        "audit-log",
    ):
        pages[path] = (await get_page(client, account, f"{UI}/production/{path}")).text
    return pages


class TestNoInlineCode:
    @pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
    def test_templates(self, template: str) -> None:
        assert inline_code((TEMPLATES / template).read_text()) == []

    async def test_rendered_pages(self, client: httpx.AsyncClient, account: Account) -> None:
        for name, html in (await all_pages(client, account)).items():
            assert inline_code(html) == [], name


class TestAccessibleMarkup:
    async def test_every_page_has_one_heading_a_main_and_labelled_controls(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for name, html in (await all_pages(client, account)).items():
            assert '<html lang="en">' in html, name
            assert html.count("<h1") == 1, name
            assert "<main" in html, name
            tags = parse(html).tags
            labelled = {attrs.get("for") for tag, attrs in tags if tag == "label"}
            for tag, attrs in tags:
                if tag not in ("input", "select", "textarea"):
                    continue
                if attrs.get("type") in ("hidden", "radio"):  # radios sit inside their label
                    continue
                assert attrs.get("id") in labelled or attrs.get("aria-label"), (name, attrs)
            for tag, attrs in tags:
                if tag == "button":
                    assert attrs.get("type") in ("submit", "button"), (name, attrs)

    async def test_destructive_forms_ask_first(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        for name, html in (await all_pages(client, account)).items():
            for form in parse(html).forms:
                action = form["action"] or ""
                if re.search(r"/(revoke|roll|delete|disable)$", action):
                    assert any(
                        tag == "form"
                        and attrs.get("action") == action
                        and attrs.get("data-confirm")
                        for tag, attrs in parse(html).tags
                    ), (name, action)


class TestStaticFiles:
    @pytest.mark.parametrize(
        ("name", "content_type"),
        [("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")],
    )
    async def test_served_without_a_session(
        self, client: httpx.AsyncClient, name: str, content_type: str
    ) -> None:
        html = (await client.get(f"{UI}/login")).text
        url = re.search(rf'"({re.escape(web.STATIC_PATH)}/{re.escape(name)}\?v=[0-9a-f]+)"', html)
        assert url
        response = await client.get(url.group(1))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(content_type)
