"""What every page of the office app shares: the signed-in person, the CSRF check, the company's
time zone and currency for display, the post/redirect/get answer with its banner, and errors as
pages rather than JSON.

A page module makes its router with `page_router()`, takes `Viewer` for the person (anyone not
signed in is sent to sign-in), checks a form with `await viewer.form(request)` (403 without its
token), and answers with `render(...)` or `see_other(...)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from api.deps import SessionDep
from api.errors import AppError
from api.web.sessions import CSRF_FIELD, current_session, same_secret
from core.company import Company, load_company
from models.lifecycle import Role
from models.tables import User, WebSession

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Our own CSS and scripts only, from this host: nothing from another host, ever.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
FLASH_COOKIE = "jobline_flash"
PAGE_SCOPE_KEY = "jobline.page"
STAFF_ROLES = frozenset({Role.admin, Role.manager, Role.office, Role.sales})


class SignInNeeded(Exception):
    """Raised by `Viewer` for a request without a live session: answered with a redirect."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class FormRefused(Exception):
    """A POST without its CSRF token (or with another session's): 403, nothing changed."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


@dataclass
class SignedIn:
    """The person behind this request, their session (for its CSRF token) and the company."""

    user: User
    web_session: WebSession
    company: Company

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def is_technician(self) -> bool:
        return self.user.role == Role.technician

    async def form(self, request: Request, back: str | None = None) -> FormData:
        """The request's form, once its CSRF token is checked against this session's."""
        form = await request.form()
        if not same_secret(str(form.get(CSRF_FIELD) or ""), self.web_session.csrf_token):
            raise FormRefused(back or request.url.path)
        return form


async def _mark_page(request: Request) -> None:
    # Errors raised under a page answer as pages (see install), not as the API's JSON.
    request.scope[PAGE_SCOPE_KEY] = True


def page_router() -> APIRouter:
    return APIRouter(include_in_schema=False, dependencies=[Depends(_mark_page)])


async def signed_in_person(request: Request, session: SessionDep) -> SignedIn:
    found = await current_session(session, request)
    if found is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(back)
    web_session, user = found
    return SignedIn(user=user, web_session=web_session, company=await load_company(session))


Viewer = Annotated[SignedIn, Depends(signed_in_person)]


def render(
    request: Request,
    name: str,
    viewer: SignedIn | None = None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page from `templates/`, with the person, the company and any banner the last
    redirect left (shown once)."""
    flash = request.cookies.get(FLASH_COOKIE)
    page = templates.TemplateResponse(
        request,
        name,
        {
            "viewer": viewer,
            "company": viewer.company if viewer else None,
            "csrf_token": viewer.csrf_token if viewer else context.pop("csrf_token", ""),
            "flash": _read_flash(flash) if flash else None,
            **context,
        },
        status_code=status,
        headers=PAGE_HEADERS,
    )
    if flash:
        page.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="lax")
    return page


def _read_flash(value: str) -> dict[str, str] | None:
    try:
        banner = json.loads(value)
    except ValueError:
        return None
    if not isinstance(banner, dict):
        return None
    return {"kind": str(banner.get("kind", "success")), "text": str(banner.get("text", ""))}


def see_other(path: str, *, flash: str | None = None, kind: str = "success") -> RedirectResponse:
    """The redirect of post/redirect/get, with a banner for the next page ("Queued: …")."""
    response = RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})
    if flash:
        banner = json.dumps({"kind": kind, "text": flash[:500]})
        response.set_cookie(
            FLASH_COOKIE, banner, max_age=60, path="/", httponly=True, samesite="lax"
        )
    return response


def _error_page(request: Request, status: int, title: str, message: str, back: str) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"viewer": None, "company": None, "flash": None, "title": title, "message": message,
         "back": back},
        status_code=status,
        headers=PAGE_HEADERS,
    )  # fmt: skip


def is_page(request: Request) -> bool:
    return bool(request.scope.get(PAGE_SCOPE_KEY))


def page_error(request: Request, error: AppError) -> Response:
    """An API error raised under a page, as a page: a job another technician has is not found."""
    titles = {403: "Not allowed", 404: "Not found", 409: "Not now", 503: "Try again shortly"}
    title = titles.get(error.status_code, "Something went wrong")
    response = _error_page(request, error.status_code, title, error.message, "/jobs")
    if error.status_code == 503:
        response.headers["Retry-After"] = "5"
    return response


def install(app: Any) -> None:
    app.state.render_page_error = page_error

    @app.exception_handler(SignInNeeded)
    async def _to_sign_in(_: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(
            f"/signin?next={quote(exc.back_to, safe='')}",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )

    @app.exception_handler(FormRefused)
    async def _refused(request: Request, exc: FormRefused) -> Response:
        message = (
            "The form was missing its security token, or the token had expired. "
            "Nothing was changed."
        )
        return _error_page(request, 403, "This form could not be accepted", message, exc.back)
