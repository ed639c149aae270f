"""The operator's command line: `tether serve`, `tether init`, `tether db`, `tether keys`,
`tether config-reference`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tether.audit.service import Actor, act_as
from tether.config import Settings, get_settings
from tether.errors import TetherError
from tether.security.crypto import ConfigurationError, Keyring

app = typer.Typer(help="Tether: self-hosted authentication for embedded integrations.")
db_app = typer.Typer(help="Database migrations.")
keys_app = typer.Typer(help="API keys.")
secrets_app = typer.Typer(help="Encryption keys for secrets at rest.")
token_keys_app = typer.Typer(help="The keys that sign user tokens.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secrets")
app.add_typer(token_keys_app, name="token-keys")

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")]


class EnvName(StrEnum):
    development = "development"
    production = "production"


class KeyTypeName(StrEnum):
    secret = "secret"  # noqa: S105 (a key type, not a password)
    publishable = "publishable"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction, committed if it returns."""
    from tether.db.engine import make_engine, make_sessionmaker

    async def run() -> T:
        act_as(Actor("cli"))  # the operator at the console, in the audit log
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except TetherError as exc:
        raise _fail(exc.detail) from None


def _keyring(settings: Settings) -> Keyring:
    try:
        return Keyring(settings.encryption_keys)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _migrate(settings: Settings) -> None:
    from tether.db.migrate import upgrade

    upgrade(settings)


def _print_secrets(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(json.dumps(result, indent=2))
    typer.echo("Store these now: Tether keeps only digests and will not show them again.", err=True)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="TETHER_HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="TETHER_WORKERS",
            help="Worker processes. Size each one's database pool to its own concurrency.",
        ),
    ] = 1,
    bootstrap: Annotated[
        bool, typer.Option(help="On an empty database, create a local account and print it.")
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            help="Apply pending migrations first. With several replicas, run `tether db "
            "upgrade` once as a release step and serve with --no-migrate.",
        ),
    ] = True,
) -> None:
    """Migrate the database, then serve."""
    import uvicorn

    settings = get_settings()
    _keyring(settings)  # refuse to start without a usable encryption key
    if migrate:
        _migrate(settings)
    if bootstrap:
        _bootstrap(settings, host, port)
    from tether.ops.logs import logging_config

    with _metrics_directory(workers):
        uvicorn.run(
            "tether.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop" if sys.platform != "win32" else "asyncio",
            http="httptools",
            # Its access log costs ~30% of throughput and would log query strings, which can
            # carry tenant tokens: TetherMiddleware writes one structured line instead.
            access_log=False,
            # Applied by uvicorn in every worker, its own loggers included.
            log_config=logging_config(settings),
            # Off: uvicorn would otherwise take the client address from X-Forwarded-For of any
            # peer on 127.0.0.1. Tether reads that header itself, from TETHER_TRUSTED_PROXIES
            # only.
            proxy_headers=False,
            # On SIGTERM: stop accepting, let in-flight requests finish (up to 30 s), then run
            # the lifespan shutdown (background writes drained, the pool closed).
            timeout_graceful_shutdown=30,
            # A worker that does not answer the supervisor's ping in time is killed and
            # replaced. Its first answer comes only after it has imported most of the app:
            # with uvicorn's 5 s, workers starting on a loaded 2-core machine were killed and
            # replaced before they ever served.
            timeout_worker_healthcheck=30,
        )


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR for them, removed when the
    supervisor stops, so that /metrics sums every worker's samples and never a previous run's.
    It is set before any worker imports prometheus_client; an operator's own directory is used
    as it is. One worker keeps its samples in memory: it needs no directory, and it ends by
    re-raising the signal that stopped it, which would skip this cleanup."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="tether-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def _bootstrap(settings: Settings, host: str, port: int) -> None:
    from tether.bootstrap import has_accounts, initialize

    async def work(session: AsyncSession) -> dict[str, Any] | None:
        if await has_accounts(session):
            return None
        return await initialize(
            session,
            _keyring(settings),
            account_name="Local",
            email="admin@tether.localhost",
            password=None,
        )

    result = _in_session(settings, work)
    if result is None:
        return
    dev = result["environments"]["development"]
    prod = result["environments"]["production"]
    typer.echo(
        f"""
Tether is set up. These are shown once; Tether keeps only digests.

  Dashboard login     {result["email"]} / {result["password"]}
  Admin API           POST http://{host}:{port}/admin/login

  development  secret       {dev["secretKey"]}
               publishable  {dev["publishableKey"]}
  production   secret       {prod["secretKey"]}
               publishable  {prod["publishableKey"]}

Try: curl -H "Authorization: Bearer {dev["secretKey"]}" http://{host}:{port}/users
"""
    )


