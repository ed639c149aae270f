"""Installations and their encrypted credentials."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tether.audit.service import record
from tether.catalog.apps import App
from tether.catalog.models import Integration
from tether.catalog.service import app_of, get_integration, list_integrations
from tether.db.pagination import paginate
from tether.errors import AlreadyInstalled, NotFound, ValidationFailed
from tether.installations.models import Credential, Installation
from tether.security.crypto import Keyring, row_identity

MAX_FIELD_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class IntegrationState:
    integration: Integration
    app: App
    installation_id: str | None
    status: str | None


def credential_aad(credential_id: str) -> str:
    return row_identity("credentials", credential_id)


def seal(keyring: Keyring, credential: Credential, data: dict[str, Any]) -> None:
    credential.ciphertext = keyring.encrypt(
        json.dumps(data, separators=(",", ":")).encode(), credential_aad(credential.id)
    )


def unseal(keyring: Keyring, credential: Credential) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        keyring.decrypt(credential.ciphertext, credential_aad(credential.id))
    )
    return data


def _field_error(name: str, message: str, kind: str) -> ValidationFailed:
    # `errors` lets a form put the message beside the input it is about.
    return ValidationFailed(
        message, errors=[{"loc": ["body", "data", name], "msg": message, "type": kind}]
    )


def check_fields(app: App, data: dict[str, Any]) -> dict[str, str]:
    """The app's fields, validated. Messages name fields, never values: they can be secrets."""
    known = {field.name: field for field in app.fields}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise _field_error(unknown[0], f"{app.name} has no field {unknown[0]!r}.", "unknown_field")
    clean: dict[str, str] = {}
    for field in app.fields:
        value = data.get(field.name)
        if value is None or value == "":
            if field.required:
                raise _field_error(
                    field.name, f"{field.label} ({field.name}) is required.", "missing"
                )
            continue
        if not isinstance(value, str) or len(value) > MAX_FIELD_LENGTH:
            raise _field_error(
                field.name, f"{field.label} ({field.name}) must be text.", "string_type"
            )
        if field.pattern and not re.fullmatch(field.pattern, value):
            raise _field_error(
                field.name,
                f"{field.label} ({field.name}) is not in the expected format.",
                "pattern_mismatch",
            )
        clean[field.name] = value
    return clean


async def integration_states(
    session: AsyncSession, environment_id: str, user_id: str | None
) -> list[IntegrationState]:
    """The environment's enabled integrations, with the user's installation of each."""
    integrations = await list_integrations(session, environment_id, enabled_only=True)
    installed: dict[str, tuple[str, str]] = {}
    if user_id is not None:
        rows = await session.execute(
            select(Installation.integration_id, Installation.id, Installation.status).where(
                Installation.user_id == user_id
            )
        )
        installed = {row.integration_id: (row.id, row.status) for row in rows}
    states = []
    for integration in integrations:
        installation_id, status = installed.get(integration.id, (None, None))
        states.append(IntegrationState(integration, app_of(integration), installation_id, status))
    return states


async def _existing(session: AsyncSession, user_id: str, integration_id: str) -> str | None:
    return await session.scalar(
        select(Installation.id).where(
            Installation.user_id == user_id, Installation.integration_id == integration_id
        )
    )


async def install(
    session: AsyncSession,
    keyring: Keyring,
    *,
    environment_id: str,
    user_id: str,
    integration: Integration,
    data: dict[str, Any],
    credential_type: str,
    expires_at: datetime | None = None,
) -> tuple[Installation, Credential]:
    """A new installation with its credential; a second one is 409 already_installed."""
    existing = await _existing(session, user_id, integration.id)
    if existing is not None:
        raise AlreadyInstalled(installationId=existing)
    try:
        async with session.begin_nested():
            installation = Installation(
                environment_id=environment_id, user_id=user_id, integration_id=integration.id
            )
            session.add(installation)
            await session.flush()
            credential = Credential(
                environment_id=environment_id,
                installation_id=installation.id,
                user_id=user_id,
                integration_id=integration.id,
                type=credential_type,
                ciphertext="",
                expires_at=expires_at,
            )
            session.add(credential)
            await session.flush()
            seal(keyring, credential, data)
            await session.flush()
    except IntegrityError:  # a concurrent install of the same integration won
        existing = await _existing(session, user_id, integration.id)
        raise AlreadyInstalled(installationId=existing) from None
    await _recorded(session, "installation.created", installation)
    return installation, credential


async def _recorded(
    session: AsyncSession, action: str, installation: Installation | Credential
) -> None:
    """An installation event; a credential names its installation and owner as well."""
    installation_id = (
        installation.installation_id if isinstance(installation, Credential) else installation.id
    )
    await record(
        session, action, target_type="installation", target_id=installation_id,
        environment_id=installation.environment_id,
        details={"userId": installation.user_id, "integrationId": installation.integration_id},
    )  # fmt: skip


