from __future__ import annotations

from fastapi import Request, Response

from tether.accounts.service import get_environment
from tether.api_keys.auth import AdminAuth, ApiKeyAuth
from tether.catalog import service
from tether.catalog.apps import AppOut, all_apps
from tether.catalog.models import Integration
from tether.catalog.schemas import (
    AppList,
    CreateIntegrationBody,
    IntegrationList,
    IntegrationOut,
    UpdateIntegrationBody,
)
from tether.db.engine import SessionDep
from tether.errors import error_responses
from tether.routing import DirectRoute, TetherRouter

router = TetherRouter(tags=["integrations"], route_class=DirectRoute)
admin = TetherRouter(prefix="/admin/environments/{env}/integrations", tags=["admin"])


def integration_out(integration: Integration, public_url: str) -> IntegrationOut:
    app = service.app_of(integration)
    return IntegrationOut(
        integration_id=integration.id,
        app=integration.app,
        name=integration.name,
        auth_type=app.auth_type,
        client_id=integration.client_id,
        has_client_secret=integration.client_secret_ciphertext is not None,
        scopes=service.scopes_of(integration),
        authorize_url=integration.authorize_url
        or (str(app.authorize_url) if app.is_oauth2 else None),
        token_url=integration.token_url or (str(app.token_url) if app.is_oauth2 else None),
        redirect_uri=f"{public_url}/oauth/callback" if app.is_oauth2 else None,
        enabled=integration.enabled,
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


@router.get("/apps", responses=error_responses(401, 403))
async def list_apps(key: ApiKeyAuth) -> AppList:
    """The built-in catalogue of third-party apps."""
    return AppList(data=[AppOut.model_validate(app) for app in all_apps()])


@admin.get("", responses=error_responses(401, 403, 404))
async def list_integrations(
    env: str, admin_: AdminAuth, session: SessionDep, request: Request
) -> IntegrationList:
    environment = await get_environment(session, admin_.account_id, env)
    integrations = await service.list_integrations(session, environment.id)
    public_url = request.app.state.settings.public_url
    return IntegrationList(data=[integration_out(i, public_url) for i in integrations])


@admin.post("", status_code=201, responses=error_responses(401, 403, 404, 422))
async def create_integration(
    env: str, body: CreateIntegrationBody, admin_: AdminAuth, session: SessionDep, request: Request
) -> IntegrationOut:
    environment = await get_environment(session, admin_.account_id, env)
    settings = request.app.state.settings
    integration = await service.create_integration(
        session,
        request.app.state.keyring,
        environment.id,
        body.model_dump(),
        allow_insecure_urls=settings.allow_insecure_oauth_urls,
    )
    return integration_out(integration, settings.public_url)


@admin.get("/{integration_id}", responses=error_responses(401, 403, 404))
async def get_integration(
    env: str, integration_id: str, admin_: AdminAuth, session: SessionDep, request: Request
) -> IntegrationOut:
    environment = await get_environment(session, admin_.account_id, env)
    integration = await service.get_integration(session, environment.id, integration_id)
    return integration_out(integration, request.app.state.settings.public_url)


@admin.patch("/{integration_id}", responses=error_responses(401, 403, 404, 422))
async def update_integration(
    env: str,
    integration_id: str,
    body: UpdateIntegrationBody,
    admin_: AdminAuth,
    session: SessionDep,
    request: Request,
) -> IntegrationOut:
    environment = await get_environment(session, admin_.account_id, env)
    integration = await service.get_integration(session, environment.id, integration_id)
    settings = request.app.state.settings
    await service.update_integration(
        session,
        request.app.state.keyring,
        integration,
        body.model_dump(exclude_unset=True),
        allow_insecure_urls=settings.allow_insecure_oauth_urls,
    )
    return integration_out(integration, settings.public_url)


@admin.delete("/{integration_id}", status_code=204, responses=error_responses(401, 403, 404))
async def delete_integration(
    env: str, integration_id: str, admin_: AdminAuth, session: SessionDep
) -> Response:
    environment = await get_environment(session, admin_.account_id, env)
    integration = await service.get_integration(session, environment.id, integration_id)
    await service.delete_integration(session, integration)
    return Response(status_code=204)
