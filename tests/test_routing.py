"""DirectRoute serves a route as FastAPI's own handler would, or leaves it to that handler;
TetherRouter turns away, without trying its routes, a path none of them can match.

Each behaviour is checked twice: on a router of DirectRoutes and on the same router of plain
APIRoutes, and the answers must be equal. A counter on FastAPI's solver shows which path ran.
(No `from __future__ import annotations` here: FastAPI must see the local dependencies' types.)"""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.dependencies.utils import solve_dependencies
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import BaseModel

from tether.main import create_app
from tether.routing import DirectRoute, TetherRouter, plan

bearer_scheme = HTTPBearer(auto_error=False)


class Out(BaseModel):
    name: str
    calls: int


class Calls:
    def __init__(self) -> None:
        self.count = 0


def make_app(route_class: type[APIRoute], calls: Calls) -> FastAPI:
    async def counted() -> int:
        calls.count += 1
        return calls.count

    async def needs_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> str:
        if credentials is None or credentials.credentials != "right":
            raise HTTPException(401, "no")
        return credentials.credentials

    async def named(
        name: str,
        token: Annotated[str, Depends(needs_token)],
        first: Annotated[int, Depends(counted)],
    ) -> str:
        return f"{name}:{token}:{first}"

    async def sets_header(response: Response) -> None:
        response.headers["x-dependency"] = "yes"
        response.status_code = 202

    async def guard(request: Request) -> None:
        if request.headers.get("x-blocked"):
            raise HTTPException(403, "blocked")

    router = APIRouter(route_class=route_class)

    @router.get("/things/{name}")
    async def thing(
        name: Annotated[str, Path(description="any name")],
        value: Annotated[str, Depends(named)],
        again: Annotated[int, Depends(counted)],  # cached: the same call as in `named`
        fresh: Annotated[int, Depends(counted, use_cache=False)],
        response: Response,
    ) -> Out:
        response.headers["cache-control"] = "no-store"
        return Out(name=f"{value}|{again}|{fresh}", calls=calls.count)

    @router.get("/headers", dependencies=[Depends(sets_header)])
    async def headers() -> Out:
        return Out(name="headers", calls=0)

    @router.get("/raw")
    async def raw() -> Out:
        return Response(b"raw", media_type="text/plain")  # type: ignore[return-value]

    @router.get("/wrong")
    async def wrong() -> Out:
        return {"name": 1}  # type: ignore[return-value]

    app = FastAPI()
    app.include_router(router, dependencies=[Depends(guard)])
    return app


@pytest.fixture
def solver_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """How many requests went through FastAPI's own dependency solver."""
    calls = Calls()
    solve = solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        if "dependency_cache" not in kwargs:  # the request's top level, not a recursion
            calls.count += 1
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


