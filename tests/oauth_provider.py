"""A small but real OAuth 2.0 authorization server for tests, run as its own process.

It implements the authorization code grant with refresh tokens (RFC 6749), PKCE with S256 only
(RFC 7636), and a JSON control API under `/_control` with which a test scripts its behaviour:
clients, consent mode, token lifetime, injected failures and hangs, revocation, and what it
received. State lives in memory; `POST /_control/reset` forgets everything.

Run it by hand::

    python tests/oauth_provider.py --port 8765

or from a test::

    with run_provider(tmp_path) as provider:
        client = provider.register_client(redirect_uris=["http://testserver/oauth/callback"])
        provider.fail_next(status=503, error="temporarily_unavailable")

The file imports nothing from the project so that it runs as a plain script.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import itertools
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

Mode = Literal["auto", "deny", "interactive"]
BodyT = TypeVar("BodyT", bound=BaseModel)
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

# RFC 7636 section 4.1 and 4.2: a verifier is 43..128 unreserved characters; an S256
# challenge is the unpadded base64url of a SHA-256 digest, always 43 characters.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


# --- control API bodies -----------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _confidential_methods() -> list[AuthMethod]:
    return ["client_secret_basic", "client_secret_post"]


class ClientIn(_Body):
    client_id: str = Field(default_factory=lambda: f"client-{secrets.token_hex(6)}", min_length=1)
    # null registers a public client, which authenticates with client_id alone ("none").
    client_secret: str | None = Field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = Field(min_length=1)
    require_pkce: bool = True
    auth_methods: list[AuthMethod] = Field(default_factory=_confidential_methods, min_length=1)

    @model_validator(mode="after")
    def _public_clients_use_none(self) -> ClientIn:
        if self.client_secret is None:
            self.auth_methods = ["none"]
        elif "none" in self.auth_methods:
            raise ValueError('"none" is only for public clients (client_secret: null)')
        return self


class Settings(_Body):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    mode: Mode = "auto"
    expires_in: int = Field(default=3600, ge=0)
    code_ttl: float = Field(default=60, gt=0)
    rotate_refresh_tokens: bool = True
    issue_refresh_tokens: bool = True
    subject: str = "user-1"


class FaultIn(_Body):
    count: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=200, le=599)
    error: str | None = None
    error_description: str | None = None
    body: str | None = None
    content_type: str = "text/html; charset=utf-8"
    hang_seconds: float = Field(default=0, ge=0, le=600)
    grant_type: str | None = None

    @model_validator(mode="after")
    def _does_something(self) -> FaultIn:
        if self.status is None and (self.error is not None or self.body is not None):
            self.status = 400
        if self.status is None and self.hang_seconds == 0:
            raise ValueError("a fault needs a status (fail) or hang_seconds (hang), or both")
        return self


class RevokeIn(_Body):
    client_id: str | None = None


# --- server state -----------------------------------------------------------------------------


@dataclass
class AuthRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    subject: str


@dataclass
class Grant:
    """An authorization code and what it was issued for."""

    request: AuthRequest
    expires_at: float
    used: bool = False
    issued: list[str] = field(default_factory=list)


@dataclass
class Token:
    client_id: str
    scope: str
    subject: str
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class Fault:
    spec: FaultIn
    remaining: int

    def matches(self, grant_type: str | None) -> bool:
        return self.spec.grant_type is None or self.spec.grant_type == grant_type


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={**NO_STORE, **self.headers})


def invalid_client(description: str) -> OAuthError:
    # RFC 6749 section 5.2: 401 with a challenge for the scheme the client may use.
    return OAuthError(
        "invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="oauth-provider"'}
    )


DEFAULT_ERRORS = {400: "invalid_request", 401: "invalid_client", 503: "temporarily_unavailable"}


class OAuthProvider:
    def __init__(self) -> None:
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/authorize", self.authorize, methods=["GET"]),
                Route("/authorize/decision", self.decision, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo, methods=["GET"]),
                Route("/_control/health", self.health, methods=["GET"]),
                Route("/_control/reset", self.control_reset, methods=["POST"]),
                Route("/_control/clients", self.control_clients, methods=["GET", "POST"]),
                Route("/_control/settings", self.control_settings, methods=["GET", "PATCH"]),
                Route("/_control/faults", self.control_faults, methods=["GET", "POST", "DELETE"]),
                Route("/_control/revoke-refresh-tokens", self.control_revoke, methods=["POST"]),
                Route("/_control/stats", self.control_stats, methods=["GET"]),
                Route("/_control/token-requests", self.control_token_log, methods=["GET"]),
                Route("/_control/authorize-requests", self.control_authorize_log, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        self.settings = Settings()
        self.clients: dict[str, ClientIn] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.pending: dict[str, AuthRequest] = {}
        self.faults: list[Fault] = []
        self.token_log: list[dict[str, Any]] = []
        self.authorize_log: list[dict[str, Any]] = []
        self.token_counts: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.sequence = itertools.count(1)

    # --- authorization endpoint ---------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        self.counts["authorize_requests"] += 1
        pairs = list(request.query_params.multi_items())
        params = {key: value for key, value in pairs if value != ""}
        entry: dict[str, Any] = {
            "id": next(self.sequence),
            "at": time.time(),
            "params": dict(pairs),
            "outcome": None,
        }
        self.authorize_log.append(entry)

        # RFC 6749 section 4.1.2.1: with a bad client or redirect URI, never redirect.
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri")
        if client is None:
            entry["outcome"] = "unknown_client"
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown client_id"}, 400
            )
        if redirect_uri is None or redirect_uri not in client.redirect_uris:
            entry["outcome"] = "bad_redirect_uri"
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unregistered redirect_uri"},
                400,
            )

        state = params.get("state")

        def refuse(error: str, description: str) -> Response:
            entry["outcome"] = error
            return self.redirect(
                redirect_uri, {"error": error, "error_description": description, "state": state}
            )

        if len(pairs) != len({key for key, _ in pairs}):
            return refuse("invalid_request", "a parameter was sent more than once")
        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                return refuse("invalid_request", "code_challenge_method without code_challenge")
            if client.require_pkce:
                return refuse("invalid_request", "PKCE (code_challenge, S256) is required")
        else:
            if method != "S256":
                return refuse("invalid_request", "code_challenge_method must be S256")
            if not S256_CHALLENGE.fullmatch(challenge):
                return refuse("invalid_request", "code_challenge is not an S256 challenge")

        auth_request = AuthRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=params.get("scope", ""),
            state=state,
            code_challenge=challenge,
            subject=params.get("login_hint", self.settings.subject),
        )
        if self.settings.mode == "deny":
            return refuse("access_denied", "the user denied the request")
        if self.settings.mode == "interactive":
            request_id = secrets.token_urlsafe(16)
            self.pending[request_id] = auth_request
            entry["outcome"] = "consent_page"
            return HTMLResponse(consent_page(request_id, auth_request))
        entry["outcome"] = "code"
        return self.redirect(redirect_uri, {"code": self.issue_code(auth_request), "state": state})

    async def decision(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8")))
        auth_request = self.pending.pop(form.get("request_id", ""), None)
        if auth_request is None:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown request_id"}, 400
            )
        if form.get("decision") == "approve":
            params = {"code": self.issue_code(auth_request), "state": auth_request.state}
        else:
            params = {
                "error": "access_denied",
                "error_description": "the user denied the request",
                "state": auth_request.state,
            }
        # 303: the browser follows a POST's redirect with a GET.
        return self.redirect(auth_request.redirect_uri, params, status=303)

    def issue_code(self, auth_request: AuthRequest) -> str:
        code = secrets.token_urlsafe(32)
        self.grants[code] = Grant(auth_request, time.time() + self.settings.code_ttl)
        return code

    @staticmethod
    def redirect(uri: str, params: Mapping[str, str | None], status: int = 302) -> Response:
        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [(key, value) for key, value in params.items() if value is not None]
        return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status)

    # --- token endpoint -----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        # RFC 6749 section 3.1: a parameter without a value is treated as omitted.
        params = {key: value for key, value in pairs if value != ""}
        grant_type = params.get("grant_type")
        entry: dict[str, Any] = {
            "id": next(self.sequence),
            "at": time.time(),
            "grant_type": grant_type,
            "client_id": params.get("client_id"),
            "client_auth": None,
            "redirect_uri": params.get("redirect_uri"),
            "scope": params.get("scope"),
            "has_code_verifier": "code_verifier" in params,
            "param_names": sorted({key for key, _ in pairs}),
            "fault": None,
            "status": None,
            "error": None,
        }
        self.token_log.append(entry)
        self.token_counts[grant_type or "missing"] += 1

        fault = self.take_fault(grant_type)
        if fault is not None:
            kinds = ["hang"] * bool(fault.hang_seconds) + ["fail"] * (fault.status is not None)
            entry["fault"] = "+".join(kinds)
            if fault.hang_seconds:
                await asyncio.sleep(fault.hang_seconds)
            if fault.status is not None:
                response = fault_response(fault)
                entry["status"], entry["error"] = response.status_code, fault.error
                return response
            # A hang without a status is a slow server: the request is then processed as usual.

        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
            if len(pairs) != len({key for key, _ in pairs}):
                raise OAuthError("invalid_request", "a parameter was sent more than once")
            client, method = self.authenticate(request, params)
            entry["client_id"], entry["client_auth"] = client.client_id, method
            if grant_type is None:
                raise OAuthError("invalid_request", "grant_type is required")
            if grant_type == "authorization_code":
                result = self.exchange_code(client, params)
            elif grant_type == "refresh_token":
                result = self.refresh(client, params)
            else:
                raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
        except OAuthError as exc:
            entry["status"], entry["error"] = exc.status, exc.error
            return exc.response()
        entry["status"] = 200
        self.counts["tokens_issued"] += 1
        return JSONResponse(result, headers=NO_STORE)

    def take_fault(self, grant_type: str | None) -> FaultIn | None:
        for fault in self.faults:
            if fault.matches(grant_type):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                self.counts["faults_applied"] += 1
                return fault.spec
        return None

    def authenticate(self, request: Request, params: dict[str, str]) -> tuple[ClientIn, str]:
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            if "client_secret" in params:
                raise OAuthError("invalid_request", "use one client authentication method")
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
                raw_id, raw_secret = decoded.split(":", 1)
            except ValueError:
                raise invalid_client("malformed Basic credentials") from None
            # RFC 6749 section 2.3.1: both halves are form-urlencoded before encoding.
            client_id = unquote_plus(raw_id)
            secret: str | None = unquote_plus(raw_secret)
            if params.get("client_id", client_id) != client_id:
                raise invalid_client("client_id in the body differs from the Basic credentials")
            method: AuthMethod = "client_secret_basic"
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret")
            method = "none" if secret is None else "client_secret_post"

        client = self.clients.get(client_id)
        if client is None:
            raise invalid_client("unknown client")
        if method not in client.auth_methods:
            raise invalid_client(f"this client does not authenticate with {method}")
        if client.client_secret is not None and (
            secret is None or not hmac.compare_digest(secret, client.client_secret)
        ):
            raise invalid_client("wrong client secret")
        return client, method

    def exchange_code(self, client: ClientIn, params: dict[str, str]) -> dict[str, Any]:
        code = params.get("code")
        if code is None:
            raise OAuthError("invalid_request", "code is required")
        grant = self.grants.get(code)
        if grant is None or grant.request.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if grant.used:
            # RFC 6749 section 4.1.2: a replayed code revokes what the code produced.
            for token in grant.issued:
                for store in (self.access_tokens, self.refresh_tokens):
                    if token in store:
                        store[token].revoked = True
            raise OAuthError("invalid_grant", "authorization code already used")
        # Single use whatever the outcome, so a wrong verifier cannot be retried.
        grant.used = True
        if time.time() > grant.expires_at:
            raise OAuthError("invalid_grant", "authorization code expired")
        if params.get("redirect_uri") != grant.request.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        verifier = params.get("code_verifier")
        if grant.request.code_challenge is not None:
            if verifier is None:
                raise OAuthError("invalid_grant", "code_verifier is required")
            if not VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
                s256(verifier), grant.request.code_challenge
            ):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        elif verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier without a code_challenge")
        result = self.issue_tokens(client, grant.request.scope, grant.request.subject)
        grant.issued += [result["access_token"], result.get("refresh_token", "")]
        return result

    def refresh(self, client: ClientIn, params: dict[str, str]) -> dict[str, Any]:
        presented = params.get("refresh_token")
        if presented is None:
            raise OAuthError("invalid_request", "refresh_token is required")
        token = self.refresh_tokens.get(presented)
        if token is None or token.revoked or token.client_id != client.client_id:
            raise OAuthError("invalid_grant", "refresh token is invalid, expired or revoked")
        scope = token.scope
        if "scope" in params:
            if not set(params["scope"].split()) <= set(token.scope.split()):
                raise OAuthError("invalid_scope", "scope exceeds what was originally granted")
            scope = params["scope"]
        if self.settings.rotate_refresh_tokens:
            token.revoked = True
            return self.issue_tokens(client, scope, token.subject, grant_scope=token.scope)
        result = self.issue_tokens(client, scope, token.subject, refresh=False)
        result["refresh_token"] = presented
        return result

    def issue_tokens(
        self,
        client: ClientIn,
        scope: str,
        subject: str,
        *,
        refresh: bool = True,
        grant_scope: str | None = None,
    ) -> dict[str, Any]:
        expires_in = self.settings.expires_in
        access = f"at_{secrets.token_urlsafe(24)}"
        self.access_tokens[access] = Token(
            client.client_id, scope, subject, expires_at=time.time() + expires_in
        )
        result: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }
        if refresh and self.settings.issue_refresh_tokens:
            new_refresh = f"rt_{secrets.token_urlsafe(24)}"
            # A narrowed refresh keeps the original grant, so a later refresh may widen again.
            self.refresh_tokens[new_refresh] = Token(
                client.client_id, grant_scope or scope, subject
            )
            result["refresh_token"] = new_refresh
        return result

    # --- resource endpoint --------------------------------------------------------------------

    async def userinfo(self, request: Request) -> Response:
        self.counts["userinfo_requests"] += 1
        header = request.headers.get("authorization", "")
        presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
        token = self.access_tokens.get(presented)
        if (
            token is None
            or token.revoked
            or (token.expires_at is not None and time.time() >= token.expires_at)
        ):
            return JSONResponse(
                {"error": "invalid_token", "error_description": "missing, expired or revoked"},
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(
            {"sub": token.subject, "client_id": token.client_id, "scope": token.scope}
        )

    # --- control API --------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def control_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def control_clients(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"data": [c.model_dump() for c in self.clients.values()]})
        client = await parse(request, ClientIn)
        if isinstance(client, Response):
            return client
        self.clients[client.client_id] = client
        return JSONResponse(client.model_dump(), 201)

    async def control_settings(self, request: Request) -> Response:
        if request.method == "PATCH":
            raw = await request.json()
            if not isinstance(raw, dict):
                return JSONResponse({"error": "expected a JSON object"}, 422)
            try:
                self.settings = Settings.model_validate({**self.settings.model_dump(), **raw})
            except ValidationError as exc:
                return validation_error(exc)
        return JSONResponse(self.settings.model_dump())

    async def control_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            cleared, self.faults = len(self.faults), []
            return JSONResponse({"cleared": cleared})
        if request.method == "POST":
            spec = await parse(request, FaultIn)
            if isinstance(spec, Response):
                return spec
            self.faults.append(Fault(spec, spec.count))
        queued = [{**f.spec.model_dump(), "remaining": f.remaining} for f in self.faults]
        return JSONResponse({"data": queued}, 201 if request.method == "POST" else 200)

    async def control_revoke(self, request: Request) -> Response:
        body = await parse(request, RevokeIn)
        if isinstance(body, Response):
            return body
        revoked = 0
        for token in self.refresh_tokens.values():
            if not token.revoked and body.client_id in (None, token.client_id):
                token.revoked = True
                revoked += 1
        return JSONResponse({"revoked": revoked})

    async def control_stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "token_requests": dict(self.token_counts),
                "token_requests_total": sum(self.token_counts.values()),
                "authorize_requests": self.counts["authorize_requests"],
                "userinfo_requests": self.counts["userinfo_requests"],
                "tokens_issued": self.counts["tokens_issued"],
                "faults_applied": self.counts["faults_applied"],
            }
        )

    async def control_token_log(self, request: Request) -> Response:
        return JSONResponse({"data": self.token_log})

    async def control_authorize_log(self, request: Request) -> Response:
        return JSONResponse({"data": self.authorize_log})


async def parse(request: Request, model: type[BodyT]) -> BodyT | Response:
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        return validation_error(exc)


def validation_error(exc: ValidationError) -> Response:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse({"error": "validation_error", "errors": errors}, 422)


def fault_response(fault: FaultIn) -> Response:
    status = fault.status or 500
    if fault.body is not None:
        return Response(fault.body, status, media_type=fault.content_type)
    error = fault.error or DEFAULT_ERRORS.get(status, "server_error")
    body = {"error": error, "error_description": fault.error_description or "injected failure"}
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth-provider"'
    return JSONResponse(body, status, headers=headers)


def consent_page(request_id: str, auth_request: AuthRequest) -> str:
    esc = html.escape
    scope = esc(auth_request.scope) or "(none)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {esc(auth_request.client_id)}</title>
</head><body>
<h1>Authorize {esc(auth_request.client_id)}</h1>
<p>Signed in as <strong id="subject">{esc(auth_request.subject)}</strong>.
Requested scope: <code id="scope">{scope}</code></p>
<form method="post" action="/authorize/decision">
<input type="hidden" name="request_id" value="{esc(request_id)}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>
"""


