"""GET /metrics in process: counts and latencies by route template and status, the pool
gauges, and who may read them. (Several workers: tests/ops/test_processes.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.conftest import Account
from tests.support import assert_problem, bearer
from tests.users.test_routes import create_user
from tether.config import Settings
from tether.main import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


class TestMetrics:
    async def test_requests_are_counted_by_route_template_and_status(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        user = await create_user(client, account.dev.secret_key, "counted")
        route = {"method": "GET", "route": "/users/{user_id}/token"}
        before = await scrape(client)

        for _ in range(3):
            ok = await client.get(
                f"/users/{user['userId']}/token", headers=bearer(account.dev.secret_key)
            )
            assert ok.status_code == 200
        refused = await client.get("/2024-03/users/anyone/token", headers=bearer("tether_sk_x"))
        assert refused.status_code == 401
        await client.get("/nothing/here")

        after = await scrape(client)
        total = "tether_http_requests_total"
        count = "tether_http_request_duration_seconds_count"
        assert (
            value(after, total, **route, status="200") - value(before, total, **route, status="200")
            == 3
        )
        assert (
            value(after, total, **route, status="401") - value(before, total, **route, status="401")
            == 1
        )
        assert (
            value(after, count, **route, status="200") - value(before, count, **route, status="200")
            == 3
        )
        unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
        assert value(after, total, **unmatched) - value(before, total, **unmatched) == 1
        # Only templates: no label carries the user's id or username.
        labels = {v for (_, pairs) in after for (_, v) in pairs}
        assert user["userId"] not in labels
        assert "counted" not in labels

    async def test_latency_buckets_are_cumulative_up_to_the_count(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/healthz")
        samples = await scrape(client)
        labels = {"method": "GET", "route": "/healthz", "status": "200"}
        count = value(samples, "tether_http_request_duration_seconds_count", **labels)
        infinite = value(
            samples, "tether_http_request_duration_seconds_bucket", **labels, le="+Inf"
        )
        assert count >= 1
        assert infinite == count

    async def test_the_pool_gauges(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        samples = await scrape(client)
        assert value(samples, "tether_db_pool_size") == app.state.engine.pool.size()
        assert ("tether_db_pool_checked_out", ()) in samples
        assert ("tether_db_pool_overflow", ()) in samples


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-me")}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


class TestWhoMayRead:
    async def test_with_a_token_only_its_bearer_reads(self, guarded: httpx.AsyncClient) -> None:
        assert_problem(await guarded.get("/metrics"), 401, "missing_credentials")
        wrong = await guarded.get("/metrics", headers=bearer("scrape-you"))
        assert_problem(wrong, 401, "invalid_token")
        assert "scrape-me" not in wrong.text
        assert (await guarded.get("/metrics", headers=bearer("scrape-me"))).status_code == 200

    async def test_turned_off_it_is_not_there(self, settings: Settings) -> None:
        app = create_app(settings.model_copy(update={"metrics_enabled": False}))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert_problem(await client.get("/metrics"), 404, "not_found")
        await app.state.engine.dispose()

    def test_the_settings_read_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TETHER_METRICS_TOKEN", "")
        monkeypatch.setenv("TETHER_METRICS_ENABLED", "false")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.metrics_token is None  # an empty value is no token, not ""
        assert settings.metrics_enabled is False
