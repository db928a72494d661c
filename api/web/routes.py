"""Sign-in, sign-out and the entry point `/`. Plain forms, post/redirect/get, no scripts.

The JSON API does not take this cookie: it keeps bearer tokens only, exactly as before, so no
API route needs a CSRF check and a page's cookie can never be replayed against `/api/v1`.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep, SettingsDep
from api.users.service import check_password
from api.web.pages import FormRefused, page_router, render, see_other
from api.web.sessions import (
    CSRF_FIELD,
    PRESIGNIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    clear_cookie,
    current_session,
    end_session,
    same_secret,
    set_cookie,
    start_session,
)
from api.web.throttle import SignInThrottle, account_key, address_key

router = page_router()
BAD_SIGN_IN = "The username or email, or the password, is not right."


def _throttle(request: Request) -> SignInThrottle:
    app = request.app
    if not hasattr(app.state, "sign_in_throttle"):
        app.state.sign_in_throttle = SignInThrottle()
    return app.state.sign_in_throttle


def _local_path(value: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never `//elsewhere` or a URL)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/jobs"


@router.get("/")
async def home(request: Request, session: SessionDep) -> Response:
    signed_in = await current_session(session, request)
    return see_other("/jobs" if signed_in else "/signin")


@router.get("/login")
async def login_alias() -> Response:
    """DESIGN.md §8 names the sign-in page `/login`; it lives at `/signin`."""
    return see_other("/signin")


def _sign_in_form(
    request: Request,
    settings: Any,
    *,
    status: int = 200,
    login: str = "",
    error: str = "",
    next_path: str = "/jobs",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with the pre-sign-in CSRF cookie it must repeat (a new one if absent)."""
    csrf = request.cookies.get(PRESIGNIN_COOKIE) or secrets.token_urlsafe(32)
    page = render(
        request, "signin.html", status=status, csrf_token=csrf, login=login, error=error,
        next_path=next_path,
    )  # fmt: skip
    page.headers.update(headers or {})
    set_cookie(page, settings, PRESIGNIN_COOKIE, csrf, max_age=2 * 60 * 60)
    return page


@router.get("/signin")
async def sign_in_page(
    request: Request, session: SessionDep, settings: SettingsDep, next: str | None = None
) -> Response:
    if await current_session(session, request):
        return see_other(_local_path(next))
    return _sign_in_form(request, settings, next_path=_local_path(next))


@router.post("/signin")
async def sign_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    if not same_secret(str(form.get(CSRF_FIELD) or ""), request.cookies.get(PRESIGNIN_COOKIE)):
        raise FormRefused("/signin")
    login = str(form.get("login") or "").strip()
    password = str(form.get("password") or "")
    next_path = _local_path(str(form.get("next") or ""))
    keys = (account_key(login), address_key(request.client.host if request.client else None))
    throttle = _throttle(request)
    wait = throttle.wait_seconds(*keys)
    if wait:
        minutes = max(1, round(wait / 60))
        error = f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes > 1)}."
        return _sign_in_form(
            request, settings, status=429, login=login, error=error, next_path=next_path,
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    user = await check_password(session, login, password) if login and password else None
    if user is None:
        throttle.failed(*keys)
        return _sign_in_form(
            request, settings, status=401, login=login, error=BAD_SIGN_IN, next_path=next_path
        )
    throttle.succeeded(keys[0])
    token, _ = await start_session(session, user)
    # A technician's home is their day; the office's is the board.
    landing = "/my" if user.role == "technician" and next_path == "/jobs" else next_path
    response = see_other(landing)
    set_cookie(response, settings, SESSION_COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
    clear_cookie(response, settings, PRESIGNIN_COOKIE)
    return response


@router.post("/signout")
async def sign_out(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    signed_in = await current_session(session, request)
    if signed_in is None:  # already ended (another tab, expiry): nothing to end
        response = see_other("/signin")
    elif not same_secret(str(form.get(CSRF_FIELD) or ""), signed_in[0].csrf_token):
        raise FormRefused("/jobs")
    else:
        await end_session(session, signed_in[0])
        response = see_other("/signin")
    clear_cookie(response, settings, SESSION_COOKIE)
    return response