def create_app() -> Starlette:
    return OAuthProvider().app


# --- running it from a test -------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]


@dataclass
class Provider:
    """A running provider process and a synchronous client for its control API."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10)

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/token"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.url}/userinfo"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"/_control/{path}", json=body)
        if response.status_code >= 400:
            raise AssertionError(f"control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def register_client(
        self,
        *,
        redirect_uris: list[str],
        client_id: str | None = None,
        public: bool = False,
        require_pkce: bool = True,
        auth_methods: list[AuthMethod] | None = None,
    ) -> RegisteredClient:
        body: dict[str, Any] = {"redirect_uris": redirect_uris, "require_pkce": require_pkce}
        if client_id is not None:
            body["client_id"] = client_id
        if public:
            body["client_secret"] = None
        if auth_methods is not None:
            body["auth_methods"] = auth_methods
        made = self.control("POST", "clients", body)
        return RegisteredClient(made["client_id"], made["client_secret"], made["redirect_uris"])

    def configure(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("PATCH", "settings", settings)
        return result

    def set_mode(self, mode: Mode) -> None:
        self.configure(mode=mode)

    def set_expires_in(self, seconds: int) -> None:
        self.configure(expires_in=seconds)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 400,
        error: str | None = None,
        error_description: str | None = None,
        body: str | None = None,
        grant_type: str | None = None,
    ) -> None:
        spec: dict[str, Any] = {"count": count, "status": status, "grant_type": grant_type}
        spec |= {"error": error, "error_description": error_description, "body": body}
        self.control("POST", "faults", spec)

    def hang_next(
        self,
        seconds: float,
        count: int = 1,
        *,
        then_status: int | None = None,
        grant_type: str | None = None,
    ) -> None:
        """Hang the next token request(s). Without `then_status` the request is processed
        normally after the hang (a slow server); with it, it fails with that status instead."""
        spec = {"count": count, "hang_seconds": seconds, "grant_type": grant_type}
        self.control("POST", "faults", {**spec, "status": then_status})

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def revoke_refresh_tokens(self, client_id: str | None = None) -> int:
        revoked: int = self.control("POST", "revoke-refresh-tokens", {"client_id": client_id})[
            "revoked"
        ]
        return revoked

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def token_requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "token-requests")["data"]
        return result

    def authorize_requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "authorize-requests")["data"]
        return result

    def authorization_url(
        self,
        client: RegisteredClient,
        *,
        code_challenge: str | None,
        state: str = "state-1",
        scope: str = "read write",
        redirect_uri: str | None = None,
        **extra: str,
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri or client.redirect_uri,
            "scope": scope,
            "state": state,
            **extra,
        }
        if code_challenge is not None:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{self.authorize_endpoint}?{urlencode(params)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(provider: Provider, deadline: float) -> bool:
    """True once the process answers; False if it exited (a port race, most likely)."""
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if provider.http.get("/_control/health", timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    raise RuntimeError(f"oauth provider did not become ready:\n{provider.log()}")


@contextlib.contextmanager
def run_provider(tmp_path: Path, *, startup_timeout: float = 30) -> Iterator[Provider]:
    """The provider as a real process on a free port on 127.0.0.1, stopped afterwards."""
    script = str(Path(__file__).resolve())
    provider: Provider | None = None
    for _attempt in range(3):
        port = free_port()
        log_path = tmp_path / f"oauth-provider-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, script, "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        provider = Provider(f"http://127.0.0.1:{port}", process, log_path)
        try:
            if _ready(provider, time.monotonic() + startup_timeout):
                break
        except BaseException:
            provider.http.close()
            _stop(process)
            raise
        provider.http.close()
        _stop(process)
        provider = None
    if provider is None:
        raise RuntimeError(f"oauth provider exited at startup three times:\n{log_path.read_text()}")
    try:
        yield provider
    finally:
        provider.http.close()
        _stop(provider.process)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="OAuth 2.0 test provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
