from __future__ import annotations

from pydantic import Field

from tether.schemas import Model


class MeOut(Model):
    user_id: str = Field(validation_alias="id")
    username: str
    full_name: str | None
    environment_id: str