async def request(
    app: FastAPI,
    method: str,
    path: str,
    *,
    root_path: str = "",
    raise_app_exceptions: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    transport = httpx.ASGITransport(
        app=app, root_path=root_path, raise_app_exceptions=raise_app_exceptions
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def answers(
    route_class: type[APIRoute], method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    app = make_app(route_class, Calls())
    response = await request(app, method, path, raise_app_exceptions=False, **kwargs)
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return response.status_code, headers, response.content


AUTH = {"authorization": "Bearer right"}
CASES = [
    ("/things/a%20b", {"headers": AUTH}),
    ("/things/x", {}),  # no credential: the sub-dependency's 401
    ("/things/x", {"headers": {"authorization": "Bearer wrong"}}),
    ("/things/x", {"headers": {**AUTH, "x-blocked": "1"}}),  # the including router's 403
    ("/headers", {}),
    ("/raw", {}),
    ("/wrong", {}),  # a response that fails its model: 500 on both
]


class TestSameAnswers:
    @pytest.mark.parametrize(("path", "kwargs"), CASES)
    async def test_as_fastapi_answers(
        self, solver_calls: Calls, path: str, kwargs: dict[str, Any]
    ) -> None:
        expected = await answers(APIRoute, "GET", path, **kwargs)
        plain_solves = solver_calls.count
        assert plain_solves == 1
        assert await answers(DirectRoute, "GET", path, **kwargs) == expected
        assert solver_calls.count == plain_solves  # FastAPI's solver did not run

    async def test_dependency_cache_and_response(self) -> None:
        status, headers, body = await answers(DirectRoute, "GET", "/things/n", headers=AUTH)
        assert status == 200
        assert headers["cache-control"] == "no-store"
        # counted ran once for `named` and `again` together, and once more for `fresh`.
        assert body == b'{"name":"n:right:1|1|2","calls":2}'

    async def test_status_and_headers_set_by_a_dependency(self) -> None:
        status, headers, _ = await answers(DirectRoute, "GET", "/headers")
        assert (status, headers["x-dependency"]) == (202, "yes")

    async def test_overrides_are_left_to_fastapi(self, solver_calls: Calls) -> None:
        app = make_app(DirectRoute, Calls())
        app.dependency_overrides[bearer_scheme] = lambda: HTTPAuthorizationCredentials(
            scheme="Bearer", credentials="right"
        )
        response = await request(app, "GET", "/things/x")
        assert response.status_code == 200
        assert solver_calls.count == 1


def dependant_of(endpoint: Callable[..., Any]) -> Any:
    return APIRoute("/p/{name}", endpoint).dependant


def plain_function() -> None:
    return None


async def yielding() -> AsyncIterator[None]:
    yield None


class TestPlan:
    async def test_plain_kinds_are_planned(self) -> None:
        async def endpoint(
            name: str,
            request: Request,
            response: Response,
            token: Annotated[Any, Depends(bearer_scheme)],
        ) -> None:
            return None

        assert plan(dependant_of(endpoint)) is not None

    @pytest.mark.parametrize(
        "kind",
        ["query", "constrained path", "typed path", "yield", "sync", "scopes", "sync endpoint"],
    )
    async def test_anything_else_is_left_to_fastapi(self, kind: str) -> None:
        endpoints: dict[str, Callable[..., Any]] = {}

        async def query(name: str, q: Annotated[str, Query()]) -> None: ...
        async def constrained(name: Annotated[str, Path(max_length=3)]) -> None: ...
        async def typed(name: int) -> None: ...
        async def with_yield(name: str, dep: Annotated[None, Depends(yielding)]) -> None: ...
        async def with_sync(name: str, dep: Annotated[None, Depends(plain_function)]) -> None: ...
        async def scopes(name: str, scopes: SecurityScopes) -> None: ...
        def sync_endpoint(name: str) -> None: ...

        endpoints.update(
            {
                "query": query,
                "constrained path": constrained,
                "typed path": typed,
                "yield": with_yield,
                "sync": with_sync,
                "scopes": scopes,
                "sync endpoint": sync_endpoint,
            }
        )
        assert plan(dependant_of(endpoints[kind])) is None


def test_the_hot_routes_are_served_directly(settings: Any) -> None:
    """Adding a parameter of another kind to one of these routes silently costs ~20% of its
    throughput: this says so."""
    app = create_app(settings)
    direct = set()
    for route in app.routes:
        effective = getattr(route, "effective_candidates", None)
        for candidate in effective() if effective else []:
            dependant = getattr(candidate, "dependant", None)
            original = getattr(candidate, "original_route", None)
            if isinstance(original, DirectRoute) and dependant and plan(dependant):
                direct |= {(method, candidate.path) for method in candidate.methods}
    assert {
        ("GET", "/users/{user_id}/token"),
        ("GET", "/user/{user_id}/token"),
        ("GET", "/users/{user_id}"),
        ("GET", "/sdk/me"),
    } <= direct


def router_app(tried: list[str]) -> tuple[FastAPI, TetherRouter]:
    """Two TetherRouters; `tried` names each route FastAPI tries to match."""

    class Recorded(APIRoute):
        def matches(self, scope: Any) -> Any:
            tried.append(self.path)
            return super().matches(scope)

    users = TetherRouter(route_class=Recorded)
    sdk = TetherRouter(prefix="/sdk", route_class=Recorded)

    @users.get("/users/{user_id}")
    async def get_user(user_id: str) -> str:
        return user_id

    @users.post("/users")
    async def create_user() -> str:
        return "created"

    @sdk.get("/me")
    async def me() -> str:
        return "me"

    app = FastAPI()
    app.include_router(users)
    app.include_router(sdk)
    return app, sdk


async def test_a_router_none_of_whose_routes_can_match_is_passed_over_untried() -> None:
    tried: list[str] = []
    app, _ = router_app(tried)
    assert (await request(app, "GET", "/sdk/me")).json() == "me"
    assert tried == ["/sdk/me", "/sdk/me"]  # chosen, then matched inside its router
    tried.clear()
    assert (await request(app, "GET", "/users/usr_1")).json() == "usr_1"
    assert "/sdk/me" not in tried


async def test_a_router_answers_as_fastapi_does_for_every_kind_of_path() -> None:
    app, _ = router_app([])
    assert (await request(app, "POST", "/users")).json() == "created"
    assert (await request(app, "DELETE", "/users/usr_1")).status_code == 405  # a route's head
    assert (await request(app, "GET", "/nowhere")).status_code == 404
    assert (await request(app, "GET", "/sdk/me/")).status_code == 307  # to /sdk/me, as FastAPI does
    # Behind a proxy's root path, routes match the path without it.
    assert (await request(app, "GET", "/api/sdk/me", root_path="/api")).json() == "me"


async def test_a_router_included_under_a_prefix_still_matches() -> None:
    app, sdk = router_app([])
    app.include_router(sdk, prefix="/v1")
    assert (await request(app, "GET", "/v1/sdk/me")).json() == "me"


async def test_a_route_added_after_the_first_request_is_found() -> None:
    app, sdk = router_app([])
    assert (await request(app, "GET", "/sdk/config")).status_code == 404

    @sdk.get("/config")
    async def config() -> str:
        return "config"

    assert (await request(app, "GET", "/sdk/config")).json() == "config"


def test_the_api_routers_pass_over_paths_they_cannot_match(settings: Any) -> None:
    """Each router a request passes before its own costs it ~4 us a route unless it is a
    TetherRouter (GET /sdk/me comes after the users router)."""
    app = create_app(settings)
    routers = [getattr(route, "original_router", None) for route in app.routes]
    api = [router for router in routers if router is not None and router.include_in_schema]
    assert len(api) > 10
    assert all(isinstance(router, TetherRouter) for router in api)
