"""Signing keys for tenant tokens, and the verification of the tokens customers sign."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tether.audit.service import record
from tether.catalog.models import Integration
from tether.db.base import utcnow
from tether.errors import InvalidToken, NotFound, TetherError, TokenExpired, ValidationFailed
from tether.installations.connect import OAuthFlows
from tether.installations.models import Credential, Installation
from tether.tenants.models import SigningKey

ALGORITHM = "RS256"
LEEWAY_SECONDS = 30
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    key: SigningKey
    private_key_b64: str


def _public_pem(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


async def generate_key(session: AsyncSession, environment_id: str) -> GeneratedKey:
    """A new RSA 2048 key pair: the public half is stored, the private half is answered once
    as base64 of a PEM, exactly what hotglue's snippet decodes."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = SigningKey(
        environment_id=environment_id,
        public_key_pem=_public_pem(private_key.public_key()),
        origin="generated",
    )
    session.add(key)
    await session.flush()
    await _recorded(session, "signing_key.created", key)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return GeneratedKey(key, base64.b64encode(pem).decode())


async def import_key(session: AsyncSession, environment_id: str, pem: str) -> SigningKey:
    try:
        public_key = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError):
        raise ValidationFailed("publicKey must be a PEM-encoded RSA public key.") from None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        raise ValidationFailed(f"publicKey must be an RSA key of at least {MIN_RSA_BITS} bits.")
    key = SigningKey(
        environment_id=environment_id, public_key_pem=_public_pem(public_key), origin="imported"
    )
    session.add(key)
    await session.flush()
    await _recorded(session, "signing_key.imported", key)
    return key


async def _recorded(session: AsyncSession, action: str, key: SigningKey) -> None:
    await record(
        session, action, target_type="signing_key", target_id=key.id,
        environment_id=key.environment_id, details={"origin": key.origin},
    )  # fmt: skip


async def list_keys(session: AsyncSession, environment_id: str) -> list[SigningKey]:
    query = select(SigningKey).where(SigningKey.environment_id == environment_id)
    return list(await session.scalars(query.order_by(SigningKey.id)))


async def revoke_key(session: AsyncSession, environment_id: str, key_id: str) -> None:
    key = await session.scalar(
        select(SigningKey).where(
            SigningKey.id == key_id, SigningKey.environment_id == environment_id
        )
    )
    if key is None:
        raise NotFound("No such signing key.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        await _recorded(session, "signing_key.revoked", key)


def _rejected(reason: str, detail: str) -> InvalidToken:
    return InvalidToken(f"The tenant token is not valid: {detail}", reason=reason)


@dataclass(frozen=True, slots=True)
class TenantClaims:
    subject: str
    issued_at: datetime
    expires_at: datetime


class TenantTokenVerifier:
    """Verifies customer-signed RS256 tenant tokens against the environment's keys, looked up
    in the database only: `jku`, `x5u` and `jwk` headers are never followed. Parsed public
    keys are kept per process (they never change); revocation is read on every request."""

    def __init__(self) -> None:
        self._parsed: dict[str, rsa.RSAPublicKey] = {}

    def _public_key(self, key: SigningKey) -> rsa.RSAPublicKey:
        parsed = self._parsed.get(key.id)
        if parsed is None:
            loaded = serialization.load_pem_public_key(key.public_key_pem.encode())
            assert isinstance(loaded, rsa.RSAPublicKey)
            parsed = self._parsed[key.id] = loaded
        return parsed

    async def verify(
        self,
        session: AsyncSession,
        token: str,
        *,
        environment_id: str,
        max_lifetime_seconds: int,
    ) -> TenantClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _rejected("malformed", "it is not a JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise _rejected("algorithm_not_allowed", "only RS256 is accepted.")
        kid = header.get("kid")
        query = select(SigningKey).where(SigningKey.environment_id == environment_id)
        if kid is not None:
            query = query.where(SigningKey.id == str(kid))
        keys = list(await session.scalars(query.order_by(SigningKey.id)))
        if not keys:
            raise _rejected("unknown_key", "no signing key of this environment matches.")
        active = [key for key in keys if key.revoked_at is None]
        revoked = [key for key in keys if key.revoked_at is not None]
        claims = self._decode(token, active)
        if claims is None:
            if self._decode(token, revoked) is not None:
                raise _rejected("key_revoked", "its signing key has been revoked.")
            raise _rejected("bad_signature", "the signature does not match a signing key.")
        return self._check_times(claims, max_lifetime_seconds)

    def _decode(self, token: str, keys: list[SigningKey]) -> dict[str, object] | None:
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    self._public_key(key),
                    algorithms=[ALGORITHM],
                    options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ImmatureSignatureError:
                raise _rejected("issued_in_future", "nbf is in the future.") from None
            except jwt.InvalidTokenError:
                raise _rejected("malformed", "its claims cannot be read.") from None
        return None

    def _check_times(self, claims: dict[str, object], max_lifetime_seconds: int) -> TenantClaims:
        missing = [name for name in ("sub", "iat", "exp") if name not in claims]
        if missing:
            raise _rejected("missing_claim", f"the {missing[0]} claim is missing.")
        sub, iat, exp = claims["sub"], claims["iat"], claims["exp"]
        if not isinstance(sub, str) or not sub:
            raise _rejected("malformed", "sub must be a string.")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise _rejected("malformed", "iat and exp must be numbers.")
        now = utcnow().timestamp()
        if exp + LEEWAY_SECONDS <= now:
            raise TokenExpired("The tenant token has expired.", reason="expired")
        if iat > now + LEEWAY_SECONDS:
            raise _rejected("issued_in_future", "iat is in the future.")
        if exp - iat > max_lifetime_seconds:
            raise _rejected(
                "lifetime_too_long", f"exp - iat is over {max_lifetime_seconds} seconds."
            )
        return TenantClaims(
            subject=sub,
            issued_at=datetime.fromtimestamp(iat, tz=utcnow().tzinfo),
            expires_at=datetime.fromtimestamp(exp, tz=utcnow().tzinfo),
        )


@dataclass(frozen=True, slots=True)
class Source:
    installation_id: str
    integration_id: str
    app: str
    credential_id: str
    status: str
    data: dict[str, Any] | None


async def linked_sources(
    session: AsyncSession,
    flows: OAuthFlows,
    environment_id: str,
    user_id: str,
    integration_id: str | None,
) -> list[Source]:
    """The tenant's installations with their raw credentials, OAuth tokens refreshed first
    when near expiry. One broken installation does not hide the others: its data is None."""
    statement = (
        select(Installation, Credential, Integration.app)
        .join(Credential, Credential.installation_id == Installation.id)
        .join(Integration, Integration.id == Installation.integration_id)
        .where(Installation.environment_id == environment_id, Installation.user_id == user_id)
        .order_by(Installation.id)
    )
    if integration_id is not None:
        statement = statement.where(Installation.integration_id == integration_id)
    sources = []
    for installation, credential, app in (await session.execute(statement)).all():
        status = installation.status
        data: dict[str, Any] | None
        try:
            data = await flows.read(session, credential)
        except TetherError:
            data, status = None, "error"
        sources.append(
            Source(installation.id, installation.integration_id, app, credential.id, status, data)
        )
    return sources
