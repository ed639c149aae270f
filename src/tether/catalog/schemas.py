from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictBool, field_validator

from tether.catalog.apps import AppOut
from tether.schemas import Body, Model

Scopes = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=100)]
Url = Annotated[str, Field(min_length=1, max_length=2000)]


class AppList(Model):
    data: list[AppOut]


class CreateIntegrationBody(Body):
    app: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    client_id: str | None = Field(default=None, min_length=1, max_length=500)
    client_secret: str | None = Field(default=None, min_length=1, max_length=2000)
    scopes: Scopes | None = None
    authorize_url: Url | None = None
    token_url: Url | None = None


class UpdateIntegrationBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    client_id: str | None = Field(default=None, min_length=1, max_length=500)
    client_secret: str | None = Field(default=None, min_length=1, max_length=2000)
    scopes: Scopes | None = None
    authorize_url: Url | None = None
    token_url: Url | None = None
    enabled: StrictBool | None = None

    @field_validator("name", "client_secret", "enabled")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Omit these to keep them; null would clear a column that cannot be empty.
        if value is None:
            raise ValueError("may be omitted, but not null")
        return value


class IntegrationOut(Model):
    """An integration as the admin API shows it: the client secret is write-only."""

    integration_id: str
    app: str
    name: str
    auth_type: Literal["oauth2", "api_key", "basic"]
    client_id: str | None
    has_client_secret: bool
    scopes: list[str]
    authorize_url: str | None
    token_url: str | None
    redirect_uri: str | None = Field(
        description="For oauth2 apps: the redirect URL to register with the provider."
    )
    enabled: bool
    created_at: datetime
    updated_at: datetime


class IntegrationList(Model):
    data: list[IntegrationOut]
