"""Wire-model bases: camelCase on the wire, snake_case in Python, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """A response body."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Body(BaseModel):
    """A request body: camelCase only, and an unknown field is a 422 (no mass assignment)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")


T = TypeVar("T")


class Page(Model, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


class Success(Model):
    success: bool = True


# The query parameters of every cursor-paginated list.
Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="The `nextCursor` of the previous page.")
]
