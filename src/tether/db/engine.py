"""Engine and sessions. One dependency owns the transaction: it commits when the route
returns and rolls back when it raises; services only flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Row, Select, event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tether.config import Settings


def make_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, **overrides
        )
        _serialize_sqlite_writes(engine)
        return engine
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_pre_ping": settings.db_pool_pre_ping,
        **overrides,
    }
    return create_async_engine(settings.database_url, **options)


def _serialize_sqlite_writes(engine: AsyncEngine) -> None:
    # A deferred SQLite transaction that reads and then writes fails at once with "database is
    # locked" when another writer got there first; busy_timeout does not help it. Taking the
    # write lock at BEGIN makes concurrent transactions wait their turn instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit mode: a read needs no BEGIN and COMMIT, which are two of
    the three round trips of a one-query request."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
        await session.commit()


# scope="function": the commit runs when the route returns, before the response is sent, so a
# client never sees a 200 for a write that did not commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.readonly.connect() as connection:
        yield connection


# For routes that only read: one autocommit connection, Core queries, no ORM session.
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection, scope="function")]

# What the services that only run Core statements accept: a session or a bare connection.
Executor = AsyncSession | AsyncConnection

# A select, or a row, of any columns.
AnySelect = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]
