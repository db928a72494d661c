"""Communication settings, message templates and their rendering (DESIGN.md §4, §5, §6).

Pure: no I/O. The API validates and previews with these functions, the workflow reads the
intervals, and the delivery activity renders the same templates the preview showed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from models import display
from models.branding import BrandingSettings
from models.events import Email
from models.lifecycle import JobState, Stage

Purpose = Literal[
    "quote",
    "quote_follow_up",
    "appointment",
    "appointment_reminder",
    "on_my_way",
    "parts_eta",
    "customer_update",
    "payment_reminder",
    "parts_overdue",
    "closeout",
    "invoice",
    "supplier_quote_request",
    "quote_answered",
]
PURPOSES: tuple[str, ...] = Purpose.__args__  # type: ignore[attr-defined]

# Everything a template may use. An unknown name in a template is refused when it is saved.
MERGE_FIELDS: dict[str, str] = {
    "client_name": "the client's name",
    "company_name": "your company's name (settings)",
    "job_title": "the job's title",
    "job_number": "the job number (empty before approval)",
    "job_slug": "the job's reference in Jobline",
    "quote_total": "the current quote's total, with the currency symbol",
    "quote_version": "the current quote's version",
    "quote_link": "the customer's link to see, approve or decline the quote online",
    "supplier_name": "the supplier a request for quote goes to",
    "po_number": "the PO number of a request for quote",
    "supplier_lines": "the part lines of a request for quote",
    "window_start": "the appointment window's start, in the company time zone",
    "window_end": "the appointment window's end, in the company time zone",
    "window": "the appointment window, e.g. Tue 24 Nov, 14:00–17:00 EST",
    "technician": "the assigned technician's name",
    "parts_eta": "the expected date the parts arrive or the visit can be scheduled",
    "invoice_total": "the invoice total",
    "amount_due": "what is still to be paid",
    "portal_link": "the customer's closeout portal link (after completion)",
    "message": "the text typed in the Send dialog",
    "overdue_parts": "the overdue part lines (office alerts)",
}

Hours = Annotated[int, Field(ge=1, le=24 * 90)]


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_subject: Annotated[str, Field(min_length=1, max_length=300)]
    email_body: Annotated[str, Field(min_length=1, max_length=20_000)]
    sms: Annotated[str, Field(max_length=1600)] = ""


# A wall-clock time in the company's own zone ("21:00"). JSON Schema's `format: time` would ask
# for an offset; the schema says what is meant instead (what is accepted is unchanged).
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "Local wall-clock time in the company's time zone, HH:MM (seconds "
            "optional), without an offset",
            "examples": ["21:00", "08:00"],
        }
    ),
]


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalTime = time(21, 0)
    end: LocalTime = time(8, 0)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end are the same time; use null for none")
        return self


DEFAULT_TEMPLATES: dict[str, MessageTemplate] = {
    "quote": MessageTemplate(
        email_subject="Your quote from {{ company_name }}: {{ job_title }}",
        email_body=(
            "Hello {{ client_name }},\n\nThank you for calling {{ company_name }}. Your quote for "
            '"{{ job_title }}" comes to {{ quote_total }}.\n\nSee it, approve it or decline it '
            "online: {{ quote_link }}\n\nOr reply to this email to ask us anything."
            "\n\n{{ company_name }}"
        ),
        sms="{{ company_name }}: your quote for {{ job_title }} is {{ quote_total }}. "
        "Approve or decline: {{ quote_link }}",
    ),
    "quote_follow_up": MessageTemplate(
        email_subject="Following up on your quote: {{ job_title }}",
        email_body=(
            "Hello {{ client_name }},\n\nWe wanted to follow up on the quote we sent for "
            '"{{ job_title }}" ({{ quote_total }}). Is there anything we can answer for you?'
            "\n\nYou can approve or decline it online: {{ quote_link }}\n\n{{ company_name }}"
        ),
        sms="{{ company_name }}: any questions on your quote for {{ job_title }}? "
        "Approve or decline: {{ quote_link }}",
    ),
    "appointment": MessageTemplate(
        email_subject="Your appointment: {{ window }}",
        email_body=(
            "Hello {{ client_name }},\n\n{{ technician }} from {{ company_name }} will arrive "
            '{{ window }} for "{{ job_title }}".\n\n{{ company_name }}'
        ),
        sms="{{ company_name }}: {{ technician }} will arrive {{ window }} for {{ job_title }}.",
    ),
    "appointment_reminder": MessageTemplate(
        email_subject="Reminder: your appointment {{ window }}",
        email_body=(
            "Hello {{ client_name }},\n\nA reminder that {{ technician }} from {{ company_name }} "
            'will arrive {{ window }} for "{{ job_title }}".\n\n{{ company_name }}'
        ),
        sms="Reminder from {{ company_name }}: {{ technician }} arrives {{ window }}.",
    ),
    "on_my_way": MessageTemplate(
        email_subject="{{ technician }} is on the way",
        email_body=(
            "Hello {{ client_name }},\n\n{{ technician }} from {{ company_name }} is on the way "
            'for "{{ job_title }}".\n\n{{ company_name }}'
        ),
        sms="{{ company_name }}: {{ technician }} is on the way.",
    ),
    "parts_eta": MessageTemplate(
        email_subject="Your parts have arrived: {{ job_title }}",
        email_body=(
            'Hello {{ client_name }},\n\nThe parts for "{{ job_title }}" have arrived. We can '
            "schedule your visit from {{ parts_eta }} and will confirm the time with you."
            "\n\n{{ company_name }}"
        ),
        sms="{{ company_name }}: parts for {{ job_title }} are in; we'll confirm your visit soon.",
    ),
    "customer_update": MessageTemplate(
        email_subject="An update on {{ job_title }}",
        email_body="Hello {{ client_name }},\n\n{{ message }}\n\n{{ company_name }}",
        sms="{{ company_name }}: {{ message }}",
    ),
    "payment_reminder": MessageTemplate(
        email_subject="Payment reminder: {{ job_title }}",
        email_body=(
            "Hello {{ client_name }},\n\nThis is a reminder that {{ amount_due }} is due for "
            '"{{ job_title }}" (job {{ job_number }}).\n\n{{ company_name }}'
        ),
        sms="{{ company_name }}: {{ amount_due }} is due for job {{ job_number }}.",
    ),
    "closeout": MessageTemplate(
        email_subject="Your work receipt from {{ company_name }}: {{ job_title }}",
        email_body=(
            'Hello {{ client_name }},\n\n{{ technician }} has finished "{{ job_title }}". '
            "Your work receipt is attached; the full record of the visit is at "
            "{{ portal_link }}\n\nThank you for choosing {{ company_name }}."
        ),
        sms="{{ company_name }}: {{ job_title }} is done. Your receipt and job record: "
        "{{ portal_link }}",
    ),
    "invoice": MessageTemplate(
        email_subject="Invoice for {{ job_title }} (job {{ job_number }})",
        email_body=(
            "Hello {{ client_name }},\n\nPlease find attached the invoice for "
            '"{{ job_title }}" (job {{ job_number }}): {{ invoice_total }}.'
            "\n\n{{ company_name }}"
        ),
    ),
    "supplier_quote_request": MessageTemplate(
        email_subject="Request for quote {{ po_number }} from {{ company_name }}",
        email_body=(
            "Hello {{ supplier_name }},\n\nPlease quote price and lead time for the following, "
            "under PO {{ po_number }}:\n\n{{ supplier_lines }}\n\n{{ message }}\n\n"
            "Reply to this email with your quote.\n\n{{ company_name }}"
        ),
    ),
    "quote_answered": MessageTemplate(
        email_subject="{{ job_title }}: the customer answered quote {{ quote_version }} online",
        email_body=(
            '{{ message }}\n\nJob "{{ job_title }}" for {{ client_name }} '
            "(reference {{ job_slug }}, number {{ job_number }}). Quote: {{ quote_total }}."
            "\n\n{{ company_name }}"
        ),
    ),
    "parts_overdue": MessageTemplate(
        email_subject="Parts overdue on job {{ job_number }}: {{ job_title }}",
        email_body=(
            'Parts expected for "{{ job_title }}" ({{ client_name }}) have not arrived:\n'
            "{{ overdue_parts }}\n\nChase the supplier and update the customer."
        ),
    ),
}

DEFAULT_STAGE_LIMITS: dict[str, int] = {
    Stage.lead: 48,
    Stage.prospect: 72,
    Stage.quoting: 48,
    Stage.quote_sent: 24 * 14,
    Stage.saving: 24 * 7,
    Stage.approved: 72,
    Stage.awaiting_parts: 24 * 14,
    Stage.ready_to_schedule: 72,
    Stage.scheduled: 24 * 14,
    Stage.dispatched: 12,
    Stage.on_site: 24,
    Stage.completed: 48,
    Stage.invoiced: 24 * 30,
    Stage.verified: 24 * 30,
}

_templates = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=512)
def unknown_merge_fields(text: str) -> frozenset[str]:
    """Names a template uses that are not merge fields (raises ValueError on bad syntax).

    Cached: every read of the settings (each job's wait, each activity) checks every template,
    and parsing them all took ~8 ms a read; a template's text decides the answer."""
    try:
        # Finding the names compiles the template, which also checks its filters and tests
        # (TemplateAssertionError is a TemplateSyntaxError).
        names = meta.find_undeclared_variables(_templates.parse(text))
    except TemplateSyntaxError as bad:
        raise ValueError(f"template syntax error: {bad.message}") from None
    return frozenset(names) - MERGE_FIELDS.keys()


class CommunicationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_name: Annotated[str, Field(min_length=1, max_length=200)] = "Jobline"
    timezone: str = "UTC"
    quiet_hours: QuietHours | None = QuietHours()
    sms_enabled: bool = True
    default_bcc: Email | None = None
    follow_up_interval_hours: Hours = 72
    max_follow_ups: Annotated[int, Field(ge=0, le=50)] = 3
    appointment_reminder_hours: Hours = 24
    payment_reminder_days: Annotated[int, Field(ge=1, le=365)] = 7
    stage_limits_hours: dict[Stage, Hours] = Field(
        default_factory=lambda: {Stage(k): v for k, v in DEFAULT_STAGE_LIMITS.items()}
    )
    templates: dict[Purpose, MessageTemplate] = Field(
        default_factory=lambda: dict(DEFAULT_TEMPLATES)  # type: ignore[arg-type]
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like America/Chicago)"
            ) from None
        return value

    @field_validator("stage_limits_hours")
    @classmethod
    def _open_stages_only(cls, value: dict[Stage, int]) -> dict[Stage, int]:
        final = {Stage.closed, Stage.canceled}
        if final & set(value):
            raise ValueError("closed and canceled jobs are never stuck: no limit for them")
        return value

    @model_validator(mode="after")
    def _templates_use_known_fields(self) -> CommunicationSettings:
        merged: dict[str, MessageTemplate] = {**DEFAULT_TEMPLATES, **self.templates}  # type: ignore[dict-item]
        for purpose, template in merged.items():
            for part in ("email_subject", "email_body", "sms"):
                try:
                    unknown = unknown_merge_fields(getattr(template, part))
                except ValueError as bad:
                    raise ValueError(f"templates.{purpose}.{part}: {bad}") from None
                if unknown:
                    raise ValueError(
                        f"templates.{purpose}.{part}: unknown merge field(s) "
                        f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(MERGE_FIELDS))}"
                    )
        self.templates = merged  # type: ignore[assignment]
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def template(self, purpose: str) -> MessageTemplate:
        return self.templates.get(purpose) or DEFAULT_TEMPLATES[purpose]  # type: ignore[call-overload]


