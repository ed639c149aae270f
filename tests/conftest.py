"""The suite runs on SQLite by default and on PostgreSQL when TETHER_TEST_DATABASE_URL names
one (a scratch database is created beside it and dropped afterwards). The schema is built by
the migrations. Tests talk HTTP to the app in process; each test makes its own account."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import (
    SECRETS,
    SERVER_LOGS,
    bearer,
    create_scratch_database,
    drop_database,
    register_exchange,
    register_secret,
    register_secrets_in,
)
from tether.accounts.models import Member
from tether.accounts.service import open_session
from tether.bootstrap import provision
from tether.config import Settings
from tether.db.migrate import upgrade
from tether.main import create_app
from tether.security.crypto import generate_key_spec
from tether.security.passwords import hash_password_sync

PASSWORD = "correct horse battery staple"
RELAXED_LIMIT = "100000/minute"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TETHER_TEST_DATABASE_URL")
    if base:
        url = create_scratch_database(base)
        try:
            yield url
        finally:
            drop_database(base, url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'tether.db'}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        public_url="http://testserver",
        encryption_keys=[generate_key_spec()],
        # Every test shares this app and the client address 127.0.0.1, and many send refused
        # credentials on purpose: the per-IP budgets are tested with apps of their own.
        rate_limit_auth_failures=RELAXED_LIMIT,
        rate_limit_login=RELAXED_LIMIT,
    )
    upgrade(settings)
    register_secret(*(key.get_secret_value() for key in settings.encryption_keys))
    return settings


@pytest.fixture(scope="session")
def on_postgres(settings: Settings) -> bool:
    return not settings.is_sqlite


@pytest.fixture(scope="session")
def server_env(settings: Settings) -> dict[str, str]:
    """The environment a real `tether serve` process needs to share the test database."""
    return {
        "TETHER_DATABASE_URL": settings.database_url,
        "TETHER_PUBLIC_URL": settings.public_url,
        "TETHER_ENCRYPTION_KEYS": ",".join(k.get_secret_value() for k in settings.encryption_keys),
        "TETHER_RATE_LIMIT_AUTH_FAILURES": RELAXED_LIMIT,
        "TETHER_RATE_LIMIT_LOGIN": RELAXED_LIMIT,
    }


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


class _LogRecorder(logging.Handler):
    """Every log line of the session, as it would be printed."""

    # Test clients, not Tether: httpx logs each request's URL, query string included.
    IGNORED = ("httpx", "httpcore", "hypothesis", "asyncio", "faker")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in self.IGNORED:
            return
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
            if record.exc_info:
                self.lines.append(logging.Formatter().formatException(record.exc_info))
        except Exception:  # a record that cannot be formatted is not a leak
            return


@pytest.fixture(scope="session", autouse=True)
def secret_free_logs() -> Iterator[None]:
    """No log line of the whole session contains a secret the tests made or were shown: the
    in-process app's (and libraries') logs at INFO and above, and the log file of every server
    process tests.support.run_server started. Fails at the end of the session."""
    recorder = _LogRecorder()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(recorder)
    root.setLevel(min(previous_level, logging.INFO))
    register_secret(PASSWORD)
    try:
        yield
    finally:
        root.removeHandler(recorder)
        root.setLevel(previous_level)
    texts = {"in-process logs": "\n".join(recorder.lines)}
    for path in SERVER_LOGS:
        if path.exists():
            texts[str(path)] = path.read_text(errors="replace")
    leaks = [
        (where, secret[:12] + "...")
        for secret in SECRETS
        for where, text in texts.items()
        if secret in text
    ]
    assert not leaks, f"secrets in logs (first characters shown): {leaks[:20]}"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [register_exchange]},
    ) as client:
        yield client
    # Finish the background lastUsedAt writes a test caused, so none is left holding SQLite's
    # write lock while a later test blocks the loop on a subprocess.
    await app.state.key_usage.drain()


@dataclass
class Env:
    id: str
    name: str
    secret_key: str
    publishable_key: str


@dataclass
class Account:
    id: str
    email: str
    password: str
    admin_token: str
    dev: Env
    prod: Env

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_token)


@functools.cache
def password_hash() -> str:
    return hash_password_sync(PASSWORD)


async def make_account(client: httpx.AsyncClient, app: FastAPI) -> Account:
    """A new account with both environments and their keys, and an admin token. The password
    is hashed once per run and the token opened directly: Argon2 costs ~0.1 s a call, and
    the login route has tests of its own."""
    email = f"owner-{secrets.token_hex(6)}@example.com"
    async with app.state.sessionmaker() as session:
        result: dict[str, Any] = await provision(
            session,
            app.state.keyring,
            account_name="Test Co",
            email=email,
            password_hash=password_hash(),
        )
        member_id = await session.scalar(select(Member.id).where(Member.email == email))
        assert member_id is not None
        admin_token, _ = await open_session(session, member_id, 3600)
        await session.commit()
    register_secrets_in(result)
    register_secret(admin_token)
    envs = {
        name: Env(env["environmentId"], name, env["secretKey"], env["publishableKey"])
        for name, env in result["environments"].items()
    }
    return Account(
        id=result["accountId"],
        email=email,
        password=PASSWORD,
        admin_token=admin_token,
        dev=envs["development"],
        prod=envs["production"],
    )


@pytest.fixture
async def account(client: httpx.AsyncClient, app: FastAPI) -> Account:
    return await make_account(client, app)


@pytest.fixture
async def other_account(client: httpx.AsyncClient, app: FastAPI) -> Account:
    return await make_account(client, app)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def limited_app(settings: Settings) -> AppFactory:
    """An app of the test's own, on the suite's database, with some settings changed (the
    shared app's per-IP budgets are relaxed for the rest of the suite)."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[FastAPI]:
        app = create_app(settings.model_copy(update=overrides))
        async with app.router.lifespan_context(app):
            yield app
            await app.state.key_usage.drain()

    return make
