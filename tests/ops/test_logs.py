"""The one log line per request: the route template, the status, the duration, the request
id, the account and environment of the credential, and never a secret or a raw path."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Account
from tests.support import bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.config import Settings
from tether.ops.logs import (
    REQUEST_LOGGER,
    JsonFormatter,
    RequestLog,
    TextFormatter,
    bind_request_id,
    logging_config,
    make_formatter,
    resolve_format,
)


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The request lines logged while the test runs."""
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger = logging.getLogger(REQUEST_LOGGER)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def only(records: list[logging.LogRecord], response: httpx.Response) -> dict[str, object]:
    """The fields of the one line logged for `response`."""
    request_id = response.headers["x-request-id"]
    matching = [r for r in records if r.fields["request_id"] == request_id]  # type: ignore[attr-defined]
    assert len(matching) == 1, [r.fields for r in records]  # type: ignore[attr-defined]
    fields: dict[str, object] = matching[0].fields  # type: ignore[attr-defined]
    return fields


class TestRequestLine:
    async def test_a_secret_key_request_names_its_route_template_account_and_environment(
        self, client: httpx.AsyncClient, account: Account, lines: list[logging.LogRecord]
    ) -> None:
        user = await create_user(client, account.dev.secret_key, "log-me")
        response = await client.get(
            f"/2024-03/users/{user['userId']}/token?note=query-secret",
            headers=bearer(account.dev.secret_key),
        )
        assert response.status_code == 200

        fields = only(lines, response)
        assert fields["method"] == "GET"
        assert fields["route"] == "/users/{user_id}/token"
        assert fields["status"] == 200
        assert isinstance(fields["duration_ms"], float)
        assert fields["duration_ms"] >= 0
        assert fields["account_id"] == account.id
        assert fields["environment_id"] == account.dev.id

        line = JsonFormatter().format(next(r for r in lines if r.fields is fields))  # type: ignore[attr-defined]
        assert json.loads(line)["route"] == "/users/{user_id}/token"
        for secret in (user["userId"], "log-me", "query-secret", account.dev.secret_key):
            assert secret not in line

    async def test_an_admin_names_the_account_and_a_user_token_the_environment(
        self, client: httpx.AsyncClient, account: Account, lines: list[logging.LogRecord]
    ) -> None:
        admin = await client.get("/admin/account", headers=account.admin)
        assert admin.status_code == 200
        fields = only(lines, admin)
        assert (fields["account_id"], fields["environment_id"]) == (account.id, None)

        user = await create_user(client, account.prod.secret_key, "sdk-user")
        token = (await mint(client, account.prod.secret_key, user["userId"]))["token"]
        me = await client.get("/sdk/me", headers=bearer(token))
        assert me.status_code == 200
        fields = only(lines, me)
        assert fields["route"] == "/sdk/me"
        assert fields["environment_id"] == account.prod.id
        assert token not in JsonFormatter().format(lines[-1])

    async def test_refusals_and_unknown_paths_carry_no_ids(
        self, client: httpx.AsyncClient, account: Account, lines: list[logging.LogRecord]
    ) -> None:
        refused = await client.get("/users/someone/token", headers=bearer("tether_sk_dev_nope"))
        assert refused.status_code == 401
        fields = only(lines, refused)
        assert fields["status"] == 401
        assert (fields["account_id"], fields["environment_id"]) == (None, None)

        unknown = await client.get("/no/such/acc_1234/path")
        assert unknown.status_code == 404
        fields = only(lines, unknown)
        # Never the raw path: it may carry ids; a path no route matched is "unmatched".
        assert fields["route"] == "unmatched"

    async def test_an_incoming_request_id_is_the_logged_one(
        self, client: httpx.AsyncClient, lines: list[logging.LogRecord]
    ) -> None:
        response = await client.get("/healthz", headers={"x-request-id": "edge-1234"})
        assert only(lines, response)["request_id"] == "edge-1234"

    async def test_no_line_below_the_configured_level(
        self, client: httpx.AsyncClient, lines: list[logging.LogRecord]
    ) -> None:
        logging.getLogger(REQUEST_LOGGER).setLevel(logging.WARNING)
        await client.get("/healthz")
        assert lines == []


