from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from tether.db.migrate import current_revision, head_revision
from tether.errors import DatabaseUnavailable, TetherError, error_responses
from tether.schemas import Model

router = APIRouter(tags=["operations"])


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
