from __future__ import annotations

from datetime import datetime
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from tether.schemas import Body, Model


class LoginBody(Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(Model):
    token: str
    expires_at: datetime


class EnvironmentOut(Model):
    environment_id: str = Field(validation_alias="id")
    name: str
    require_tenant_token: bool
    user_token_ttl_seconds: int
    tenant_token_max_lifetime_seconds: int
    allowed_origins: list[str]
    created_at: datetime


class AccountOut(Model):
    account_id: str
    name: str
    created_at: datetime
    environments: list[EnvironmentOut]


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValueError("an origin is scheme://host[:port], like https://app.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class EnvironmentPatch(Body):
    require_tenant_token: bool | None = None
    user_token_ttl_seconds: int | None = Field(default=None, ge=1, le=86400)
    tenant_token_max_lifetime_seconds: int | None = Field(default=None, ge=60, le=86400)
    allowed_origins: list[str] | None = Field(default=None, max_length=100)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(_origin(v) for v in value))

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"settings cannot be null: {', '.join(sorted(nulls))}")
        return self
