from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from tether.schemas import Body, Model

_USER_ID = re.compile(r"usr_[0-9a-f]{32}")
_FORBIDDEN = re.compile(r"[/\x00-\x1f\x7f]")


def _username(value: str) -> str:
    # A username is accepted wherever a userId is, so it must be usable in a path and must
    # never be mistaken for another user's id.
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if _FORBIDDEN.search(value):
        raise ValueError("must not contain '/' or control characters")
    if _USER_ID.fullmatch(value):
        raise ValueError("must not look like a userId")
    return value


Username = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_username)]
FullName = Annotated[str, Field(max_length=255)]


class CreateUserBody(Body):
    username: Username
    full_name: FullName | None = None


class UpdateUserBody(Body):
    username: Username | None = None
    full_name: FullName | None = None

    @model_validator(mode="after")
    def _username_not_null(self) -> Self:
        if "username" in self.model_fields_set and self.username is None:
            raise ValueError("username cannot be null")
        return self


class UserOut(Model):
    user_id: str = Field(validation_alias="id")
    username: str
    full_name: str | None
    created_at: datetime


class TokenOut(Model):
    token: str
    expires_at: datetime


class Jwks(Model):
    keys: list[dict[str, str]]
