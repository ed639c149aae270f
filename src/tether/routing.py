"""`DirectRoute`: FastAPI's APIRoute, with a short dependency solver for the routes that allow it.
`TetherRouter`: FastAPI's APIRouter, which turns away a path none of its routes can match.

FastAPI's solver is general: bodies, query, header and cookie parameters, dependencies with
`yield`, security scopes, thread pools and overrides, all considered on every request. Measured
in-process on `GET /users/{id}`, it and the handler around it took ~0.1 ms of a 0.35 ms request.
The hot routes need a small part of it: string path parameters, `Request`, `Response`, and
async dependencies made of the same (the credential headers are such dependencies). A
DirectRoute checks once, when the route is built, that its dependency tree holds nothing else,
and then solves it with a plain walk that calls what FastAPI would call, in the same order, with
the same per-request cache. A route with anything more is served by FastAPI's own handler, and
so is every request while `app.dependency_overrides` is set. OpenAPI, response validation and
serialization, and error handling are FastAPI's in both cases."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import (
    APIRoute,
    APIRouter,
    _effective_route_context_var,
    _get_scope_included_router,
    serialize_response,
)
from fastapi.utils import is_body_allowed_for_status_code
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope


@dataclass(frozen=True, slots=True)
class _Step:
    """One callable of the dependency tree and what it is given."""

    call: Callable[..., Awaitable[Any]]
    cache_key: tuple[Any, str]  # FastAPI's (call, scope): a planned tree has no security scopes
    dependencies: tuple[tuple[str | None, _Step, bool], ...]  # (argument, step, use_cache)
    path_params: tuple[tuple[str, str], ...]  # (argument, path parameter)
    request_params: tuple[str, ...]  # Request or HTTPConnection
    response_param: str | None

    def needs_response(self) -> bool:
        return self.response_param is not None or any(
            step.needs_response() for _, step, _ in self.dependencies
        )


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or (
        not inspect.isclass(call) and inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    )


def plan(dependant: Dependant) -> _Step | None:
    """The dependency tree as steps, or None if any part of it needs FastAPI's solver."""
    call = dependant.call
    if (
        call is None
        or not _is_async(call)
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.concurrency is not None
    ):
        return None
    path_params = []
    for field in dependant.path_params:
        # A plain `str` takes any path segment as it is: nothing to validate.
        if field.field_info.annotation is not str or field.field_info.metadata:
            return None
        path_params.append((field.name, field.alias))
    dependencies = []
    for sub in dependant.dependencies:
        step = plan(sub)
        if step is None:
            return None
        dependencies.append((sub.name, step, sub.use_cache))
    request_params = (dependant.request_param_name, dependant.http_connection_param_name)
    return _Step(
        call=call,
        cache_key=(call, dependant.scope or ""),
        dependencies=tuple(dependencies),
        path_params=tuple(path_params),
        request_params=tuple(name for name in request_params if name is not None),
        response_param=dependant.response_param_name,
    )


async def _solve(
    step: _Step, request: Request, response: Response | None, cache: dict[Any, Any]
) -> dict[str, Any]:
    """The arguments of `step.call`, as FastAPI's solver gives them: each dependency's own
    dependencies first, then the dependency itself unless this request already has its value."""
    values: dict[str, Any] = {}
    for name, sub, use_cache in step.dependencies:
        arguments = await _solve(sub, request, response, cache)
        if use_cache and sub.cache_key in cache:
            solved = cache[sub.cache_key]
        else:
            solved = await sub.call(**arguments)
        if name is not None:
            values[name] = solved
        cache.setdefault(sub.cache_key, solved)
    if step.path_params:
        path = request.path_params
        for name, key in step.path_params:
            values[name] = path[key]
    for name in step.request_params:
        values[name] = request
    if step.response_param is not None:
        values[step.response_param] = response
    return values


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # What FastAPI's handler was built from: the route as included (with the including
        # router's dependencies), as APIRoute.get_route_handler itself decides.
        route: Any = self
        context = _effective_route_context_var.get()
        if context is not None and context.original_route is self:
            route = context
        steps = plan(route.dependant)
        if (
            steps is None
            or route.body_field is not None
            or route.response_field is None
            or not isinstance(route.response_class, DefaultPlaceholder)
            or route.is_sse_stream
            or route.is_json_stream
        ):
            return handler
        return _direct_handler(route, steps, handler)


def _direct_handler(
    route: Any,
    steps: _Step,
    fallback: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    endpoint = steps.call
    overrides = route.dependency_overrides_provider
    needs_response = steps.needs_response()

    async def handler(request: Request) -> Response:
        if overrides is not None and overrides.dependency_overrides:
            return await fallback(request)
        sub_response: Response | None = None
        if needs_response:
            sub_response = Response()
            del sub_response.headers["content-length"]
            sub_response.status_code = None  # type: ignore[assignment]  # as FastAPI: unset
        raw = await endpoint(**await _solve(steps, request, sub_response, {}))
        if isinstance(raw, Response):
            return raw
        content = await serialize_response(
            field=route.response_field,
            response_content=raw,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            dump_json=True,
        )
        status = route.status_code
        if sub_response is not None and sub_response.status_code:
            status = sub_response.status_code
        response = Response(content, status_code=status or 200, media_type="application/json")
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        if sub_response is not None:
            response.headers.raw.extend(sub_response.headers.raw)
        return response

    return handler


class TetherRouter(APIRouter):
    """An APIRouter that says no at once to a path that starts like none of its routes.

    FastAPI 0.165 matches an included router by trying each of its routes in turn, at ~4 us a
    try, before it moves on to the next router; measured, GET /sdk/me spent ~15% of its
    instructions failing to match the users router's routes. A route's path can only match a
    path that begins with the route's literal head (the part before its first `{`), so a router
    whose routes' heads all differ from the path cannot match it, and the rest is FastAPI's.
    A route without a literal path (a nested router) has the empty head, which begins every
    path."""

    _heads: tuple[tuple[int, int], tuple[str, ...]] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Included under a prefix, its routes' paths are not what a request's path begins
        # with: then FastAPI alone decides.
        included = _get_scope_included_router(scope)
        prefixed = included is not None and included.include_context.prefix
        if not prefixed and not get_route_path(scope).startswith(self.heads()):
            return Match.NONE, {}
        return super().matches(scope)

    def heads(self) -> tuple[str, ...]:
        """Its routes' literal heads, worked out again when a route is added."""
        version = (self._routes_version, len(self.routes))
        if self._heads is None or self._heads[0] != version:
            heads = {route_head(route) for route in self.routes}
            self._heads = (version, tuple(sorted(heads)))
        return self._heads[1]


def route_head(route: object) -> str:
    path = getattr(route, "path", None)
    return path.split("{", 1)[0] if isinstance(path, str) else ""
