"""`tether serve` as real processes: /metrics sums every worker's counts, SIGTERM lets the
requests in flight finish, and the log is one JSON line per request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import Account
from tests.installations.test_oauth import Flow, expire_soon
from tests.oauth_provider import Provider, run_provider
from tests.ops.test_metrics import parse, value
from tests.support import bearer, run_server
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.config import Settings
from tether.main import create_app

TOKEN_ROUTE = {"method": "GET", "route": "/users/{user_id}/token", "status": "200"}


def request_lines(log: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "tether.request"]


def counts_by_process(directory: Path) -> dict[int, float]:
    """Each worker's own count of the token route, read from its file in the multiprocess
    directory: what the scrape sums."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):  # type: ignore[no-untyped-call]
            for sample in family.samples:
                if sample.name == "tether_http_requests_total" and sample.labels == TOKEN_ROUTE:
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


@pytest.mark.slow
class TestMetricsAcrossWorkers:
    async def test_a_scrape_sums_the_counts_of_both_workers(
        self,
        server_env: dict[str, str],
        tmp_path: Path,
        client: httpx.AsyncClient,
        app: FastAPI,
        account: Account,
    ) -> None:
        user = await create_user(client, account.dev.secret_key, "scraped")
        # No write of the in-process app may hold SQLite's lock while the server starts.
        await app.state.key_usage.drain()
        # `tether serve` makes its metrics directory under TMPDIR: here, where the test sees it.
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        env = {**server_env, "TMPDIR": str(scratch), "TETHER_LOG_FORMAT": "json"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        path = f"/users/{user['userId']}/token?note=do-not-log-me"
        headers = bearer(account.dev.secret_key)

        with run_server(env, tmp_path, workers=2) as server:
            (directory,) = scratch.glob("tether-metrics-*")
            sent = 0
            # Each request on its own connection; the kernel hands connections to whichever
            # worker accepts first, so keep going (a bounded number of rounds) until both
            # have served some.
            for _round in range(20):
                async with httpx.AsyncClient(
                    base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)
                ) as http:
                    responses = await asyncio.gather(
                        *(http.get(path, headers=headers) for _ in range(16))
                    )
                assert [r.status_code for r in responses] == [200] * 16
                sent += 16
                if len([c for c in counts_by_process(directory).values() if c]) >= 2:
                    break
            per_worker = counts_by_process(directory)
            assert len([c for c in per_worker.values() if c]) == 2, per_worker
            assert sum(per_worker.values()) == sent

            scraped = httpx.get(f"{server.url}/metrics")
            assert scraped.status_code == 200
            samples = parse(scraped.text)
            assert value(samples, "tether_http_requests_total", **TOKEN_ROUTE) == sent
            assert (
                value(samples, "tether_http_request_duration_seconds_count", **TOKEN_ROUTE) == sent
            )
            pool_pids = {
                dict(labels)["pid"] for (name, labels) in samples if name == "tether_db_pool_size"
            }
            assert pool_pids == {str(pid) for pid in per_worker}, pool_pids

            # And one JSON line per request, from both workers, with nothing but templates.
            time.sleep(0.2)
            lines = [
                line
                for line in request_lines(server.log())
                if line["route"] == TOKEN_ROUTE["route"]
            ]
            assert len(lines) == sent
            assert {line["pid"] for line in lines} == set(per_worker)
            assert {line["account_id"] for line in lines} == {account.id}
            assert {line["environment_id"] for line in lines} == {account.dev.id}
            log = server.log()
            for secret in ("do-not-log-me", user["userId"], account.dev.secret_key):
                assert secret not in log

        # The server removed its directory when it stopped.
        assert not directory.exists()


# --- graceful shutdown ---------------------------------------------------------------------------

SLOW = 4.0  # seconds the provider takes to answer each refresh


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with run_provider(tmp_path_factory.mktemp("provider")) as provider:
        yield provider


