from __future__ import annotations

from fastapi import APIRouter

from tether.api_keys.auth import UserTokenAuth
from tether.errors import error_responses
from tether.sdk.schemas import MeOut

router = APIRouter(prefix="/sdk", tags=["sdk"])


@router.get("/me", responses=error_responses(401, 403))
async def me(user: UserTokenAuth) -> MeOut:
    """The user the token was minted for."""
    return MeOut.model_validate(user)
