"""Integrations: the catalogue's apps an environment offers its users. The client secret of an
OAuth 2.0 integration is write-only here as in the admin API."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tether.catalog import service
from tether.catalog.apps import App, all_apps, get_app
from tether.catalog.routes import integration_out
from tether.catalog.schemas import CreateIntegrationBody, UpdateIntegrationBody
from tether.dashboard.forms import field_errors, optional, text, without_none, words
from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import CheckedForm, Viewer, ViewerDep
from tether.dashboard.web import redirect, render, with_query
from tether.db.engine import SessionDep
from tether.errors import NotFound, TetherError

router = dashboard_router()


def _public_url(request: Request) -> str:
    url: str = request.app.state.settings.public_url
    return url


def _allow_insecure(request: Request) -> bool:
    allowed: bool = request.app.state.settings.allow_insecure_oauth_urls
    return allowed


def _catalogue_app(slug: str) -> App:
    app = get_app(slug)
    if app is None:
        raise NotFound("There is no such app in the catalogue.")
    return app


def _integration_url(env: str, integration_id: str) -> str:
    return f"{section_url(env, 'integrations')}/{integration_id}"


@router.get("/{env}/integrations")
async def integrations_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    integrations = await service.list_integrations(session, environment.id)
    public_url = _public_url(request)
    return render(
        "integrations.html",
        layout(
            request,
            viewer,
            env,
            "integrations",
            integrations=[integration_out(i, public_url) for i in integrations],
            catalogue=all_apps(),
        ),
    )


def _form_page(
    request: Request,
    viewer: Viewer,
    env: str,
    app: App,
    *,
    integration: Any = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    return render(
        "integration_form.html",
        layout(
            request,
            viewer,
            env,
            "integrations",
            app=app,
            integration=integration,
            editing=integration is not None,
            values=values or {},
            redirect_uri=f"{_public_url(request)}/oauth/callback",
            **context,
        ),
        status=status,
    )


@router.get("/{env}/integrations/new")
async def new_integration_page(
    env: str, request: Request, viewer: ViewerDep, session: SessionDep, app: str = ""
) -> Response:
    await environment_of(session, viewer, env)
    return _form_page(request, viewer, env, _catalogue_app(app))


def _oauth_values(form: FormData, app: App) -> dict[str, Any]:
    values: dict[str, Any] = {
        "clientId": optional(form, "clientId"),
        "clientSecret": optional(form, "clientSecret"),
        "scopes": words(text(form, "scopes")) or None,
    }
    if app.integration_provides_urls:
        values["authorizeUrl"] = optional(form, "authorizeUrl")
        values["tokenUrl"] = optional(form, "tokenUrl")
    return values


_FIELDS = ("clientId", "clientSecret", "authorizeUrl", "tokenUrl", "scopes", "name")


def _errors(exc: ValidationError | TetherError) -> dict[str, str]:
    """Messages by field: pydantic's, or the service's, which names the field it refuses."""
    if isinstance(exc, ValidationError):
        return field_errors(exc)
    named = [name for name in _FIELDS if name in exc.detail]
    return {named[0]: exc.detail} if named else {}


def _echo(form: FormData) -> dict[str, str]:
    # What was typed, to fill the form again after an error; never the client secret.
    names = ("name", "clientId", "scopes", "authorizeUrl", "tokenUrl")
    return {name: text(form, name) for name in names}


@router.post("/{env}/integrations")
async def create_integration(
    env: str, request: Request, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    app = _catalogue_app(text(form, "app"))
    values: dict[str, Any] = {"app": app.app, "name": optional(form, "name")}
    if app.is_oauth2:
        values.update(_oauth_values(form, app))
    try:
        body = CreateIntegrationBody.model_validate(without_none(values))
        integration = await service.create_integration(
            session,
            request.app.state.keyring,
            environment.id,
            body.model_dump(),
            allow_insecure_urls=_allow_insecure(request),
        )
    except (ValidationError, TetherError) as exc:
        await session.rollback()
        message = exc.detail if isinstance(exc, TetherError) else "Check the highlighted fields."
        return _form_page(
            request,
            viewer,
            env,
            app,
            values=_echo(form),
            errors=_errors(exc),
            error=f"The integration was not added. {message}",
            status=422,
        )
    return redirect(with_query(_integration_url(env, integration.id), notice="integration-created"))


async def _integration(session: AsyncSession, viewer: Viewer, env: str, integration_id: str) -> Any:
    environment = await environment_of(session, viewer, env)
    return await service.get_integration(session, environment.id, integration_id)


def _current_values(integration: Any) -> dict[str, str]:
    return {
        "name": integration.name,
        "clientId": integration.client_id or "",
        # Blank when the integration uses the app's default scopes.
        "scopes": " ".join(integration.scopes) if integration.scopes is not None else "",
        "authorizeUrl": integration.authorize_url or "",
        "tokenUrl": integration.token_url or "",
    }


@router.get("/{env}/integrations/{integration_id}")
async def integration_page(
    env: str, integration_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    integration = await _integration(session, viewer, env, integration_id)
    return _form_page(
        request,
        viewer,
        env,
        service.app_of(integration),
        integration=integration_out(integration, _public_url(request)),
        values=_current_values(integration),
    )


@router.post("/{env}/integrations/{integration_id}")
async def update_integration(
    env: str,
    integration_id: str,
    request: Request,
    form: CheckedForm,
    viewer: ViewerDep,
    session: SessionDep,
) -> Response:
    integration = await _integration(session, viewer, env, integration_id)
    app = service.app_of(integration)
    values: dict[str, Any] = without_none({"name": optional(form, "name")})
    if app.is_oauth2:
        oauth = _oauth_values(form, app)
        # Blank keeps the client id and secret; blank scopes go back to the app's defaults.
        values.update(without_none({k: v for k, v in oauth.items() if k != "scopes"}))
        values["scopes"] = oauth["scopes"]
    try:
        body = UpdateIntegrationBody.model_validate(values)
        await service.update_integration(
            session,
            request.app.state.keyring,
            integration,
            body.model_dump(exclude_unset=True),
            allow_insecure_urls=_allow_insecure(request),
        )
    except (ValidationError, TetherError) as exc:
        await session.rollback()
        integration = await _integration(session, viewer, env, integration_id)
        message = exc.detail if isinstance(exc, TetherError) else "Check the highlighted fields."
        return _form_page(
            request,
            viewer,
            env,
            app,
            integration=integration_out(integration, _public_url(request)),
            values=_echo(form),
            errors=_errors(exc),
            error=f"The changes were not saved. {message}",
            status=422,
        )
    return redirect(with_query(_integration_url(env, integration_id), notice="integration-saved"))


async def _set_enabled(
    request: Request, session: AsyncSession, viewer: Viewer, env: str, integration_id: str, on: bool
) -> Response:
    integration = await _integration(session, viewer, env, integration_id)
    body = UpdateIntegrationBody.model_validate({"enabled": on})
    await service.update_integration(
        session,
        request.app.state.keyring,
        integration,
        body.model_dump(exclude_unset=True),
        allow_insecure_urls=_allow_insecure(request),
    )
    notice = "integration-enabled" if on else "integration-disabled"
    return redirect(with_query(section_url(env, "integrations"), notice=notice))


@router.post("/{env}/integrations/{integration_id}/enable")
async def enable_integration(
    env: str,
    integration_id: str,
    request: Request,
    form: CheckedForm,
    viewer: ViewerDep,
    session: SessionDep,
) -> Response:
    return await _set_enabled(request, session, viewer, env, integration_id, True)


@router.post("/{env}/integrations/{integration_id}/disable")
async def disable_integration(
    env: str,
    integration_id: str,
    request: Request,
    form: CheckedForm,
    viewer: ViewerDep,
    session: SessionDep,
) -> Response:
    return await _set_enabled(request, session, viewer, env, integration_id, False)


@router.post("/{env}/integrations/{integration_id}/delete")
async def delete_integration(
    env: str, integration_id: str, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    integration = await _integration(session, viewer, env, integration_id)
    await service.delete_integration(session, integration)
    return redirect(with_query(section_url(env, "integrations"), notice="integration-deleted"))
