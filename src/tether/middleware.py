"""One pure ASGI middleware for what every request needs: a request id, the API version,
the body size limit, security headers, the rate limit of admin login attempts, and a problem
document instead of a traceback for anything unexpected. A single layer keeps the per-request
cost to a few dict operations."""

from __future__ import annotations

import re
from collections.abc import Callable
from time import perf_counter

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import (
    InvalidApiVersion,
    PayloadTooLarge,
    RateLimited,
    TetherError,
    problem,
    unexpected_error,
)
from tether.ops.logs import bind_request_id
from tether.ratelimit.service import RateLimits
from tether.security.headers import SecurityHeaders
from tether.security.ids import random_hex

DEFAULT_API_VERSION = "2024-03"

_VALID_VERSION = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# A first path segment that is meant as a version (digits, a dash, more) but may be malformed.
_VERSION_ATTEMPT = re.compile(r"/(\d{2,4}-[0-9A-Za-z]{1,4})(/.*)?")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Where an admin logs in: the JSON API and the dashboard's form. Attempts are counted here,
# before the body is read, so a flood never reaches the password hash.
LOGIN_PATHS = frozenset({"/admin/login", "/admin/ui/login"})

# Told of every finished request: its scope, its status and when it arrived (perf_counter).
Observer = Callable[[Scope, int, float], None]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class TetherMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, observe: Observer | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.observe = observe
        self._security: SecurityHeaders | None = None

    def _security_headers(self, scope: Scope) -> SecurityHeaders:
        if self._security is None:
            self._security = SecurityHeaders(scope["app"].state.settings.public_url)
        return self._security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        observe = self.observe
        if scope["type"] != "http" or observe is None:
            await self._serve(scope, receive, send)
            return
        arrived = perf_counter()
        status = 0

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._serve(scope, receive, send_observed)
        finally:
            observe(scope, status, arrived)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming_id = _header(scope, b"x-request-id")
        request_id = (
            incoming_id if incoming_id and _REQUEST_ID.fullmatch(incoming_id) else random_hex(12)
        )
        scope.setdefault("state", {})["request_id"] = request_id
        bind_request_id(request_id)
        version = DEFAULT_API_VERSION
        started = False
        security = self._security_headers(scope)

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *security.add(scope["path"], message.get("headers", ())),
                    (b"x-request-id", request_id.encode()),
                    (b"x-api-version", version.encode()),
                ]
            await send(message)

        try:
            version = self._version(scope)
            length = _header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                raise PayloadTooLarge()
        except TetherError as exc:
            response = problem(exc.status, exc.code, exc.detail, request_id, headers=exc.headers)
            await response(scope, receive, send_with_headers)
            return

        if scope["method"] == "POST" and scope["path"] in LOGIN_PATHS:
            limits: RateLimits = scope["app"].state.rate_limits
            refused = await limits.login_attempt(scope)
            if refused is not None:
                await _login_refused(scope, refused, request_id)(scope, receive, send_with_headers)
                return

        try:
            await self.app(scope, self._limited(receive), send_with_headers)
        except Exception as exc:
            if started:
                raise
            response = unexpected_error(exc, scope["path"], request_id)
            await response(scope, receive, send_with_headers)

    @staticmethod
    def _version(scope: Scope) -> str:
        """Strip a dated `/YYYY-MM` prefix from the path; the header may name it instead."""
        from_path = None
        match = _VERSION_ATTEMPT.fullmatch(scope["path"])
        if match:
            from_path = match.group(1)
            if not _VALID_VERSION.fullmatch(from_path):
                raise InvalidApiVersion(f"`{from_path}` is not an API version like 2024-03.")
            rest = match.group(2) or "/"
            scope["path"] = rest
            scope["raw_path"] = rest.encode()
        from_header = _header(scope, b"x-api-version")
        if from_header is not None:
            if not _VALID_VERSION.fullmatch(from_header):
                raise InvalidApiVersion("The x-api-version header must look like 2024-03.")
            if from_path is not None and from_header != from_path:
                raise InvalidApiVersion("The path and the x-api-version header name two versions.")
        return from_path or from_header or DEFAULT_API_VERSION

    def _limited(self, receive: Receive) -> Receive:
        remaining = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal remaining
            message = await receive()
            if message["type"] == "http.request":
                remaining -= len(message.get("body", b""))
                if remaining < 0:
                    raise PayloadTooLarge()
            return message

        return limited_receive


def _login_refused(scope: Scope, refused: RateLimited, request_id: str) -> Response:
    if scope["path"].startswith("/admin/ui/"):  # a person at the dashboard's form
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Too many attempts</title></head><body><h1>Too many login attempts</h1>"
            "<p>Wait a minute, then try again.</p></body></html>"
        )
        return HTMLResponse(page, status_code=429, headers=refused.headers)
    return problem(429, refused.code, refused.detail, request_id, headers=refused.headers)
