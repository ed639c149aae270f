"""OAuth 2.0 connect and refresh.

No database transaction is held across a request to a provider: a provider's latency must never
hold a PostgreSQL connection and row lock, or SQLite's single write lock, hostage. Refreshes
are serialised instead by a lease on the credential row, taken with one conditional UPDATE, so
that across every process and node exactly one refresh runs for an expiring credential; waiters
in the same process queue on a lock and then read what the winner stored."""

from __future__ import annotations

import asyncio
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tether.audit.service import acting, record
from tether.catalog.models import Integration
from tether.catalog.service import get_integration, oauth_client
from tether.db.base import utcnow
from tether.errors import Conflict, NotFound, TetherError, ValidationFailed
from tether.installations import oauth
from tether.installations.models import Credential, Installation, OAuthState
from tether.installations.service import install, seal, unseal
from tether.security.crypto import Keyring, row_identity
from tether.security.keys import digest

STATE_TTL = timedelta(minutes=10)
REFRESH_WINDOW = timedelta(minutes=5)


class InvalidState(TetherError):
    status, code = 400, "invalid_state"
    detail = "This authorization is unknown, expired or already used; start again."


class AuthorizationRefused(TetherError):
    status, code = 400, "authorization_refused"
    detail = "The provider did not authorize the connection."


class CredentialRefreshFailed(Conflict):
    code = "credential_refresh_failed"
    detail = "The provider refused to refresh this credential; the user must connect again."


@dataclass(frozen=True, slots=True)
class Connected:
    installation_id: str
    environment_id: str


