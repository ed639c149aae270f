"""Faults, with real processes: PostgreSQL stopped and restarted under a stream of creates, the
server killed with SIGKILL under one, and rate limits shared through Redis (or not, while Redis
is away). Every test here starts processes, so all are marked slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import pgcluster
from tests.conftest import Account
from tests.support import bearer, clear_of_window_edge, free_port, run_cli, run_server

pytestmark = pytest.mark.slow

CLIENTS = 6
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def cluster() -> Iterator[pgcluster.Cluster]:
    reason = pgcluster.missing()
    if reason is not None:
        pytest.skip(f"no PostgreSQL cluster of our own: {reason}")
    with pgcluster.own_cluster() as cluster:
        yield cluster


@dataclass
class Stream:
    """POST /users from CLIENTS concurrent clients until stopped: what each request got."""

    url: str
    key: str
    outcomes: dict[str, int | str] = field(default_factory=dict)  # username -> status or error
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _client(self, number: int) -> None:
        headers = bearer(self.key)
        async with httpx.AsyncClient(base_url=self.url, timeout=15) as client:
            count = 0
            while not self.stop.is_set():
                username = f"c{number}-{count}-{secrets.token_hex(3)}"
                count += 1
                try:
                    response = await client.post(
                        "/users", json={"username": username}, headers=headers
                    )
                    self.outcomes[username] = response.status_code
                    if response.status_code != 200:
                        await asyncio.sleep(0.05)
                except httpx.TransportError as exc:
                    self.outcomes[username] = type(exc).__name__
                    await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Stream]:
        tasks = [asyncio.create_task(self._client(n)) for n in range(CLIENTS)]
        try:
            yield self
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)

    def acknowledged(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome == 200}

    def statuses(self) -> set[int | str]:
        return set(self.outcomes.values())

    async def until(self, count: int, timeout: float = 30) -> None:
        """Wait until `count` more creates are acknowledged."""
        target = len(self.acknowledged()) + count
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < target:
            assert time.monotonic() < deadline, f"stalled: {self.statuses()}"
            await asyncio.sleep(0.05)


async def all_usernames(url: str, key: str) -> set[str]:
    names: set[str] = set()
    cursor: str | None = None
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while True:
            params: dict[str, str | int] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/users", params=params, headers=bearer(key))
            assert page.status_code == 200, page.text
            names.update(user["username"] for user in page.json()["data"])
            cursor = page.json()["nextCursor"]
            if not cursor:
                return names


async def init_account(env: dict[str, str], cwd: Path) -> str:
    """`tether init` on the database `env` names: the development secret key."""
    done = await run_cli(
        env, cwd, "init", "--account", "Faults", "--email", f"f-{secrets.token_hex(4)}@x.io",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key: str = json.loads(done.stdout)["environments"]["development"]["secretKey"]
    return key


def fault_env(server_env: dict[str, str], database_url: str) -> dict[str, str]:
    return {
        **server_env,
        "TETHER_DATABASE_URL": database_url,
        "TETHER_RATE_LIMIT_PER_MINUTE": "0",  # the stream is one key, as fast as it goes
        "TETHER_DB_POOL_TIMEOUT": "2",
    }


async def test_postgresql_restarts_under_a_stream_of_creates(
    cluster: pgcluster.Cluster, server_env: dict[str, str], tmp_path: Path
) -> None:
    env = fault_env(server_env, cluster.url)
    key = await init_account(env, tmp_path)
    with run_server(env, tmp_path, name="pg-fault") as server:
        stream = Stream(server.url, key)
        async with stream.running(), httpx.AsyncClient(base_url=server.url) as probe:
            await stream.until(30)
            await asyncio.to_thread(cluster.stop, "fast")
            outage_started = len(stream.outcomes)
            await asyncio.sleep(1.5)
            ready_while_down = await probe.get("/readyz")
            await asyncio.to_thread(cluster.start)
            # Service resumes without a restart of Tether (and without pool pre-ping).
            await stream.until(30)
            assert len(stream.outcomes) > outage_started
            assert (await probe.get("/readyz")).status_code == 200
        assert ready_while_down.status_code == 503
        assert ready_while_down.json()["code"] == "database_unavailable"
        log = server.log()
        stored = await all_usernames(server.url, key)

    outcomes = stream.statuses()
    assert 500 not in outcomes, log
    # Anything but a 200 is a 503 or a connection error (the name of httpx's TransportError).
    assert all(o in (200, 503) or isinstance(o, str) for o in outcomes), outcomes
    assert 503 in outcomes  # the outage was seen
    missing = stream.acknowledged() - stored
    assert not missing, f"acknowledged but not stored: {sorted(missing)[:5]}"
    assert "Traceback" not in log, log


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_every_acknowledged_create_survives_kill_9(
    request: pytest.FixtureRequest, server_env: dict[str, str], tmp_path: Path, database: str
) -> None:
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    else:
        url = request.getfixturevalue("cluster").url
    env = fault_env(server_env, url)
    key = await init_account(env, tmp_path)
    with run_server(env, tmp_path, name=f"crash-{database}") as server:
        stream = Stream(server.url, key)
        async with stream.running():
            await stream.until(60)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            await asyncio.sleep(0.3)
    assert 500 not in stream.statuses()
    with run_server(env, tmp_path, name=f"crash-{database}-after") as server:
        stored = await all_usernames(server.url, key)
    acknowledged = stream.acknowledged()
    assert len(acknowledged) >= 60
    missing = acknowledged - stored
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"


def redis_env(server_env: dict[str, str], redis_url: str, prefix: str) -> dict[str, str]:
    return {
        **server_env,
        "TETHER_REDIS_URL": redis_url,
        "TETHER_RATE_LIMIT_KEY_PREFIX": prefix,
        "TETHER_RATE_LIMIT_PER_MINUTE": "10",
    }


def redis_is_up() -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


async def test_two_servers_share_one_budget_through_redis(
    server_env: dict[str, str], tmp_path: Path, account: Account
) -> None:
    if not redis_is_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    env = redis_env(server_env, REDIS, f"tether-test-{secrets.token_hex(8)}")
    with (
        run_server(env, tmp_path, name="redis-a") as a,
        run_server(env, tmp_path, name="redis-b") as b,
    ):
        statuses = []
        await clear_of_window_edge()
        async with httpx.AsyncClient() as client:
            for n in range(20):  # alternately, so that each server sees 10
                server = (a, b)[n % 2]
                response = await client.get(
                    f"{server.url}/users", headers=bearer(account.dev.secret_key)
                )
                statuses.append(response.status_code)
        assert statuses.count(200) == 10, statuses
        assert statuses.count(429) == 10, statuses
        assert statuses[:10] == [200] * 10
        assert "Redis unavailable" not in a.log() + b.log()


async def test_without_redis_each_server_limits_for_itself(
    server_env: dict[str, str], tmp_path: Path, account: Account
) -> None:
    env = redis_env(server_env, f"redis://127.0.0.1:{free_port()}/0", "tether-test-down")
    with run_server(env, tmp_path, name="redis-down") as server:
        await clear_of_window_edge()
        async with httpx.AsyncClient(base_url=server.url) as client:
            statuses = [
                (await client.get("/users", headers=bearer(account.dev.secret_key))).status_code
                for _ in range(12)
            ]
            assert (await client.get("/readyz")).status_code == 200
        log = server.log()
    assert statuses == [200] * 10 + [429] * 2, statuses
    assert log.count("Redis unavailable") == 1, log
