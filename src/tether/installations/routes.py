from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse

from tether.api_keys.auth import ApiKeyAuth, SecretKeyAuth
from tether.db.engine import SessionDep
from tether.errors import TenantTokenRequired, TetherError, error_responses
from tether.installations import service
from tether.installations.connect import OAuthFlows
from tether.installations.models import Installation
from tether.installations.schemas import (
    CredentialList,
    CredentialOut,
    CredentialWithData,
    InstallationOut,
    InstallBody,
    Installed,
    IntegrationStateList,
    IntegrationStateOut,
)
from tether.routing import TetherRouter
from tether.schemas import Cursor, Limit, Page, Success
from tether.users.service import get_user

router = TetherRouter(tags=["installations"])

UserFilter = Annotated[str | None, Query(alias="userId", max_length=255)]
IntegrationFilter = Annotated[str | None, Query(alias="integrationId", max_length=40)]


def installation_out(installation: Installation, credential_id: str | None) -> InstallationOut:
    return InstallationOut(
        installation_id=installation.id,
        integration_id=installation.integration_id,
        user_id=installation.user_id,
        status="error" if installation.status == "error" else "active",
        credential_id=credential_id,
        created_at=installation.created_at,
    )


@router.get("/integrations", responses=error_responses(401, 403, 404, 422))
async def list_integrations(
    key: ApiKeyAuth, session: SessionDep, user_ref: UserFilter = None
) -> IntegrationStateList:
    """The environment's integrations; with `userId`, whether that user installed each."""
    user_id = None
    if user_ref is not None:
        if key.key_type != "secret":  # a user's installations are tenant data
            raise TenantTokenRequired()
        user_id = (await get_user(session, key.environment_id, user_ref)).id
    states = await service.integration_states(session, key.environment_id, user_id)
    return IntegrationStateList(data=[IntegrationStateOut.of(state) for state in states])


@router.get("/installations", responses=error_responses(401, 403, 404, 422))
async def list_installations(
    key: SecretKeyAuth,
    session: SessionDep,
    user_ref: UserFilter = None,
    integration_id: IntegrationFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[InstallationOut]:
    user_id = (
        None if user_ref is None else (await get_user(session, key.environment_id, user_ref)).id
    )
    installations, next_cursor = await service.list_installations(
        session,
        key.environment_id,
        user_id=user_id,
        integration_id=integration_id,
        limit=limit,
        cursor=cursor,
    )
    credentials = await service.credential_ids(session, [i.id for i in installations])
    return Page(
        data=[installation_out(i, credentials.get(i.id)) for i in installations],
        next_cursor=next_cursor,
    )


@router.get("/installations/{installation_id}", responses=error_responses(401, 403, 404))
async def get_installation(
    installation_id: str, key: SecretKeyAuth, session: SessionDep
) -> InstallationOut:
    installation = await service.get_installation(session, key.environment_id, installation_id)
    credentials = await service.credential_ids(session, [installation.id])
    return installation_out(installation, credentials.get(installation.id))


@router.delete("/installations/{installation_id}", responses=error_responses(401, 403, 404))
async def delete_installation(
    installation_id: str, key: SecretKeyAuth, session: SessionDep
) -> Success:
    await service.delete_installation(session, key.environment_id, installation_id)
    return Success()


@router.get("/users/{user_id}/credentials", responses=error_responses(401, 403, 404))
async def list_credentials(user_id: str, key: SecretKeyAuth, session: SessionDep) -> CredentialList:
    """Metadata of the user's credentials; never their secrets."""
    user = await get_user(session, key.environment_id, user_id)
    credentials = await service.list_credentials(session, key.environment_id, user.id)
    return CredentialList(data=[CredentialOut.model_validate(c) for c in credentials])


@router.post("/users/{user_id}/credentials", responses=error_responses(401, 403, 404, 409, 422))
async def create_credential(
    user_id: str, body: InstallBody, key: SecretKeyAuth, session: SessionDep, request: Request
) -> Installed:
    """Install an api_key or basic integration without the modal (headless)."""
    user = await get_user(session, key.environment_id, user_id)
    installation, credential = await service.install_fields(
        session,
        request.app.state.keyring,
        environment_id=key.environment_id,
        user_id=user.id,
        integration_id=body.integration_id,
        data=body.data,
    )
    return Installed(credential_id=credential.id, installation_id=installation.id)


@router.get(
    "/users/{user_id}/credentials/{credential_id}",
    responses=error_responses(401, 403, 404, 409, 502, 504),
)
async def get_credential(
    user_id: str,
    credential_id: str,
    key: SecretKeyAuth,
    session: SessionDep,
    request: Request,
    response: Response,
) -> CredentialWithData:
    """The credential with its raw secret, refreshed first when it is an OAuth token that
    expires within five minutes."""
    user = await get_user(session, key.environment_id, user_id)
    credential = await service.get_credential(session, key.environment_id, user.id, credential_id)
    flows: OAuthFlows = request.app.state.oauth
    meta = CredentialOut.model_validate(credential)
    data = await flows.read(session, credential)
    response.headers["Cache-Control"] = "no-store"
    if credential.type == "oauth2" and data.get("expiresAt"):  # it may have been refreshed
        meta.expires_at = datetime.fromisoformat(data["expiresAt"])
    return CredentialWithData(**meta.model_dump(), data=data)


@router.delete(
    "/users/{user_id}/credentials/{credential_id}", responses=error_responses(401, 403, 404)
)
async def delete_credential(
    user_id: str, credential_id: str, key: SecretKeyAuth, session: SessionDep
) -> Success:
    """Delete the credential and with it its installation."""
    user = await get_user(session, key.environment_id, user_id)
    await service.delete_credential(session, key.environment_id, user.id, credential_id)
    return Success()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:28rem;padding:0 1rem;
color:#1f2937}}h1{{font-size:1.25rem}}</style></head>
<body><h1>{title}</h1><p>{message}</p>
<script id="tether-result" type="application/json">{result}</script>
<script>
(function () {{
  var result = JSON.parse(document.getElementById("tether-result").textContent);
  if (window.opener) {{
    window.opener.postMessage(Object.assign({{type: "tether:oauth"}}, result), {origin});
    setTimeout(function () {{ window.close(); }}, 300);
  }}
}})();
</script></body></html>"""


def _page(
    status: int, title: str, message: str, result: dict[str, object], origin: str
) -> HTMLResponse:
    # </ inside the JSON would end the script element early.
    payload = json.dumps(result).replace("</", "<\\/")
    body = _PAGE.format(
        title=html.escape(title),
        message=html.escape(message),
        result=payload,
        origin=json.dumps(origin),
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/oauth/callback", include_in_schema=False)
async def oauth_callback(
    request: Request,
    state: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Where providers redirect after consent. The page tells the modal that opened it."""
    settings = request.app.state.settings
    flows: OAuthFlows = request.app.state.oauth
    if not state:
        return _page(400, "Connection failed", "The provider's answer has no state.",
                     {"success": False, "error": "invalid_state"}, settings.public_url)  # fmt: skip
    try:
        connected = await flows.finish(state=state, code=code, error=error)
    except TetherError as exc:
        code_ = exc.extra.get("providerError") or exc.code
        return _page(exc.status, "Connection failed", exc.detail,
                     {"success": False, "error": code_}, settings.public_url)  # fmt: skip
    return _page(200, "Connected", "You can close this window.",
                 {"success": True, "installationId": connected.installation_id},
                 settings.public_url)  # fmt: skip
