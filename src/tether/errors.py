"""Domain errors with stable codes, and the one renderer that turns them into problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

log = logging.getLogger("tether.errors")

PROBLEM_JSON = "application/problem+json"


class TetherError(Exception):
    status = 500
    code = "internal_error"
    detail = "Something went wrong on our side."
    headers: Mapping[str, str] | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if detail is not None:
            self.detail = detail
        if headers is not None:
            self.headers = headers
        self.extra = extra
        super().__init__(self.detail)


class InvalidApiVersion(TetherError):
    status, code = 400, "invalid_api_version"
    detail = "The API version must look like 2024-03."


class MissingCredentials(TetherError):
    status, code = 401, "missing_credentials"
    detail = "Send a key as `Authorization: Bearer <key>` or `x-api-key: <key>`."
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidApiKey(TetherError):
    status, code = 401, "invalid_api_key"
    detail = "The API key is not valid."


class ApiKeyRevoked(TetherError):
    status, code = 401, "api_key_revoked"
    detail = "The API key has been revoked."


class ApiKeyExpired(TetherError):
    status, code = 401, "api_key_expired"
    detail = "The API key has expired."


class InvalidCredentials(TetherError):
    status, code = 401, "invalid_credentials"
    detail = "The email or password is not correct."


class InvalidToken(TetherError):
    status, code = 401, "invalid_token"
    detail = "The token is not valid."


class TokenExpired(TetherError):
    status, code = 401, "token_expired"
    detail = "The token has expired."


class TenantTokenRequired(TetherError):
    status, code = 401, "tenant_token_required"
    detail = "A publishable key needs a tenant token (`?token=` or `x-tenant-token`) here."


class InsufficientScope(TetherError):
    status, code = 403, "insufficient_scope"
    detail = "This credential cannot be used on this route."


class NotFound(TetherError):
    status, code = 404, "not_found"
    detail = "No such resource."


class Conflict(TetherError):
    status, code = 409, "conflict"
    detail = "The request conflicts with the current state."


class UsernameTaken(Conflict):
    code = "username_taken"
    detail = "A user with this username already exists."


class AlreadyInstalled(Conflict):
    code = "already_installed"
    detail = "This integration is already installed for the user."


class PayloadTooLarge(TetherError, HTTPException):
    # Also a Starlette HTTPException: FastAPI re-raises those untouched when they surface
    # while it reads the body, instead of wrapping them into a 400.
    status, code = 413, "payload_too_large"
    detail = "The request body is too large."

    def __init__(self, detail: str | None = None) -> None:
        TetherError.__init__(self, detail)
        HTTPException.__init__(self, 413, self.detail)


class ValidationFailed(TetherError):
    status, code = 422, "validation_error"
    detail = "The request is not valid."


class RateLimited(TetherError):
    status, code = 429, "rate_limited"
    detail = "Too many requests; retry later."


class DatabaseUnavailable(TetherError):
    status, code = 503, "database_unavailable"
    detail = "The database cannot be reached; retry later."
    headers = {"Retry-After": "5"}


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    requestId: str | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem documents a route can answer. Every route can
    answer 503 database_unavailable, and every route that takes a credential (401) can
    answer 429 rate_limited: those two are added here."""
    implied = {503} | ({429} if 401 in statuses else set())
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in sorted(set(statuses) | implied)
    }


def problem(
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": request_id,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _request_id(request: Request) -> str | None:
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    return request_id


async def _tether_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TetherError)
    if exc.status == 401:
        # A refused credential: one more against the client address's budget of refusals.
        limits = getattr(request.app.state, "rate_limits", None)
        if limits is not None:
            await limits.credentials_refused(request.scope)
    return problem(
        exc.status, exc.code, exc.detail, _request_id(request), headers=exc.headers, **exc.extra
    )


_SECURED_ROUTES: dict[int, bool] = {}


