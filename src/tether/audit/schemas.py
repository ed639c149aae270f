from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tether.schemas import Model


class Actor(Model):
    type: str = Field(description="admin, secret_key, publishable_key, user, cli or system.")
    id: str | None = Field(description="The member, key or user id.")


class AuditEventOut(Model):
    id: str
    action: str = Field(description="What was done, e.g. api_key.rolled or user.deleted.")
    actor: Actor
    target_type: str
    target_id: str | None
    environment_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]
    created_at: datetime
