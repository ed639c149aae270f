"""User tokens: ES256 JWTs for the browser SDK, signed with per-environment keys.

Keys are decrypted and parsed once per process (re-parsing a PEM per call made signing ~100x
slower). Which key is active is read from the database with the user on every mint, so a
rotation made by any process takes effect on every process at its next mint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.utils import base64url_encode
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tether.audit.service import record
from tether.db.base import utcnow
from tether.db.engine import AnyRow, Executor
from tether.errors import InvalidToken, TokenExpired
from tether.security.crypto import Keyring, row_identity
from tether.security.ids import random_urlsafe
from tether.users.models import TokenKey

ALGORITHM = "ES256"
TOKEN_TYPE = "sdk+jwt"  # noqa: S105 (the JWT typ, not a secret)
AUDIENCE = "tether:sdk"
# The longest a user token can live: a retired key stays published (and verifies) this long.
MAX_TTL = timedelta(seconds=86400)
# How many verified tokens a process remembers (a few MB).
VERIFIED_CACHE_SIZE = 10_000

# Minting signs with PyJWT's own ES256 (the signature, converted to JOSE's r||s form) and joins
# the three segments itself, with each key's header segment encoded once: jwt.encode rebuilt and
# re-encoded the header and checked the claims on every call, ~30 us of a mint that costs
# ~90 us in a busy worker. Verification stays jwt.decode.
_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _aad(key_id: str) -> str:
    return row_identity("token_keys", key_id)


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    header: bytes  # the first segment of every token this key signs

    @classmethod
    def of(cls, kid: str, private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
        header = {"alg": ALGORITHM, "kid": kid, "typ": TOKEN_TYPE}
        return cls(kid, private_key, base64url_encode(_compact_json(header).encode()))


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    environment_id: str
    public_key: ec.EllipticCurvePublicKey
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class UserClaims:
    user_id: str
    environment_id: str
    expires_at: datetime


async def create_token_key(
    session: AsyncSession, keyring: Keyring, environment_id: str
) -> TokenKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    key = TokenKey(environment_id=environment_id, private_key_ciphertext="", public_jwk={})
    session.add(key)
    await session.flush()  # assigns the id, which is the kid and the associated data
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key.private_key_ciphertext = keyring.encrypt(pem, _aad(key.id))
    key.public_jwk = {
        **ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True),
        "kid": key.id,
        "alg": ALGORITHM,
        "use": "sig",
    }
    await session.flush()
    return key


async def rotate_token_key(
    session: AsyncSession, keyring: Keyring, environment_id: str
) -> TokenKey:
    """Retire the active key and make a new one: new tokens use the new key at once, tokens
    already minted keep verifying until they expire."""
    active = await session.scalar(
        select(TokenKey)
        .where(TokenKey.environment_id == environment_id, TokenKey.retired_at.is_(None))
        .with_for_update()
    )
    if active is not None:
        active.retired_at = utcnow()
        await session.flush()
    key = await create_token_key(session, keyring, environment_id)
    await record(
        session, "token_key.rotated", target_type="token_key", target_id=key.id,
        environment_id=environment_id, details={"retired": active.id if active else None},
    )  # fmt: skip
    return key


async def published_keys(db: Executor) -> list[dict[str, Any]]:
    """Every public key that can still verify a live token."""
    horizon = utcnow() - MAX_TTL
    keys = await db.scalars(
        select(TokenKey.public_jwk)
        .where(or_(TokenKey.retired_at.is_(None), TokenKey.retired_at > horizon))
        .order_by(TokenKey.id)
    )
    return list(keys)


class TokenService:
    def __init__(
        self,
        keyring: Keyring,
        issuer: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        readonly: AsyncEngine,
    ) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._sessionmaker = sessionmaker
        self._readonly = readonly
        self._signing: dict[str, SigningKey] = {}
        self._verifying: dict[str, VerifyingKey] = {}
        self._verified: dict[str, UserClaims] = {}

    async def signing_key(self, environment_id: str, active_kid: str | None) -> SigningKey:
        """The environment's active key; `active_kid` is what the database says is active.
        Read from the database only when the cache is stale, on an autocommit connection: the
        caller may hold SQLite's write lock in its own transaction, and this must not wait on it."""
        cached = self._signing.get(environment_id)
        if cached is not None and cached.kid == active_kid:
            return cached
        async with self._readonly.connect() as connection:
            row = (
                await connection.execute(
                    select(TokenKey.id, TokenKey.private_key_ciphertext).where(
                        TokenKey.environment_id == environment_id, TokenKey.retired_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            row = await self._create_first_key(environment_id)
        private_key = serialization.load_pem_private_key(
            self._keyring.decrypt(row.private_key_ciphertext, _aad(row.id)), password=None
        )
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        key = SigningKey.of(row.id, private_key)
        self._signing[environment_id] = key
        return key

    async def _create_first_key(self, environment_id: str) -> AnyRow:
        """Environments get their key when they are made; this covers one that has none, in a
        transaction of its own, and lets the unique index settle a race."""
        async with self._sessionmaker() as session:
            try:
                await create_token_key(session, self._keyring, environment_id)
                await session.commit()
            except IntegrityError:
                await session.rollback()
            row = (
                await session.execute(
                    select(TokenKey.id, TokenKey.private_key_ciphertext).where(
                        TokenKey.environment_id == environment_id, TokenKey.retired_at.is_(None)
                    )
                )
            ).one()
            await session.commit()
        return row

    def mint(
        self, key: SigningKey, *, user_id: str, environment_id: str, ttl_seconds: int
    ) -> tuple[str, datetime]:
        now = utcnow().replace(microsecond=0)
        expires_at = now + timedelta(seconds=ttl_seconds)
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": user_id,
            "env": environment_id,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": random_urlsafe(16),
        }
        signing_input = key.header + b"." + base64url_encode(_compact_json(claims).encode())
        signature = base64url_encode(_ES256.sign(signing_input, key.private_key))
        return (signing_input + b"." + signature).decode("ascii"), expires_at

    async def _verifying_key(self, kid: str) -> VerifyingKey | None:
        cached = self._verifying.get(kid)
        if cached is not None:
            return cached
        async with self._readonly.connect() as connection:
            row = (
                await connection.execute(
                    select(TokenKey.environment_id, TokenKey.public_jwk, TokenKey.retired_at).where(
                        TokenKey.id == kid
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        public_key = ECAlgorithm.from_jwk(row.public_jwk)
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        # Safe to keep even if the key is retired later: it can only have signed tokens that
        # expire within MAX_TTL of its retirement, and exp is always checked.
        key = VerifyingKey(row.environment_id, public_key, row.retired_at)
        self._verifying[kid] = key
        return key

    async def verify(self, token: str) -> UserClaims:
        """The claims of a valid user token, or InvalidToken / TokenExpired. No clock leeway.

        A token that verified once is remembered, by its exact text, until it expires: the
        browser SDK sends the same token on every call of a page view, and the signature check
        is most of such a call's cost. Nothing else can change the answer: the token's bytes
        are signed, and its key stays published until every token it signed has expired. Only
        the expiry is checked again; the user is still read on every request."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at <= utcnow():
                del self._verified[token]
                raise TokenExpired()
            return claims
        claims = await self._verify(token)
        while len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = claims
        return claims

    async def _verify(self, token: str) -> UserClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        kid = header.get("kid")
        if (
            header.get("alg") != ALGORITHM
            or header.get("typ") != TOKEN_TYPE
            or not isinstance(kid, str)
        ):
            raise InvalidToken()
        key = await self._verifying_key(kid)
        if key is None or (key.retired_at is not None and key.retired_at < utcnow() - MAX_TTL):
            raise InvalidToken()
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["iss", "aud", "sub", "env", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        if claims["env"] != key.environment_id or not isinstance(claims["sub"], str):
            raise InvalidToken()
        return UserClaims(
            user_id=claims["sub"],
            environment_id=key.environment_id,
            expires_at=datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo),
        )
