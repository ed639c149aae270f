"""Cursor pages over time-ordered ids: `WHERE id > :after ORDER BY id LIMIT n + 1`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tether.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        last_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = ""
    if not re.fullmatch(rf"{prefix}_[0-9a-f]{{32}}", last_id):
        raise ValidationFailed("The cursor is not valid: pass back a nextCursor as it came.")
    return last_id


async def paginate(
    session: AsyncSession,
    query: Select[T],
    id_column: InstrumentedAttribute[Any],
    *,
    prefix: str,
    limit: int,
    cursor: str | None,
    id_of: Any = lambda row: row.id,
    newest_first: bool = False,
) -> tuple[list[T], str | None]:
    if cursor:
        after = decode_cursor(cursor, prefix)
        query = query.where(id_column < after if newest_first else id_column > after)
    order = id_column.desc() if newest_first else id_column
    rows = list(await session.scalars(query.order_by(order).limit(limit + 1)))
    next_cursor = encode_cursor(id_of(rows[limit - 1])) if len(rows) > limit else None
    return rows[:limit], next_cursor
