"""The request authentication dependencies.

Every credential is read from `Authorization: Bearer` (any case of the scheme) or `x-api-key`,
recognised by its shape, and verified. Only then is its kind compared with the route's: a valid
credential of the wrong kind is a 403, one that fails verification a 401.

Authentication reads with autocommit statements, each holding a pooled connection only while
it runs (see PreparedQuery): no BEGIN/COMMIT, and never two pooled connections held at once.
Keys and users are never cached, so a revoked key or a deleted user is refused on its very
next request on every process."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from tether.accounts.service import AdminPrincipal, authenticate_admin
from tether.api_keys.service import KeyPrincipal, authenticate_key
from tether.audit.service import note_request
from tether.errors import InsufficientScope, InvalidApiKey, InvalidToken, MissingCredentials
from tether.security.keys import ADMIN_TOKEN_PREFIX, is_admin_token, parse_api_key
from tether.users.service import KeyAndUser, UserRow, authenticate_for_user, find_user
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

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
ApiKeyHeaderDep = Annotated[str | None, Security(api_key_header)]


def presented(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str:
    credential = (bearer.credentials if bearer else None) or api_key
    if not credential:
        raise MissingCredentials()
    return credential


async def identify(request: Request, credential: str) -> Principal:
    principal = await _verify(request, credential)
    note_actor(request, principal)
    return principal


async def _verify(request: Request, credential: str) -> Principal:
    readonly: AsyncEngine = request.app.state.readonly
    if credential.startswith(ADMIN_TOKEN_PREFIX):
        if not is_admin_token(credential):
            raise InvalidToken("The admin token is not valid.")
        async with readonly.connect() as connection:
            return await authenticate_admin(connection, credential)
    if credential.count(".") == 2:  # a JWT
        tokens: TokenService = request.app.state.tokens
        return await tokens.verify(credential)
    if not credential.startswith("tether_"):
        raise InvalidApiKey()
    return await authenticate_key(readonly, credential)


def note_actor(request: Request, principal: Principal) -> None:
    """Who acts in this request, for the audit events the services record, and its account
    and environment for the request's log line."""
    state = request.scope.setdefault("state", {})
    if isinstance(principal, AdminPrincipal):
        note_request(request, "admin", principal.member_id, principal.account_id)
        state["account_id"] = principal.account_id
    elif isinstance(principal, KeyPrincipal):
        kind = f"{principal.key_type}_key"
        note_request(request, kind, principal.key_id, principal.account_id)
        state["account_id"] = principal.account_id
        state["environment_id"] = principal.environment_id
    else:
        note_request(request, "user", principal.user_id)
        state["environment_id"] = principal.environment_id


async def resolve_principal(
    request: Request, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Principal:
    credential = presented(bearer, api_key)
    await request.app.state.rate_limits.before_credentials(request.scope)
    return await identify(request, credential)


async def accepted(request: Request, principal: KeyPrincipal) -> KeyPrincipal:
    """Count the request against the key's rate limit and note its use (lastUsedAt), once
    the key is accepted for the route."""
    await request.app.state.rate_limits.hit_key(principal.key_id, principal.rate_limit_per_minute)
    request.app.state.key_usage.seen(principal.key_id, principal.last_used_at)
    return principal


async def require_secret_key(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> KeyPrincipal:
    principal = await resolve_principal(request, bearer, api_key)
    if not isinstance(principal, KeyPrincipal) or principal.key_type != "secret":
        raise InsufficientScope("This route needs a secret API key.")
    return await accepted(request, principal)


async def require_secret_key_and_user(
    request: Request, user_id: str, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> KeyAndUser:
    """A secret key and the user `{user_id}` names (a userId or a username), in one query."""
    credential = presented(bearer, api_key)
    parsed = parse_api_key(credential)
    if parsed is None or parsed.type != "secret":
        # Not a secret key: find out what it is, for the right 401 or 403 (this raises).
        await require_secret_key(request, bearer, api_key)
        raise InsufficientScope("This route needs a secret API key.")
    await request.app.state.rate_limits.before_credentials(request.scope)
    key_and_user = await authenticate_for_user(
        request.app.state.readonly, parsed, credential, user_id
    )
    note_actor(request, key_and_user.principal)
    await accepted(request, key_and_user.principal)
    return key_and_user


async def require_api_key(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> KeyPrincipal:
    """A secret or a publishable key: for what a browser may read (the catalogue and the
    environment's integrations)."""
    principal = await resolve_principal(request, bearer, api_key)
    if not isinstance(principal, KeyPrincipal):
        raise InsufficientScope("This route needs an API key.")
    return await accepted(request, principal)


async def require_admin(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> AdminPrincipal:
    principal = await resolve_principal(request, bearer, api_key)
    if not isinstance(principal, AdminPrincipal):
        raise InsufficientScope("Admin routes need an admin token from POST /admin/login.")
    return principal


async def require_user_token(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> UserRow:
    """The user a valid user token was minted for. The user is read on every request, so
    deleting it ends every token minted for it at once. A valid credential of another kind,
    in either header, is a 403; a user token belongs in `Authorization: Bearer` only."""
    credential = presented(bearer, api_key)
    await request.app.state.rate_limits.before_credentials(request.scope)
    principal = await identify(request, credential)
    if not isinstance(principal, UserClaims):
        raise InsufficientScope("SDK routes need a user token from GET /users/{userId}/token.")
    if bearer is None:
        raise InvalidToken("Send the user token as `Authorization: Bearer <token>`.")
    user = await find_user(request.app.state.readonly, principal.environment_id, principal.user_id)
    if user is None:
        raise InvalidToken("The user of this token no longer exists.")
    return user


SecretKeyAuth = Annotated[KeyPrincipal, Depends(require_secret_key)]
SecretKeyAndUser = Annotated[KeyAndUser, Depends(require_secret_key_and_user)]
ApiKeyAuth = Annotated[KeyPrincipal, Depends(require_api_key)]
AdminAuth = Annotated[AdminPrincipal, Depends(require_admin)]
