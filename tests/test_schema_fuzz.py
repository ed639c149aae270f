"""Schemathesis over the whole OpenAPI document, against a real `tether serve`: every
operation with valid credentials of the kind it needs (a fresh account's secret key, an admin
token, a user token), checking that no answer is a 500 and every answer to valid data matches
the document; and every secured operation without a credential, which must be 401, never 422.
Bounded (10 valid and 5 invalid examples an operation, derandomized) to stay about a minute."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import bearer, register_secret, register_secrets_in, run_server

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 10  # per operation and kind of data: the whole file runs in about a minute
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Credentials:
    url: str
    secret_key: str
    admin_token: str
    user_token: str

    def for_path(self, path: str) -> dict[str, str]:
        if path.startswith("/admin/"):
            return bearer(self.admin_token)
        if path.startswith("/sdk/"):
            return bearer(self.user_token)
        return bearer(self.secret_key)


@pytest.fixture(scope="module")
def fuzz_server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Credentials]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {**server_env, "TETHER_RATE_LIMIT_PER_MINUTE": "0"}
    password = secrets.token_urlsafe(16)
    done = subprocess.run(
        [sys.executable, "-m", "tether", "init", "--account", "Fuzz", "--email",
         f"fuzz-{secrets.token_hex(4)}@example.com", "--password", password, "--json"],
        env={**__import__("os").environ, **env}, cwd=tmp, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    created = json.loads(done.stdout)
    register_secrets_in(created)
    register_secret(password)
    key = created["environments"]["development"]["secretKey"]
    with run_server(env, tmp, name="fuzz") as server, httpx.Client(base_url=server.url) as client:
        login = client.post("/admin/login", json={"email": created["email"], "password": password})
        client.post("/users", json={"username": "fuzz-user"}, headers=bearer(key))
        token = client.get("/users/fuzz-user/token", headers=bearer(key))
        register_secret(login.json()["token"], token.json()["token"])
        yield Credentials(server.url, key, login.json()["token"], token.json()["token"])


@pytest.fixture(scope="module")
def operations(fuzz_server: Credentials) -> list[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def run_each(
    operations: list[APIOperation],
    mode: GenerationMode,
    check: Callable[[schemathesis.Case], None],
    examples: int = EXAMPLES,
) -> None:
    """`check` on a bounded number of generated cases of every operation; every failure is
    reported, not only the first."""
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(BOUNDED, max_examples=examples)
        def one(case: schemathesis.Case) -> None:
            check(case)

        try:
            one()
        except Unsatisfiable:
            continue  # no invalid data exists for an operation without parameters
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def with_credentials(case: schemathesis.Case, server: Credentials) -> None:
    """The case's generated headers, but the credential its path needs instead of its own."""
    headers = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() not in ("authorization", "x-api-key")
    }
    case.headers = {**headers, **server.for_path(case.path)}


def test_valid_credentials_never_a_500_and_always_as_documented(
    operations: list[APIOperation], fuzz_server: Credentials
) -> None:
    def check(case: schemathesis.Case) -> None:
        with_credentials(case, fuzz_server)
        case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS)

    run_each(operations, GenerationMode.POSITIVE, check)


def test_invalid_data_with_valid_credentials_is_never_a_500(
    operations: list[APIOperation], fuzz_server: Credentials
) -> None:
    def check(case: schemathesis.Case) -> None:
        with_credentials(case, fuzz_server)
        case.call_and_validate(base_url=fuzz_server.url, checks=[not_a_server_error])

    run_each(operations, GenerationMode.NEGATIVE, check, examples=5)


def test_no_credential_is_401_not_422(
    operations: list[APIOperation], fuzz_server: Credentials
) -> None:
    def check(case: schemathesis.Case) -> None:
        case.headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() not in ("authorization", "x-api-key", "x-tenant-token")
        }
        if case.query:
            case.query.pop("token", None)
        response = case.call(base_url=fuzz_server.url)
        assert response.status_code == 401, (response.status_code, response.text[:300])
        assert response.json()["code"] == "missing_credentials"

    secured = [op for op in operations if op.definition.raw.get("security")]
    assert len(secured) > 30
    run_each(secured, GenerationMode.POSITIVE, check)
    run_each(secured, GenerationMode.NEGATIVE, check, examples=5)
