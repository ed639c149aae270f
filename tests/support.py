"""Helpers shared by the tests: real server processes, ports, scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tether.db.prepared import PreparedQuery

ROOT = Path(__file__).resolve().parents[1]

# Every secret the suite made or was shown (keys, tokens, passwords, credential data), and every
# log file of a server process it started: at the end of the session, no log line may contain
# one of those secrets (see `secret_free_logs` in conftest.py).
SECRETS: set[str] = set()
SERVER_LOGS: list[Path] = []
# JSON fields whose string values (or, for `data`, every value inside) are secrets.
SECRET_FIELDS = frozenset(
    {"key", "token", "privateKey", "password", "secretKey", "publishableKey", "accessToken",
     "refreshToken", "clientSecret", "apiKey", "data", "jwtToken"}
)  # fmt: skip
MIN_SECRET_LENGTH = 10  # shorter values ("secret", "abc") would match by chance


_NOT_SECRET = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?|\d+")  # times, counts


def register_secret(*values: object) -> None:
    for value in values:
        if (
            isinstance(value, str)
            and len(value) >= MIN_SECRET_LENGTH
            and not _NOT_SECRET.fullmatch(value)
        ):
            SECRETS.add(value)


def register_secrets_in(document: Any, secret: bool = False) -> None:
    """Every value under a secret field of a JSON document (request or response body).
    `data` is a secret only as an object (credential data): as a list it is a page."""
    if isinstance(document, dict):
        for name, value in document.items():
            is_secret = name in SECRET_FIELDS and (name != "data" or isinstance(value, dict))
            register_secrets_in(value, secret or is_secret)
    elif isinstance(document, list):
        for value in document:
            register_secrets_in(value, secret)
    elif secret:
        register_secret(document)


async def register_exchange(response: httpx.Response) -> None:
    """An httpx response hook: the secrets in the request's and the response's JSON bodies."""
    import json

    for message in (response.request, response):
        if "json" not in message.headers.get("content-type", ""):
            continue
        if isinstance(message, httpx.Response):
            await message.aread()
        try:
            register_secrets_in(json.loads(message.content or b"null"))
        except (ValueError, httpx.RequestNotRead):
            continue


async def clear_of_window_edge(margin: float = 8.0) -> None:
    """Wait, if need be, until the next minute starts: the rate limits' sliding windows start
    on the minute, and a test that counts exact budgets must not straddle two windows."""
    into = time.time() % 60
    if into > 60 - margin:
        await asyncio.sleep(60 - into + 0.2)


def client_for(app: Any, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """An in-process client of `app` whose requests come from the address `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def api_keys_of(account: Any) -> list[str]:
    """The four keys `tether init` made for a test account: secret and publishable, per
    environment."""
    return [
        key for env in (account.dev, account.prod) for key in (env.secret_key, env.publishable_key)
    ]


def mutate(secret: str, index: int = -10) -> str:
    """The same secret with the base62 character at `index` changed."""
    replacement = "A" if secret[index] != "A" else "B"
    return secret[:index] + replacement + secret[index:][1:]


def rfc3339_utc(value: str) -> datetime:
    """A timestamp from the wire, which must be an RFC 3339 string in UTC."""
    stamp = datetime.fromisoformat(value)
    assert stamp.utcoffset() == timedelta(0), value
    return stamp


# An admin route, so that an API key that authenticates is told 403 insufficient_scope and one
# that does not is told 401: the two outcomes tell a valid key from a refused one.
PROBE = "/admin/account"


async def assert_key_accepted(client: httpx.AsyncClient, key: str) -> None:
    assert_problem(await client.get(PROBE, headers=bearer(key)), 403, "insufficient_scope")


async def assert_key_refused(client: httpx.AsyncClient, key: str, code: str) -> None:
    assert_problem(await client.get(PROBE, headers=bearer(key)), 401, code)


async def assert_admin_only(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    api_keys: Sequence[str],
    json: Any = None,
) -> None:
    """No credential is a 401 missing_credentials; every valid API key, by either header,
    is a 403 insufficient_scope."""
    response = await client.request(method, path, json=json)
    assert_problem(response, 401, "missing_credentials")
    assert response.headers["www-authenticate"] == "Bearer"
    assert api_keys
    for key in api_keys:
        for headers in (bearer(key), {"x-api-key": key}):
            response = await client.request(method, path, json=json, headers=headers)
            assert_problem(response, 403, "insufficient_scope")


@contextlib.contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement, with its parameters, that `engine` sends while the block runs:
    through SQLAlchemy, or straight through the driver as a PreparedQuery does on PostgreSQL."""
    statements: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    first = PreparedQuery.first

    async def recorded_first(
        self: PreparedQuery, readonly: AsyncEngine, params: Mapping[str, Any]
    ) -> Any:
        if readonly.dialect.driver == "asyncpg":  # else SQLAlchemy's event sees it
            statements.append((str(self.statement), dict(params)))
        return await first(self, readonly, params)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        with patch.object(PreparedQuery, "first", recorded_first):
            yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_scratch_database(base_url: str) -> str:
    """A new empty PostgreSQL database next to the one `base_url` names, so a test run never
    touches what is already there."""
    import asyncpg

    name = f"tether_test_{os.getpid()}_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(base_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, url: str) -> None:
    import asyncpg

    name = make_url(url).database

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(base_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def run_cli(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`tether ARGS...` as a real process. `cwd` should be a scratch folder, so that no `.env`
    file is picked up from the checkout. It runs in a thread so that the test's event loop
    keeps going: a background write of the in-process app must not sit on SQLite's write
    lock, half done, while the command waits for it."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tether", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        import json

        register_secrets_in(json.loads(done.stdout))  # `--json` output: keys and a password
    except ValueError:
        pass
    return done


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_server(
    env: dict[str, str],
    tmp_path: Path,
    *,
    workers: int = 1,
    name: str = "server",
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[Server]:
    """`tether serve` as a real process on a free port (or `port`, for a server that must know
    its own URL first, as TETHER_PUBLIC_URL), stopped afterwards. `args` are extra options for
    `tether serve`, such as `--bootstrap`."""
    port = port or free_port()
    log_path = tmp_path / f"{name}-{port}.log"
    SERVER_LOGS.append(log_path)
    full_env = {**os.environ, **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tether",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            env=full_env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
