"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import Request, Response

from tether.config import Settings
from tether.db.migrate import current_revision, head_revision
from tether.errors import (
    DatabaseUnavailable,
    InvalidToken,
    MissingCredentials,
    NotFound,
    TetherError,
    error_responses,
)
from tether.ops import metrics
from tether.routing import TetherRouter
from tether.schemas import Model

router = TetherRouter(tags=["operations"])


class Health(Model):
    status: str


class NotMigrated(TetherError):
    status, code = 503, "migrations_pending"
    detail = "The database schema is behind; run `tether db upgrade`."


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses=error_responses(503))
async def readyz(request: Request) -> Health:
    """The database answers within two seconds and its schema is at the newest migration."""
    try:
        async with asyncio.timeout(2):
            async with request.app.state.engine.connect() as connection:
                revision = await current_revision(connection)
    except Exception as exc:
        raise DatabaseUnavailable() from exc
    if revision != head_revision():
        raise NotMigrated()
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}},
        },
        **error_responses(401, 404),
    },
)
async def prometheus_metrics(request: Request) -> Response:
    """Request counts and latencies by route template and status, and each process's
    database pool, summed over every worker of this server. `404` when
    TETHER_METRICS_ENABLED is false; with TETHER_METRICS_TOKEN set, only a scraper that
    sends it as a bearer token reads them."""
    settings: Settings = request.app.state.settings
    if not settings.metrics_enabled:
        raise NotFound()
    if settings.metrics_token is not None:
        _check_token(request, settings.metrics_token.get_secret_value())
    metrics.sample_pool(request.app.state.engine)
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def _check_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if not presented or scheme.lower() != "bearer":
        raise MissingCredentials("Send the metrics token as `Authorization: Bearer <token>`.")
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise InvalidToken("The metrics token is not valid.")
