"""Hot-path statements on the driver's own connection.

SQLAlchemy's execution layer (execution context, result processing, the greenlet hop of its
async API) costs ~0.2 ms of CPU per statement under load, about as much as everything else a
token request does. A `PreparedQuery` is a Core select (on PostgreSQL, possibly with
data-modifying CTEs), compiled once; on PostgreSQL it runs as asyncpg's `fetchrow` on the
pooled connection SQLAlchemy checked out (asyncpg prepares and caches the statement per
connection), on other dialects through SQLAlchemy as usual. The pool, its limits and its
metrics stay SQLAlchemy's.

Parameters go through their types' bind processors, as SQLAlchemy would send them. Results
do not go through result processors: only for columns asyncpg returns as SQLAlchemy would
(text, integers, and `timestamptz` as aware UTC datetimes, as UTCDateTime makes them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.util import greenlet_spawn

from tether.db.engine import AnySelect
from tether.errors import is_database_outage

# A row by its labels: SQLAlchemy's RowMapping, or an asyncpg Record.
Record = Mapping[str, Any]
# Each positional parameter's name and bind processor, if its type has one.
_Binds = tuple[tuple[str, Callable[[Any], Any] | None], ...]


class PreparedQuery:
    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._postgres: tuple[str, _Binds] | None = None

    def _compiled(self, dialect: Dialect) -> tuple[str, _Binds]:
        if self._postgres is None:
            compiled = self.statement.compile(dialect=dialect)
            assert compiled.positiontup is not None  # asyncpg's paramstyle is positional
            binds = tuple(
                (name, compiled.binds[name].type.bind_processor(dialect))
                for name in compiled.positiontup
            )
            self._postgres = (str(compiled), binds)
        return self._postgres

    async def first(self, engine: AsyncEngine, params: Mapping[str, Any]) -> Record | None:
        """The first row, or None. `engine` is the autocommit one (see `read_only`): the
        statement is its own transaction, and holds a pooled connection only while it runs."""
        if engine.dialect.driver != "asyncpg":
            async with engine.connect() as connection:
                row = (await connection.execute(self.statement, dict(params))).first()
            return None if row is None else cast(Record, row._mapping)
        sql, binds = self._compiled(engine.dialect)
        args = [params[n] if bind is None else bind(params[n]) for n, bind in binds]
        # The pool's connection itself: no SQLAlchemy Connection around it, whose set-up and
        # autocommit switch cost as much again as the statement.
        pooled = await engine.raw_connection()
        driver = pooled.driver_connection
        assert driver is not None  # a checked-out connection has its driver's
        try:
            record: Record | None = await driver.fetchrow(sql, *args)
        except Exception as exc:
            # What SQLAlchemy does for its own statements: a connection that broke never goes
            # back to the pool, and a driver error becomes SQLAlchemy's (InterfaceError,
            # DBAPIError...), which errors.py knows.
            broken = driver.is_closed() or is_database_outage(exc)
            if broken:
                pooled.invalidate(exc)
            raise DBAPIError.instance(
                sql,
                None,
                exc,
                Exception,
                hide_parameters=True,
                connection_invalidated=broken,
                dialect=engine.dialect,
            ) from exc
        except BaseException:
            pooled.invalidate()  # cancelled mid-statement: the connection's state is unknown
            raise
        finally:
            if _has_room(engine.pool):
                # Back in the pool's queue: no IO, so no greenlet (~10 us a request).
                pooled.close()
            else:
                # In a greenlet, as SQLAlchemy's async API returns connections: a full pool
                # (an overflow connection coming back) closes the connection instead, and
                # that close is IO. An invalidated connection's return does none, so this
                # never waits on a cancelled path.
                await greenlet_spawn(pooled.close)
        return record


def _has_room(pool: Pool) -> bool:
    """Whether a connection coming back goes into the pool's queue (which does no IO: the
    reset on return is a rollback, and a driver connection used through PreparedQuery never
    began a transaction) rather than being closed because the queue is full."""
    return isinstance(pool, QueuePool) and pool.checkedin() < pool.size()
