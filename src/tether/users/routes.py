from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response

from tether.api_keys.auth import SecretKeyAndUser, SecretKeyAuth
from tether.db.engine import ConnectionDep, SessionDep
from tether.errors import NotFound, error_responses
from tether.routing import DirectRoute, TetherRouter
from tether.schemas import Cursor, Limit, Page, Success
from tether.users import service
from tether.users.schemas import CreateUserBody, Jwks, TokenOut, UpdateUserBody, UserOut
from tether.users.tokens import published_keys

router = TetherRouter(tags=["users"], route_class=DirectRoute)

UserRef = Annotated[str, Path(description="A userId or a username.")]


# Routes are matched in the order they are added, each tried twice a request (FastAPI's
# included routers match once to choose the router and again inside it): the hot ones first.
# (Decorators apply bottom-up: the documented token path is added first.)
@router.get("/user/{user_id}/token", include_in_schema=False)
@router.get("/users/{user_id}/token", responses=error_responses(401, 403, 404))
async def mint_token(
    user_id: UserRef, auth: SecretKeyAndUser, request: Request, response: Response
) -> TokenOut:
    """A new user token for the browser SDK on every call (Alloy's `GET /user/:userId/token`
    is served too). The key check and the user lookup are one query."""
    token, expires_at = await service.mint_for(request.app.state.tokens, auth)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(token=token, expires_at=expires_at)


@router.get("/users/{user_id}", responses=error_responses(401, 403, 404))
async def get_user(user_id: UserRef, auth: SecretKeyAndUser) -> UserOut:
    if auth.user is None:
        raise NotFound("No such user.")
    return UserOut.model_validate(auth.user)


@router.post("/users", responses=error_responses(401, 403, 409, 422))
async def create_user(body: CreateUserBody, key: SecretKeyAuth, request: Request) -> UserOut:
    state = request.app.state
    user = await service.add_user(
        state.readonly, state.sessionmaker, key.environment_id,
        username=body.username, full_name=body.full_name,
    )  # fmt: skip
    return UserOut.model_validate(user)


@router.get("/users", responses=error_responses(401, 403, 422))
async def list_users(
    key: SecretKeyAuth,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[UserOut]:
    users, next_cursor = await service.list_users(
        session, key.environment_id, limit=limit, cursor=cursor
    )
    return Page(data=[UserOut.model_validate(user) for user in users], next_cursor=next_cursor)


@router.put("/users/{user_id}", responses=error_responses(401, 403, 404, 409, 422))
async def update_user(
    user_id: UserRef, body: UpdateUserBody, key: SecretKeyAuth, session: SessionDep
) -> UserOut:
    user = await service.update_user(
        session, key.environment_id, user_id, body.model_dump(exclude_unset=True)
    )
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", responses=error_responses(401, 403, 404))
async def delete_user(user_id: UserRef, key: SecretKeyAuth, session: SessionDep) -> Success:
    await service.delete_user(session, key.environment_id, user_id)
    return Success()


@router.get("/.well-known/jwks.json", tags=["sdk"], responses=error_responses())
async def jwks(connection: ConnectionDep, response: Response) -> Jwks:
    """Every public key that can still verify a live user token."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks(keys=await published_keys(connection))
