"""`tether init`: an account, its owner, both environments, and a secret and a publishable
key in each, printed once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import Account
from tether.accounts.service import create_account
from tether.api_keys.service import create_key
from tether.security.passwords import generate_password, hash_password


async def initialize(
    session: AsyncSession, *, account_name: str, email: str, password: str | None
) -> dict[str, Any]:
    password = password or generate_password()
    account, member, environments = await create_account(
        session, name=account_name, email=email, password_hash=await hash_password(password)
    )
    result: dict[str, Any] = {
        "accountId": account.id,
        "email": member.email,
        "password": password,
        "environments": {},
    }
    for environment in environments:
        _, secret = await create_key(session, environment, "secret")
        _, publishable = await create_key(session, environment, "publishable")
        result["environments"][environment.name] = {
            "environmentId": environment.id,
            "secretKey": secret,
            "publishableKey": publishable,
        }
    return result


async def has_accounts(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(Account.id.is_not(None)))))
