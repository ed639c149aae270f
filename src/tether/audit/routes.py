from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tether.accounts.service import get_environment
from tether.api_keys.auth import AdminAuth
from tether.audit import service
from tether.audit.models import AuditEvent
from tether.audit.schemas import Actor, AuditEventOut
from tether.db.engine import SessionDep
from tether.errors import error_responses
from tether.routing import TetherRouter
from tether.schemas import Cursor, Limit, Page

router = TetherRouter(prefix="/admin", tags=["admin"])


def event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        action=event.action,
        actor=Actor(type=event.actor_type, id=event.actor_id),
        target_type=event.target_type,
        target_id=event.target_id,
        environment_id=event.environment_id,
        ip=event.ip,
        request_id=event.request_id,
        details=event.details,
        created_at=event.created_at,
    )


@router.get("/audit-events", responses=error_responses(401, 403, 404, 422))
async def list_audit_events(
    admin: AdminAuth,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    environment: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEventOut]:
    """Who did what to keys, signing keys, integrations, settings, users and installations,
    when and from where; newest first."""
    environment_id = None
    if environment is not None:
        environment_id = (await get_environment(session, admin.account_id, environment)).id
    events, next_cursor = await service.list_events(
        session,
        admin.account_id,
        environment_id=environment_id,
        action=action,
        limit=limit,
        cursor=cursor,
    )
    return Page(data=[event_out(event) for event in events], next_cursor=next_cursor)
