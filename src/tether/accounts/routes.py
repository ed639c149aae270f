from __future__ import annotations

from fastapi import Request, Response

from tether.accounts import service
from tether.accounts.schemas import (
    AccountOut,
    EnvironmentOut,
    EnvironmentPatch,
    LoginBody,
    LoginOut,
)
from tether.api_keys.auth import AdminAuth
from tether.audit.service import note_request
from tether.db.engine import SessionDep
from tether.errors import error_responses
from tether.routing import TetherRouter

router = TetherRouter(prefix="/admin", tags=["admin"])


@router.post("/login", responses=error_responses(401, 422))
async def login(
    body: LoginBody, request: Request, session: SessionDep, response: Response
) -> LoginOut:
    note_request(request)
    token, expires_at = await service.login(
        session,
        email=body.email,
        password=body.password,
        ttl_seconds=request.app.state.settings.admin_session_ttl_seconds,
    )
    # The token is a credential: no cache may keep the response that carries it.
    response.headers["Cache-Control"] = "no-store"
    return LoginOut(token=token, expires_at=expires_at)


@router.post("/logout", status_code=204, responses=error_responses(401, 403))
async def logout(admin: AdminAuth, session: SessionDep) -> Response:
    await service.logout(session, admin)
    return Response(status_code=204)


@router.get("/account", responses=error_responses(401, 403))
async def get_account(admin: AdminAuth, session: SessionDep) -> AccountOut:
    account, environments = await service.get_account(session, admin.account_id)
    return AccountOut(
        account_id=account.id,
        name=account.name,
        created_at=account.created_at,
        environments=[EnvironmentOut.model_validate(env) for env in environments],
    )


@router.patch("/environments/{env}", responses=error_responses(401, 403, 404, 422))
async def update_environment(
    env: str, body: EnvironmentPatch, admin: AdminAuth, session: SessionDep
) -> EnvironmentOut:
    environment = await service.get_environment(session, admin.account_id, env)
    await service.update_environment(session, environment, body.model_dump(exclude_unset=True))
    return EnvironmentOut.model_validate(environment)
