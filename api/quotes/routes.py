"""The customer's quote page (issue 11): `GET /q/{token}` shows one version of a job's quote,
`GET /q/{token}/quote.pdf` serves the PDF sent with it, and `POST /q/{token}` takes the answer:
approve (choosing an option, signed with a typed name) or decline (with a reason).

Built like the closeout portal (api/portal/routes.py): no bearer token, the token is the key and
opens one job's one quote version; every way a token can be wrong (malformed, unknown, expired,
made with another secret key) gets the same plain 404; nothing is cached, indexed or leaked
through a Referer; the page needs no JavaScript and fetches nothing from anywhere.

An answer is an event from the `customer` actor, sent through api/jobs/service.send_event: the
same checks and the same rules (models/lifecycle.py) as the office's events, with the version the
link was sent with (a newer draft refuses it) and the address it came from. Its idempotency key
is derived from the token and the form, so a double click records one answer. The form carries
a key only this server can make for this token, and a POST from another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from api import customer_pages
from api.admission import Admitted
from api.deps import DatabaseDep, SessionDep, SettingsDep, TemporalDep
from api.documents.routes import content_disposition
from api.errors import EventRefused, Invalid, NotFound, NotPermitted, Unavailable
from api.idempotency import Idempotency
from api.jobs import service
from api.quotes import page
from api.quotes.page import Opened, Problems
from core import settings_store
from core.company import load_company
from core.config import Settings
from core.settings_store import QUOTES
from models import events as ev
from models.lifecycle import Actor, Role
from models.quoting import QuoteSettings

router = APIRouter(tags=["quote page"])

_templates = customer_pages.templates(FilePath(__file__).resolve().parent / "templates")

CUSTOMER = Actor(username="customer", role=Role.customer)
PRIVATE_HEADERS = customer_pages.PRIVATE_HEADERS
# Its forms post back to this host.
PAGE_HEADERS = customer_pages.page_headers(form_action="'self'")
NOT_FOUND_BODY = customer_pages.not_found_body("the company that sent you the quote")
FORBIDDEN_BODY = customer_pages.plain_page(
    "Answer not accepted",
    "This answer did not come from the quote's own page, so nothing was changed. "
    "Open the link from your quote email and answer there.",
)
TokenPath = Annotated[str, Path(description="The token from the quote message's link")]
FIELDS = ("option", "signature_name", "reason")
# Refusals that name a field ("signature_name: type your full name ...") show at that field.
_FIELD_OF_MESSAGE = {"option": "option", "signature_name": "signature_name", "reason": "reason"}


def not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_BODY, status_code=404, headers=PAGE_HEADERS)


def form_key(secret_key: str, token: str) -> str:
    """The hidden key the page's forms carry: only this server can make it for this token."""
    return hmac.new(secret_key.encode(), f"quote-form:{token}".encode(), hashlib.sha256).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _same_site(request: Request, settings: Settings) -> bool:
    """Whether the browser says the form came from this host. `Sec-Fetch-Site`, which no page
    can forge, must not name another site; an `Origin` must be ours, or `null` (the page's
    `Referrer-Policy: no-referrer` makes a browser send that with its own form). A browser that
    sends neither still needs the form key, which only the page (and so the token) gives."""
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.lower() in {_origin(str(request.base_url)), _origin(settings.public_url)}


async def _render(
    session: AsyncSession,
    opened: Opened,
    settings: Settings,
    token: str,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    problems: Problems | None = None,
) -> HTMLResponse:
    company = await load_company(session)
    quote_settings = await settings_store.load(session, QUOTES, QuoteSettings)
    context = await page.context(
        session,
        opened,
        company,
        quote_settings,
        token=token,
        form_key=form_key(settings.secret_key, token),
        values=values,
        problems=problems,
    )
    html = _templates.get_template("quote.html").render(**context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@router.get(
    "/q/{token}",
    response_class=HTMLResponse,
    summary="The customer's page for one version of a job's quote",
    responses={404: {"description": "Not a valid link (the same answer for every reason)"}},
)
@router.head("/q/{token}", include_in_schema=False)
async def quote_page(session: SessionDep, settings: SettingsDep, token: TokenPath) -> Response:
    opened = await page.open_quote(session, settings.secret_key, token)
    if opened is None:
        return not_found()
    return await _render(session, opened, settings, token)


@router.get(
    "/q/{token}/quote.pdf",
    response_class=Response,
    summary="The quote PDF sent with this link's version",
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The quote PDF"},
        404: {"description": "Not a valid link, or no PDF (the same answer for both)"},
    },
)
@router.head("/q/{token}/quote.pdf", include_in_schema=False)
async def quote_pdf(session: SessionDep, settings: SettingsDep, token: TokenPath) -> Response:
    opened = await page.open_quote(session, settings.secret_key, token)
    if opened is None:
        return not_found()
    row = await page.quote_document(session, opened.job.slug, opened.link.version)
    if row is None:
        return not_found()
    return Response(
        content=row.content,
        media_type="application/pdf",
        headers={**PRIVATE_HEADERS, "Content-Disposition": content_disposition(row.filename, True)},
    )


def _answer(
    action: str, values: dict[str, str], opened: Opened, ip_address: str | None
) -> ev.QuoteApproved | ev.QuoteDeclined:
    """The event the form asks for; ValueError or ValidationError for what cannot be one."""
    version = opened.link.version
    if action == "decline":
        return ev.QuoteDeclined(
            reason=values["reason"], quote_version=version, ip_address=ip_address
        )
    option = values["option"] or None
    if option is None and len(opened.options) == 1:
        option = opened.options[0]
    return ev.QuoteApproved(
        option=option,  # type: ignore[arg-type]  # checked by the model
        signature_name=values["signature_name"] or None,
        quote_version=version,
        ip_address=ip_address,
    )


