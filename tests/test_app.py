"""The conventions every route shares: problem documents, request ids, versions, limits."""

from __future__ import annotations

import gc

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account
from tests.support import bearer
from tether.main import GC_YOUNG_THRESHOLD


class TestProblemDocuments:
    async def test_unknown_route_is_a_problem_document(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/route")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "not_found"
        assert body["status"] == 404
        assert body["requestId"] == response.headers["x-request-id"]

    async def test_validation_errors_list_what_failed(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/admin/environments/development/api-keys",
            json={"type": "bogus"},
            headers=account.admin,
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["errors"][0]["loc"] == ["body", "type"]
        assert "input" not in body["errors"][0]

    async def test_unknown_fields_are_refused(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/admin/environments/development/api-keys",
            json={"type": "secret", "environmentId": account.prod.id},
            headers=account.admin,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["type"] == "extra_forbidden"


class TestRequestId:
    async def test_a_well_formed_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"x-request-id": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    @pytest.mark.parametrize("bad", ["", "has space", "x" * 200, "<script>"])
    async def test_a_malformed_id_is_replaced(self, client: httpx.AsyncClient, bad: str) -> None:
        response = await client.get("/healthz", headers={"x-request-id": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 24


class TestApiVersion:
    async def test_routes_are_served_under_a_dated_prefix(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/2024-03/healthz")
        assert response.status_code == 200
        assert response.headers["x-api-version"] == "2024-03"

    async def test_default_version_is_announced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.headers["x-api-version"] == "2024-03"

    async def test_the_header_names_a_version(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"x-api-version": "2025-01"})
        assert response.status_code == 200
        assert response.headers["x-api-version"] == "2025-01"

    @pytest.mark.parametrize("path", ["/2024-13/healthz", "/2024-3/healthz", "/24-03/healthz"])
    async def test_malformed_prefix_is_400(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(path)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_api_version"

    @pytest.mark.parametrize("value", ["2024-00", "latest", "2024-03-01"])
    async def test_malformed_header_is_400(self, client: httpx.AsyncClient, value: str) -> None:
        response = await client.get("/healthz", headers={"x-api-version": value})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_api_version"

    async def test_conflicting_path_and_header_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/2024-03/healthz", headers={"x-api-version": "2025-01"})
        assert response.status_code == 400


class TestBodyLimit:
    async def test_declared_length_over_the_limit_is_413(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/admin/login",
            content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    async def test_streamed_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(20):
                yield b" " * 65536

        response = await client.post(
            "/admin/login", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"


class TestOperations:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}

    async def test_readyz(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/readyz")).json() == {"status": "ready"}

    async def test_docs_and_openapi(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/docs")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
        assert "Problem" in spec["components"]["schemas"]
        assert {"bearer", "apiKey"} <= set(spec["components"]["securitySchemes"])


class TestCredentials:
    async def test_missing_credentials_says_bearer(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/admin/account")
        assert response.status_code == 401
        assert response.json()["code"] == "missing_credentials"
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize(
        ("path", "content_type"),
        [
            ("/users", "application/json"),
            ("/admin/environments/development/api-keys", "application/json"),
            ("/sdk/installations", "multipart/form-data; boundary=x"),
        ],
    )
    async def test_no_credential_is_401_even_with_a_body_that_does_not_parse(
        self, client: httpx.AsyncClient, path: str, content_type: str
    ) -> None:
        # FastAPI parses the body before the route's dependencies run (found by schemathesis).
        response = await client.post(
            path, content=b"{not json", headers={"content-type": content_type}
        )
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "missing_credentials"

    async def test_a_body_that_does_not_parse_is_still_422_with_a_credential(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        response = await client.post(
            "/users",
            content=b"{not json",
            headers={**bearer(account.dev.secret_key), "content-type": "application/json"},
        )
        assert response.status_code == 422

    async def test_garbage_bearer_is_invalid_api_key(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/admin/account", headers=bearer("nonsense"))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_api_key"


class TestStrictScalars:
    """Numbers and booleans must be sent as such: "60" is not 60 and "yes" is not true."""

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/admin/environments/development", {"userTokenTtlSeconds": "60"}),
            ("/admin/environments/development", {"userTokenTtlSeconds": True}),
            ("/admin/environments/development", {"requireTenantToken": "yes"}),
            ("/admin/environments/development", {"requireTenantToken": 1}),
        ],
    )
    async def test_patch_refuses_coercible_values(
        self, client: httpx.AsyncClient, account: Account, path: str, body: dict[str, object]
    ) -> None:
        response = await client.patch(path, json=body, headers=account.admin)
        assert response.status_code == 422, response.text

    async def test_roll_refuses_a_string_grace_period(
        self, client: httpx.AsyncClient, account: Account
    ) -> None:
        keys = await client.get("/admin/environments/development/api-keys", headers=account.admin)
        key_id = keys.json()["data"][0]["id"]
        response = await client.post(
            f"/admin/environments/development/api-keys/{key_id}/roll",
            json={"gracePeriodSeconds": "60"},
            headers=account.admin,
        )
        assert response.status_code == 422


class TestGarbageCollector:
    def test_startup_objects_are_frozen_and_young_collections_spaced(self, app: FastAPI) -> None:
        # `app` has run its startup: what was loaded by then is out of the collector's sight.
        assert gc.get_freeze_count() > 100_000
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