@app.command()
def init(
    account: Annotated[str, typer.Option(help="The account (company) name.")],
    email: Annotated[str, typer.Option(help="The owner's email, used to log in.")],
    password: Annotated[
        str | None, typer.Option(help="The owner's password; generated when omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account, its owner, both environments and their first keys."""
    from tether.bootstrap import initialize

    settings = get_settings()
    keyring = _keyring(settings)
    _migrate(settings)
    result = _in_session(
        settings,
        lambda session: initialize(
            session, keyring, account_name=account, email=email, password=password
        ),
    )
    _print_secrets(result, as_json)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    _migrate(get_settings())


@db_app.command("check")
def db_check() -> None:
    """Exit non-zero if the models and the migrations differ."""
    from alembic.util.exc import CommandError

    from tether.db.migrate import check

    try:
        check(get_settings())
    except CommandError as exc:
        raise _fail(str(exc)) from None
    typer.echo("Models and migrations agree.")


def _key_json(key: Any, plaintext: str | None = None) -> dict[str, Any]:
    from tether.api_keys.schemas import ApiKeyOut

    out = ApiKeyOut.model_validate(key).model_dump(mode="json", by_alias=True)
    if plaintext is not None:
        out["key"] = plaintext
    return out


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account id.")],
    env: Annotated[EnvName, typer.Option(help="Environment.")],
    key_type: Annotated[KeyTypeName, typer.Option("--type", help="Key type.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; its plaintext is printed once."""
    from tether.accounts.service import get_environment
    from tether.api_keys.service import create_key

    async def work(session: AsyncSession) -> dict[str, Any]:
        environment = await get_environment(session, account, env.value)
        key, plaintext = await create_key(session, environment, key_type.value, name=name)
        return _key_json(key, plaintext)

    _print_secrets(_in_session(get_settings(), work), as_json)


@keys_app.command("roll")
def keys_roll(
    key_id: Annotated[str, typer.Argument(help="The id of the key to replace.")],
    grace_seconds: Annotated[
        int, typer.Option(min=0, max=604800, help="How long the old key keeps working.")
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """Replace a key; the old one stops after the grace period (at once by default)."""
    from tether.api_keys.service import key_environment, roll_key

    async def work(session: AsyncSession) -> dict[str, Any]:
        environment = await key_environment(session, key_id)
        key, plaintext = await roll_key(session, environment, key_id, grace_seconds)
        return _key_json(key, plaintext)

    _print_secrets(_in_session(get_settings(), work), as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The id of the key.")]) -> None:
    """Revoke a key at once."""
    from tether.api_keys.service import key_environment, revoke_key

    async def work(session: AsyncSession) -> None:
        await revoke_key(session, await key_environment(session, key_id), key_id)

    _in_session(get_settings(), work)
    typer.echo(f"Revoked {key_id}.")


def _key_state(key: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    if key["revokedAt"]:
        return "revoked"
    if key["expiresAt"] and datetime.fromisoformat(key["expiresAt"]) <= datetime.now(UTC):
        return "expired"
    return f"active until {key['expiresAt']}" if key["expiresAt"] else "active"


@keys_app.command("list")
def keys_list(
    account: Annotated[str, typer.Option(help="Account id.")],
    env: Annotated[EnvName, typer.Option(help="Environment.")],
    as_json: JsonOption = False,
) -> None:
    """List an environment's keys (never their plaintext)."""
    from tether.accounts.service import get_environment
    from tether.api_keys.service import list_keys

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        keys = await list_keys(session, await get_environment(session, account, env.value))
        return [_key_json(key) for key in keys]

    keys = _in_session(get_settings(), work)
    if as_json:
        typer.echo(json.dumps({"data": keys}))
        return
    for key in keys:
        state = _key_state(key)
        typer.echo(f"{key['id']}  {key['type']:<11}  {key['prefix']}…{key['last4']}  {state}")


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new `kid:base64key` entry for TETHER_ENCRYPTION_KEYS.

    To rotate, put the new entry first and keep the old ones after it."""
    from tether.security.crypto import generate_key_spec

    typer.echo(generate_key_spec())


@secrets_app.command("rotate")
def secrets_rotate(as_json: JsonOption = False) -> None:
    """Re-encrypt every stored secret under the first key of TETHER_ENCRYPTION_KEYS.

    Run it after every process has the new key list (new key first, old keys after); the
    service keeps serving meanwhile. Afterwards the old keys can be removed."""
    from tether.db.engine import make_engine, make_sessionmaker
    from tether.security.rotation import rotate_secrets

    settings = get_settings()
    keyring = _keyring(settings)

    async def run() -> dict[str, int]:
        engine = make_engine(settings)
        try:
            return await rotate_secrets(make_sessionmaker(engine), keyring)
        finally:
            await engine.dispose()

    try:
        counts = asyncio.run(run())
    except TetherError as exc:
        raise _fail(exc.detail) from None
    if as_json:
        typer.echo(json.dumps({"primaryKeyId": keyring.primary_kid, "rewritten": counts}))
        return
    for table, count in counts.items():
        typer.echo(f"{table}: {count} re-encrypted under {keyring.primary_kid}")


@token_keys_app.command("rotate")
def token_keys_rotate(
    environment: Annotated[
        str | None, typer.Option(help="An environment id; every environment when omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make new user-token signing keys. New tokens use them at once; tokens already minted
    keep verifying until they expire."""
    from sqlalchemy import select

    from tether.accounts.models import Environment
    from tether.users.tokens import rotate_token_key

    settings = get_settings()
    keyring = _keyring(settings)

    async def work(session: AsyncSession) -> list[dict[str, str]]:
        query = select(Environment.id).order_by(Environment.id)
        if environment is not None:
            query = query.where(Environment.id == environment)
        env_ids = list(await session.scalars(query))
        if environment is not None and not env_ids:
            raise TetherError(f"No environment {environment}.")
        rotated = []
        for env_id in env_ids:
            key = await rotate_token_key(session, keyring, env_id)
            rotated.append({"environmentId": env_id, "kid": key.id})
        return rotated

    rotated = _in_session(settings, work)
    if as_json:
        typer.echo(json.dumps({"rotated": rotated}))
        return
    for item in rotated:
        typer.echo(f"{item['environmentId']}: new key {item['kid']}")


@app.command("config-reference")
def config_reference(
    write: Annotated[
        Path | None,
        typer.Option(help="Rewrite the reference between its markers in this Markdown file."),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(help="Exit non-zero if this Markdown file's reference is out of date."),
    ] = None,
) -> None:
    """Print the configuration reference, generated from the settings and `serve`'s options."""
    from tether.ops import reference

    if write is None and check is None:
        typer.echo(reference.render())
        return
    target = write or check
    assert target is not None
    try:
        document = target.read_text(encoding="utf-8")
        fresh = reference.updated(document)
    except (OSError, reference.MarkersMissing) as exc:
        raise _fail(str(exc)) from None
    if check is not None:
        if fresh != document:
            raise _fail(f"{check} is out of date: run `tether config-reference --write {check}`")
        typer.echo(f"{check} is up to date.")
        return
    if fresh != document:
        target.write_text(fresh, encoding="utf-8")
    typer.echo(f"Wrote the configuration reference into {target}.")


def main() -> None:
    app()