def _field_problems(action: str, values: dict[str, str], opened: Opened) -> Problems | None:
    """What the customer left out, said at its field (nothing is sent)."""
    fields: dict[str, str] = {}
    if action == "approve":
        if len(opened.options) > 1 and values["option"] not in opened.options:
            fields["option"] = "Choose one of the options to approve"
        if not values["signature_name"]:
            fields["signature_name"] = "Type your full name to sign the approval"
        elif len(values["signature_name"]) > 200:
            fields["signature_name"] = "Your name can be at most 200 characters"
    elif action == "decline":
        if not values["reason"]:
            fields["reason"] = "Tell us why you are declining, so we can help"
        elif len(values["reason"]) > 2000:
            fields["reason"] = "The reason can be at most 2000 characters"
    else:
        return Problems(summary="Choose Approve or Decline")
    if not fields:
        return None
    summary = "Your answer was not sent: " + "; ".join(fields.values())
    return Problems(summary=summary, fields=fields)


def _refused_words(opened: Opened, message: str) -> Problems:
    """A refusal by the rules (or a newer state), in the customer's words."""
    state = opened.page_state
    if state == "superseded":
        newest = opened.state.quote.version if opened.state.quote else opened.link.version
        return Problems(
            summary=f"A newer quote (version {newest}) has replaced this one, so this one can "
            "no longer be answered. Nothing was changed."
        )
    if state == "approved":
        return Problems(summary="This quote has already been approved. Nothing was changed.")
    if state == "closed":
        return Problems(summary="This job is no longer open. Nothing was changed.")
    name, _, rest = message.partition(": ")
    field = _FIELD_OF_MESSAGE.get(name)
    if field is not None and rest:
        return Problems(summary=f"Your answer was not sent: {rest}", fields={field: rest})
    return Problems(summary=f"Your answer was not sent: {message}")


def _idempotency(token: str, action: str, values: dict[str, str]) -> Idempotency:
    """One key per token and form: the same answer sent twice (a double click, a retry) is
    recorded once; a different answer is a new request, which the rules judge."""
    canonical = json.dumps([token, action, values], sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return Idempotency(key=f"quote-page-{digest[:40]}", username=CUSTOMER.username, digest=digest)


@router.post(
    "/q/{token}",
    response_class=HTMLResponse,
    summary="The customer's answer to the quote: approve (signed) or decline",
    responses={
        303: {"description": "Answer recorded: back to the page, which shows it"},
        403: {"description": "Not posted from the quote page itself; nothing changed"},
        404: {"description": "Not a valid link (the same answer for every reason)"},
        409: {"description": "The quote cannot be answered now (the page says why)"},
        422: {"description": "Something is missing (the page says what, at its field)"},
    },
)
async def answer_quote(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    admitted: Admitted,
    token: TokenPath,
) -> Response:
    opened = await page.open_quote(session, settings.secret_key, token)
    if opened is None:
        return not_found()
    form = await request.form()
    given_key = str(form.get("form_key") or "")
    if not _same_site(request, settings) or not hmac.compare_digest(
        given_key.encode(), form_key(settings.secret_key, token).encode()
    ):
        return HTMLResponse(FORBIDDEN_BODY, status_code=403, headers=PAGE_HEADERS)
    action = str(form.get("action") or "")
    values = {name: str(form.get(name) or "").strip() for name in FIELDS}

    def again(status: int, problems: Problems, shown: Opened = opened) -> Any:
        return _render(
            session, shown, settings, token, status=status, values=values, problems=problems
        )

    if opened.page_state in ("superseded", "closed"):
        return await again(409, _refused_words(opened, ""))
    problems = _field_problems(action, values, opened)
    if problems is not None:
        return await again(422, problems)
    ip_address = request.client.host if request.client else None
    try:
        event = _answer(action, values, opened, ip_address)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = str(error["loc"][0]) if error.get("loc") else ""
        field = where if where in FIELDS else ""
        words = str(error.get("msg", "not valid"))
        fields = {field: words} if field else {}
        return await again(
            422, Problems(summary=f"Your answer was not sent: {words}", fields=fields)
        )
    idem = _idempotency(token, action, values)
    slug = opened.job.slug
    try:
        await service.send_event(
            session,
            db,
            temporal,
            None,
            slug,
            event,
            idem,
            settings.api_event_timeout_s,
            actor=CUSTOMER,
        )
    except (EventRefused, Invalid, NotPermitted, NotFound) as refused:
        now = await page.open_quote(session, settings.secret_key, token)
        if now is None:
            return not_found()
        return await again(refused.status_code, _refused_words(now, refused.message), now)
    except Unavailable:
        return await again(
            503,
            Problems(
                summary="We could not confirm your answer just now. It may still be recorded: "
                "reload this page in a minute to see, and send it again if it is not."
            ),
        )
    return RedirectResponse(token, status_code=303, headers=PRIVATE_HEADERS)


@router.api_route("/q/{rest:path}", methods=["GET", "HEAD", "POST"], include_in_schema=False)
async def quote_elsewhere() -> Response:
    """Anything else under /q/ gets the page's own 404, not the API's JSON one."""
    return not_found()
