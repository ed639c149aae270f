"""End users (a customer's tenants) and the minting of their SDK tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from tether.accounts.models import Environment
from tether.api_keys.models import ApiKey
from tether.api_keys.service import KEY_QUERY, KeyPrincipal, principal_of
from tether.audit.models import AuditEvent
from tether.audit.service import event_values, record
from tether.db.base import new_id
from tether.db.engine import Executor
from tether.db.pagination import paginate
from tether.db.prepared import PreparedQuery, Record
from tether.errors import InsufficientScope, NotFound, UsernameTaken
from tether.security.keys import ParsedKey, digest
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
    await record(
        session, "user.created", target_type="user", target_id=user.id,
        environment_id=environment_id, details={"username": username},
    )  # fmt: skip
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
    await record(
        session, "user.updated", target_type="user", target_id=user.id,
        environment_id=environment_id, details={"changed": sorted(changes)},
    )  # fmt: skip
    return user


async def delete_user(session: AsyncSession, environment_id: str, ref: str) -> None:
    """Delete a user and, through the foreign keys, everything it owns. Its tokens stop
    working at once: every SDK request looks the user up."""
    user = await get_user(session, environment_id, ref)
    await record(
        session, "user.deleted", target_type="user", target_id=user.id,
        environment_id=environment_id, details={"username": user.username},
    )  # fmt: skip
    await session.execute(delete(User).where(User.id == user.id))


async def list_users(
    session: AsyncSession, environment_id: str, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    query = select(User).where(User.environment_id == environment_id)
    return await paginate(session, query, User.id, prefix="usr", limit=limit, cursor=cursor)


async def search_users(
    session: AsyncSession, environment_id: str, text: str, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """Users whose username contains `text` (any case), or whose userId is `text`: the
    dashboard's search box."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = select(User).where(
        User.environment_id == environment_id,
        or_(User.id == text, User.username.ilike(f"%{escaped}%", escape="\\")),
    )
    return await paginate(session, query, User.id, prefix="usr", limit=limit, cursor=cursor)


@dataclass(frozen=True, slots=True)
class UserRow:
    """What authentication and the read routes need of a user, read with Core."""

    id: str
    environment_id: str
    username: str
    full_name: str | None
    created_at: datetime


_USER_COLUMNS = (User.id, User.environment_id, User.username, User.full_name, User.created_at)


def _user_row(row: Record, prefix: str = "") -> UserRow:
    """A row's _USER_COLUMNS, each labelled `{prefix}{column}`, as a UserRow."""
    return UserRow(*(row[prefix + column.key] for column in _USER_COLUMNS))


def _find_user(column: InstrumentedAttribute[str]) -> PreparedQuery:
    return PreparedQuery(
        select(*_USER_COLUMNS).where(
            User.environment_id == bindparam("environment_id"), column == bindparam("ref")
        )
    )


# Built once; :ref is a userId or, as the other query, a username.
_FIND_USER_BY_ID = _find_user(User.id)
_FIND_USER_BY_USERNAME = _find_user(User.username)


async def find_user(readonly: AsyncEngine, environment_id: str, ref: str) -> UserRow | None:
    query = _FIND_USER_BY_ID if _USER_ID.fullmatch(ref) else _FIND_USER_BY_USERNAME
    row = await query.first(readonly, {"environment_id": environment_id, "ref": ref})
    return None if row is None else _user_row(row)


def _insert_user() -> PreparedQuery:
    """PostgreSQL's create: the user unless the username is taken, and its audit event, in one
    statement (so one round trip and its own transaction) that returns the new user's row."""
    new_user = (
        postgresql.insert(User)
        .values(
            id=bindparam("id"),
            environment_id=bindparam("environment_id"),
            username=bindparam("username"),
            full_name=bindparam("full_name"),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=[User.environment_id, User.username])
        .returning(*_USER_COLUMNS)
        .cte("new_user")
    )
    # The event's columns, all bound but target_id, the new user's id.
    columns = AuditEvent.__table__.c
    values = [
        new_user.c.id if c.name == "target_id" else bindparam(f"event_{c.name}", type_=c.type)
        for c in columns
    ]
    event = (
        insert(AuditEvent)
        .from_select([c.name for c in columns], select(*values).select_from(new_user))
        .cte("event")
    )
    return PreparedQuery(select(new_user).add_cte(event))