# --- rendering -------------------------------------------------------------------------------


class RenderedMessage(BaseModel):
    subject: str
    body: str
    sms: str


# A company has a few dozen templates, rendered over and over: compiling each one on every message
# was ~3% of the worker's CPU (py-spy, issue 12). Compiled templates are safe to share.
@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> Template:
    return _templates.from_string(text)


def render(template: MessageTemplate, context: dict[str, Any]) -> RenderedMessage:
    values = {name: context.get(name, "") for name in MERGE_FIELDS}

    def _one(text: str) -> str:
        return _compiled(text).render(**values).strip()

    return RenderedMessage(
        subject=" ".join(_one(template.email_subject).split()),
        body=_one(template.email_body),
        sms=_one(template.sms) if template.sms else "",
    )


class SmsPreview(BaseModel):
    to: str | None
    body: str
    segments: int
    encoding: Literal["GSM-7", "UCS-2"]


def sms_segments(text: str) -> tuple[int, Literal["GSM-7", "UCS-2"]]:
    """Segments a carrier bills for this text: 160/153 GSM-7 septets, or 70/67 UCS-2 units."""
    try:
        septets = len(text.encode("gsm03.38"))  # extension characters take two septets
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        return (1 if units <= 70 else math.ceil(units / 67)), "UCS-2"
    return (1 if septets <= 160 else math.ceil(septets / 153)), "GSM-7"


