"""Accounts, their environments and members, and admin login sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import ENVIRONMENT_NAMES, Account, AdminSession, Environment, Member
from tether.audit.service import acting, record
from tether.db.base import utcnow
from tether.db.engine import Executor
from tether.errors import Conflict, InvalidCredentials, InvalidToken, NotFound, TokenExpired
from tether.security.keys import digest, generate_admin_token
from tether.security.passwords import verify_password


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "A member with this email already exists."


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    member_id: str
    account_id: str
    session_id: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_account(
    session: AsyncSession, *, name: str, email: str, password_hash: str
) -> tuple[Account, Member, list[Environment]]:
    email = normalize_email(email)
    if await session.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise EmailTaken()
    account = Account(name=name)
    session.add(account)
    await session.flush()
    environments = [Environment(account_id=account.id, name=env) for env in ENVIRONMENT_NAMES]
    member = Member(account_id=account.id, email=email, password_hash=password_hash)
    session.add_all([*environments, member])
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create of the same email won the race
        raise EmailTaken() from exc
    return account, member, environments


async def login(
    session: AsyncSession, *, email: str, password: str, ttl_seconds: int
) -> tuple[str, datetime]:
    member = await session.scalar(select(Member).where(Member.email == normalize_email(email)))
    # Unknown email and wrong password do the same work and give the same answer.
    if not await verify_password(password, member.password_hash if member else None):
        raise InvalidCredentials()
    assert member is not None
    acting("admin", member.id, member.account_id)
    await record(session, "admin.login", target_type="member", target_id=member.id)
    return await open_session(session, member.id, ttl_seconds)


async def open_session(
    session: AsyncSession, member_id: str, ttl_seconds: int
) -> tuple[str, datetime]:
    """A new admin token for a member whose password was checked."""
    token = generate_admin_token()
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(AdminSession(member_id=member_id, digest=digest(token), expires_at=expires_at))
    await session.flush()
    return token, expires_at


async def authenticate_admin(db: Executor, token: str) -> AdminPrincipal:
    row = (
        await db.execute(
            select(
                AdminSession.id,
                AdminSession.member_id,
                AdminSession.expires_at,
                AdminSession.revoked_at,
                Member.account_id,
            )
            .join(Member, Member.id == AdminSession.member_id)
            .where(AdminSession.digest == digest(token))
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise InvalidToken("The admin token is not valid.")
    if row.expires_at <= utcnow():
        raise TokenExpired("The admin session has expired; log in again.")
    return AdminPrincipal(member_id=row.member_id, account_id=row.account_id, session_id=row.id)


async def logout(session: AsyncSession, principal: AdminPrincipal) -> None:
    admin_session = await session.get(AdminSession, principal.session_id)
    if admin_session is not None and admin_session.revoked_at is None:
        admin_session.revoked_at = utcnow()
        await session.flush()


async def get_account(session: AsyncSession, account_id: str) -> tuple[Account, list[Environment]]:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound()
    environments = await session.scalars(
        select(Environment).where(Environment.account_id == account_id).order_by(Environment.name)
    )
    return account, list(environments)


async def get_member(session: AsyncSession, member_id: str) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound("No such member.")
    return member


async def get_environment(session: AsyncSession, account_id: str, ref: str) -> Environment:
    """An environment of the account, by id or by name; anything else is a 404."""
    environment = await session.scalar(
        select(Environment).where(
            Environment.account_id == account_id,
            or_(Environment.id == ref, Environment.name == ref),
        )
    )
    if environment is None:
        raise NotFound("No such environment.")
    return environment


async def update_environment(
    session: AsyncSession, environment: Environment, changes: dict[str, Any]
) -> Environment:
    for field, value in changes.items():
        setattr(environment, field, value)
    await session.flush()
    await record(
        session,
        "environment.updated",
        target_type="environment",
        target_id=environment.id,
        environment_id=environment.id,
        account_id=environment.account_id,
        details={"changed": sorted(changes)},
    )
    return environment
