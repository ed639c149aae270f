"""The audit log page, and its one hook for the audit events that issue 8 records.

Until Tether records audit events, `audit_events` answers None and the page says that nothing
is recorded yet. To fill the page, make `audit_events` read the account's events (newest
first, a page at a time) and return them as `AuditPage`; the template already shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import ViewerDep
from tether.dashboard.web import render, with_query
from tether.db.engine import SessionDep

router = dashboard_router()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    occurred_at: datetime
    actor: str  # who: an admin's email, "API key tether_sk_prod_…abcd", "tether CLI"
    action: str  # what: "api_key.rolled", "user.deleted", ...
    target: str  # to what: an id or a name
    environment: str | None  # development, production, or None for the account itself
    source: str | None  # from where: an IP address


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


async def audit_events(
    session: AsyncSession, account_id: str, *, cursor: str | None
) -> AuditPage | None:
    """HOOK (issue 8): the account's audit events, newest first, or None while this build of
    Tether records none."""
    return None


@router.get("/{env}/audit-log")
async def audit_log_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep, cursor: str = ""
) -> Response:
    await environment_of(session, viewer, env)
    page = await audit_events(session, viewer.principal.account_id, cursor=cursor or None)
    next_url = None
    if page is not None and page.next_cursor:
        next_url = with_query(section_url(env, "audit-log"), cursor=page.next_cursor)
    return render(
        "audit_log.html",
        layout(request, viewer, env, "audit-log", page=page, next_url=next_url),
    )