# The branding settings' default, for callers with no branding at hand (tests, the settings check).
_DEFAULT_SYMBOL: str = BrandingSettings.model_fields["currency_symbol"].default


def _quote_total(state: JobState, money: Callable[[object], str]) -> str:
    """One total, or each option's when the customer has a choice to make."""
    quote = state.quote
    if quote is None:
        return ""
    if len(quote.options) == 1 or quote.chosen is not None:
        return money(quote.total)
    return ", ".join(f"{o.name} {money(o.totals.total)}" for o in quote.options)


def message_context(
    state: JobState,
    settings: CommunicationSettings,
    *,
    currency_symbol: str = _DEFAULT_SYMBOL,
    company_name: str | None = None,
    technician_name: str | None = None,
    message: str = "",
    at: datetime | None = None,
    portal_link: str = "",
    quote_link: str = "",
    po_number: str | None = None,
) -> dict[str, str]:
    """The merge fields' values for one job: times in the company's time zone with the zone
    named, amounts with the currency symbol (models/display.py, as every page shows them).

    The caller passes what lives outside the communication settings: the branding's currency
    symbol, the company's one name (core/company.py) and the technician's display name."""
    zone = settings.zone
    schedule = state.schedule

    def money(amount: object) -> str:
        return display.money(amount, currency_symbol)  # type: ignore[arg-type]

    context: dict[str, str] = {
        "client_name": state.client.name,
        "company_name": company_name or settings.company_name,
        "job_title": state.title,
        "job_number": str(state.number) if state.number is not None else "",
        "job_slug": state.slug,
        "quote_total": _quote_total(state, money),
        "quote_version": str(state.quote.version) if state.quote else "",
        "invoice_total": money(state.invoice.total) if state.invoice else "",
        "amount_due": money(max(state.amount_due - state.paid_total, 0))
        if state.amount_due is not None
        else "",
        "message": message,
        "portal_link": portal_link,
        "quote_link": quote_link,
        "supplier_name": "",
        "po_number": "",
        "supplier_lines": "",
        "technician": (technician_name or schedule.technician) if schedule else "",
        "parts_eta": display.day(at or datetime.now(zone), zone),
        "overdue_parts": "\n".join(
            f"- {p.line.quantity} x {p.line.sku} ({p.line.description}) from {p.line.supplier}, "
            f"PO {p.line.po_number}, expected {display.day(p.line.expected_delivery, zone)}"
            for p in state.outstanding_parts
        ),
    }
    request = next((r for r in state.supplier_requests if r.po_number == po_number), None)
    if request is not None:
        context["supplier_name"] = request.supplier
        context["po_number"] = request.po_number
        context["supplier_lines"] = "\n".join(
            f"- {line.quantity.normalize():f} x {line.description}"
            + (f" (SKU {line.sku})" if line.sku else "")
            for line in request.lines
        )
        if request.notes and not message:
            context["message"] = request.notes
    if schedule:
        context["window_start"] = display.when(schedule.window_start, zone)
        context["window_end"] = display.when(schedule.window_end, zone)
        context["window"] = display.window(schedule.window_start, schedule.window_end, zone)
    return context


def customer_recipients(
    state: JobState,
    settings: CommunicationSettings,
    *,
    to_email: str | None = None,
    bcc_email: str | None = None,
) -> tuple[list[str], list[str]]:
    """(to, bcc) of a customer email: the address given or the client's, the company's default
    Bcc, and the sender's own copy when asked for."""
    address = to_email or state.client.email
    to = [address] if address else []
    bcc = [a for a in (settings.default_bcc, bcc_email) if a and a not in to]
    return to, sorted(set(bcc))
