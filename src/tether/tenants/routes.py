from __future__ import annotations

from fastapi import Request, Response

from tether.accounts.service import get_environment
from tether.api_keys.auth import AdminAuth
from tether.catalog.service import get_integration
from tether.db.engine import SessionDep
from tether.errors import NotFound, error_responses
from tether.routing import TetherRouter
from tether.tenants import service
from tether.tenants.access import TenantAccessDep
from tether.tenants.models import SigningKey
from tether.tenants.schemas import (
    CreateSigningKeyBody,
    LinkedSource,
    LinkedSources,
    SigningKeyCreated,
    SigningKeyList,
    SigningKeyOut,
)
from tether.users.schemas import TokenOut
from tether.users.service import mint_token

router = TetherRouter(tags=["tenants"])
admin = TetherRouter(prefix="/admin/environments/{env}/signing-keys", tags=["admin"])

NO_STORE = {"Cache-Control": "no-store"}
TENANT_ERRORS = error_responses(401, 403, 404, 422)


def signing_key_out(key: SigningKey) -> SigningKeyOut:
    return SigningKeyOut(
        id=key.id,
        kid=key.id,
        public_key=key.public_key_pem,
        origin="generated" if key.origin == "generated" else "imported",
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@admin.post("", status_code=201, responses=error_responses(401, 403, 404, 422))
async def create_signing_key(
    env: str,
    admin_: AdminAuth,
    session: SessionDep,
    response: Response,
    body: CreateSigningKeyBody | None = None,
) -> SigningKeyCreated:
    """Generate a key pair (the private key is answered once and never stored), or register
    the public key of a pair you made."""
    environment = await get_environment(session, admin_.account_id, env)
    if body is not None and body.public_key is not None:
        key = await service.import_key(session, environment.id, body.public_key)
        return SigningKeyCreated(**signing_key_out(key).model_dump(), private_key=None)
    generated = await service.generate_key(session, environment.id)
    response.headers.update(NO_STORE)
    return SigningKeyCreated(
        **signing_key_out(generated.key).model_dump(), private_key=generated.private_key_b64
    )


@admin.get("", responses=error_responses(401, 403, 404))
async def list_signing_keys(env: str, admin_: AdminAuth, session: SessionDep) -> SigningKeyList:
    environment = await get_environment(session, admin_.account_id, env)
    keys = await service.list_keys(session, environment.id)
    return SigningKeyList(data=[signing_key_out(key) for key in keys])


@admin.delete("/{key_id}", status_code=204, responses=error_responses(401, 403, 404))
async def revoke_signing_key(
    env: str, key_id: str, admin_: AdminAuth, session: SessionDep
) -> Response:
    environment = await get_environment(session, admin_.account_id, env)
    await service.revoke_key(session, environment.id, key_id)
    return Response(status_code=204)


async def _linked_sources(
    request: Request,
    session: SessionDep,
    access: TenantAccessDep,
    tenant_id: str,
    integration_id: str | None,
) -> LinkedSources:
    user = await access.tenant(session, tenant_id)
    sources = await service.linked_sources(
        session, request.app.state.oauth, access.environment_id, user.id, integration_id
    )
    return LinkedSources(
        data=[
            LinkedSource(
                installation_id=source.installation_id,
                integration_id=source.integration_id,
                app=source.app,
                credential_id=source.credential_id,
                status="error" if source.status == "error" else "active",
                data=source.data,
            )
            for source in sources
        ]
    )


@router.get("/tenants/{tenant_id}/linked-sources", responses=TENANT_ERRORS)
async def linked_sources(
    tenant_id: str,
    access: TenantAccessDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> LinkedSources:
    """The tenant's installations with their raw credentials (OAuth tokens refreshed first
    when near expiry)."""
    response.headers.update(NO_STORE)
    return await _linked_sources(request, session, access, tenant_id, None)


@router.get("/tenants/{tenant_id}/token", responses=TENANT_ERRORS)
async def tenant_user_token(
    tenant_id: str,
    access: TenantAccessDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> TokenOut:
    """A user token for the tenant, so a widget opened with a tenant token can use the SDK. A
    tenant Tether does not know yet is created (username = tenantId)."""
    user = await access.tenant(session, tenant_id, create=True)
    token, expires_at = await mint_token(
        session, request.app.state.tokens, access.environment_id, user.id
    )
    response.headers.update(NO_STORE)
    return TokenOut(token=token, expires_at=expires_at)


@router.get("/{environment_id}/{integration_id}/{tenant_id}/linkedSources", responses=TENANT_ERRORS)
async def hotglue_linked_sources(
    environment_id: str,
    integration_id: str,
    tenant_id: str,
    access: TenantAccessDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> LinkedSources:
    """hotglue's `GET /{env_id}/{flow_id}/{tenant_id}/linkedSources`: the tenant's linked
    sources of one integration."""
    if environment_id != access.environment_id:
        raise NotFound("No such environment.")
    await get_integration(session, access.environment_id, integration_id)
    response.headers.update(NO_STORE)
    return await _linked_sources(request, session, access, tenant_id, integration_id)
