"""What the hosted modal calls, always as the user of the token, and only from Tether's own
origin or one of the token environment's `allowedOrigins` (see `tether.sdk.auth`)."""

from __future__ import annotations

from fastapi import Request

from tether.catalog.apps import FieldOut
from tether.db.engine import ConnectionDep, SessionDep
from tether.errors import error_responses
from tether.installations import service as installations
from tether.installations.connect import OAuthFlows
from tether.installations.schemas import (
    AuthorizeUrl,
    InstallBody,
    SdkInstalled,
    SdkIntegrationList,
    SdkIntegrationOut,
)
from tether.routing import DirectRoute, TetherRouter
from tether.schemas import Success
from tether.sdk import service
from tether.sdk.auth import SdkUser
from tether.sdk.schemas import ConfigOut, CredentialBody, MeOut

# Every route here takes SdkUser: a user token, and a browser's Origin allowed (else a 403).
router = TetherRouter(prefix="/sdk", tags=["sdk"], route_class=DirectRoute)


@router.get("/me", responses=error_responses(401, 403))
async def me(user: SdkUser) -> MeOut:
    """The user the token was minted for."""
    return MeOut.model_validate(user)


@router.get("/config", responses=error_responses(401, 403))
async def config(user: SdkUser, connection: ConnectionDep) -> ConfigOut:
    """The token environment's settings the hosted modal needs, above all the origins it may
    talk to with postMessage."""
    found = await service.config(connection, user.environment_id)
    return ConfigOut(
        user_id=user.id,
        environment_id=found.environment_id,
        account_name=found.account_name,
        allowed_origins=found.allowed_origins,
    )


@router.get("/integrations", responses=error_responses(401, 403))
async def integrations(user: SdkUser, session: SessionDep) -> SdkIntegrationList:
    """The environment's integrations, each with the user's installation state and, for
    api_key and basic apps, the fields to ask for."""
    states = await installations.integration_states(session, user.environment_id, user.id)
    return SdkIntegrationList(
        data=[
            SdkIntegrationOut.of(
                state,
                status=(
                    None
                    if state.status is None
                    else "error"
                    if state.status == "error"
                    else "active"
                ),
                fields=[FieldOut.model_validate(field) for field in state.app.fields],
            )
            for state in states
        ]
    )


@router.post("/installations", responses=error_responses(401, 403, 404, 409, 422))
async def install(
    body: InstallBody, user: SdkUser, session: SessionDep, request: Request
) -> SdkInstalled:
    """Install an api_key or basic integration from the modal's form."""
    installation, _ = await installations.install_fields(
        session,
        request.app.state.keyring,
        environment_id=user.environment_id,
        user_id=user.id,
        integration_id=body.integration_id,
        data=body.data,
    )
    return SdkInstalled(installation_id=installation.id)


@router.put(
    "/installations/{installation_id}/credential", responses=error_responses(401, 403, 404, 422)
)
async def replace_credential(
    installation_id: str,
    body: CredentialBody,
    user: SdkUser,
    session: SessionDep,
    request: Request,
) -> SdkInstalled:
    """Re-enter the fields of an installed api_key or basic integration (the SDK's
    `authenticate`): the credential is replaced and the installation is active again. An
    oauth2 installation reconnects through POST /sdk/oauth/{integrationId}/start instead."""
    installation = await installations.replace_fields(
        session,
        request.app.state.keyring,
        environment_id=user.environment_id,
        user_id=user.id,
        installation_id=installation_id,
        data=body.data,
    )
    return SdkInstalled(installation_id=installation.id)


@router.delete("/installations/{installation_id}", responses=error_responses(401, 403, 404))
async def uninstall(installation_id: str, user: SdkUser, session: SessionDep) -> Success:
    await installations.delete_installation(
        session, user.environment_id, installation_id, user_id=user.id
    )
    return Success()


@router.post("/oauth/{integration_id}/start", responses=error_responses(401, 403, 404, 422))
async def start_oauth(
    integration_id: str, user: SdkUser, session: SessionDep, request: Request
) -> AuthorizeUrl:
    """Begin an OAuth 2.0 connection: the provider URL to open in a popup."""
    flows: OAuthFlows = request.app.state.oauth
    url = await flows.start(
        session, environment_id=user.environment_id, user_id=user.id, integration_id=integration_id
    )
    return AuthorizeUrl(authorize_url=url)
