from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field

from tether.catalog.apps import FieldOut
from tether.schemas import Body, Model

if TYPE_CHECKING:
    from tether.installations.service import IntegrationState

AuthType = Literal["oauth2", "api_key", "basic"]
CredentialData = dict[str, str]


class IntegrationStateOut(Model):
    integration_id: str
    app: str
    name: str
    auth_type: AuthType
    installed: bool
    installation_id: str | None

    @classmethod
    def of(cls, state: IntegrationState, **extra: Any) -> Self:
        return cls(
            integration_id=state.integration.id,
            app=state.integration.app,
            name=state.integration.name,
            auth_type=state.app.auth_type,
            installed=state.installation_id is not None,
            installation_id=state.installation_id,
            **extra,
        )


class IntegrationStateList(Model):
    data: list[IntegrationStateOut]


class SdkIntegrationOut(IntegrationStateOut):
    status: Literal["active", "error"] | None
    fields: list[FieldOut]


class SdkIntegrationList(Model):
    data: list[SdkIntegrationOut]


class InstallationOut(Model):
    installation_id: str
    integration_id: str
    user_id: str
    status: Literal["active", "error"]
    credential_id: str | None
    created_at: datetime


class CredentialOut(Model):
    """A credential's metadata: never its secret."""

    credential_id: str = Field(validation_alias="id")
    installation_id: str
    integration_id: str
    user_id: str
    type: AuthType
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CredentialList(Model):
    data: list[CredentialOut]


class CredentialWithData(CredentialOut):
    data: dict[str, Any] = Field(description="The raw secret. Only in this response.")


class InstallBody(Body):
    integration_id: str = Field(min_length=1, max_length=40)
    data: CredentialData = Field(max_length=50)


class Installed(Model):
    credential_id: str
    installation_id: str


class SdkInstalled(Model):
    success: Literal[True] = True
    installation_id: str


class AuthorizeUrl(Model):
    authorize_url: str
