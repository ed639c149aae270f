"""What every signed-in page shares: the router class, the layout's context, and the
environment named in the URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tether.accounts.models import Environment
from tether.accounts.service import get_environment
from tether.dashboard.session import BASE, CSRF_FIELD, Viewer
from tether.dashboard.web import NOTICES, DashboardRoute
from tether.errors import NotFound

# (section, label, group) in the order of the side navigation.
SECTIONS = (
    ("api-keys", "API Keys", "Settings"),
    ("signing-keys", "Signing keys", "Settings"),
    ("settings", "Environment", "Settings"),
    ("integrations", "Integrations", "Connect"),
    ("users", "Users", "Connect"),
    ("audit-log", "Audit log", "Account"),
)


def dashboard_router(prefix: str = "") -> APIRouter:
    # The pages stay out of the OpenAPI document: it describes the API, not the console.
    return APIRouter(prefix=prefix, route_class=DashboardRoute, include_in_schema=False)


def section_url(env: str, section: str) -> str:
    return f"{BASE}/{env}/{section}"


def layout(
    request: Request, viewer: Viewer, env: str, section: str, **context: Any
) -> dict[str, Any]:
    """The context of the layout (header, environment switcher, side navigation) plus a
    page's own. Switching environment keeps the section."""
    label = next(label for key, label, _ in SECTIONS if key == section)
    group = next(group for key, _, group in SECTIONS if key == section)
    return {
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "env": env,
        "section": section,
        "section_label": label,
        "section_group": group,
        "sections": SECTIONS,
        "section_url": section_url,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        "error": None,
        "errors": {},
        "replace_url": None,
        **context,
    }


async def environment_of(session: AsyncSession, viewer: Viewer, env: str) -> Environment:
    """The environment a dashboard URL names: development or production of this account."""
    if env not in viewer.environments:
        raise NotFound("No such environment.")
    return await get_environment(session, viewer.principal.account_id, env)
