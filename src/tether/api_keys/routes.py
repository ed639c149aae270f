from __future__ import annotations

from fastapi import Response

from tether.accounts.service import get_environment
from tether.api_keys import service
from tether.api_keys.auth import AdminAuth
from tether.api_keys.models import ApiKey
from tether.api_keys.schemas import (
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    CreateKeyBody,
    RollKeyBody,
)
from tether.db.engine import SessionDep
from tether.errors import error_responses
from tether.routing import TetherRouter

router = TetherRouter(prefix="/admin/environments/{env}/api-keys", tags=["admin"])

NO_STORE = {"Cache-Control": "no-store"}


def _created(key: ApiKey, plaintext: str, response: Response) -> ApiKeyCreated:
    response.headers.update(NO_STORE)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=plaintext)


@router.get("", responses=error_responses(401, 403, 404))
async def list_keys(env: str, admin: AdminAuth, session: SessionDep) -> ApiKeyList:
    environment = await get_environment(session, admin.account_id, env)
    keys = await service.list_keys(session, environment)
    return ApiKeyList(data=[ApiKeyOut.model_validate(key) for key in keys])


@router.post("", status_code=201, responses=error_responses(401, 403, 404, 422))
async def create_key(
    env: str, body: CreateKeyBody, admin: AdminAuth, session: SessionDep, response: Response
) -> ApiKeyCreated:
    environment = await get_environment(session, admin.account_id, env)
    key, plaintext = await service.create_key(
        session, environment, body.type, name=body.name, expires_at=body.expires_at
    )
    return _created(key, plaintext, response)


@router.post("/{key_id}/roll", status_code=201, responses=error_responses(401, 403, 404, 409, 422))
async def roll_key(
    env: str,
    key_id: str,
    admin: AdminAuth,
    session: SessionDep,
    response: Response,
    body: RollKeyBody | None = None,
) -> ApiKeyCreated:
    environment = await get_environment(session, admin.account_id, env)
    grace = body.grace_period_seconds if body else 0
    key, plaintext = await service.roll_key(session, environment, key_id, grace)
    return _created(key, plaintext, response)


@router.delete("/{key_id}", status_code=204, responses=error_responses(401, 403, 404))
async def revoke_key(env: str, key_id: str, admin: AdminAuth, session: SessionDep) -> Response:
    environment = await get_environment(session, admin.account_id, env)
    await service.revoke_key(session, environment, key_id)
    return Response(status_code=204)
