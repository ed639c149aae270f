"""CORS for the SDK's API routes, from each environment's `allowedOrigins` only.

A preflight carries no credential, so it cannot name an environment: it is answered yes when
some environment lists the Origin, and 403 otherwise. The request that follows carries the
user token, and its answer gets `Access-Control-Allow-Origin` only when the token's own
environment lists the Origin (`tether.sdk.auth.check_origin` decides; a foreign origin is
refused before the route runs). An answer that no verified token ties to an environment (a
401 for a missing, invalid or expired token) falls back to the preflight's rule, so that a
page that may use the SDK can read why it was refused; such answers hold no data.
No cookie is ever involved: `Access-Control-Allow-Credentials` is never sent and the allowed
origin is always echoed exactly, never `*`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import is_database_outage, problem
from tether.sdk.auth import ORIGIN_DECISION
from tether.sdk.service import OriginNotAllowed, allowed_anywhere

# The SDK's API; its static files (embedded.js, the modal and its assets) need no CORS.
_STATIC = ("/sdk/embedded.js", "/sdk/modal", "/sdk/assets/")
ALLOW_METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "authorization, content-type, x-api-version, x-request-id"
EXPOSE_HEADERS = "x-request-id, x-api-version, retry-after"
PREFLIGHT_MAX_AGE = "600"


def is_sdk_api(path: str) -> bool:
    return path.startswith("/sdk/") and not path.startswith(_STATIC)


class SdkCorsMiddleware:
    def __init__(self, app: ASGIApp, *, readonly: AsyncEngine) -> None:
        self.app = app
        self.readonly = readonly  # autocommit: a read needs no transaction

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_sdk_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if (
            scope["method"] == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in headers
        ):
            await self._preflight(scope, receive, send, origin)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if origin is not None and await self._allowed(scope, origin):
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _allowed(self, scope: Scope, origin: str) -> bool:
        decision = scope.get("state", {}).get(ORIGIN_DECISION)
        if decision is not None:
            return bool(decision)
        try:
            return await self._allowed_anywhere(origin)
        except Exception as exc:
            # Asked while the answer is already being sent: with the database away, that
            # answer (a 503 or a 401) goes out without CORS headers rather than becoming a 500.
            if is_database_outage(exc):
                return False
            raise

    async def _allowed_anywhere(self, origin: str) -> bool:
        async with self.readonly.connect() as connection:
            return await allowed_anywhere(connection, origin)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, origin: str) -> None:
        vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        request_id = scope.get("state", {}).get("request_id")
        if not await self._allowed_anywhere(origin):
            error = OriginNotAllowed()
            response = problem(error.status, error.code, error.detail, request_id)
            response.headers["Vary"] = vary
            await response(scope, receive, send)
            return
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            "Vary": vary,
        }
        await Response(status_code=204, headers=headers)(scope, receive, send)
