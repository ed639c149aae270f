"""The request authentication dependencies.

Every credential is read from `Authorization: Bearer` (any case of the scheme) or `x-api-key`,
recognised by its shape, and verified. Only then is its kind compared with the route's: a valid
credential of the wrong kind is a 403, one that fails verification a 401."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tether.accounts.service import AdminPrincipal, authenticate_admin
from tether.api_keys.service import KeyPrincipal, authenticate_key
from tether.db.engine import SessionDep
from tether.errors import (
    InsufficientScope,
    InvalidApiKey,
    InvalidToken,
    MissingCredentials,
    NotFound,
)
from tether.security.keys import ADMIN_TOKEN_PREFIX, is_admin_token
from tether.users.models import User
from tether.users.service import get_user
from tether.users.tokens import TokenService, UserClaims

Principal = KeyPrincipal | AdminPrincipal | UserClaims

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A secret API key, an admin token, or a user token, depending on the route.",
)
api_key_header = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    scheme_name="apiKey",
    description="An API key (secret or publishable), as an alternative to the bearer header.",
)


def _looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2


async def resolve_principal(
    request: Request,
    session: SessionDep,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    credential = (bearer.credentials if bearer else None) or api_key
    if not credential:
        raise MissingCredentials()
    if credential.startswith(ADMIN_TOKEN_PREFIX):
        if not is_admin_token(credential):
            raise InvalidToken("The admin token is not valid.")
        return await authenticate_admin(session, credential)
    if _looks_like_jwt(credential):
        tokens: TokenService = request.app.state.tokens
        return await tokens.verify(session, credential)
    if not credential.startswith("tether_"):
        raise InvalidApiKey()
    return await authenticate_key(session, credential)


def accepted(request: Request, principal: KeyPrincipal) -> KeyPrincipal:
    """Note the key's use (lastUsedAt), once it is accepted for the route."""
    request.app.state.key_usage.seen(principal.key_id, principal.last_used_at)
    return principal


async def require_secret_key(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_header)],
) -> KeyPrincipal:
    principal = await resolve_principal(request, session, bearer, api_key)
    if not isinstance(principal, KeyPrincipal) or principal.key_type != "secret":
        raise InsufficientScope("This route needs a secret API key.")
    return accepted(request, principal)


async def require_api_key(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_header)],
) -> KeyPrincipal:
    """A secret or a publishable key: for what a browser may read (the catalogue and the
    environment's integrations)."""
    principal = await resolve_principal(request, session, bearer, api_key)
    if not isinstance(principal, KeyPrincipal):
        raise InsufficientScope("This route needs an API key.")
    return accepted(request, principal)


async def require_admin(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_header)],
) -> AdminPrincipal:
    principal = await resolve_principal(request, session, bearer, api_key)
    if not isinstance(principal, AdminPrincipal):
        raise InsufficientScope("Admin routes need an admin token from POST /admin/login.")
    return principal


SecretKeyAuth = Annotated[KeyPrincipal, Depends(require_secret_key)]
ApiKeyAuth = Annotated[KeyPrincipal, Depends(require_api_key)]
AdminAuth = Annotated[AdminPrincipal, Depends(require_admin)]


async def require_user_token(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> User:
    """The user a valid user token was minted for. The user is looked up on every request, so
    deleting it ends every token minted for it at once."""
    principal = await resolve_principal(request, session, bearer, None)
    if not isinstance(principal, UserClaims):
        raise InsufficientScope("SDK routes need a user token from GET /users/{userId}/token.")
    try:
        return await get_user(session, principal.environment_id, principal.user_id)
    except NotFound:
        raise InvalidToken("The user of this token no longer exists.") from None


UserTokenAuth = Annotated[User, Depends(require_user_token)]
