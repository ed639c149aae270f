"""The OAuth 2.0 client side (RFC 6749 authorization code, RFC 7636 PKCE with S256)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tether.catalog.service import OAuthClient
from tether.db.base import utcnow
from tether.errors import TetherError


class ProviderError(TetherError):
    status, code = 502, "oauth_provider_error"
    detail = "The OAuth provider answered with an error."


class ProviderTimeout(TetherError):
    status, code = 504, "oauth_provider_timeout"
    detail = "The OAuth provider did not answer in time."


class GrantRejected(ProviderError):
    """The provider refused the code or refresh token itself (RFC 6749 `invalid_grant`)."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    token_type: str
    scope: str | None

    def as_data(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
            "tokenType": self.token_type,
            "scope": self.scope,
        }


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43..128


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    client: OAuthClient, *, state: str, redirect_uri: str, verifier: str | None
) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **client.extra_authorize_params,
    }
    if client.scopes:
        params["scope"] = client.scope_separator.join(client.scopes)
    if verifier is not None:
        params["code_challenge"] = challenge_of(verifier)
        params["code_challenge_method"] = "S256"
    parts = urlsplit(client.authorize_url)
    # Keep whatever query the provider's URL already has (some carry a tenant or a prompt).
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return urlunsplit(parts._replace(query=query))


async def _token_request(
    http: httpx.AsyncClient, client: OAuthClient, form: dict[str, str]
) -> TokenSet:
    options: dict[str, Any] = {"headers": {"Accept": "application/json"}}
    if client.token_auth_method == "client_secret_basic":  # noqa: S105 (a method name)
        options["auth"] = httpx.BasicAuth(client.client_id, client.client_secret)
    else:
        form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
    try:
        response = await http.post(client.token_url, data=form, **options)
    except httpx.TimeoutException:
        raise ProviderTimeout() from None
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"The OAuth provider could not be reached ({type(exc).__name__})."
        ) from None
    body = _parse(response)
    error = body.get("error")
    if response.status_code >= 400 or error or body.get("ok") is False:
        code = str(error or f"http_{response.status_code}")[:64]
        rejected = GrantRejected if code == "invalid_grant" else ProviderError
        raise rejected(f"The OAuth provider refused the request: {code}.", providerError=code)
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderError("The OAuth provider's answer has no access_token.")
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, (int, float, str)) and str(expires_in).isdigit():
        expires_at = utcnow() + timedelta(seconds=int(expires_in))
    refresh_token = body.get("refresh_token")
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        expires_at=expires_at,
        token_type=str(body.get("token_type") or "Bearer"),
        scope=str(body["scope"]) if body.get("scope") is not None else None,
    )


def _parse(response: httpx.Response) -> dict[str, Any]:
    # Most providers answer JSON; some (GitHub without an Accept header) answer a form.
    try:
        body = response.json()
    except ValueError:
        return dict(parse_qsl(response.text))
    return body if isinstance(body, dict) else {}


async def exchange_code(
    http: httpx.AsyncClient,
    client: OAuthClient,
    *,
    code: str,
    redirect_uri: str,
    verifier: str | None,
) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return await _token_request(http, client, form)


async def refresh(http: httpx.AsyncClient, client: OAuthClient, refresh_token: str) -> TokenSet:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_request(http, client, form)
