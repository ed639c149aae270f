from __future__ import annotations

import re
from datetime import datetime
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

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
    rate_limit_per_minute: int | None = Field(
        description="Requests per minute per API key; null: the server's default."
    )
    created_at: datetime


class AccountOut(Model):
    account_id: str
    name: str
    created_at: datetime
    environments: list[EnvironmentOut]


# What a browser can put in an Origin header's host: a DNS name (IDNs in their punycode form)
# or an IP address (IPv6 without its brackets, as `urlsplit` gives it).
_ORIGIN_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    error = ValueError("an origin is scheme://host[:port], like https://app.example.com")
    parts = urlsplit(value.strip())
    try:
        port = parts.port  # a port that is not a number in 0..65535 raises here
    except ValueError:
        raise error from None
    host = parts.hostname
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not host
        or not _ORIGIN_HOST.fullmatch(host)
        or "@" in parts.netloc  # credentials, even an empty user name
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise error
    # The form browsers send: lower case, brackets around IPv6, no default port.
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"


# Settings whose null means "the default" rather than "no value".
NULLABLE = frozenset({"rate_limit_per_minute"})


class EnvironmentPatch(Body):
    require_tenant_token: StrictBool | None = None
    user_token_ttl_seconds: StrictInt | None = Field(default=None, ge=1, le=86400)
    tenant_token_max_lifetime_seconds: StrictInt | None = Field(default=None, ge=60, le=86400)
    allowed_origins: list[str] | None = Field(default=None, max_length=100)
    # null puts the environment back on the server's default (TETHER_RATE_LIMIT_PER_MINUTE).
    rate_limit_per_minute: StrictInt | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(_origin(v) for v in value))

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = [name for name in self.model_fields_set - NULLABLE if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"settings cannot be null: {', '.join(sorted(nulls))}")
        return self
