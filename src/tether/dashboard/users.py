"""Users: search by username, what a user installed and the metadata of its credentials. No
secret is ever read here: credentials are listed, never opened."""

from __future__ import annotations

from fastapi import Request, Response

from tether.catalog.service import list_integrations
from tether.dashboard.pages import dashboard_router, environment_of, layout, section_url
from tether.dashboard.session import CheckedForm, ViewerDep
from tether.dashboard.web import redirect, render, with_query
from tether.db.engine import SessionDep
from tether.installations import service as installations
from tether.users import service as users

router = dashboard_router()

PAGE_SIZE = 50
# A user with more installations than this is shown with a note; nobody has that many.
MAX_INSTALLATIONS = 200


@router.get("/{env}/users")
async def users_page(
    env: str,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    q: str = "",
    cursor: str = "",
) -> Response:
    environment = await environment_of(session, viewer, env)
    query = q.strip()[:255]
    if query:
        found, next_cursor = await users.search_users(
            session, environment.id, query, limit=PAGE_SIZE, cursor=cursor or None
        )
    else:
        found, next_cursor = await users.list_users(
            session, environment.id, limit=PAGE_SIZE, cursor=cursor or None
        )
    return render(
        "users.html",
        layout(
            request,
            viewer,
            env,
            "users",
            users=found,
            query=query,
            first_page=not cursor,
            request_base=request.app.state.settings.public_url,
            next_url=with_query(section_url(env, "users"), q=query, cursor=next_cursor)
            if next_cursor
            else None,
        ),
    )


def _user_url(env: str, user_id: str) -> str:
    return f"{section_url(env, 'users')}/{user_id}"


@router.get("/{env}/users/{user_ref}")
async def user_page(
    env: str, user_ref: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    user = await users.get_user(session, environment.id, user_ref)
    installed, more = await installations.list_installations(
        session,
        environment.id,
        user_id=user.id,
        integration_id=None,
        limit=MAX_INSTALLATIONS,
        cursor=None,
    )
    credential_ids = await installations.credential_ids(session, [i.id for i in installed])
    credentials = await installations.list_credentials(session, environment.id, user.id)
    names = {i.id: i.name for i in await list_integrations(session, environment.id)}
    return render(
        "user.html",
        layout(
            request,
            viewer,
            env,
            "users",
            user=user,
            installations=installed,
            truncated=more is not None,
            credential_ids=credential_ids,
            credentials=credentials,
            integration_names=names,
        ),
    )


@router.post("/{env}/users/{user_ref}/delete")
async def delete_user(
    env: str, user_ref: str, form: CheckedForm, viewer: ViewerDep, session: SessionDep
) -> Response:
    environment = await environment_of(session, viewer, env)
    await users.delete_user(session, environment.id, user_ref)
    return redirect(with_query(section_url(env, "users"), notice="user-deleted"))


@router.post("/{env}/users/{user_ref}/installations/{installation_id}/delete")
async def delete_installation(
    env: str,
    user_ref: str,
    installation_id: str,
    form: CheckedForm,
    viewer: ViewerDep,
    session: SessionDep,
) -> Response:
    environment = await environment_of(session, viewer, env)
    user = await users.get_user(session, environment.id, user_ref)
    await installations.delete_installation(
        session, environment.id, installation_id, user_id=user.id
    )
    return redirect(with_query(_user_url(env, user.id), notice="installation-deleted"))