async def install_fields(
    session: AsyncSession,
    keyring: Keyring,
    *,
    environment_id: str,
    user_id: str,
    integration_id: str,
    data: dict[str, Any],
) -> tuple[Installation, Credential]:
    """Install an api_key or basic integration from the values of its fields."""
    integration = await get_integration(session, environment_id, integration_id, enabled_only=True)
    app = app_of(integration)
    if app.is_oauth2:
        raise ValidationFailed(
            f"{integration.name} connects through OAuth 2.0: use POST /sdk/oauth/{{id}}/start."
        )
    return await install(
        session,
        keyring,
        environment_id=environment_id,
        user_id=user_id,
        integration=integration,
        data=check_fields(app, data),
        credential_type=app.auth_type,
    )


async def replace_fields(
    session: AsyncSession,
    keyring: Keyring,
    *,
    environment_id: str,
    user_id: str,
    installation_id: str,
    data: dict[str, Any],
) -> Installation:
    """New field values for an installed api_key or basic integration (the user re-entered
    them): the credential keeps its id, the installation becomes active again."""
    installation = await get_installation(session, environment_id, installation_id, user_id=user_id)
    integration = await get_integration(
        session, environment_id, installation.integration_id, enabled_only=True
    )
    app = app_of(integration)
    if app.is_oauth2:
        raise ValidationFailed(
            f"{integration.name} connects through OAuth 2.0: use POST /sdk/oauth/{{id}}/start "
            "again, which replaces the tokens of this installation."
        )
    clean = check_fields(app, data)
    credential = await session.scalar(
        select(Credential).where(Credential.installation_id == installation.id)
    )
    if credential is None:  # deleted under us: the installation went with it
        raise NotFound("No such installation.")
    seal(keyring, credential, clean)
    credential.type = app.auth_type
    installation.status = "active"
    await session.flush()
    await _recorded(session, "installation.reconnected", installation)  # as OAuth's reconnect
    return installation


def _installations(environment_id: str) -> Select[Installation]:
    return select(Installation).where(Installation.environment_id == environment_id)


async def list_installations(
    session: AsyncSession,
    environment_id: str,
    *,
    user_id: str | None,
    integration_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Installation], str | None]:
    query = _installations(environment_id)
    if user_id is not None:
        query = query.where(Installation.user_id == user_id)
    if integration_id is not None:
        query = query.where(Installation.integration_id == integration_id)
    return await paginate(session, query, Installation.id, prefix="ins", limit=limit, cursor=cursor)


async def credential_ids(session: AsyncSession, installation_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(Credential.installation_id, Credential.id).where(
            Credential.installation_id.in_(installation_ids)
        )
    )
    return {row.installation_id: row.id for row in rows}


async def get_installation(
    session: AsyncSession, environment_id: str, installation_id: str, *, user_id: str | None = None
) -> Installation:
    query = _installations(environment_id).where(Installation.id == installation_id)
    if user_id is not None:
        query = query.where(Installation.user_id == user_id)
    installation = await session.scalar(query)
    if installation is None:
        raise NotFound("No such installation.")
    return installation


async def delete_installation(
    session: AsyncSession, environment_id: str, installation_id: str, *, user_id: str | None = None
) -> None:
    """Delete an installation and, through the foreign key, its credential."""
    installation = await get_installation(session, environment_id, installation_id, user_id=user_id)
    await _recorded(session, "installation.deleted", installation)
    await session.execute(delete(Installation).where(Installation.id == installation.id))


async def list_credentials(
    session: AsyncSession, environment_id: str, user_id: str
) -> list[Credential]:
    query = select(Credential).where(
        Credential.environment_id == environment_id, Credential.user_id == user_id
    )
    return list(await session.scalars(query.order_by(Credential.id)))


async def get_credential(
    session: AsyncSession, environment_id: str, user_id: str, credential_id: str
) -> Credential:
    credential = await session.scalar(
        select(Credential).where(
            Credential.id == credential_id,
            Credential.environment_id == environment_id,
            Credential.user_id == user_id,
        )
    )
    if credential is None:
        raise NotFound("No such credential.")
    return credential


async def delete_credential(
    session: AsyncSession, environment_id: str, user_id: str, credential_id: str
) -> None:
    """A credential is its installation's: deleting it uninstalls the integration."""
    credential = await get_credential(session, environment_id, user_id, credential_id)
    await _recorded(session, "installation.deleted", credential)
    await session.execute(delete(Installation).where(Installation.id == credential.installation_id))
