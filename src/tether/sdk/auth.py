"""The origin rule of the SDK routes, on top of the user token.

A request from a browser names its page's origin in `Origin`. On an `/sdk/*` route that origin
must be Tether's own (the hosted modal) or one of the token environment's `allowedOrigins`;
anything else is refused here, before the route runs, so the rule holds even for requests
a browser sends without asking first (no preflight). Requests without `Origin` (a backend,
curl) are not browser requests and pass. The decision is left in the request's state for
`SdkCorsMiddleware`, which sends `Access-Control-Allow-Origin` only when it was a yes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tether.api_keys.auth import ApiKeyHeaderDep, BearerDep, require_user_token
from tether.sdk import service
from tether.sdk.service import OriginNotAllowed
from tether.users.service import UserRow

# Where SdkCorsMiddleware finds the decision: True, False, or absent (no verified token).
ORIGIN_DECISION = "tether_sdk_origin_allowed"


async def sdk_user(request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep) -> UserRow:
    """The credential of every /sdk route: the user of a valid user token, asked for from an
    allowed origin. One dependency rather than two: on the /sdk routes FastAPI's solver
    serves (all but /sdk/me, see DirectRoute), each layer costs ~0.04 ms a request."""
    user = await require_user_token(request, bearer, api_key)
    await check_origin(request, user)
    return user


async def check_origin(request: Request, user: UserRow) -> None:
    origin = request.headers.get("origin")
    if origin is None or is_own_origin(request, origin):
        return
    # A short autocommit read, as authentication's own: no transaction, released at once.
    async with request.app.state.readonly.connect() as connection:
        allowed = origin in await service.allowed_origins(connection, user.environment_id)
    request.scope.setdefault("state", {})[ORIGIN_DECISION] = allowed
    if not allowed:
        raise OriginNotAllowed()


def is_own_origin(request: Request, origin: str) -> bool:
    """The hosted modal calling its own server. Browsers set Sec-Fetch-Site themselves; pages
    cannot forge it."""
    own = service.origin_of(request.app.state.settings.public_url)
    return origin == own or request.headers.get("sec-fetch-site") == "same-origin"


SdkUser = Annotated[UserRow, Depends(sdk_user)]
