"""PreparedQuery: the same rows as SQLAlchemy on every dialect, and on PostgreSQL, where it runs
on the pool's driver connection, SQLAlchemy's handling of broken and cancelled connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import Integer, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Account
from tether.accounts.models import Environment
from tether.api_keys.service import KEY_QUERY
from tether.config import Settings
from tether.db import prepared
from tether.db.engine import make_engine, read_only
from tether.db.prepared import PreparedQuery
from tether.errors import is_database_outage
from tether.security.keys import digest

_BACKEND = PreparedQuery(select(func.pg_backend_pid().label("pid")))
_SLEEP = PreparedQuery(select(func.pg_sleep(bindparam("seconds", type_=Integer))))


async def test_reads_what_sqlalchemy_reads(app: FastAPI, account: Account) -> None:
    query = PreparedQuery(KEY_QUERY.add_columns(Environment.created_at))
    params = {"digest": digest(account.dev.secret_key)}
    async with app.state.readonly.connect() as connection:
        expected = (await connection.execute(query.statement, params)).one()._asdict()
    row = await query.first(app.state.readonly, params)
    assert row is not None
    assert dict(row) == expected
    assert row["created_at"].utcoffset() is not None  # aware, as UTCDateTime makes it
    assert await query.first(app.state.readonly, {"digest": digest("nothing")}) is None


@pytest.fixture
async def one_connection(settings: Settings, on_postgres: bool) -> AsyncIterator[AsyncEngine]:
    """An autocommit engine whose pool holds one connection: the one every query uses."""
    if not on_postgres:
        pytest.skip("the driver path is PostgreSQL's; SQLite runs through SQLAlchemy")
    engine = make_engine(settings, pool_size=1, max_overflow=0)
    try:
        yield read_only(engine)
    finally:
        await engine.dispose()


async def backend(engine: AsyncEngine) -> int:
    row = await _BACKEND.first(engine, {})
    assert row is not None
    return int(row["pid"])


async def test_a_connection_killed_under_it_is_an_outage_and_leaves_the_pool(
    app: FastAPI, one_connection: AsyncEngine
) -> None:
    pid = await backend(one_connection)
    async with app.state.readonly.connect() as killer:
        await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError) as raised:
        await backend(one_connection)
    assert raised.value.connection_invalidated
    assert is_database_outage(raised.value)
    assert await backend(one_connection) != pid  # a new connection, which works


async def test_a_cancelled_statement_never_returns_its_connection_to_the_pool(
    one_connection: AsyncEngine,
) -> None:
    pid = await backend(one_connection)
    running = asyncio.create_task(_SLEEP.first(one_connection, {"seconds": 30}))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await backend(one_connection) != pid


async def test_a_failing_statement_is_sqlalchemys_error_and_keeps_the_connection(
    one_connection: AsyncEngine,
) -> None:
    pid = await backend(one_connection)
    divide = PreparedQuery(select(bindparam("one", type_=Integer) / bindparam("zero")))
    with pytest.raises(DBAPIError) as raised:
        await divide.first(one_connection, {"one": 1, "zero": 0})
    assert not raised.value.connection_invalidated
    assert not is_database_outage(raised.value)
    assert await backend(one_connection) == pid


async def test_a_connection_goes_back_to_a_pool_with_room_without_a_greenlet(
    one_connection: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[object] = []

    async def spawn(fn: Callable[[], object]) -> object:
        spawned.append(fn)
        return fn()

    monkeypatch.setattr(prepared, "greenlet_spawn", spawn)
    pid = await backend(one_connection)
    assert spawned == []  # returned in place: a queue with room takes it without IO
    assert (one_connection.pool.checkedin(), one_connection.pool.checkedout()) == (1, 0)
    assert await backend(one_connection) == pid  # and the pool hands the same one out again


_PID_AFTER_A_NAP = PreparedQuery(
    select(func.pg_backend_pid().label("pid"), func.pg_sleep(bindparam("seconds")).label("nap"))
)


async def test_an_overflow_connection_coming_back_to_a_full_pool_is_closed(
    app: FastAPI, settings: Settings, on_postgres: bool, caplog: pytest.LogCaptureFixture
) -> None:
    if not on_postgres:
        pytest.skip("the driver path is PostgreSQL's; SQLite runs through SQLAlchemy")
    engine = read_only(make_engine(settings, pool_size=1, max_overflow=1))
    try:
        async with engine.connect() as held:  # the pool's one connection
            await held.execute(text("SELECT 1"))
            napping = asyncio.create_task(_PID_AFTER_A_NAP.first(engine, {"seconds": 0.5}))
            await asyncio.sleep(0.2)  # napping now runs on the overflow connection
        row = await napping  # returned after `held`: the pool is full, so it is closed
        assert row is not None
        assert engine.pool.checkedout() == 0
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
        async with app.state.readonly.connect() as connection:
            for _ in range(50):  # the backend exits once it reads the client's Terminate
                alive = await connection.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": row["pid"]},
                )
                if not alive:
                    break
                await asyncio.sleep(0.05)
        assert not alive
    finally:
        await engine.dispose()
