"""Which web origins may use the SDK: each environment's `allowedOrigins`, and Tether's own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from sqlalchemy import String, cast, select

from tether.accounts.models import Account, Environment
from tether.db.engine import Executor
from tether.errors import TetherError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginNotAllowed(TetherError):
    status, code = 403, "origin_not_allowed"
    detail = "This web origin is not in the environment's allowedOrigins."


@dataclass(frozen=True, slots=True)
class SdkConfig:
    environment_id: str
    account_name: str
    allowed_origins: list[str]


@lru_cache(maxsize=16)
def origin_of(url: str) -> str:
    """The origin of a URL as a browser writes it in an Origin header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        netloc = f"{netloc}:{parts.port}"
    return f"{parts.scheme}://{netloc}"


async def config(db: Executor, environment_id: str) -> SdkConfig:
    row = (
        await db.execute(
            select(Environment.allowed_origins, Account.name)
            .join(Account, Account.id == Environment.account_id)
            .where(Environment.id == environment_id)
        )
    ).one()
    return SdkConfig(environment_id, row.name, _origins(row.allowed_origins))


async def allowed_origins(db: Executor, environment_id: str) -> list[str]:
    origins = await db.scalar(
        select(Environment.allowed_origins).where(Environment.id == environment_id)
    )
    return _origins(origins)


async def allowed_anywhere(db: Executor, origin: str) -> bool:
    """Whether any environment lists the origin: the rule for answers that no verified
    credential ties to one environment (CORS preflights, and 401s)."""
    if not origin or origin == "null" or len(origin) > 300:
        return False
    # A text search narrows the rows on both dialects (the column is JSON, not JSONB); the
    # exact comparison is made here.
    escaped = origin.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = await db.scalars(
        select(Environment.allowed_origins)
        .where(cast(Environment.allowed_origins, String).like(f'%"{escaped}"%', escape="\\"))
        .limit(20)
    )
    return any(origin in _origins(origins) for origins in rows)


def _origins(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
