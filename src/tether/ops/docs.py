"""/docs (Swagger UI) and /redoc under a Content-Security-Policy.

FastAPI's pages load their scripts and styles from cdn.jsdelivr.net and their favicon from
fastapi.tiangolo.com; the policy allows exactly those, plus the page's inline script by its
SHA-256 (computed from the page as rendered, so it follows FastAPI upgrades and root paths).
Redoc styles itself with injected <style> elements and runs a web worker from a blob, so its
policy needs style-src 'unsafe-inline' and worker-src blob:; nothing on either page can run
script from anywhere else. A machine without internet access shows empty pages: the
OpenAPI document itself is at /openapi.json."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
FAVICON = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)


def _hashes(pattern: re.Pattern[bytes], body: bytes) -> str:
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(match).digest()).decode()}'"
        for match in pattern.findall(body)
    )


def swagger_csp(body: bytes) -> str:
    return (
        f"default-src 'none'; script-src {CDN} {_hashes(_INLINE_SCRIPT, body)}; "
        f"style-src {CDN} {_hashes(_INLINE_STYLE, body)}; img-src 'self' data: {FAVICON}; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def redoc_csp(body: bytes) -> str:
    return (
        f"default-src 'none'; script-src {CDN} {_hashes(_INLINE_SCRIPT, body)}; "
        "style-src 'unsafe-inline' https://fonts.googleapis.com; "
        f"font-src https://fonts.gstatic.com; img-src 'self' data: {FAVICON}; "
        "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


def _with_policy(page: HTMLResponse, policy: str) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = policy
    return page


def install_docs(app: FastAPI) -> None:
    """The docs pages; create the app with docs_url=None and redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=request.scope.get("root_path", "") + openapi_url,
            title=f"{app.title} - Swagger UI",
        )
        return _with_policy(page, swagger_csp(bytes(page.body)))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=request.scope.get("root_path", "") + openapi_url,
            title=f"{app.title} - ReDoc",
        )
        return _with_policy(page, redoc_csp(bytes(page.body)))
