"""Settings > Environment: what PATCH /admin/environments/{env} sets, as a form."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError

from tether.accounts.schemas import EnvironmentOut, EnvironmentPatch
from tether.accounts.service import update_environment
from tether.dashboard.forms import field_errors, lines, text, whole_number
from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import CheckedForm, ViewerDep
from tether.dashboard.web import redirect, render, with_query
from tether.db.engine import SessionDep

router = dashboard_router()


def _values(settings: EnvironmentOut) -> dict[str, Any]:
    return {
        "requireTenantToken": settings.require_tenant_token,
        "userTokenTtlSeconds": str(settings.user_token_ttl_seconds),
        "tenantTokenMaxLifetimeSeconds": str(settings.tenant_token_max_lifetime_seconds),
        "allowedOrigins": "\n".join(settings.allowed_origins),
    }


def _origin_error(origins: list[str], errors: dict[str, str]) -> str:
    """The list's validator names no line: check each origin alone to say which is wrong."""
    for number, origin in enumerate(origins, start=1):
        try:
            EnvironmentPatch.model_validate({"allowedOrigins": [origin]})
        except ValidationError as exc:
            return f"Line {number} ({origin}): {field_errors(exc)['allowedOrigins']}"
    return errors["allowedOrigins"]


@router.get("/{env}/settings")
async def settings_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    settings = EnvironmentOut.model_validate(environment)
    return render(
        "settings.html",
        layout(
            request,
            viewer,
            env,
            "settings",
            environment=settings,
            values=_values(settings),
            public_url=request.app.state.settings.public_url,
        ),
    )


@router.post("/{env}/settings")
async def save_settings(
    env: str, request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    submitted: dict[str, Any] = {
        # An unticked checkbox is simply absent from the form.
        "requireTenantToken": form.get("requireTenantToken") == "true",
        "userTokenTtlSeconds": whole_number(form, "userTokenTtlSeconds"),
        "tenantTokenMaxLifetimeSeconds": whole_number(form, "tenantTokenMaxLifetimeSeconds"),
        "allowedOrigins": lines(text(form, "allowedOrigins")),
    }
    try:
        body = EnvironmentPatch.model_validate(submitted)
    except ValidationError as exc:
        errors = field_errors(exc)
        if "allowedOrigins" in errors:
            errors["allowedOrigins"] = _origin_error(submitted["allowedOrigins"], errors)
        settings = EnvironmentOut.model_validate(environment)
        values = {
            **{name: text(form, name) for name in submitted},
            "requireTenantToken": submitted["requireTenantToken"],
        }
        return render(
            "settings.html",
            layout(
                request,
                viewer,
                env,
                "settings",
                environment=settings,
                values=values,
                public_url=request.app.state.settings.public_url,
                errors=errors,
                error="The settings were not saved: check the highlighted fields.",
            ),
            status=422,
        )
    await update_environment(session, environment, body.model_dump(exclude_unset=True))
    return redirect(with_query(section_url(env, "settings"), notice="settings-saved"))
