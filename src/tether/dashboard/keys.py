"""Settings > API Keys and Settings > Signing keys. A key's plaintext, and a generated private
key, appear only in the page that answers the form post that made them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tether.api_keys import service as api_keys
from tether.api_keys.models import ApiKey
from tether.api_keys.schemas import ApiKeyOut, CreateKeyBody, RollKeyBody
from tether.api_keys.service import MAX_GRACE_SECONDS
from tether.dashboard.forms import field_errors, optional, text, whole_number, without_none
from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import CheckedForm, Viewer, ViewerDep
from tether.dashboard.web import redirect, render, with_query
from tether.db.base import utcnow
from tether.db.engine import SessionDep
from tether.errors import NotFound, TetherError, ValidationFailed
from tether.tenants import service as signing_keys
from tether.tenants.schemas import CreateSigningKeyBody

router = dashboard_router()

GRACE_CHOICES = (
    (0, "Immediately", "The old key is refused on its very next request (Alloy's Generate)."),
    (3600, "In 1 hour", "Time to deploy the new key before the old one stops working."),
    (86400, "In 24 hours", "For deployments that take a day to reach every server."),
    (MAX_GRACE_SECONDS, "In 7 days", "The longest overlap Tether allows."),
)


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: ApiKeyOut
    status: str  # active, expiring, expired, revoked

    @property
    def masked(self) -> str:
        return f"{self.key.prefix}…{self.key.last4}"


def _row(key: ApiKey, now: datetime) -> KeyRow:
    out = ApiKeyOut.model_validate(key)
    if out.revoked_at is not None:
        status = "revoked"
    elif out.expires_at is not None and out.expires_at <= now:
        status = "expired"
    elif out.expires_at is not None:
        status = "expiring"
    else:
        status = "active"
    return KeyRow(out, status)


async def _keys_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    env: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    environment = await environment_of(session, viewer, env)
    now = utcnow()
    rows = [_row(key, now) for key in await api_keys.list_keys(session, environment)]
    return render(
        "api_keys.html",
        layout(
            request,
            viewer,
            env,
            "api-keys",
            active=[row for row in rows if row.status in ("active", "expiring")],
            inactive=[row for row in rows if row.status in ("revoked", "expired")],
            **{"created": None, "form": {"type": "secret", "name": "", "expiresAt": ""}, **context},
        ),
        status=status,
    )


def _expires_at(raw: str) -> str | None:
    # <input type="datetime-local"> sends local wall time without a zone; the page says UTC.
    return f"{raw}:00Z" if len(raw) == 16 else (raw or None)


@router.get("/{env}/api-keys")
async def api_keys_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    return await _keys_page(request, session, viewer, env)


@router.post("/{env}/api-keys")
async def create_api_key(
    env: str, request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    values = {
        "type": text(form, "type"),
        "name": optional(form, "name"),
        "expiresAt": _expires_at(text(form, "expiresAt")),
    }
    try:
        body = CreateKeyBody.model_validate(without_none(values))
    except ValidationError as exc:
        form_values = {key: value or "" for key, value in values.items()}
        form_values["expiresAt"] = text(form, "expiresAt")
        return await _keys_page(
            request,
            session,
            viewer,
            env,
            status=422,
            form=form_values,
            errors=field_errors(exc),
            error="The key was not created: check the form.",
        )
    environment = await environment_of(session, viewer, env)
    key, plaintext = await api_keys.create_key(
        session, environment, body.type, name=body.name, expires_at=body.expires_at
    )
    return await _keys_page(
        request,
        session,
        viewer,
        env,
        created={"row": _row(key, utcnow()), "plaintext": plaintext, "rolled": False},
        replace_url=section_url(env, "api-keys"),
    )


async def _find_key(session: AsyncSession, viewer: Viewer, env: str, key_id: str) -> KeyRow:
    environment = await environment_of(session, viewer, env)
    for key in await api_keys.list_keys(session, environment):
        if key.id == key_id:
            return _row(key, utcnow())
    raise NotFound("No such API key.")


@router.get("/{env}/api-keys/{key_id}/roll")
async def roll_page(
    env: str, key_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    row = await _find_key(session, viewer, env, key_id)
    return render(
        "api_key_roll.html",
        layout(request, viewer, env, "api-keys", row=row, choices=GRACE_CHOICES, selected=0),
    )


@router.post("/{env}/api-keys/{key_id}/roll")
async def roll_api_key(
    env: str,
    key_id: str,
    request: Request,
    form: CheckedForm,
    viewer: ViewerDep,
    session: SessionDep,
) -> Response:
    environment = await environment_of(session, viewer, env)
    try:
        grace = RollKeyBody.model_validate(
            {"gracePeriodSeconds": whole_number(form, "gracePeriodSeconds")}
        ).grace_period_seconds
        key, plaintext = await api_keys.roll_key(session, environment, key_id, grace)
    except (ValidationError, TetherError) as exc:
        await session.rollback()
        message = (
            field_errors(exc).get("gracePeriodSeconds", "Choose when the old key stops working.")
            if isinstance(exc, ValidationError)
            else exc.detail
        )
        status = 422 if isinstance(exc, ValidationError) else exc.status
        if status == 404:
            raise NotFound("No such API key.") from None
        row = await _find_key(session, viewer, env, key_id)
        return render(
            "api_key_roll.html",
            layout(
                request,
                viewer,
                env,
                "api-keys",
                row=row,
                choices=GRACE_CHOICES,
                selected=0,
                error=f"The key was not rolled: {message}",
            ),
            status=status,
        )
    return await _keys_page(
        request,
        session,
        viewer,
        env,
        created={
            "row": _row(key, utcnow()),
            "plaintext": plaintext,
            "rolled": True,
            "grace": grace,
        },
        replace_url=section_url(env, "api-keys"),
    )


@router.post("/{env}/api-keys/{key_id}/revoke")
async def revoke_api_key(
    env: str, key_id: str, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    await api_keys.revoke_key(session, environment, key_id)
    return redirect(with_query(section_url(env, "api-keys"), notice="key-revoked"))


# Signing keys ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    id: str
    origin: str
    public_key: str
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None


def fingerprint(public_key_pem: str) -> str:
    """SHA-256 of the key's DER form, as `ssh-keygen -l` shows fingerprints."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


