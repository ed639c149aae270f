from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tether.schemas import Body, Model


class CreateSigningKeyBody(Body):
    public_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="A PEM RSA public key of your own; omit it to have Tether generate a pair.",
    )


class SigningKeyOut(Model):
    id: str
    kid: str
    algorithm: Literal["RS256"] = "RS256"
    public_key: str
    origin: Literal["generated", "imported"]
    created_at: datetime
    revoked_at: datetime | None


class SigningKeyCreated(SigningKeyOut):
    private_key: str | None = Field(
        description="Base64 of the PEM private key, for a generated key. Shown in this response "
        "only: Tether does not keep it."
    )


class SigningKeyList(Model):
    data: list[SigningKeyOut]


class LinkedSource(Model):
    installation_id: str
    integration_id: str
    app: str
    credential_id: str
    status: Literal["active", "error"]
    data: dict[str, Any] | None = Field(
        description="The raw credentials; null when they cannot be produced (see status)."
    )


class LinkedSources(Model):
    data: list[LinkedSource]
