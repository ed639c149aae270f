"""End users (a customer's tenants) and the minting of their SDK tokens."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import Environment
from tether.db.pagination import paginate
from tether.errors import NotFound, UsernameTaken
from tether.users.models import TokenKey, User
from tether.users.tokens import TokenService

_USER_ID = re.compile(r"usr_[0-9a-f]{32}")


def _by_ref(environment_id: str, ref: str) -> ColumnElement[bool]:
    # Usernames never look like user ids (see schemas), so at most one row matches.
    column = User.id if _USER_ID.fullmatch(ref) else User.username
    return and_(User.environment_id == environment_id, column == ref)


async def get_user(session: AsyncSession, environment_id: str, ref: str) -> User:
    """A user of the environment by userId or username; anything else is a 404."""
    user = await session.scalar(select(User).where(_by_ref(environment_id, ref)))
    if user is None:
        raise NotFound("No such user.")
    return user


async def _username_owner(session: AsyncSession, environment_id: str, username: str) -> str:
    user_id = await session.scalar(
        select(User.id).where(User.environment_id == environment_id, User.username == username)
    )
    assert user_id is not None
    return user_id


async def create_user(
    session: AsyncSession, environment_id: str, *, username: str, full_name: str | None
) -> User:
    """Create a user; the database's unique constraint decides races, and every loser gets
    409 username_taken naming the winner."""
    user = User(environment_id=environment_id, username=username, full_name=full_name)
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise UsernameTaken(
            userId=await _username_owner(session, environment_id, username)
        ) from None
    return user


async def update_user(
    session: AsyncSession, environment_id: str, ref: str, changes: dict[str, Any]
) -> User:
    user = await get_user(session, environment_id, ref)
    try:
        # Changes go inside: begin_nested() flushes what is pending before its SAVEPOINT.
        async with session.begin_nested():
            for field, value in changes.items():
                setattr(user, field, value)
    except IntegrityError:
        owner = await _username_owner(session, environment_id, changes["username"])
        raise UsernameTaken(userId=owner) from None
    return user


async def delete_user(session: AsyncSession, environment_id: str, ref: str) -> None:
    """Delete a user and, through the foreign keys, everything it owns. Its tokens stop
    working at once: every SDK request looks the user up."""
    user = await get_user(session, environment_id, ref)
    await session.execute(delete(User).where(User.id == user.id))


async def list_users(
    session: AsyncSession, environment_id: str, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    query = select(User).where(User.environment_id == environment_id)
    return await paginate(session, query, User.id, prefix="usr", limit=limit, cursor=cursor)


async def mint_token(
    session: AsyncSession, tokens: TokenService, environment_id: str, ref: str
) -> tuple[str, datetime]:
    # The user, the lifetime and the active key id in one round trip.
    row = (
        await session.execute(
            select(User.id, Environment.user_token_ttl_seconds, TokenKey.id.label("kid"))
            .join(Environment, Environment.id == User.environment_id)
            .outerjoin(
                TokenKey,
                (TokenKey.environment_id == User.environment_id) & TokenKey.retired_at.is_(None),
            )
            .where(_by_ref(environment_id, ref))
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such user.")
    key = await tokens.signing_key(session, environment_id, row.kid)
    return tokens.mint(
        key, user_id=row.id, environment_id=environment_id, ttl_seconds=row.user_token_ttl_seconds
    )
