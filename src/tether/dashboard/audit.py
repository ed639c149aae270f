"""Account > Audit log: the events GET /admin/audit-events lists, read through the same service
(tether.audit.service.list_events), newest first, for both environments of the account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tether.audit.service import list_events
from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import Viewer, ViewerDep
from tether.dashboard.web import render, with_query
from tether.db.engine import SessionDep

router = dashboard_router()

PAGE_SIZE = 50

_ACTORS = {
    "admin": "Admin",
    "secret_key": "Secret key",
    "publishable_key": "Publishable key",
    "user": "User",
    "cli": "tether command",
    "system": "System",
    "anonymous": "Anonymous",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    occurred_at: datetime
    actor: str  # who: "You", "Admin", "Secret key", "tether command", "System"
    actor_detail: str | None  # which one: an email, a member, key or user id
    action: str  # what: api_key.rolled, user.deleted, ...
    target: str  # to what: its type and id
    environment: str | None  # development, production, or None for the account itself
    source: str | None  # from where: an IP address
    details: str  # the names and types that changed (events never carry a secret)


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def _actor(viewer: Viewer, actor_type: str, actor_id: str | None) -> tuple[str, str | None]:
    if actor_type == "admin" and actor_id == viewer.principal.member_id:
        return "You", viewer.member_email
    return _ACTORS.get(actor_type, actor_type), actor_id


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _details(details: dict[str, Any]) -> str:
    return "; ".join(f"{key}: {_value(value)}" for key, value in sorted(details.items()))


async def audit_events(
    session: AsyncSession,
    viewer: Viewer,
    environments: dict[str, str],
    *,
    cursor: str | None,
) -> AuditPage:
    """The account's audit events, newest first, a page at a time."""
    events, next_cursor = await list_events(
        session,
        viewer.principal.account_id,
        environment_id=None,
        action=None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    entries = [
        AuditEntry(
            occurred_at=event.created_at,
            actor=_actor(viewer, event.actor_type, event.actor_id)[0],
            actor_detail=_actor(viewer, event.actor_type, event.actor_id)[1],
            action=event.action,
            target=" ".join(part for part in (event.target_type, event.target_id) if part),
            environment=environments.get(event.environment_id or ""),
            source=event.ip,
            details=_details(event.details or {}),
        )
        for event in events
    ]
    return AuditPage(entries, next_cursor)


@router.get("/{env}/audit-log")
async def audit_log_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep, cursor: str = ""
) -> Response:
    await environment_of(session, viewer, env)
    environments = {
        (await environment_of(session, viewer, name)).id: name for name in viewer.environments
    }
    page = await audit_events(session, viewer, environments, cursor=cursor or None)
    next_url = None
    if page.next_cursor:
        next_url = with_query(section_url(env, "audit-log"), cursor=page.next_cursor)
    return render(
        "audit_log.html",
        layout(
            request, viewer, env, "audit-log", page=page, next_url=next_url, first_page=not cursor
        ),
    )
