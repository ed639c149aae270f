"""`tether init`: an account, its owner, both environments, and a secret and a publishable
key in each, printed once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import Account
from tether.accounts.service import create_account
from tether.api_keys.service import create_key
from tether.security.crypto import Keyring
from tether.security.passwords import generate_password, hash_password
from tether.users.tokens import create_token_key


async def initialize(
    session: AsyncSession,
    keyring: Keyring,
    *,
    account_name: str,
    email: str,
    password: str | None,
) -> dict[str, Any]:
    password = password or generate_password()
    result = await provision(
        session,
        keyring,
        account_name=account_name,
        email=email,
        password_hash=await hash_password(password),
    )
    return {
        "accountId": result.pop("accountId"),
        "email": result.pop("email"),
        "password": password,
        **result,
    }


async def provision(
    session: AsyncSession, keyring: Keyring, *, account_name: str, email: str, password_hash: str
) -> dict[str, Any]:
    account, member, environments = await create_account(
        session, name=account_name, email=email, password_hash=password_hash
    )
    result: dict[str, Any] = {"accountId": account.id, "email": member.email, "environments": {}}
    for environment in environments:
        await create_token_key(session, keyring, environment.id)
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