def record(name: str, message: str, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    if fields:
        made.fields = fields
    return made


class TestFormatters:
    def test_json_is_one_object_a_line_with_the_request_id_of_the_context(self) -> None:
        bind_request_id("rid-1")
        line = JsonFormatter().format(record("tether.errors", "database unavailable"))
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["msg"] == "database unavailable"
        assert entry["level"] == "info"
        assert entry["logger"] == "tether.errors"
        assert entry["request_id"] == "rid-1"
        assert entry["ts"].endswith("Z")

    def test_json_carries_an_exception(self) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            failed = logging.LogRecord(
                "x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
            )
        entry = json.loads(JsonFormatter().format(failed))
        assert "ValueError: boom" in entry["exc_info"]

    def test_text_reads_as_a_sentence(self) -> None:
        line = TextFormatter().format(
            record(
                REQUEST_LOGGER,
                "request",
                method="GET",
                route="/users/{user_id}/token",
                status=200,
                duration_ms=1.5,
                request_id="rid-2",
                account_id=None,
                environment_id="env_1",
            )
        )
        assert "GET /users/{user_id}/token 200 1.5 ms" in line
        assert "request_id=rid-2" in line
        assert "environment_id=env_1" in line
        assert "account_id" not in line


class TestRequestLog:
    def test_records_from_the_template_are_whole_and_timed_now(
        self, lines: list[logging.LogRecord]
    ) -> None:
        log = RequestLog()
        before = time.time()
        log.write({"route": "/a", "request_id": "one"})
        log.write({"route": "/b", "request_id": "two"})
        first, second = lines
        assert (first.fields, second.fields) == (  # type: ignore[attr-defined]
            {"route": "/a", "request_id": "one"},
            {"route": "/b", "request_id": "two"},
        )
        assert before <= first.created <= second.created <= time.time()
        assert first.name == REQUEST_LOGGER
        assert first.levelno == logging.INFO
        assert first.getMessage() == "request"
        assert first.process == os.getpid()
        assert json.loads(JsonFormatter().format(second))["route"] == "/b"


class TestConfiguration:
    def test_auto_is_text_on_a_terminal_and_json_elsewhere(self) -> None:
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        assert resolve_format("auto", Terminal()) == "text"
        assert resolve_format("auto", io.StringIO()) == "json"
        assert resolve_format("json", Terminal()) == "json"
        assert resolve_format("text", io.StringIO()) == "text"

    def test_the_dict_config_applies_and_keeps_uvicorns_access_log_off(self) -> None:
        settings = Settings(_env_file=None, log_format="JSON", log_level="WARNING")  # type: ignore[call-arg]
        config = logging_config(settings)
        assert config["root"]["level"] == "WARNING"
        assert config["formatters"]["tether"]["kind"] == "json"
        assert config["loggers"]["uvicorn.access"]["propagate"] is False
        assert config["loggers"]["httpx"]["level"] == "WARNING"
        assert config["loggers"]["sqlalchemy"]["level"] == "WARNING"
        # Debug is Tether's own: libraries stay at info, where none quotes a parameter.
        debug = logging_config(Settings(_env_file=None, log_level="debug"))  # type: ignore[call-arg]
        assert debug["loggers"]["tether"]["level"] == "DEBUG"
        assert debug["root"]["level"] == "INFO"
        assert isinstance(make_formatter("json"), JsonFormatter)
        assert isinstance(make_formatter("text"), TextFormatter)
        # What uvicorn does with it in every worker, here on a copy of the logging state.
        root = logging.getLogger()
        saved = (root.level, list(root.handlers))
        try:
            logging.config.dictConfig(config)
            assert isinstance(root.handlers[0].formatter, JsonFormatter)
        finally:
            root.handlers[:] = saved[1]
            root.setLevel(saved[0])
