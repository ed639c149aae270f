"""Databases and data for a benchmark run: scratch PostgreSQL databases, an account made by
`tether init --json`, users made through the API, and a user token for /sdk/me."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


def _asyncpg_dsn(url: str) -> str:
    """asyncpg wants `postgresql://`; accept the SQLAlchemy spellings too."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(base_url: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def postgres_version(base_url: str) -> str:
    return str(asyncio.run(_admin(base_url, "SELECT version()")))


def postgres_max_connections(base_url: str) -> int:
    return int(asyncio.run(_admin(base_url, "SHOW max_connections")))


def create_scratch_database(base_url: str) -> str:
    """A new empty database next to the one `base_url` names; nothing there is touched."""
    name = f"tether_bench_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(base_url, f'CREATE DATABASE "{name}"'))
    return _with_database(base_url, name)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def drop_database(base_url: str, url: str) -> None:
    name = database_name(url)
    if not re.fullmatch(r"tether_bench_\d+_[0-9a-f]{8}", name):
        raise ValueError(f"refusing to drop {name!r}: not a bench scratch database")
    asyncio.run(_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def analyze(url: str) -> None:
    """Fresh planner statistics for the seeded tables: autovacuum may be off, or not have run
    yet, and each run should be planned from the same statistics."""
    asyncio.run(_admin(url, "ANALYZE"))


def server_env(
    database_url: str, encryption_key: str, pool_size: int, source: Path | None = None
) -> dict[str, str]:
    """The caller's environment without any TETHER_* setting, plus the bench's own. With
    `source`, Tether is imported from that tree instead of the working tree."""
    env = base_env(source)
    env.update(
        TETHER_DATABASE_URL=database_url,
        TETHER_ENCRYPTION_KEYS=encryption_key,
        TETHER_DB_POOL_SIZE=str(pool_size),
        # One key drives every endpoint far past any sane per-key budget (6000 a minute by
        # default). A budget no run reaches keeps the limiter's cost in the figures; 0 would
        # skip the limiter altogether.
        TETHER_RATE_LIMIT_PER_MINUTE="1000000000",
        PYTHONUNBUFFERED="1",
    )
    return env


def base_env(source: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.pop("PYTHONPATH", None)
    if source is not None:
        # Ahead of the editable install's path entry, so this tree's `tether` is imported.
        env["PYTHONPATH"] = str(source / "src")
    return env


def generate_encryption_key(python: Path, cwd: Path, source: Path | None = None) -> str:
    out = subprocess.run(
        [str(python), "-m", "tether", "secrets", "generate-key"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=base_env(source),
    )
    return out.stdout.strip()


def tether_source(python: Path, env: dict[str, str], cwd: Path) -> str:
    """Where the servers import `tether` from, to show which tree was measured."""
    out = subprocess.run(
        [str(python), "-c", "import tether; print(tether.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
    )
    return str(Path(out.stdout.strip()).parent)


def tether_init(python: Path, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """`tether init --json`: the account, its owner and both environments' keys."""
    out = subprocess.run(
        [
            str(python),
            "-m",
            "tether",
            "init",
            "--account",
            "Bench",
            "--email",
            "bench@tether.localhost",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tether init failed:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_users(base_url: str, key: str, count: int, concurrency: int = 16) -> list[str]:
    """`count` users made through POST /users; their ids, in creation order."""

    async def run() -> list[str]:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, headers=_auth(key), timeout=30) as client:

            async def one(n: int) -> str:
                async with limit:
                    response = await client.post(
                        "/users", json={"username": f"seed-{n:06d}", "fullName": f"Seed {n}"}
                    )
                if response.status_code != 200:
                    raise RuntimeError(f"POST /users: {response.status_code} {response.text}")
                return str(response.json()["userId"])

            return list(await asyncio.gather(*(one(n) for n in range(count))))

    return asyncio.run(run())


def user_token(base_url: str, key: str, user_id: str) -> str:
    response = httpx.get(f"{base_url}/users/{user_id}/token", headers=_auth(key), timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"GET /users/{{id}}/token: {response.status_code} {response.text}")
    return str(response.json()["token"])


def check_sdk_me(base_url: str, token: str, user_id: str) -> None:
    response = httpx.get(f"{base_url}/sdk/me", headers=_auth(token), timeout=30)
    if response.status_code != 200 or response.json().get("userId") != user_id:
        raise RuntimeError(f"GET /sdk/me: {response.status_code} {response.text}")


def create_signing_key(base_url: str, email: str, password: str, env: str) -> bytes:
    """A tenant-token signing key generated through the admin API; its private key (PEM)."""
    import base64

    login = httpx.post(
        f"{base_url}/admin/login", json={"email": email, "password": password}, timeout=30
    )
    login.raise_for_status()
    created = httpx.post(
        f"{base_url}/admin/environments/{env}/signing-keys",
        headers=_auth(login.json()["token"]),
        json={},
        timeout=30,
    )
    if created.status_code != 201:
        raise RuntimeError(f"POST signing-keys: {created.status_code} {created.text}")
    return base64.b64decode(created.json()["privateKey"])


def tenant_tokens(private_pem: bytes, user_ids: list[str], lifetime: int = 3600) -> list[str]:
    """One tenant token per user, as a customer's backend makes them (hotglue's snippet:
    `{"sub", "iat", "exp"}` signed RS256, no `kid`). 3600 s is the default longest lifetime
    an environment accepts."""
    import time

    import jwt

    now = int(time.time())
    return [
        jwt.encode({"sub": user_id, "iat": now, "exp": now + lifetime}, private_pem, "RS256")
        for user_id in user_ids
    ]


def check_tenant_token(base_url: str, publishable_key: str, user_id: str, token: str) -> None:
    response = httpx.get(
        f"{base_url}/tenants/{user_id}/linked-sources",
        headers={"x-api-key": publishable_key, "x-tenant-token": token},
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"linked-sources with a tenant token: {response.status_code} {response.text}"
        )


_LINKED_SOURCES = re.compile(r"/tenants/\{[^/}]+\}/linked-sources")


def probe_linked_sources(base_url: str, key: str, user_id: str) -> tuple[bool, str]:
    """Whether GET /tenants/{id}/linked-sources can be benchmarked, and a note if not.

    The route is absent when the OpenAPI document does not list it and a request without any
    credential is a 404 (an existing route would refuse it with 401 first)."""
    paths = httpx.get(f"{base_url}/openapi.json", timeout=30).json().get("paths", {})
    listed = any(_LINKED_SOURCES.fullmatch(path) for path in paths)
    path = f"/tenants/{user_id}/linked-sources"
    anonymous = httpx.get(base_url + path, timeout=30)
    if not listed and anonymous.status_code == 404:
        return False, "route not present"
    with_key = httpx.get(base_url + path, headers=_auth(key), timeout=30)
    if 200 <= with_key.status_code < 300:
        return True, ""
    code = ""
    if with_key.headers.get("content-type", "").endswith("json"):
        code = str(with_key.json().get("code", ""))
    return False, (
        f"route present, but a secret key got {with_key.status_code} {code}: "
        "bench/lua/linked_sources.lua needs the credential this route takes"
    )