_INSERT_USER = _insert_user()


async def add_user(
    readonly: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    environment_id: str,
    *,
    username: str,
    full_name: str | None,
) -> UserRow:
    """POST /users. On PostgreSQL one autocommit statement inserts the user and its audit
    event (the ORM's transaction, savepoint and flushes cost ~4x as much); elsewhere
    `create_user` runs in a transaction of its own. Either way the database's unique
    constraint decides a race, and every loser gets 409 username_taken naming the winner."""
    if readonly.dialect.name != "postgresql":
        async with sessionmaker() as session:
            user = await create_user(
                session, environment_id, username=username, full_name=full_name
            )
            await session.commit()
        return UserRow(user.id, environment_id, user.username, user.full_name, user.created_at)
    user_id = new_id("usr")
    event = event_values(
        "user.created", target_type="user", target_id=user_id, environment_id=environment_id,
        account_id=None, details={"username": username},
    )  # fmt: skip
    params = {
        "id": user_id,
        "environment_id": environment_id,
        "username": username,
        "full_name": full_name,
        "now": event["created_at"],
        **{f"event_{name}": value for name, value in event.items()},
    }
    for _ in range(3):
        row = await _INSERT_USER.first(readonly, params)
        if row is not None:
            return _user_row(row)
        owner = await find_user(readonly, environment_id, username)
        if owner is not None:
            raise UsernameTaken(userId=owner.id)
        # The holder of the name was renamed or deleted in between: the name may be free.
    raise UsernameTaken("This username kept changing hands while the request ran; retry.")


@dataclass(frozen=True, slots=True)
class KeyAndUser:
    principal: KeyPrincipal
    user: UserRow | None
    token_ttl_seconds: int
    active_kid: str | None


async def authenticate_for_user(
    readonly: AsyncEngine, parsed: ParsedKey, presented: str, ref: str
) -> KeyAndUser:
    """Check a secret key (`parsed` is `presented`, already parsed) and read the user it
    names, the environment's token lifetime and its active signing key id, in one round trip:
    the hot path of the token route."""
    query = _KEY_AND_USER_BY_ID if _USER_ID.fullmatch(ref) else _KEY_AND_USER_BY_USERNAME
    row = await query.first(readonly, {"digest": digest(presented), "ref": ref})
    principal = principal_of(parsed, row)
    if principal.key_type != "secret":
        raise InsufficientScope("This route needs a secret API key.")
    assert row is not None
    user = None if row["user_id"] is None else _user_row(row, "user_")
    return KeyAndUser(principal, user, row["user_token_ttl_seconds"], row["active_kid"])


def _key_and_user(column: InstrumentedAttribute[str]) -> PreparedQuery:
    return PreparedQuery(
        KEY_QUERY.add_columns(
            *(c.label(f"user_{c.key}") for c in _USER_COLUMNS),
            Environment.user_token_ttl_seconds,
            TokenKey.id.label("active_kid"),
        )
        .outerjoin(
            User, and_(User.environment_id == ApiKey.environment_id, column == bindparam("ref"))
        )
        .outerjoin(
            TokenKey,
            and_(TokenKey.environment_id == ApiKey.environment_id, TokenKey.retired_at.is_(None)),
        )
    )


# Built once; :ref is a userId or, as the other query, a username.
_KEY_AND_USER_BY_ID = _key_and_user(User.id)
_KEY_AND_USER_BY_USERNAME = _key_and_user(User.username)


async def mint_for(tokens: TokenService, key_and_user: KeyAndUser) -> tuple[str, datetime]:
    if key_and_user.user is None:
        raise NotFound("No such user.")
    environment_id = key_and_user.principal.environment_id
    key = await tokens.signing_key(environment_id, key_and_user.active_kid)
    return tokens.mint(
        key,
        user_id=key_and_user.user.id,
        environment_id=environment_id,
        ttl_seconds=key_and_user.token_ttl_seconds,
    )


async def mint_token(
    db: Executor, tokens: TokenService, environment_id: str, ref: str
) -> tuple[str, datetime]:
    # The user, the lifetime and the active key id in one round trip.
    row = (
        await db.execute(
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
    key = await tokens.signing_key(environment_id, row.kid)
    return tokens.mint(
        key, user_id=row.id, environment_id=environment_id, ttl_seconds=row.user_token_ttl_seconds
    )
