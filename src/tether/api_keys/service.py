"""API key lifecycle and the check every authenticated request makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tether.accounts.models import Environment
from tether.api_keys.models import ApiKey
from tether.audit.service import record
from tether.db.base import utcnow
from tether.db.engine import AnySelect
from tether.db.prepared import PreparedQuery, Record
from tether.errors import ApiKeyExpired, ApiKeyRevoked, Conflict, InvalidApiKey, NotFound
from tether.security.keys import (
    KeyType,
    ParsedKey,
    digest,
    generate_api_key,
    key_prefix,
    parse_api_key,
)

MAX_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_NAMES: dict[str, str] = {"secret": "Secret key", "publishable": "Publishable key"}


class KeyNotActive(Conflict):
    code = "api_key_not_active"
    detail = "Only an active key can be rolled."


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    key_id: str
    key_type: KeyType
    environment_id: str
    account_id: str
    last_used_at: datetime | None
    rate_limit_per_minute: int | None  # the environment's; None: the server's default


async def create_key(
    session: AsyncSession,
    environment: Environment,
    key_type: KeyType,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which the caller shows once and never stores."""
    env_tag = environment.key_tag
    plaintext = generate_api_key(key_type, env_tag)
    key = ApiKey(
        environment_id=environment.id,
        type=key_type,
        name=name or DEFAULT_NAMES[key_type],
        prefix=key_prefix(key_type, env_tag),
        last4=plaintext[-4:],
        digest=digest(plaintext),
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await record(
        session,
        "api_key.created",
        target_type="api_key",
        target_id=key.id,
        environment_id=environment.id,
        account_id=environment.account_id,
        details={"type": key_type, "name": key.name, "last4": key.last4},
    )
    return key, plaintext


async def list_keys(session: AsyncSession, environment: Environment) -> list[ApiKey]:
    keys = await session.scalars(
        select(ApiKey).where(ApiKey.environment_id == environment.id).order_by(ApiKey.id)
    )
    return list(keys)


async def _get_key(session: AsyncSession, environment: Environment, key_id: str) -> ApiKey:
    key = await session.scalar(
        select(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.environment_id == environment.id)
        .with_for_update()
    )
    if key is None:
        raise NotFound("No such API key.")
    return key


def _is_active(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


async def roll_key(
    session: AsyncSession, environment: Environment, key_id: str, grace_seconds: int
) -> tuple[ApiKey, str]:
    """Replace a key: the new one works now, the old one stops after the grace period
    (at once for 0, which is what a dashboard's "Generate" button does)."""
    old = await _get_key(session, environment, key_id)
    now = utcnow()
    if not _is_active(old, now):
        raise KeyNotActive()
    key_type: KeyType = "secret" if old.type == "secret" else "publishable"
    new, plaintext = await create_key(session, environment, key_type, name=old.name)
    if grace_seconds == 0:
        old.revoked_at = now
    else:
        ends = now + timedelta(seconds=grace_seconds)
        old.expires_at = min(old.expires_at, ends) if old.expires_at else ends
    await session.flush()
    await record(
        session,
        "api_key.rolled",
        target_type="api_key",
        target_id=old.id,
        environment_id=environment.id,
        account_id=environment.account_id,
        details={"replacedBy": new.id, "gracePeriodSeconds": grace_seconds},
    )
    return new, plaintext


async def revoke_key(session: AsyncSession, environment: Environment, key_id: str) -> None:
    key = await _get_key(session, environment, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        await record(
            session,
            "api_key.revoked",
            target_type="api_key",
            target_id=key.id,
            environment_id=environment.id,
            account_id=environment.account_id,
        )


# The key's row joined to its environment, by the digest bound as :digest. Built once: other
# routes add their own columns and joins to it, to authenticate and read in one round trip.
KEY_QUERY: AnySelect = (
    select(
        ApiKey.id.label("key_id"),
        ApiKey.type.label("key_type"),
        ApiKey.environment_id,
        ApiKey.expires_at.label("key_expires_at"),
        ApiKey.revoked_at.label("key_revoked_at"),
        ApiKey.last_used_at.label("key_last_used_at"),
        Environment.account_id,
        Environment.rate_limit_per_minute,
    )
    .join(Environment, Environment.id == ApiKey.environment_id)
    .where(ApiKey.digest == bindparam("digest"))
)


def parse_presented(presented: str) -> tuple[ParsedKey, dict[str, str]]:
    """The parsed key and the parameters of KEY_QUERY; a malformed key or one with a bad
    checksum is refused here, before any query."""
    parsed = parse_api_key(presented)
    if parsed is None:
        raise InvalidApiKey()
    return parsed, {"digest": digest(presented)}


def principal_of(parsed: ParsedKey, row: Record | None) -> KeyPrincipal:
    """Who the key is, or why it is refused. No cache: a revoked key fails on its very next
    request on every process."""
    if row is None or row["key_type"] != parsed.type:
        raise InvalidApiKey()
    if row["key_revoked_at"] is not None:
        raise ApiKeyRevoked()
    expires_at = row["key_expires_at"]
    if expires_at is not None and expires_at <= utcnow():
        raise ApiKeyExpired()
    return KeyPrincipal(
        key_id=row["key_id"],
        key_type=parsed.type,
        environment_id=row["environment_id"],
        account_id=row["account_id"],
        last_used_at=row["key_last_used_at"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
    )


_KEY = PreparedQuery(KEY_QUERY)


async def authenticate_key(readonly: AsyncEngine, presented: str) -> KeyPrincipal:
    parsed, params = parse_presented(presented)
    return principal_of(parsed, await _KEY.first(readonly, params))


async def key_environment(session: AsyncSession, key_id: str) -> Environment:
    """The environment of a key, for the operator's CLI, which names keys by id alone."""
    environment = await session.scalar(
        select(Environment)
        .join(ApiKey, ApiKey.environment_id == Environment.id)
        .where(ApiKey.id == key_id)
    )
    if environment is None:
        raise NotFound("No such API key.")
    return environment
