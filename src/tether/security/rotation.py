"""`tether secrets rotate`: re-encrypt every stored secret under the first key of
TETHER_ENCRYPTION_KEYS while the service keeps serving.

Each row is rewritten in its own short transaction with a compare-and-set on the old
ciphertext, so a row that the service rewrote meanwhile (an OAuth refresh) is left as it is:
it was written under the new key already, by a process that has the new key list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from tether.catalog.models import Integration
from tether.installations.models import Credential, OAuthState
from tether.security.crypto import Keyring, row_identity
from tether.users.models import TokenKey

BATCH = 200


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    id_column: InstrumentedAttribute[str]
    column: InstrumentedAttribute[str | None] | InstrumentedAttribute[str]


ENCRYPTED_COLUMNS = (
    EncryptedColumn("credentials", Credential.id, Credential.ciphertext),
    EncryptedColumn("integrations", Integration.id, Integration.client_secret_ciphertext),
    EncryptedColumn("token_keys", TokenKey.id, TokenKey.private_key_ciphertext),
    EncryptedColumn("oauth_states", OAuthState.id, OAuthState.verifier_ciphertext),
)


async def rotate_secrets(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    progress: Callable[[str, int], None] = lambda table, count: None,
) -> dict[str, int]:
    """Re-encrypt what is not under the primary key; answer the count per table."""
    rewritten: dict[str, int] = {}
    for target in ENCRYPTED_COLUMNS:
        count = 0
        after = ""
        while True:
            async with sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(target.id_column, target.column)
                        .where(target.id_column > after, target.column.is_not(None))
                        .order_by(target.id_column)
                        .limit(BATCH)
                    )
                ).all()
                await session.commit()
            if not rows:
                break
            after = rows[-1][0]
            for row_id, old in rows:
                if old is None or not keyring.needs_rotation(old):
                    continue
                identity = row_identity(target.table, row_id)
                new = keyring.encrypt(keyring.decrypt(old, identity), identity)
                async with sessionmaker() as session:
                    result = await session.execute(
                        update(target.id_column.class_)
                        .where(target.id_column == row_id, target.column == old)
                        .values({target.column.key: new})
                    )
                    await session.commit()
                count += result.rowcount  # type: ignore[attr-defined]
            progress(target.table, count)
        rewritten[target.table] = count
    return rewritten