async def _signing_keys_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    env: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    environment = await environment_of(session, viewer, env)
    rows = [
        SigningKeyRow(
            id=key.id,
            origin=key.origin,
            public_key=key.public_key_pem,
            fingerprint=fingerprint(key.public_key_pem),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        for key in await signing_keys.list_keys(session, environment.id)
    ]
    return render(
        "signing_keys.html",
        layout(
            request,
            viewer,
            env,
            "signing-keys",
            active=[row for row in rows if row.revoked_at is None],
            revoked=[row for row in rows if row.revoked_at is not None],
            **{"generated": None, "public_key": "", **context},
        ),
        status=status,
    )


@router.get("/{env}/signing-keys")
async def signing_keys_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    return await _signing_keys_page(request, session, viewer, env)


@router.post("/{env}/signing-keys/generate")
async def generate_signing_key(
    env: str, request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    generated = await signing_keys.generate_key(session, environment.id)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return await _signing_keys_page(
        request,
        session,
        viewer,
        env,
        generated={
            "id": generated.key.id,
            "private_key_b64": generated.private_key_b64,
            "pem": base64.b64decode(generated.private_key_b64).decode(),
            "filename": f"tether-{env}-signing-key-{stamp}-{generated.key.id}.pem",
            "fingerprint": fingerprint(generated.key.public_key_pem),
        },
        replace_url=section_url(env, "signing-keys"),
    )


@router.post("/{env}/signing-keys/import")
async def import_signing_key(
    env: str, request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    pem = text(form, "publicKey")
    try:
        body = CreateSigningKeyBody.model_validate({"publicKey": pem or None})
        if body.public_key is None:
            raise ValidationFailed("Paste the PEM of an RSA public key.")
        await signing_keys.import_key(session, environment.id, body.public_key)
    except (ValidationError, TetherError) as exc:
        await session.rollback()
        errors = (
            field_errors(exc) if isinstance(exc, ValidationError) else {"publicKey": exc.detail}
        )
        return await _signing_keys_page(
            request,
            session,
            viewer,
            env,
            status=422,
            public_key=pem,
            errors=errors,
            error="No key was added: check the form.",
        )
    return redirect(with_query(section_url(env, "signing-keys"), notice="signing-key-imported"))


@router.post("/{env}/signing-keys/{key_id}/revoke")
async def revoke_signing_key(
    env: str, key_id: str, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    await signing_keys.revoke_key(session, environment.id, key_id)
    return redirect(with_query(section_url(env, "signing-keys"), notice="signing-key-revoked"))
