"""Third-party secrets at rest: no row of any table holds one in clear, and a ciphertext copied
onto another row does not decrypt there; the API answers that with a clean error."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Account
from tests.installations.helpers import create_integration, custom_oauth2, install, stripe_key
from tests.support import assert_problem, bearer
from tests.users.test_routes import create_user
from tests.users.test_tokens import mint
from tether.db.registry import metadata


async def every_value(app: FastAPI) -> dict[str, list[str]]:
    """Every column value of every row of every table, as text, by table, read with plain SQL."""
    values: dict[str, list[str]] = {}
    async with app.state.engine.connect() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(text(f'SELECT * FROM "{table.name}"'))
            values[table.name] = [
                value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                for row in result
                for value in row
                if value is not None
            ]
    return values


async def set_column(app: FastAPI, table: str, column: str, row_id: str, value: str) -> None:
    async with app.state.engine.begin() as conn:
        result = await conn.execute(
            text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
            {"value": value, "id": row_id},
        )
        assert result.rowcount == 1


async def column(app: FastAPI, table: str, name: str, row_id: str) -> str:
    async with app.state.engine.connect() as conn:
        value = await conn.scalar(
            text(f"SELECT {name} FROM {table} WHERE id = :id"),
            {"id": row_id},
        )
    assert isinstance(value, str)
    return value


@dataclass
class Secrets:
    stripe: str
    sdk_stripe: str
    zendesk: str
    client_secret: str
    patched_client_secret: str
    slack_client_secret: str
    client_id: str

    def all(self) -> list[str]:
        return [
            self.stripe,
            self.sdk_stripe,
            self.zendesk,
            self.client_secret,
            self.patched_client_secret,
            self.slack_client_secret,
        ]


class TestNoSecretInClear:
    async def test_no_row_holds_a_secret(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        found = Secrets(
            stripe=stripe_key(),
            sdk_stripe=stripe_key(),
            zendesk=f"zendesk{secrets.token_hex(16)}",
            client_secret=f"clientsecret{secrets.token_hex(16)}",
            patched_client_secret=f"patchedsecret{secrets.token_hex(16)}",
            slack_client_secret=f"slacksecret{secrets.token_hex(16)}",
            client_id=f"clientid{secrets.token_hex(16)}",
        )
        key = account.dev.secret_key
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        zendesk = await create_integration(client, account.admin, {"app": "zendesk"})
        custom = await create_integration(
            client, account.admin, custom_oauth2(found.client_secret, clientId=found.client_id)
        )
        await create_integration(
            client,
            account.admin,
            {"app": "slack", "clientId": "slack", "clientSecret": found.slack_client_secret},
            "production",
        )
        patched = await create_integration(client, account.admin, custom_oauth2())
        response = await client.patch(
            f"/admin/environments/development/integrations/{patched['integrationId']}",
            json={"clientSecret": found.patched_client_secret},
            headers=account.admin,
        )
        assert response.status_code == 200, response.text
        user = await create_user(client, key, "at-rest")
        await install(client, key, "at-rest", stripe["integrationId"], {"apiKey": found.stripe})
        zendesk_data = {"subdomain": "acme", "email": "ops@acme.example", "apiToken": found.zendesk}
        await install(client, key, "at-rest", zendesk["integrationId"], zendesk_data)
        await create_user(client, key, "sdk-at-rest")
        token = (await mint(client, key, "sdk-at-rest"))["token"]
        response = await client.post(
            "/sdk/installations",
            json={"integrationId": stripe["integrationId"], "data": {"apiKey": found.sdk_stripe}},
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
        # A pending OAuth state too, with its encrypted PKCE verifier.
        started = await client.post(
            f"/sdk/oauth/{custom['integrationId']}/start", headers=bearer(token)
        )
        assert started.status_code == 200, started.text

        values = await every_value(app)
        assert {"integrations", "installations", "credentials", "oauth_states"} <= set(values)
        # The scan sees these rows: what is not secret is stored in clear, and found.
        clear = [value for table in values.values() for value in table]
        assert found.client_id in clear
        assert user["userId"] in values["credentials"]
        for table, table_values in values.items():
            for value in table_values:
                for secret in found.all():
                    assert secret not in value, (table, secret)
        # While each one still reads back through the API.
        credentials = await client.get(f"/users/{user['userId']}/credentials", headers=bearer(key))
        read = set()
        for credential in credentials.json()["data"]:
            response = await client.get(
                f"/users/at-rest/credentials/{credential['credentialId']}", headers=bearer(key)
            )
            read |= set(response.json()["data"].values())
        assert {found.stripe, found.zendesk} <= read


class TestCopiedCiphertext:
    async def test_a_credential_copied_onto_another_row_is_a_clean_500(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        key = account.dev.secret_key
        first_secret, second_secret = stripe_key(), stripe_key()
        stripe = await create_integration(client, account.admin, {"app": "stripe"})
        await create_user(client, key, "victim")
        user = await create_user(client, key, "attacker")
        first = await install(
            client, key, "victim", stripe["integrationId"], {"apiKey": first_secret}
        )
        second = await install(
            client, key, "attacker", stripe["integrationId"], {"apiKey": second_secret}
        )
        copied = await column(app, "credentials", "ciphertext", first["credentialId"])
        await set_column(app, "credentials", "ciphertext", second["credentialId"], copied)

        response = await client.get(
            f"/users/attacker/credentials/{second['credentialId']}", headers=bearer(key)
        )
        body = assert_problem(response, 500, "secret_unreadable")
        assert set(body) == {"type", "title", "status", "detail", "code", "requestId"}
        assert "Traceback" not in response.text
        assert 'File "' not in response.text
        for secret in (first_secret, second_secret, copied):
            assert secret not in response.text
        # Its metadata still lists; the original row still reads.
        listed = await client.get(f"/users/{user['userId']}/credentials", headers=bearer(key))
        assert [c["credentialId"] for c in listed.json()["data"]] == [second["credentialId"]]
        original = await client.get(
            f"/users/victim/credentials/{first['credentialId']}", headers=bearer(key)
        )
        assert original.status_code == 200, original.text
        assert original.json()["data"] == {"apiKey": first_secret}

    async def test_a_client_secret_copied_onto_another_integration_is_a_clean_500(
        self, client: httpx.AsyncClient, app: FastAPI, account: Account
    ) -> None:
        key = account.dev.secret_key
        first_secret = f"first{secrets.token_hex(16)}"
        first = await create_integration(client, account.admin, custom_oauth2(first_secret))
        second = await create_integration(client, account.admin, custom_oauth2())
        copied = await column(
            app, "integrations", "client_secret_ciphertext", first["integrationId"]
        )
        await set_column(
            app, "integrations", "client_secret_ciphertext", second["integrationId"], copied
        )
        await create_user(client, key, "starter")
        token = bearer((await mint(client, key, "starter"))["token"])
        response = await client.post(f"/sdk/oauth/{second['integrationId']}/start", headers=token)
        assert_problem(response, 500, "secret_unreadable")
        assert "Traceback" not in response.text
        assert first_secret not in response.text
        response = await client.post(f"/sdk/oauth/{first['integrationId']}/start", headers=token)
        assert response.status_code == 200, response.text
