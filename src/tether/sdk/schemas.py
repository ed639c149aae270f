from __future__ import annotations

from pydantic import Field

from tether.installations.schemas import CredentialData
from tether.schemas import Body, Model


class MeOut(Model):
    user_id: str = Field(validation_alias="id")
    username: str
    full_name: str | None
    environment_id: str


class ConfigOut(Model):
    """What the hosted modal needs to know about the token's user and environment."""

    user_id: str
    environment_id: str
    account_name: str
    allowed_origins: list[str] = Field(
        description="The origins whose pages may use the SDK; the modal talks only to these."
    )


class CredentialBody(Body):
    data: CredentialData = Field(max_length=50)
