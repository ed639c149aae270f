"""Audit events, written in the same transaction as the change they record.

Who acts is held in a context variable, set where a credential is identified (and by the CLI
and the OAuth callback), so services record events without passing the actor around."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from tether.accounts.models import Environment
from tether.audit.models import AuditEvent
from tether.db.base import new_id, utcnow
from tether.db.pagination import paginate


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # admin, secret_key, publishable_key, user, cli, system
    id: str | None = None
    account_id: str | None = None
    ip: str | None = None
    request_id: str | None = None


SYSTEM = Actor("system")
_actor: ContextVar[Actor] = ContextVar("tether_actor", default=SYSTEM)


def act_as(actor: Actor) -> None:
    _actor.set(actor)


def note_request(request: Request, type_: str = "anonymous", id_: str | None = None,
                 account_id: str | None = None) -> None:  # fmt: skip
    """The actor of this request: its IP and request id, and who, once known."""
    ip = request.client.host if request.client else None
    request_id = request.scope.get("state", {}).get("request_id")
    _actor.set(Actor(type_, id_, account_id, ip, request_id))


def acting(type_: str, id_: str | None, account_id: str | None) -> None:
    """Who acts in this request, keeping the request's IP and id already noted."""
    _actor.set(replace(_actor.get(), type=type_, id=id_, account_id=account_id))


def current_actor() -> Actor:
    return _actor.get()


async def record(
    session: AsyncSession,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    environment_id: str | None = None,
    account_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    if account_id is None and environment_id is not None and _actor.get().account_id is None:
        account_id = await session.scalar(
            select(Environment.account_id).where(Environment.id == environment_id)
        )
    values = event_values(
        action, target_type=target_type, target_id=target_id,
        environment_id=environment_id, account_id=account_id, details=details,
    )  # fmt: skip
    session.add(AuditEvent(**values))


def event_values(
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    environment_id: str | None,
    account_id: str | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    """Every column of an audit event of the current actor, by column name: for `record`,
    and for statements that insert their event themselves."""
    actor = _actor.get()
    return {
        "id": new_id("evt"),
        "account_id": account_id or actor.account_id,
        "environment_id": environment_id,
        "action": action,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "target_type": target_type,
        "target_id": target_id,
        "ip": actor.ip,
        "request_id": actor.request_id,
        "details": details or {},
        "created_at": utcnow(),
    }


async def list_events(
    session: AsyncSession,
    account_id: str,
    *,
    environment_id: str | None,
    action: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEvent], str | None]:
    """Newest first."""
    query = select(AuditEvent).where(AuditEvent.account_id == account_id)
    if environment_id is not None:
        query = query.where(AuditEvent.environment_id == environment_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return await paginate(
        session, query, AuditEvent.id, prefix="evt", limit=limit, cursor=cursor, newest_first=True
    )
