"""The integrations an environment offers: an app of the catalogue plus, for OAuth 2.0 apps,
the customer's client credentials (the secret encrypted, and never shown again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tether.audit.service import record
from tether.catalog.apps import App, get_app
from tether.catalog.models import Integration
from tether.errors import NotFound, ValidationFailed
from tether.security.crypto import Keyring, row_identity

_OAUTH_ONLY = ("client_id", "client_secret", "scopes", "authorize_url", "token_url")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """Everything needed to talk to one integration's OAuth 2.0 provider."""

    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    scope_separator: str
    pkce: bool
    extra_authorize_params: dict[str, str]
    token_auth_method: str


def _secret_aad(integration_id: str) -> str:
    return row_identity("integrations", integration_id)


def app_of(integration: Integration) -> App:
    app = get_app(integration.app)
    if app is None:  # an app removed from the catalogue after integrations were made
        raise NotFound(f"The app {integration.app} is no longer in the catalogue.")
    return app


def _check_url(url: str, field: str, allow_insecure: bool) -> None:
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.fragment:
        need = "an http(s)" if allow_insecure else "an https"
        raise ValidationFailed(f"{field} must be {need} URL without a fragment.")


def _validate(app: App, values: dict[str, Any], allow_insecure: bool) -> None:
    if not app.is_oauth2:
        given = [name for name in _OAUTH_ONLY if values.get(name) is not None]
        if given:
            raise ValidationFailed(f"A {app.auth_type} app takes no OAuth settings: {given[0]}.")
        return
    if not values.get("client_id") or not values.get("client_secret"):
        raise ValidationFailed("An OAuth 2.0 integration needs clientId and clientSecret.")
    if app.integration_provides_urls:
        for field, name in (("authorize_url", "authorizeUrl"), ("token_url", "tokenUrl")):
            if not values.get(field):
                raise ValidationFailed(f"{app.name} needs {name}.")
            _check_url(values[field], name, allow_insecure)
    elif values.get("authorize_url") or values.get("token_url"):
        raise ValidationFailed(f"{app.name} has fixed OAuth URLs; only custom_oauth2 takes them.")


async def create_integration(
    session: AsyncSession,
    keyring: Keyring,
    environment_id: str,
    values: dict[str, Any],
    *,
    allow_insecure_urls: bool,
) -> Integration:
    app = get_app(values["app"])
    if app is None:
        raise ValidationFailed(f"There is no app {values['app']!r} in the catalogue (GET /apps).")
    _validate(app, values, allow_insecure_urls)
    integration = Integration(
        environment_id=environment_id,
        app=app.app,
        name=values.get("name") or app.name,
        client_id=values.get("client_id"),
        scopes=values.get("scopes"),
        authorize_url=values.get("authorize_url"),
        token_url=values.get("token_url"),
    )
    session.add(integration)
    await session.flush()  # the id is the associated data of the secret
    if values.get("client_secret"):
        integration.client_secret_ciphertext = keyring.encrypt(
            values["client_secret"].encode(), _secret_aad(integration.id)
        )
        await session.flush()
    await _recorded(session, "integration.created", integration, {"app": integration.app})
    return integration


async def _recorded(
    session: AsyncSession, action: str, integration: Integration, details: dict[str, Any]
) -> None:
    await record(
        session, action, target_type="integration", target_id=integration.id,
        environment_id=integration.environment_id, details=details,
    )  # fmt: skip


async def update_integration(
    session: AsyncSession,
    keyring: Keyring,
    integration: Integration,
    changes: dict[str, Any],
    *,
    allow_insecure_urls: bool,
) -> Integration:
    app = app_of(integration)
    current = {
        "client_id": integration.client_id,
        "client_secret": integration.client_secret_ciphertext,  # only its presence is checked
        "scopes": integration.scopes,
        "authorize_url": integration.authorize_url,
        "token_url": integration.token_url,
    }
    _validate(app, {**current, **changes}, allow_insecure_urls)
    for field, value in changes.items():
        if field == "client_secret":
            integration.client_secret_ciphertext = keyring.encrypt(
                value.encode(), _secret_aad(integration.id)
            )
        else:
            setattr(integration, field, value)
    await session.flush()
    # The names of what changed, never the values: one of them can be the client secret.
    await _recorded(session, "integration.updated", integration, {"changed": sorted(changes)})
    return integration


async def delete_integration(session: AsyncSession, integration: Integration) -> None:
    """Delete it with, through the foreign keys, every installation and credential of it."""
    await _recorded(session, "integration.deleted", integration, {"app": integration.app})
    await session.delete(integration)
    await session.flush()


async def list_integrations(
    session: AsyncSession, environment_id: str, *, enabled_only: bool = False
) -> list[Integration]:
    query = select(Integration).where(Integration.environment_id == environment_id)
    if enabled_only:
        query = query.where(Integration.enabled.is_(True))
    return list(await session.scalars(query.order_by(Integration.id)))


async def get_integration(
    session: AsyncSession, environment_id: str, integration_id: str, *, enabled_only: bool = False
) -> Integration:
    integration = await session.scalar(
        select(Integration).where(
            Integration.id == integration_id, Integration.environment_id == environment_id
        )
    )
    if integration is None or (enabled_only and not integration.enabled):
        raise NotFound("No such integration.")
    return integration


def scopes_of(integration: Integration) -> list[str]:
    return list(
        integration.scopes if integration.scopes is not None else app_of(integration).default_scopes
    )


def oauth_client(keyring: Keyring, integration: Integration) -> OAuthClient:
    app = app_of(integration)
    if not app.is_oauth2:
        raise ValidationFailed(f"{integration.name} does not use OAuth 2.0.")
    authorize_url = integration.authorize_url or str(app.authorize_url)
    token_url = integration.token_url or str(app.token_url)
    if not integration.client_id or not integration.client_secret_ciphertext:
        raise ValidationFailed(f"{integration.name} has no OAuth client configured.")
    return OAuthClient(
        authorize_url=authorize_url,
        token_url=token_url,
        client_id=integration.client_id,
        client_secret=keyring.decrypt(
            integration.client_secret_ciphertext, _secret_aad(integration.id)
        ).decode(),
        scopes=tuple(scopes_of(integration)),
        scope_separator=app.scope_separator,
        pkce=app.pkce,
        extra_authorize_params=dict(app.extra_authorize_params),
        token_auth_method=app.token_auth_method or "client_secret_basic",
    )
