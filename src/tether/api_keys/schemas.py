from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, Field, StrictInt, field_validator

from tether.api_keys.service import MAX_GRACE_SECONDS
from tether.db.base import utcnow
from tether.schemas import Body, Model


class ApiKeyOut(Model):
    id: str
    type: Literal["secret", "publishable"]
    name: str
    prefix: str
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The plaintext key. Shown in this response only.")


class ApiKeyList(Model):
    data: list[ApiKeyOut]


class CreateKeyBody(Body):
    type: Literal["secret", "publishable"]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    expires_at: AwareDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        # Here rather than in the route, so that the 422 lists the field like any other.
        if value is None:
            return None
        if value <= utcnow():
            raise ValueError("expiresAt must be in the future")
        return value.astimezone(UTC)  # the response echoes it, and timestamps go out in UTC


class RollKeyBody(Body):
    grace_period_seconds: StrictInt = Field(default=0, ge=0, le=MAX_GRACE_SECONDS)
