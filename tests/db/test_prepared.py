"""PreparedQuery: the same rows as SQLAlchemy on every dialect, and on PostgreSQL, where it runs
on the driver's connection, SQLAlchemy's handling of broken and cancelled connections."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from sqlalchemy import Integer, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Account
from tether.accounts.models import Environment
from tether.api_keys.service import KEY_QUERY
from tether.db.prepared import PreparedQuery
from tether.errors import is_database_outage
from tether.security.keys import digest

_SLEEP = PreparedQuery(select(func.pg_sleep(bindparam("seconds", type_=Integer))))


async def test_reads_what_sqlalchemy_reads(app: FastAPI, account: Account) -> None:
    query = PreparedQuery(KEY_QUERY.add_columns(Environment.created_at))
    params = {"digest": digest(account.dev.secret_key)}
    async with app.state.readonly.connect() as connection:
        expected = (await connection.execute(query.statement, params)).one()._asdict()
        row = await query.first(connection, params)
        missing = await query.first(connection, {"digest": digest("nothing")})
    assert row is not None
    assert dict(row) == expected
    assert row["created_at"].utcoffset() is not None  # aware, as UTCDateTime makes it
    assert missing is None


@pytest.fixture
def postgres_only(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("the driver path is PostgreSQL's; SQLite runs through SQLAlchemy")


@pytest.mark.usefixtures("postgres_only")
async def test_a_connection_killed_under_it_is_an_outage_and_leaves_the_pool(
    app: FastAPI, account: Account
) -> None:
    query = PreparedQuery(KEY_QUERY)
    params = {"digest": digest(account.dev.secret_key)}
    async with app.state.readonly.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with app.state.readonly.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as raised:
            await query.first(connection, params)
        assert raised.value.connection_invalidated
        assert is_database_outage(raised.value)
        assert connection.invalidated
    # The pool hands out a working connection again.
    async with app.state.readonly.connect() as connection:
        assert await query.first(connection, params) is not None


@pytest.mark.usefixtures("postgres_only")
async def test_a_cancelled_read_never_returns_its_connection_to_the_pool(app: FastAPI) -> None:
    async with app.state.readonly.connect() as connection:
        read = asyncio.create_task(_SLEEP.first(connection, {"seconds": 30}))
        await asyncio.sleep(0.3)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert connection.invalidated


@pytest.mark.usefixtures("postgres_only")
async def test_a_failing_statement_is_sqlalchemys_error_and_keeps_the_connection(
    app: FastAPI,
) -> None:
    divide = PreparedQuery(select(bindparam("one", type_=Integer) / bindparam("zero")))
    async with app.state.readonly.connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            await divide.first(connection, {"one": 1, "zero": 0})
        assert not raised.value.connection_invalidated
        assert not is_database_outage(raised.value)
        assert not connection.invalidated
        assert (await _SLEEP.first(connection, {"seconds": 0})) is not None
