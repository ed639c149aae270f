"""What TetherMiddleware reports for each finished request: its metrics and one log line.

The route is the matched route's template (`/users/{user_id}/token`), never the raw path,
which carries ids, nor the query string, which can carry a tenant token. The account and
environment are the ones the request's credential resolved to, noted by the authentication
layer in the request's state: no query is made for them."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.types import Scope

from tether.audit.service import current_actor
from tether.ops.logs import RequestLog
from tether.ops.metrics import METHODS, UNMATCHED, RequestMetrics


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestObserver:
    def __init__(self) -> None:
        self.metrics = RequestMetrics()
        self.log = RequestLog()

    def __call__(self, scope: Scope, status: int, started: float) -> None:
        seconds = perf_counter() - started
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        route = route_template(scope)
        self.metrics.observe(method, route, status, seconds)
        if self.log.enabled():
            self.log.write(self.fields(scope, method, route, status, seconds))

    @staticmethod
    def fields(
        scope: Scope, method: str, route: str, status: int, seconds: float
    ) -> dict[str, Any]:
        state = scope.get("state") or {}
        request_id = state.get("request_id")
        account_id = state.get("account_id")
        if account_id is None:
            # Routes that name their actor for the audit log only (an admin's login, the
            # dashboard's session) still say whose request it was.
            actor = current_actor()
            if actor.request_id is not None and actor.request_id == request_id:
                account_id = actor.account_id
        return {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": request_id,
            "account_id": account_id,
            "environment_id": state.get("environment_id"),
        }
