"""Hot-path reads on the driver's own connection.

SQLAlchemy's execution layer (execution context, result processing, the greenlet hop of its
async API) costs ~0.2 ms of CPU per statement under load, about as much as everything else a
token request does. A `PreparedRead` is a Core select compiled once per dialect; on PostgreSQL
it runs as asyncpg's `fetchrow` on the pooled connection SQLAlchemy checked out (asyncpg
prepares and caches the statement per connection), on other dialects through SQLAlchemy as
usual. The pool, its limits and its metrics stay SQLAlchemy's.

Only for selects whose parameters are strings or integers and whose result columns are
SQLAlchemy-neutral on PostgreSQL (text, integers, `timestamptz`, which asyncpg returns as
aware UTC datetimes like UTCDateTime does): no bind or result processor runs on that path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tether.db.engine import AnySelect
from tether.errors import is_database_outage

# A row by its labels: SQLAlchemy's RowMapping, or an asyncpg Record.
Record = Mapping[str, Any]


class PreparedRead:
    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._postgres: tuple[str, tuple[str, ...]] | None = None

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        if self._postgres is None:
            compiled = self.statement.compile(dialect=dialect)
            assert compiled.positiontup is not None  # asyncpg's paramstyle is positional
            self._postgres = (str(compiled), tuple(compiled.positiontup))
        return self._postgres

    async def first(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Record | None:
        """The first row, or None. `connection` should be an autocommit one (see `read_only`)."""
        if connection.dialect.driver != "asyncpg":
            row = (await connection.execute(self.statement, dict(params))).first()
            return None if row is None else cast(Record, row._mapping)
        sql, names = self._compiled(connection.dialect)
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        try:
            record: Record | None = await driver.fetchrow(sql, *[params[n] for n in names])
        except BaseException as exc:
            # What SQLAlchemy does for its own statements: a connection that broke, or was left
            # mid-statement by a cancellation, never goes back to the pool, and a driver error
            # becomes SQLAlchemy's (InterfaceError, DBAPIError...), which errors.py knows.
            broken = driver.is_closed() or not isinstance(exc, Exception) or is_database_outage(exc)
            if broken:
                await connection.invalidate()
            if not isinstance(exc, Exception):
                raise
            raise DBAPIError.instance(
                sql,
                None,
                exc,
                Exception,
                hide_parameters=True,
                connection_invalidated=broken,
                dialect=connection.dialect,
            ) from exc
        return record
