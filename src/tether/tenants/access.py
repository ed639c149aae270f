"""Who may read a tenant's data: a secret key (any tenant of its environment), a publishable
key with a tenant token the customer signed (that tenant only), or a publishable key alone
where the environment turned `requireTenantToken` off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import Environment
from tether.api_keys.auth import accepted, api_key_header, bearer_scheme, resolve_principal
from tether.api_keys.service import KeyPrincipal
from tether.db.engine import SessionDep
from tether.errors import InsufficientScope, InvalidToken, NotFound, TenantTokenRequired
from tether.tenants.service import TenantTokenVerifier
from tether.users.models import User
from tether.users.service import create_user, get_user


@dataclass(frozen=True, slots=True)
class TenantAccess:
    environment_id: str
    via: Literal["secret_key", "tenant_token", "publishable_key"]
    subject: str | None  # the tenant a tenant token names

    def admits(self, tenant_ref: str, user: User | None) -> bool:
        if self.via != "tenant_token":
            return True
        names = {tenant_ref} | ({user.id, user.username} if user is not None else set())
        return self.subject in names

    async def tenant(self, session: AsyncSession, tenant_ref: str, *, create: bool = False) -> User:
        """The tenant named in the path, if this access reaches it. With `create`, a tenant
        that a secret key or a valid tenant token names is created on first use (hotglue's
        behaviour); a publishable key alone never creates one."""
        try:
            user: User | None = await get_user(session, self.environment_id, tenant_ref)
        except NotFound:
            user = None
        if not self.admits(tenant_ref, user):
            raise InvalidToken(
                "The tenant token names another tenant than the path.", reason="tenant_mismatch"
            )
        if user is None:
            if not create or self.via == "publishable_key":
                raise NotFound("No such tenant.")
            user = await create_user(
                session, self.environment_id, username=tenant_ref, full_name=None
            )
        return user


async def require_tenant_access(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_header)],
    token: Annotated[
        str | None, Query(max_length=8192, description="A tenant token (hotglue's `?token=`).")
    ] = None,
    x_tenant_token: Annotated[str | None, Header(max_length=8192)] = None,
) -> TenantAccess:
    principal = await resolve_principal(request, bearer, api_key)
    if not isinstance(principal, KeyPrincipal):
        raise InsufficientScope(
            "Tenant routes need an API key (and, for a publishable key, a tenant token)."
        )
    await accepted(request, principal)
    if principal.key_type == "secret":
        return TenantAccess(principal.environment_id, "secret_key", None)
    environment = await session.get(Environment, principal.environment_id)
    assert environment is not None
    tenant_token = token or x_tenant_token
    if tenant_token:
        verifier: TenantTokenVerifier = request.app.state.tenant_tokens
        claims = await verifier.verify(
            session,
            tenant_token,
            environment_id=environment.id,
            max_lifetime_seconds=environment.tenant_token_max_lifetime_seconds,
        )
        return TenantAccess(environment.id, "tenant_token", claims.subject)
    if environment.require_tenant_token:
        raise TenantTokenRequired()
    return TenantAccess(environment.id, "publishable_key", None)


TenantAccessDep = Annotated[TenantAccess, Depends(require_tenant_access)]
