"""Settings pages (issue 9 item 4; UI.md §2 "Settings"): `/settings` and its sections,
communications (intervals, limits and the message templates with a sample preview), closeout
(channel, portal link, webhook and the receipt-field editor) and branding (the company's one
identity: its name and time zone live with the communication settings, the rest with branding).

Everyone may read them; only the API's settings writers (api/settings/service.py) may change
them, through the same service functions and models the JSON API uses. A refused form comes back
with every problem at its field and all that was typed kept; a saved one redirects (PRG) with
"Applies from the next message".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import available_timezones

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from api.deps import SessionDep, SettingsDep
from api.errors import AppError, TooLarge
from api.settings import service
from api.web.field_rows import TYPE_NAMES, FieldRows, form_text
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from core import documents, settings_store
from core.company import Company
from core.settings_store import CLOSEOUT, COMMUNICATIONS, QUOTES
from models.branding import BrandingSettings
from models.closeout import FIELD_TYPES, CloseoutSettings
from models.communications import (
    DEFAULT_STAGE_LIMITS,
    MERGE_FIELDS,
    PURPOSES,
    CommunicationSettings,
    sms_segments,
)
from models.communications import (
    render as render_template,
)
from models.quoting import QuoteSettings

router = page_router()

APPLIES = "Saved. Applies from the next message."
READ_ONLY = "Only an admin can change these settings."

# The side list: (path, name, what it controls). The price book comes later.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "/settings/communications",
        "Communications",
        "When reminders and follow-ups go, quiet hours, and the words of every message.",
    ),
    (
        "/settings/closeout",
        "Closeout",
        "How a finished job is closed: the receipt fields technicians fill in, the portal "
        "link and the webhook.",
    ),
    (
        "/settings/quotes",
        "Quotes",
        "The sales tax rate quotes are drafted with, what documents call it, and how long a "
        "customer's quote link opens.",
    ),
    (
        "/settings/resulting",
        "Resulting",
        "Sale and No Sale: the fields people fill in when they result a job, the layout of the "
        "result document and email, who gets it, and a dry run to try them.",
    ),
    (
        "/settings/branding",
        "Branding",
        "The company's one identity: name, time zone, contact details, colour, logo and "
        "currency, on every message, document and page.",
    ),
    ("/settings/users", "Users", "Who signs in, their roles, invitations and tokens."),
)

PURPOSE_NAMES: dict[str, str] = {
    "quote": "Quote sent",
    "quote_follow_up": "Quote follow-up",
    "appointment": "Appointment booked",
    "appointment_reminder": "Appointment reminder",
    "on_my_way": "Technician on the way",
    "parts_eta": "Parts arrived",
    "customer_update": "Customer update (the Send dialog)",
    "payment_reminder": "Payment reminder",
    "parts_overdue": "Parts overdue (office alert)",
    "closeout": "Job finished (closeout)",
    "invoice": "Invoice sent",
}
PARTS: tuple[tuple[str, str], ...] = (
    ("email_subject", "Email subject"),
    ("email_body", "Email body"),
    ("sms", "SMS"),
)
# The closeout page's receipt-field editor (api/web/field_rows.py, shared with resulting).
RECEIPT_ROWS = FieldRows(prefix="rf", count_name="rows", blank_rows=2)
ZONES: tuple[str, ...] = tuple(sorted(available_timezones()))

Problems = dict[str, str]


# --- shared ---------------------------------------------------------------------------------


# Browsers send a textarea's new lines as CRLF; templates and addresses keep plain LF.
_text = form_text


def problem_text(text: str) -> str:
    text = text.removeprefix("Value error, ")
    if "_" in text.split(" ", 1)[0]:  # it starts with a field's name: kept as it is spelled
        return text
    return text[:1].upper() + text[1:]


def _problems(error: ValidationError, locate: Callable[[tuple[Any, ...], str], str]) -> Problems:
    found: Problems = {}
    for e in error.errors():
        message = str(e.get("msg", "not valid")).removeprefix("Value error, ")
        field = locate(tuple(e.get("loc", ())), message)
        found.setdefault(field, problem_text(message))
    return found


def _section(request: Request) -> list[dict[str, Any]]:
    here = request.url.path
    return [
        {"path": path, "name": name, "about": about, "current": here == path}
        for path, name, about in SECTIONS
    ]


def settings_page(
    request: Request,
    name: str,
    viewer: SignedIn,
    *,
    problems: Problems | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    return render(
        request,
        name,
        viewer,
        status=status,
        sections=_section(request),
        may_change=service.may_change(viewer.user),
        read_only_reason=READ_ONLY,
        problems=problems or {},
        **context,
    )


def _prefixed(message: str, known: Iterable[str]) -> str | None:
    """The field a message names first ("webhook_url: ...", "webhook_secret is ..."), if one of
    `known`."""
    head = re.split(r"[: ]", message.strip(), maxsplit=1)[0]
    return head if head in set(known) else None


# --- /settings ----------------------------------------------------------------------------------


@router.get("/settings")
async def settings_index(request: Request, viewer: Viewer) -> Response:
    return settings_page(request, "settings_index.html", viewer)


# --- communications -----------------------------------------------------------------------------

_NUMBERS = (
    "follow_up_interval_hours",
    "max_follow_ups",
    "appointment_reminder_hours",
    "payment_reminder_days",
)


def _comms_values(settings: CommunicationSettings) -> dict[str, str]:
    values: dict[str, str] = {
        "quiet_off": "" if settings.quiet_hours else "on",
        "quiet_start": settings.quiet_hours.start.strftime("%H:%M") if settings.quiet_hours else "",
        "quiet_end": settings.quiet_hours.end.strftime("%H:%M") if settings.quiet_hours else "",
        "sms_enabled": "on" if settings.sms_enabled else "",
        "default_bcc": settings.default_bcc or "",
        **{name: str(getattr(settings, name)) for name in _NUMBERS},
    }
    for stage in DEFAULT_STAGE_LIMITS:
        limit = settings.stage_limits_hours.get(stage)  # type: ignore[call-overload]
        values[f"limit-{stage}"] = "" if limit is None else str(limit)
    for purpose in PURPOSES:
        template = settings.template(purpose)
        for part, _ in PARTS:
            values[f"tpl-{purpose}-{part}"] = getattr(template, part)
    return values


def _comms_form_values(form: FormData) -> dict[str, str]:
    names = ["quiet_off", "quiet_start", "quiet_end", "sms_enabled", "default_bcc", *_NUMBERS]
    names += [f"limit-{stage}" for stage in DEFAULT_STAGE_LIMITS]
    names += [f"tpl-{p}-{part}" for p in PURPOSES for part, _ in PARTS]
    return {name: _text(form, name) for name in names}


def _comms_document(values: dict[str, str], current: CommunicationSettings) -> dict[str, Any]:
    quiet = None
    if not values["quiet_off"]:
        quiet = {"start": values["quiet_start"].strip(), "end": values["quiet_end"].strip()}
    return {
        # The company's identity is edited on the branding page; kept as it is here.
        "company_name": current.company_name,
        "timezone": current.timezone,
        "quiet_hours": quiet,
        "sms_enabled": bool(values["sms_enabled"]),
        "default_bcc": values["default_bcc"].strip() or None,
        **{name: values[name].strip() for name in _NUMBERS},
        "stage_limits_hours": {
            stage: values[f"limit-{stage}"].strip()
            for stage in DEFAULT_STAGE_LIMITS
            if values[f"limit-{stage}"].strip()
        },
        "templates": {p: {part: values[f"tpl-{p}-{part}"] for part, _ in PARTS} for p in PURPOSES},
    }


_TEMPLATE_AT = re.compile(r"^templates\.([a-z_]+)\.(email_subject|email_body|sms):\s*(.*)$", re.S)


def _comms_field(loc: tuple[Any, ...], message: str) -> str:
    if found := _TEMPLATE_AT.match(message):
        return f"tpl-{found.group(1)}-{found.group(2)}"
    if not loc:
        return "templates"
    head = str(loc[0])
    if head == "quiet_hours":
        return "quiet_end" if len(loc) > 1 and loc[1] == "end" else "quiet_start"
    if head == "stage_limits_hours" and len(loc) > 1:
        return f"limit-{str(loc[1]).split('.')[0]}"
    if head == "templates" and len(loc) > 2:
        return f"tpl-{loc[1]}-{loc[2]}"
    return head


def _without_prefix(problems: Problems) -> Problems:
    # "templates.quote.sms: unknown merge field(s) ..." reads at its field without the path.
    return {
        field: (found.group(3)[:1].upper() + found.group(3)[1:])
        if (found := _TEMPLATE_AT.match(message))
        else message
        for field, message in problems.items()
    }


def _previews(settings: CommunicationSettings, company: Company) -> dict[str, dict[str, Any]]:
    sample = service.sample_context(settings, company)
    previews: dict[str, dict[str, Any]] = {}
    for purpose in PURPOSES:
        rendered = render_template(settings.template(purpose), sample)
        segments, encoding = sms_segments(rendered.sms) if rendered.sms else (0, "GSM-7")
        previews[purpose] = {
            "subject": rendered.subject,
            "body": rendered.body,
            "sms": rendered.sms,
            "segments": segments,
            "encoding": encoding,
        }
    return previews


def _comms_page(
    request: Request,
    viewer: SignedIn,
    values: dict[str, str],
    current: CommunicationSettings,
    *,
    problems: Problems | None = None,
    status: int = 200,
    previews: dict[str, dict[str, Any]] | None = None,
) -> Response:
    return settings_page(
        request,
        "settings_communications.html",
        viewer,
        problems=problems,
        status=status,
        values=values,
        current=current,
        purposes=[(p, PURPOSE_NAMES.get(p, p)) for p in PURPOSES],
        parts=PARTS,
        stages=list(DEFAULT_STAGE_LIMITS),
        merge_fields=MERGE_FIELDS,
        previews=previews,
    )


@router.get("/settings/communications")
async def communications_page(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    current = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    return _comms_page(request, viewer, _comms_values(current), current)


@router.post("/settings/communications")
async def communications_save(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    form = await viewer.form(request)
    service.check_may_change(viewer.user)
    current = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    values = _comms_form_values(form)
    try:
        settings = CommunicationSettings.model_validate(_comms_document(values, current))
        service.check_templates_render(settings)
    except ValidationError as error:
        problems = _without_prefix(_problems(error, _comms_field))
        return _comms_page(request, viewer, values, current, problems=problems, status=422)
    except AppError as error:
        problems = _without_prefix({_comms_field((), error.message): error.message})
        return _comms_page(request, viewer, values, current, problems=problems, status=422)
    if form.get("action") == "preview":
        # Rendered with a sample job; nothing saved, nothing sent.
        previews = _previews(settings, viewer.company)
        return _comms_page(request, viewer, values, current, previews=previews)
    await service.save_communications(session, settings, viewer.user.username)
    return see_other("/settings/communications", flash=APPLIES)


# --- closeout -----------------------------------------------------------------------------------


def _closeout_values(settings: CloseoutSettings) -> tuple[dict[str, str], list[dict[str, str]]]:
    values = {
        "channel": settings.channel,
        "portal_link_days": str(settings.portal_link_days),
        "webhook_url": settings.webhook_url or "",
        "webhook_secret_remove": "",
    }
    return values, RECEIPT_ROWS.from_settings(settings.receipt_fields)


def _closeout_form_values(form: FormData) -> tuple[dict[str, str], list[dict[str, str]]]:
    names = ("channel", "portal_link_days", "webhook_url", "webhook_secret_remove")
    values = {name: _text(form, name) for name in names}
    return values, RECEIPT_ROWS.from_form(form)


def _closeout_page(
    request: Request,
    viewer: SignedIn,
    values: dict[str, str],
    rows: list[dict[str, str]],
    stored: CloseoutSettings,
    *,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    return settings_page(
        request,
        "settings_closeout.html",
        viewer,
        problems=problems,
        status=status,
        values=values,
        rows=RECEIPT_ROWS.for_template(rows),
        secret_set=bool(stored.webhook_secret),
        types=[(t, TYPE_NAMES.get(t, t)) for t in FIELD_TYPES],
    )


@router.get("/settings/closeout")
async def closeout_page(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    stored = await settings_store.load(session, CLOSEOUT, CloseoutSettings)
    values, rows = _closeout_values(stored)
    return _closeout_page(request, viewer, values, rows, stored)


@router.post("/settings/closeout")
async def closeout_save(
    request: Request, viewer: Viewer, session: SessionDep, app_settings: SettingsDep
) -> Response:
    form = await viewer.form(request)
    service.check_may_change(viewer.user)
    stored = await settings_store.load(session, CLOSEOUT, CloseoutSettings)
    values, rows = _closeout_form_values(form)
    secret = _text(form, "webhook_secret")

    if form.get("action") == "add":
        # One more blank row, at the end; nothing saved.
        return _closeout_page(request, viewer, values, RECEIPT_ROWS.with_blank_row(rows), stored)

    kept = RECEIPT_ROWS.kept(rows)
    data: dict[str, Any] = {
        "channel": values["channel"],
        "portal_link_days": values["portal_link_days"].strip(),
        "webhook_url": values["webhook_url"].strip() or None,
        "receipt_fields": RECEIPT_ROWS.documents(kept),
    }
    if values["webhook_secret_remove"]:
        data["webhook_secret"] = None
    elif secret:
        data["webhook_secret"] = secret

    def field_of(loc: tuple[Any, ...], message: str) -> str:
        if loc[:1] == ("receipt_fields",):
            return RECEIPT_ROWS.problem_at(kept, loc[1:], message) or "receipt-fields"
        if loc:
            return str(loc[0])
        return _prefixed(message, ("webhook_secret", "webhook_url")) or "webhook_url"

    problems: Problems = {}
    settings: CloseoutSettings | None = None
    try:
        settings = await service.closeout_document(
            session, data, keep_secret="webhook_secret" not in data
        )
    except ValidationError as error:
        problems = _problems(error, field_of)
    try:
        service.check_webhook_url(
            data["webhook_url"], allow_private=app_settings.webhook_allow_private
        )
    except AppError as error:
        problems.setdefault(
            "webhook_url", problem_text(error.message.removeprefix("webhook_url: "))
        )
    if problems or settings is None:
        return _closeout_page(request, viewer, values, rows, stored, problems=problems, status=422)
    await settings_store.save(session, CLOSEOUT, settings, viewer.user.username)
    return see_other("/settings/closeout", flash="Saved. Applies to jobs completed from now on.")


# --- quotes ---------------------------------------------------------------------------------------

_QUOTE_FIELDS = ("tax_rate", "tax_label", "link_days")


def _quote_values(settings: QuoteSettings) -> dict[str, str]:
    return {
        "tax_rate": f"{settings.tax_rate.normalize():f}",
        "tax_label": settings.tax_label,
        "link_days": str(settings.link_days),
    }


@router.get("/settings/quotes")
async def quotes_page(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    stored = await settings_store.load(session, QUOTES, QuoteSettings)
    return settings_page(request, "settings_quotes.html", viewer, values=_quote_values(stored))


@router.post("/settings/quotes")
async def quotes_save(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    form = await viewer.form(request)
    service.check_may_change(viewer.user)
    values = {name: _text(form, name).strip() for name in _QUOTE_FIELDS}
    data = {**values, "tax_rate": values["tax_rate"].rstrip("%").strip() or "0"}
    try:
        settings = QuoteSettings.model_validate(data)
    except ValidationError as error:
        problems = _problems(error, lambda loc, _: str(loc[0]) if loc else "tax_rate")
        return settings_page(
            request, "settings_quotes.html", viewer, problems=problems, status=422, values=values
        )
    await settings_store.save(session, QUOTES, settings, viewer.user.username)
    return see_other(
        "/settings/quotes", flash="Saved. Applies to quotes drafted and sent from now on."
    )


# --- branding -----------------------------------------------------------------------------------

_BRANDING_TEXT = (
    "company_name",
    "address",
    "phone",
    "email",
    "website",
    "primary_color",
    "primary_color_picker",
    "currency_symbol",
    "paper_size",
    "footer",
    "timezone",
    "logo_remove",
)


def _branding_values(view: BrandingSettings, comms: CommunicationSettings) -> dict[str, str]:
    return {
        "company_name": view.company_name or comms.company_name,
        "address": view.address,
        "phone": view.phone,
        "email": view.email or "",
        "website": view.website,
        "primary_color": view.primary_color,
        "primary_color_picker": view.primary_color,
        "currency_symbol": view.currency_symbol,
        "paper_size": view.paper_size,
        "footer": view.footer,
        "timezone": comms.timezone,
        "logo_remove": "",
    }


async def _logo(session: SessionDep, document_id: str | None) -> str | None:
    """The current logo as a data: URL for the page (CSP allows images from data: only)."""
    if document_id is None:
        return None
    document = await documents.load(session, document_id)
    if document is None:
        return None
    return f"data:{document.content_type};base64,{base64.b64encode(document.content).decode()}"


async def _branding_page(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    values: dict[str, str],
    *,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    stored = await service.branding_view(session)
    return settings_page(
        request,
        "settings_branding.html",
        viewer,
        problems=problems,
        status=status,
        values=values,
        picker=values["primary_color"]
        if re.fullmatch(r"#[0-9a-fA-F]{6}", values["primary_color"])
        else stored.primary_color,
        logo=await _logo(session, stored.logo_document_id),
        zones=ZONES,
        max_logo=service.MAX_LOGO_BYTES,
    )


@router.get("/settings/branding")
async def branding_page(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    values = _branding_values(await service.branding_view(session), comms)
    return await _branding_page(request, viewer, session, values)


# The form carries the logo: the same body limit as the API's logo upload.
@router.post("/settings/branding", max_body_size=service.LOGO_BODY_BYTES)
async def branding_save(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    form = await viewer.form(request)
    service.check_may_change(viewer.user)
    stored = await service.branding_view(session)
    comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    values = {name: _text(form, name) for name in _BRANDING_TEXT}

    # The text field is what counts; the colour picker, when only it was changed.
    colour = values["primary_color"].strip()
    picked = values["primary_color_picker"].strip()
    if colour.lower() == stored.primary_color and picked and picked.lower() != colour.lower():
        colour = values["primary_color"] = picked

    problems: Problems = {}
    name = values["company_name"].strip()
    if not name:
        problems["company_name"] = "Enter the company's name"
    zone = values["timezone"].strip()
    try:
        CommunicationSettings.model_validate(
            {**comms.model_dump(), "company_name": name or comms.company_name, "timezone": zone}
        )
    except ValidationError as error:
        problems |= _problems(error, lambda loc, _: str(loc[0]) if loc else "timezone")
    branding: BrandingSettings | None = None
    try:
        branding = BrandingSettings.model_validate(
            {
                "company_name": name or None,
                "address": values["address"],
                "phone": values["phone"],
                "email": values["email"].strip() or None,
                "website": values["website"],
                "primary_color": colour,
                "logo_document_id": None if values["logo_remove"] else stored.logo_document_id,
                "currency_symbol": values["currency_symbol"].strip(),
                "paper_size": values["paper_size"],
                "footer": values["footer"],
            }
        )
    except ValidationError as error:
        for field, message in _problems(
            error, lambda loc, _: str(loc[0]) if loc else "logo"
        ).items():
            problems.setdefault(field, message)

    upload = form.get("logo")
    content = b""
    status = 422
    if isinstance(upload, UploadFile) and (upload.filename or upload.size):
        content = await upload.read(service.MAX_LOGO_BYTES + 1)
        try:
            service.check_logo(content)
        except AppError as error:
            problems["logo"] = problem_text(error.message.removeprefix("file: "))
            if isinstance(error, TooLarge):
                status = 413
    if problems or branding is None:
        return await _branding_page(
            request, viewer, session, values, problems=problems, status=status
        )
    if content:
        branding.logo_document_id = await service.store_logo(session, content)
    await service.save_branding(session, branding, viewer.user.username, timezone=zone)
    return see_other("/settings/branding", flash=APPLIES)
