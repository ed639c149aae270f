"""While the database cannot be reached, every route that needs it answers 503
database_unavailable with Retry-After, never a 500, authentication included; /readyz is 503.
tests/test_faults.py stops and restarts a real PostgreSQL under load."""

from __future__ import annotations

import socket

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.conftest import AppFactory
from tests.support import assert_problem, bearer, client_for, free_port
from tether.errors import is_database_outage

KEY = "tether_sk_dev_" + "A" * 49  # well-formed; its checksum is wrong for most bodies


def outage_urls(tmp: str) -> list[str]:
    return [
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing",  # refused
        f"sqlite+aiosqlite:///{tmp}/no/such/folder/tether.db",  # cannot be opened
    ]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_every_route_answers_503_while_the_database_is_away(
    limited_app: AppFactory, tmp_path: object, kind: str
) -> None:
    url = next(u for u in outage_urls(str(tmp_path)) if u.startswith(kind))
    async with limited_app(database_url=url, db_pool_timeout=1) as app:
        # A real, well-formed key with a good checksum: it must reach the database.
        from tether.security.keys import generate_api_key

        key = bearer(generate_api_key("secret", "dev"))
        token = bearer("tether_at_" + "A" * 43)
        async with client_for(app) as client:
            ready = await client.get("/readyz")
            assert_problem(ready, 503, "database_unavailable")
            requests = [
                ("GET", "/users", key, None),
                ("POST", "/users", key, {"username": "x"}),
                ("GET", "/users/x/token", key, None),
                ("GET", "/admin/account", token, None),
                ("POST", "/admin/login", {}, {"email": "a@b.co", "password": "pw"}),
                ("GET", "/sdk/me", bearer("a.b.c"), None),
                ("GET", "/.well-known/jwks.json", {}, None),
                ("GET", "/tenants/t/linked-sources", key, None),
            ]
            for method, path, headers, body in requests:
                response = await client.request(method, path, headers=headers, json=body)
                if response.status_code == 401:  # refused before any query (a JWT's shape)
                    continue
                assert_problem(response, 503, "database_unavailable")
                assert response.headers["retry-after"] == "5"
            # The SDK's CORS rule reads the environments' origins: a 503 too, never a 500.
            origin = {"origin": "https://app.example.com"}
            preflight = await client.options(
                "/sdk/me", headers={**origin, "access-control-request-method": "GET"}
            )
            assert_problem(preflight, 503, "database_unavailable")
            sdk = await client.get("/sdk/me", headers={**origin, **bearer("a.b.c")})
            assert sdk.status_code in (401, 503), sdk.text
            # What needs no database still works.
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/sdk/embedded.js")).status_code == 200


class TestWhatCountsAsAnOutage:
    def test_what_postgresql_raises_while_it_restarts(self) -> None:
        # Observed against a real cluster (tests/test_faults.py): connecting while it shuts
        # down or starts up raises asyncpg's CannotConnectNowError (57P03), which SQLAlchemy
        # wraps in a plain DBAPIError with connection_invalidated False.
        cause = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        wrapped = DBAPIError("select 1", {}, cause, connection_invalidated=False)
        assert is_database_outage(wrapped)
        assert is_database_outage(cause)
        shutdown = asyncpg.exceptions.AdminShutdownError("terminating connection")
        assert is_database_outage(DBAPIError("select 1", {}, shutdown))
        assert is_database_outage(
            asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
        )

    @pytest.mark.parametrize(
        "exc",
        [
            ConnectionRefusedError(111, "Connect call failed"),
            ConnectionResetError(104, "Connection reset by peer"),
            OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),
            socket.gaierror(-2, "Name or service not known"),
            TimeoutError(),
            PoolTimeout("QueuePool limit of size 32 overflow 8 reached"),
            OperationalError("select 1", {}, Exception("database is locked")),
            DBAPIError("select 1", {}, Exception("closed"), connection_invalidated=True),
        ],
    )
    def test_outages(self, exc: BaseException) -> None:
        assert is_database_outage(exc)

    @pytest.mark.parametrize(
        "exc",
        [
            ValueError("bug"),
            KeyError("bug"),
            DBAPIError("select 1", {}, asyncpg.exceptions.UndefinedColumnError("no column")),
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
        ],
    )
    def test_bugs_stay_500s(self, exc: BaseException) -> None:
        assert not is_database_outage(exc)


async def test_a_bug_is_a_500_without_a_trace(client: httpx.AsyncClient, app: object) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.get("/__boom")
    async def boom() -> None:
        raise ValueError("secret detail")

    try:
        response = await client.get("/__boom")
    finally:
        app.router.routes.pop()
    assert_problem(response, 500, "internal_error")
    assert "secret detail" not in response.text


async def test_the_document_names_503_everywhere_and_429_wherever_a_credential_is_taken(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    missing = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            documented = set(operation["responses"])
            needs_db = path not in ("/healthz", "/sdk/embedded.js", "/sdk/modal")
            if needs_db and "503" not in documented:
                missing.append(f"{method.upper()} {path}: 503")
            if "401" in documented and "429" not in documented:
                missing.append(f"{method.upper()} {path}: 429")
    assert not missing, missing
