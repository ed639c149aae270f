"""The SDK's static files: embedded.js, the hosted modal page, and the modal's script and
stylesheet, read once from `static/` beside this module.

The modal keeps its script and styles in separate files (no inline script or style), so that
it runs under a Content-Security-Policy without 'unsafe-inline'. Its page names them with a
content hash (`?v=`), so they are cached for a year and a new release is fetched at once;
embedded.js has a fixed URL that customers paste into their pages, so it is cached briefly
and revalidated by ETag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from tether.errors import NotFound
from tether.routing import TetherRouter

router = TetherRouter(prefix="/sdk", tags=["sdk"])

JAVASCRIPT = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
HTML = "text/html; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
SCRIPT_CACHE = "public, max-age=300, stale-while-revalidate=3600"

# What the modal needs and nothing more. frame-ancestors is left out on purpose: the modal is
# framed by the customers' pages, and which ones is known only once a token names the
# environment (the modal checks that origin itself before it shows anything).
MODAL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')


def _asset(name: str, media_type: str, body: bytes | None = None) -> Asset:
    if body is None:
        body = files(__package__ or "tether.sdk").joinpath("static", name).read_bytes()
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:16]}"')


@cache
def assets() -> dict[str, Asset]:
    found = {
        "embedded.js": _asset("embedded.js", JAVASCRIPT),
        "modal.js": _asset("modal.js", JAVASCRIPT),
        "modal.css": _asset("modal.css", CSS),
    }
    page = files(__package__ or "tether.sdk").joinpath("static", "modal.html").read_text("utf-8")
    for name in ("modal.js", "modal.css"):
        page = page.replace(f"{{{{{name}}}}}", f"assets/{name}?v={found[name].version}")
    found["modal.html"] = _asset("modal.html", HTML, page.encode())
    return found


def _serve(request: Request, asset: Asset, cache_control: str, **headers: str) -> Response:
    all_headers = {
        "Cache-Control": cache_control,
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
        **headers,
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=all_headers)
    return Response(asset.body, media_type=asset.media_type, headers=all_headers)


SCRIPT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {JAVASCRIPT: {}}, "description": "The browser SDK."}
}


@router.get("/embedded.js", response_class=Response, responses=SCRIPT_RESPONSE)
async def embedded_js(request: Request) -> Response:
    """The browser SDK: `window.Tether` (alias `window.Alloy`) with `setToken`, `install`,
    `authenticate` and `open`. Load it with a plain `<script src>` tag."""
    return _serve(
        request,
        assets()["embedded.js"],
        SCRIPT_CACHE,
        # Loadable by pages that require CORP of what they embed (COEP).
        **{"Cross-Origin-Resource-Policy": "cross-origin"},
    )


@router.get(
    "/modal",
    response_class=Response,
    responses={200: {"content": {HTML: {}}, "description": "The hosted modal page."}},
)
async def modal(request: Request) -> Response:
    """The hosted modal that embedded.js opens in an iframe. It receives the token by
    postMessage, never in its URL."""
    return _serve(
        request,
        assets()["modal.html"],
        "no-cache",
        **{"Content-Security-Policy": MODAL_CSP, "Referrer-Policy": "no-referrer"},
    )


@router.get("/assets/{name}", response_class=Response, include_in_schema=False)
async def asset(
    request: Request, name: str, v: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    found = assets().get(name)
    if found is None or name == "modal.html" or name == "embedded.js":
        raise NotFound("No such asset.")
    # Only the current version is immutable: an old page asking for an old hash gets the
    # current file, revalidated.
    return _serve(request, found, IMMUTABLE if v == found.version else "no-cache")