def _has_security(dependant: Any) -> bool:
    return any(
        isinstance(dep.call, SecurityBase) or _has_security(dep) for dep in dependant.dependencies
    )


async def _missing_credentials(request: Request) -> JSONResponse | None:
    """FastAPI reads and parses a body before it runs the route's dependencies, so a request
    with no credential at all and a body that is not JSON would be told 422 (or 400) instead
    of 401. A route that needs a credential answers 401 missing_credentials first."""
    if "authorization" in request.headers or "x-api-key" in request.headers:
        return None
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    secured = _SECURED_ROUTES.get(id(route))
    if secured is None:
        secured = _SECURED_ROUTES.setdefault(id(route), _has_security(dependant))
    if not secured:
        return None
    return await _tether_error(request, MissingCredentials())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if (refused := await _missing_credentials(request)) is not None:
        return refused
    errors = [
        # `input` and `ctx` may echo what was sent, which can be a secret: never return them.
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem(
        422, "validation_error", "The request is not valid.", _request_id(request), errors=errors
    )


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and (refused := await _missing_credentials(request)) is not None:
        return refused  # "There was an error parsing the body"
    code = _HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower())
    detail = "No such resource." if exc.status_code == 404 else str(exc.detail)
    return problem(
        exc.status_code, code.replace(" ", "_"), detail, _request_id(request), headers=exc.headers
    )


# SQLSTATE classes that mean "the server is gone, going, or full": 08 connection exception,
# 53 insufficient resources (too many connections), 57 operator intervention (57P01 admin
# shutdown, 57P02 crash shutdown, 57P03 "the database system is starting up").
_OUTAGE_SQLSTATES = ("08", "53", "57")


def _sqlstate(exc: BaseException | None) -> str | None:
    while exc is not None:
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(state, str):
            return state
        exc = exc.__cause__
    return None


def is_database_outage(exc: BaseException) -> bool:
    """What PostgreSQL (through asyncpg) and SQLite actually raise while the database is down,
    restarting or out of connections, as observed in tests/test_faults.py:

    - connection refused: a bare ConnectionRefusedError (asyncpg's connect, not wrapped);
    - a restart in the middle of a query: DBAPIError with `connection_invalidated`
      (asyncpg's ConnectionDoesNotExistError, caused by AdminShutdownError, 57P01);
    - connecting while the server shuts down or starts up: DBAPIError, not invalidated,
      caused by CannotConnectNowError (57P03);
    - no pooled connection within `db_pool_timeout`: sqlalchemy.exc.TimeoutError.
    """
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc.orig)
        return state is not None and state.startswith(_OUTAGE_SQLSTATES)
    state = _sqlstate(exc)
    if state is not None:  # a driver error that SQLAlchemy did not wrap
        return state.startswith(_OUTAGE_SQLSTATES)
    # What a driver raises when the server is gone before SQLAlchemy can wrap it: refused,
    # reset, unreachable ("Multiple exceptions: ..." for a name with several addresses is a
    # bare OSError), or a name that does not resolve.
    return isinstance(exc, (OSError, TimeoutError))


def unexpected_error(exc: BaseException, path: str, request_id: str | None) -> JSONResponse:
    """The answer to anything no handler expected: a 503 for a database outage, else a 500."""
    if is_database_outage(exc):
        log.warning("database unavailable: %s on %s", type(exc).__name__, path)
        err: TetherError = DatabaseUnavailable()
    else:
        # The type only: driver messages can quote SQL parameters, and those can be secrets.
        log.error("unhandled %s on %s", type(exc).__name__, path)
        err = TetherError()
    return problem(err.status, err.code, err.detail, request_id, headers=err.headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_error(exc, request.url.path, _request_id(request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TetherError, _tether_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Anything else is caught by TetherMiddleware, outside Starlette's ServerErrorMiddleware,
    # which would log a traceback and re-raise.
    for exc_type in (SQLAlchemyError, OSError, TimeoutError):
        app.add_exception_handler(exc_type, _database_error)