class OAuthFlows:
    """Per-process: the HTTP client for providers and the in-process refresh locks."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        http: httpx.AsyncClient,
        public_url: str,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._keyring = keyring
        self._http = http
        self.redirect_uri = f"{public_url}/oauth/callback"
        self.lease = timedelta(seconds=float(http.timeout.read or 10) * 2 + 5)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def start(
        self, session: AsyncSession, *, environment_id: str, user_id: str, integration_id: str
    ) -> str:
        """Record a single-use state bound to the user and the integration, and answer the
        provider's authorization URL."""
        integration = await get_integration(
            session, environment_id, integration_id, enabled_only=True
        )
        client = oauth_client(self._keyring, integration)
        state = secrets.token_urlsafe(32)
        verifier = oauth.new_verifier() if client.pkce else None
        record = OAuthState(
            digest=digest(state),
            environment_id=environment_id,
            user_id=user_id,
            integration_id=integration.id,
            expires_at=utcnow() + STATE_TTL,
        )
        session.add(record)
        await session.flush()
        if verifier is not None:
            record.verifier_ciphertext = self._keyring.encrypt(
                verifier.encode(), row_identity("oauth_states", record.id)
            )
            await session.flush()
        return oauth.authorize_url(
            client, state=state, redirect_uri=self.redirect_uri, verifier=verifier
        )

    async def finish(self, *, state: str, code: str | None, error: str | None) -> Connected:
        """The provider's redirect: consume the state (once), exchange the code, store the
        tokens and finish the installation."""
        async with self._sessionmaker() as session:
            now = utcnow()
            # One conditional UPDATE consumes the state: of two racing callbacks, one wins.
            claimed = await session.execute(
                update(OAuthState)
                .where(
                    OAuthState.digest == digest(state),
                    OAuthState.used_at.is_(None),
                    OAuthState.expires_at > now,
                )
                .values(used_at=now)
                .returning(
                    OAuthState.id,
                    OAuthState.environment_id,
                    OAuthState.user_id,
                    OAuthState.integration_id,
                    OAuthState.verifier_ciphertext,
                )
            )
            row = claimed.one_or_none()
            await session.commit()
        if row is None:
            raise InvalidState()
        acting("user", row.user_id, None)  # the user who started this authorization
        if error is not None:
            raise AuthorizationRefused(
                f"The provider did not authorize the connection: {error[:64]}.",
                providerError=error[:64],
            )
        if not code:
            raise ValidationFailed("The provider's redirect has no code.")
        verifier = None
        if row.verifier_ciphertext is not None:
            verifier = self._keyring.decrypt(
                row.verifier_ciphertext, row_identity("oauth_states", row.id)
            ).decode()

        async with self._sessionmaker() as session:
            integration = await get_integration(session, row.environment_id, row.integration_id)
            client = oauth_client(self._keyring, integration)
        tokens = await oauth.exchange_code(
            self._http, client, code=code, redirect_uri=self.redirect_uri, verifier=verifier
        )
        async with self._sessionmaker() as session:
            installation_id = await self._store(
                session, row.environment_id, row.user_id, integration, tokens
            )
            await session.commit()
        return Connected(installation_id, row.environment_id)

    async def _store(
        self,
        session: AsyncSession,
        environment_id: str,
        user_id: str,
        integration: Integration,
        tokens: oauth.TokenSet,
    ) -> str:
        """A new installation, or new tokens for an existing one (the user reconnected)."""
        credential = await session.scalar(
            select(Credential).where(
                Credential.user_id == user_id, Credential.integration_id == integration.id
            )
        )
        if credential is None:
            installation, _ = await install(
                session,
                self._keyring,
                environment_id=environment_id,
                user_id=user_id,
                integration=integration,
                data=tokens.as_data(),
                credential_type="oauth2",
                expires_at=tokens.expires_at,
            )
            return installation.id
        seal(self._keyring, credential, tokens.as_data())
        credential.expires_at = tokens.expires_at
        credential.refresh_lease_until = None
        await session.execute(
            update(Installation)
            .where(Installation.id == credential.installation_id)
            .values(status="active", updated_at=utcnow())
        )
        await session.flush()
        await record(
            session, "installation.reconnected", target_type="installation",
            target_id=credential.installation_id, environment_id=environment_id,
            details={"userId": user_id, "integrationId": integration.id},
        )  # fmt: skip
        return credential.installation_id

    async def read(self, session: AsyncSession, credential: Credential) -> dict[str, Any]:
        """The credential's data, refreshed first when it is an OAuth token that expires
        within five minutes."""
        if not _needs_refresh(credential):
            return unseal(self._keyring, credential)
        # End the request's transaction before any provider request (see the module's doc).
        await session.commit()
        lock = self._locks.setdefault(credential.id, asyncio.Lock())
        async with lock:
            return await self._refresh(credential.id)

    async def _refresh(self, credential_id: str) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + self.lease.total_seconds() + 5
        while True:
            async with self._sessionmaker() as session:
                credential = await session.get(Credential, credential_id)
                if credential is None:
                    raise NotFound("No such credential.")
                if not _needs_refresh(credential):
                    return unseal(self._keyring, credential)
                status = await session.scalar(
                    select(Installation.status).where(Installation.id == credential.installation_id)
                )
                if status == "error":  # the provider already refused: do not ask again
                    raise CredentialRefreshFailed()
                now = utcnow()
                taken = await session.execute(
                    update(Credential)
                    .where(
                        Credential.id == credential_id,
                        or_(
                            Credential.refresh_lease_until.is_(None),
                            Credential.refresh_lease_until < now,
                        ),
                    )
                    .values(refresh_lease_until=now + self.lease)
                )
                await session.commit()
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return await self._refresh_holding_lease(credential_id)
            if asyncio.get_running_loop().time() > deadline:
                raise oauth.ProviderTimeout("Another refresh of this credential is still running.")
            await asyncio.sleep(0.05)  # another process is refreshing: read its result soon

    async def _refresh_holding_lease(self, credential_id: str) -> dict[str, Any]:
        async with self._sessionmaker() as session:
            credential = await session.get(Credential, credential_id)
            if credential is None:
                raise NotFound("No such credential.")
            integration = await session.get(Integration, credential.integration_id)
            assert integration is not None
            data = unseal(self._keyring, credential)
            client = oauth_client(self._keyring, integration)
        refresh_token = data.get("refreshToken")
        try:
            if not refresh_token:
                raise oauth.GrantRejected("The credential has no refresh token.")
            tokens = await oauth.refresh(self._http, client, refresh_token)
        except oauth.GrantRejected:
            await self._mark_failed(credential_id)
            raise CredentialRefreshFailed() from None
        except (oauth.ProviderError, oauth.ProviderTimeout):
            await self._release(credential_id)
            if _expired(credential.expires_at):
                raise
            return data  # transient: the current token is still valid for a few minutes
        fresh = tokens.as_data()
        if not fresh["refreshToken"]:  # providers that do not rotate keep the old one valid
            fresh["refreshToken"] = refresh_token
        async with self._sessionmaker() as session:
            credential = await session.get(Credential, credential_id)
            if credential is None:
                raise NotFound("No such credential.")
            seal(self._keyring, credential, fresh)
            credential.expires_at = tokens.expires_at
            credential.refresh_lease_until = None
            await session.commit()
        return fresh

    async def _release(self, credential_id: str) -> None:
        async with self._sessionmaker() as session:
            await session.execute(
                update(Credential)
                .where(Credential.id == credential_id)
                .values(refresh_lease_until=None)
            )
            await session.commit()

    async def _mark_failed(self, credential_id: str) -> None:
        async with self._sessionmaker() as session:
            credential = await session.get(Credential, credential_id)
            if credential is None:
                return
            credential.refresh_lease_until = None
            await session.execute(
                update(Installation)
                .where(Installation.id == credential.installation_id)
                .values(status="error", updated_at=utcnow())
            )
            await record(
                session, "installation.failed", target_type="installation",
                target_id=credential.installation_id, environment_id=credential.environment_id,
                details={"reason": "refresh_rejected"},
            )  # fmt: skip
            await session.commit()


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utcnow()


def _needs_refresh(credential: Credential) -> bool:
    return (
        credential.type == "oauth2"
        and credential.expires_at is not None
        and credential.expires_at - utcnow() < REFRESH_WINDOW
    )