@pytest.fixture(scope="module")
async def oauth_app(settings: Settings) -> AsyncIterator[FastAPI]:
    local = settings.model_copy(update={"allow_insecure_oauth_urls": True})
    app = create_app(local)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def web(oauth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=oauth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await oauth_app.state.key_usage.drain()


async def near_expiry_credentials(
    web: httpx.AsyncClient, oauth_app: FastAPI, account: Account, provider: Provider, count: int
) -> list[tuple[str, str, str]]:
    """`count` users, each with an OAuth credential about to expire, so that reading it
    refreshes it at the provider first: a real slow request. (user id, credential id, token)"""
    provider.reset()
    client = provider.register_client(redirect_uris=["http://testserver/oauth/callback"])
    created = await web.post(
        "/admin/environments/development/integrations",
        json={
            "app": "custom_oauth2",
            "clientId": client.client_id,
            "clientSecret": client.client_secret,
            "authorizeUrl": provider.authorize_endpoint,
            "tokenUrl": provider.token_endpoint,
            "scopes": ["read"],
        },
        headers=account.admin,
    )
    assert created.status_code == 201, created.text
    made = []
    for i in range(count):
        flow = Flow(web, account, created.json()["integrationId"])
        flow.user_id = (await create_user(web, account.dev.secret_key, f"slow-{i}"))["userId"]
        flow.user_token = (await mint(web, account.dev.secret_key, flow.user_id))["token"]
        await flow.connect()
        credential = (await flow.credential()).json()
        await expire_soon(oauth_app, flow)
        made.append((flow.user_id, credential["credentialId"], credential["data"]["accessToken"]))
    return made


def worker_pids(parent: int) -> list[int]:
    """The child processes of `parent`, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            children.append(int(entry.name))
    return children


def resume(paused: list[int]) -> None:
    while paused:
        with contextlib.suppress(ProcessLookupError):
            os.kill(paused.pop(), signal.SIGCONT)


def open_connections(pid: int, port: int) -> int:
    """Established TCP connections to `port` that process `pid` holds, from /proc."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED
                count += 1
    return count


@pytest.mark.slow
class TestGracefulShutdown:
    @pytest.mark.parametrize("workers", [1, 2])
    async def test_sigterm_lets_the_requests_in_flight_finish(
        self,
        workers: int,
        server_env: dict[str, str],
        tmp_path: Path,
        web: httpx.AsyncClient,
        oauth_app: FastAPI,
        account: Account,
        provider: Provider,
    ) -> None:
        prepared = 12 if workers > 1 else 4
        credentials = await near_expiry_credentials(web, oauth_app, account, provider, prepared)
        env = {
            **server_env,
            "TETHER_ALLOW_INSECURE_OAUTH_URLS": "true",
            "TETHER_OAUTH_TIMEOUT_SECONDS": "30",
            "TETHER_LOG_FORMAT": "json",
        }
        headers = bearer(account.dev.secret_key)
        await oauth_app.state.key_usage.drain()
        with run_server(env, tmp_path, workers=workers) as server:
            port = int(server.url.rpartition(":")[2])
            children = worker_pids(server.process.pid) or [server.process.pid]
            provider.hang_next(SLOW, count=prepared, grant_type="refresh_token")
            async with httpx.AsyncClient(
                base_url=server.url,
                timeout=60,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as http:
                # One slow read at a time, each on its own connection, until every worker
                # holds at least one and at least four are in flight. The kernel gives a
                # connection to whichever worker accepts first, and on a busy machine one
                # worker can win every time: until each worker holds a read, the workers
                # that hold one are paused (SIGSTOP), so the next connection goes elsewhere.
                reads = []
                paused: list[int] = []
                try:
                    for user, credential, _ in credentials:
                        reads.append(
                            asyncio.create_task(
                                http.get(f"/users/{user}/credentials/{credential}", headers=headers)
                            )
                        )
                        deadline = time.monotonic() + 20
                        while provider.stats()["token_requests"].get("refresh_token", 0) < len(
                            reads
                        ):
                            assert time.monotonic() < deadline, provider.stats()
                            await asyncio.sleep(0.02)
                        # (With several workers, one more child is multiprocessing's tracker.)
                        busy = [pid for pid in children if open_connections(pid, port)]
                        if len(busy) < workers:
                            for pid in set(busy) - set(paused):
                                os.kill(pid, signal.SIGSTOP)
                                paused.append(pid)
                        else:
                            resume(paused)
                        if len(reads) >= 4 and len(busy) >= workers:
                            break
                finally:
                    resume(paused)
                assert len(busy) >= workers, (busy, children)
                in_flight = len(reads)
                server.process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                responses = await asyncio.gather(*reads)
            provider.clear_faults()

            assert [r.status_code for r in responses] == [200] * in_flight, [
                r.text for r in responses if r.status_code != 200
            ]
            for response, (_, _, before) in zip(responses, credentials, strict=False):
                assert response.json()["data"]["accessToken"] != before  # refreshed, in full
            code = await asyncio.to_thread(server.process.wait, 30)
            log = server.log()
            # uvicorn ends by the signal it handled (one worker), or 0 (a supervisor).
            assert code in (0, -signal.SIGTERM), log
            # It waited for them rather than cutting them off, and then shut down cleanly.
            assert time.monotonic() - stopped_at < 30
            assert log.count("Application shutdown complete") == workers, log
            served = [
                line
                for line in request_lines(log)
                if line["route"] == "/users/{user_id}/credentials/{credential_id}"
            ]
            assert [line["status"] for line in served] == [200] * in_flight
            assert len({line["pid"] for line in served}) == workers
