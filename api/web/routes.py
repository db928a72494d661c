"""Sign-in, sign-out and the pages' entry points. Plain forms, post/redirect/get, no scripts.

The JSON API does not take this cookie: it keeps bearer tokens only, exactly as before, so no
API route needs a CSRF check and a page's cookie can never be replayed against `/api/v1`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import SessionDep, SettingsDep
from api.users.service import check_password
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

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Our own inline CSS only: nothing from another host, no scripts yet.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
BAD_SIGN_IN = "The username or email, or the password, is not right."


def _throttle(request: Request) -> SignInThrottle:
    app = request.app
    if not hasattr(app.state, "sign_in_throttle"):
        app.state.sign_in_throttle = SignInThrottle()
    return app.state.sign_in_throttle


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers=PAGE_HEADERS
    )


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def _csrf_refused(request: Request, back: str) -> HTMLResponse:
    message = (
        "The form was missing its security token, or the token had expired. Nothing was changed."
    )
    return _page(request, "refused.html", status=403, message=message, back=back)


@router.get("/")
async def home(request: Request, session: SessionDep) -> Response:
    signed_in = await current_session(session, request)
    return _see_other("/jobs" if signed_in else "/signin")


def _sign_in_form(
    request: Request,
    settings: Any,
    *,
    status: int = 200,
    login: str = "",
    error: str = "",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with the pre-sign-in CSRF cookie it must repeat (a new one if absent)."""
    csrf = request.cookies.get(PRESIGNIN_COOKIE) or secrets.token_urlsafe(32)
    page = _page(request, "signin.html", status, csrf_token=csrf, login=login, error=error)
    page.headers.update(headers or {})
    set_cookie(page, settings, PRESIGNIN_COOKIE, csrf, max_age=2 * 60 * 60)
    return page


@router.get("/signin")
async def sign_in_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    if await current_session(session, request):
        return _see_other("/jobs")
    return _sign_in_form(request, settings)


@router.post("/signin")
async def sign_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    if not same_secret(str(form.get(CSRF_FIELD) or ""), request.cookies.get(PRESIGNIN_COOKIE)):
        return _csrf_refused(request, "/signin")
    login = str(form.get("login") or "").strip()
    password = str(form.get("password") or "")
    keys = (account_key(login), address_key(request.client.host if request.client else None))
    throttle = _throttle(request)
    wait = throttle.wait_seconds(*keys)
    if wait:
        minutes = max(1, round(wait / 60))
        error = f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes > 1)}."
        return _sign_in_form(
            request, settings, status=429, login=login, error=error,
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    user = await check_password(session, login, password) if login and password else None
    if user is None:
        throttle.failed(*keys)
        return _sign_in_form(request, settings, status=401, login=login, error=BAD_SIGN_IN)
    throttle.succeeded(keys[0])
    token, _ = await start_session(session, user)
    response = _see_other("/jobs")
    set_cookie(response, settings, SESSION_COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
    clear_cookie(response, settings, PRESIGNIN_COOKIE)
    return response


@router.post("/signout")
async def sign_out(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    signed_in = await current_session(session, request)
    if signed_in is None:  # already ended (another tab, expiry): nothing to end
        response = _see_other("/signin")
    elif not same_secret(str(form.get(CSRF_FIELD) or ""), signed_in[0].csrf_token):
        return _csrf_refused(request, "/jobs")
    else:
        await end_session(session, signed_in[0])
        response = _see_other("/signin")
    clear_cookie(response, settings, SESSION_COOKIE)
    return response


@router.get("/jobs")
async def jobs_page(request: Request, session: SessionDep) -> Response:
    """A placeholder until the board (issue 9, item 2): who is signed in, and sign-out."""
    signed_in = await current_session(session, request)
    if signed_in is None:
        return _see_other("/signin")
    web_session, user = signed_in
    return _page(request, "jobs.html", user=user, csrf_token=web_session.csrf_token)
