"""Users, for admins: `/settings/users` lists everyone and invites a person by a one-time link;
`/settings/users/{username}` changes a person's display name or role, deactivates them, revokes
their API tokens or gives them a new link. `/invite/{token}` is where the invited person sets
their password (no sign-in yet: the sign-in page's double-submit cookie guards the form).

Every change goes through api/users/service.py, the same functions the CLI uses.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep, SettingsDep
from api.errors import NotFound, NotPermitted
from api.users import service as users
from api.web.pages import FormRefused, SignedIn, Viewer, page_router, see_other
from api.web.pages import render as render_page
from api.web.sessions import (
    CSRF_FIELD,
    PRESIGNIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    clear_cookie,
    same_secret,
    set_cookie,
    start_session,
)
from api.web.settings_pages import SECTIONS
from models.lifecycle import USER_ROLES, Role
from models.tables import User

router = page_router()
ROLES = [role.value for role in USER_ROLES]
ROLE_HINTS = {
    "admin": "everything, and managing users",
    "manager": "approvals, evidence checks and the office's work",
    "office": "scheduling, invoicing, payments and messages",
    "sales": "leads and quotes",
    "technician": "their own jobs only, on the phone view",
}


def render(request: Request, name: str, viewer: SignedIn | None = None, **context: Any) -> Any:
    """A page; the admin's pages with the settings' side list (Users current)."""
    if viewer is not None:
        context["sections"] = [
            {"path": path, "name": title, "about": about, "current": path == "/settings/users"}
            for path, title, about in SECTIONS
        ]
    return render_page(request, name, viewer, **context)


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:]


def _admin(viewer: SignedIn) -> None:
    if viewer.role != Role.admin:
        raise NotPermitted("only an admin can manage users")


async def _person(session: Any, username: str) -> User:
    user = await users.find_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def _invite_url(request: Request, settings: Any, token: str) -> str:
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/invite/{token}"


async def _list_page(
    request: Request,
    session: Any,
    viewer: SignedIn,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "users.html",
        viewer,
        status=status,
        people=await users.users_with_token_counts(session),
        invited=await users.pending_invites(session),
        roles=ROLES,
        role_hints=ROLE_HINTS,
        form=form or {"role": "technician"},
        errors=errors or {},
    )


@router.get("/settings/users")
async def users_list(request: Request, session: SessionDep, viewer: Viewer) -> Response:
    _admin(viewer)
    return await _list_page(request, session, viewer)


@router.post("/settings/users/invite")
async def invite(
    request: Request, session: SessionDep, settings: SettingsDep, viewer: Viewer
) -> Response:
    form = await viewer.form(request, back="/settings/users")
    _admin(viewer)
    typed = {
        name: str(form.get(name) or "").strip()
        for name in ("username", "display_name", "email", "role")
    }
    errors: dict[str, str] = {}
    try:
        users.check_username(typed["username"])
    except ValueError as bad:
        errors["username"] = f"Enter a username: {bad}"
    if not errors and await users.find_user(session, typed["username"]) is not None:
        errors["username"] = f"There is already a user called {typed['username']}"
    if "@" not in typed["email"] or len(typed["email"]) > 254:
        errors["email"] = "Enter an email address, like name@example.com"
    if len(typed["display_name"]) > 120:
        errors["display_name"] = "A display name has at most 120 characters"
    if typed["role"] not in ROLES:
        errors["role"] = "Choose a role"
    if errors:
        return await _list_page(request, session, viewer, status=422, form=typed, errors=errors)
    user, token = await users.invite_user(
        session,
        username=typed["username"],
        role=typed["role"],
        email=typed["email"],
        display_name=typed["display_name"],
        invited_by=viewer.user.username,
    )
    # The link is shown once, in this answer only: it is stored as a hash, and a reload of this
    # page asks to send the form again, which is refused (the user exists).
    return render(
        request, "invite_link.html", viewer, person=user,
        link=_invite_url(request, settings, token), expires=users.INVITE_LIFETIME.days,
    )  # fmt: skip


async def _person_page(
    request: Request,
    session: Any,
    viewer: SignedIn,
    person: User,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    tokens = dict((u.username, n) for u, n in await users.users_with_token_counts(session))
    invited = (await users.pending_invites(session)).get(person.id or 0)
    return render(
        request,
        "users_person.html",
        viewer,
        status=status,
        person=person,
        tokens=tokens.get(person.username, 0),
        invited=invited,
        roles=ROLES,
        role_hints=ROLE_HINTS,
        errors=errors or {},
        form=form or {"display_name": person.display_name, "role": person.role},
    )


@router.get("/settings/users/{username}")
async def person_page(
    request: Request, username: str, session: SessionDep, viewer: Viewer
) -> Response:
    _admin(viewer)
    return await _person_page(request, session, viewer, await _person(session, username))


@router.post("/settings/users/{username}/{action}")
async def person_action(
    request: Request,
    username: str,
    action: str,
    session: SessionDep,
    settings: SettingsDep,
    viewer: Viewer,
) -> Response:
    here = f"/settings/users/{username}"
    form = await viewer.form(request, back=here)
    _admin(viewer)
    person = await _person(session, username)
    name = person.username
    if action == "display-name":
        typed = str(form.get("display_name") or "")
        try:
            await users.change_display_name(session, person, typed)
        except ValueError as bad:
            return await _person_page(
                request, session, viewer, person, status=422,
                errors={"display_name": _sentence(bad)},
                form={"display_name": typed, "role": person.role},
            )  # fmt: skip
        return see_other(here, flash=f"Saved: {name}'s display name.")
    if action == "role":
        role = str(form.get("role") or "")
        try:
            await users.change_role(session, person, role)
        except ValueError as bad:
            return await _person_page(
                request, session, viewer, person,
                status=409 if isinstance(bad, users.LastAdmin) else 422,
                errors={"role": _sentence(bad)},
                form={"display_name": person.display_name, "role": role},
            )  # fmt: skip
        return see_other(here, flash=f"Saved: {name} is now {role}.")
    if action == "deactivate":
        try:
            await users.deactivate_user(session, person)
        except users.LastAdmin as bad:
            return await _person_page(
                request, session, viewer, person, status=409,
                errors={"deactivate": _sentence(bad)},
            )  # fmt: skip
        if person.id == viewer.user.id:  # their own session has just ended
            return see_other("/signin")
        return see_other(
            here, flash=f"Deactivated: {name} can no longer sign in; their tokens are revoked."
        )
    if action == "revoke-tokens":
        await users.revoke_tokens(session, person)
        return see_other(here, flash=f"Revoked: {name}'s API tokens no longer work.")
    if action == "new-link":
        if not person.active or person.password_hash:
            return await _person_page(
                request, session, viewer, person, status=409,
                errors={"new-link": "Only an active person who has not set a password yet "
                        "can be given a new invitation link."},
            )  # fmt: skip
        token = await users.issue_invite(session, person, viewer.user.username)
        return render(
            request, "invite_link.html", viewer, person=person,
            link=_invite_url(request, settings, token), expires=users.INVITE_LIFETIME.days,
        )  # fmt: skip
    raise NotFound(f"no action {action!r}")


# --- The invited person: no session yet. ---------------------------------------------------


def _invite_form(
    request: Request,
    settings: Any,
    token: str,
    person: User,
    *,
    status: int = 200,
    error: str = "",
) -> HTMLResponse:
    csrf = request.cookies.get(PRESIGNIN_COOKIE) or secrets.token_urlsafe(32)
    page = render(
        request, "invite_accept.html", status=status, csrf_token=csrf, token=token,
        person=person, error=error, min_length=users.MIN_PASSWORD_LENGTH,
    )  # fmt: skip
    set_cookie(page, settings, PRESIGNIN_COOKIE, csrf, max_age=2 * 60 * 60)
    return page


def _dead_link(request: Request, known: bool) -> HTMLResponse:
    return render(
        request,
        "invite_dead.html",
        status=410 if known else 404,
        known=known,
    )


@router.get("/invite/{token}")
async def invite_page(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    found = await users.find_invite(session, token)
    if found is None or not users.invite_is_live(*found):
        return _dead_link(request, found is not None)
    return _invite_form(request, settings, token, found[1])


@router.post("/invite/{token}")
async def accept(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    if not same_secret(str(form.get(CSRF_FIELD) or ""), request.cookies.get(PRESIGNIN_COOKIE)):
        raise FormRefused(f"/invite/{token}")
    found = await users.find_invite(session, token)
    if found is None or not users.invite_is_live(*found):
        return _dead_link(request, found is not None)
    person = found[1]
    password = str(form.get("password") or "")
    again = str(form.get("password_again") or "")
    if len(password) < users.MIN_PASSWORD_LENGTH:
        error = f"Enter a password of at least {users.MIN_PASSWORD_LENGTH} characters"
        return _invite_form(request, settings, token, person, status=422, error=error)
    if password != again:
        error = "The two passwords differ: type the same password twice"
        return _invite_form(request, settings, token, person, status=422, error=error)
    user = await users.accept_invite(session, token, password)
    web_token, _ = await start_session(session, user)
    landing = "/my" if user.role == Role.technician else "/jobs"
    response = see_other(landing, flash=f"Welcome, {user.display_name or user.username}.")
    set_cookie(response, settings, SESSION_COOKIE, web_token, int(SESSION_LIFETIME.total_seconds()))
    clear_cookie(response, settings, PRESIGNIN_COOKIE)
    return response
