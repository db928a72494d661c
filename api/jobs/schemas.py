"""The job as the API shows it (DESIGN.md §4 "The job as the API returns it")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from api.outbox.schemas import OutboxPublic
from models.communications import SmsPreview
from models.events import Email, Phone, QuoteLine, Text
from models.lifecycle import (
    Checklist,
    ClientSnapshot,
    Completion,
    Invoice,
    Milestone,
    PartOrder,
    Payment,
    Quote,
    QuoteOption,
    Schedule,
    Stage,
    SupplierRequest,
)
from models.pricing import Discount


class TimelineEntry(BaseModel):
    seq: int
    type: str
    actor: str
    actor_role: str
    at: datetime
    summary: str
    payload: dict[str, Any]


class QuoteOptionView(BaseModel):
    """One option of the quote (a quote of one has the key `quote`), priced once by the rules."""

    key: str
    name: str
    lines: list[QuoteLine]
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


class QuoteView(BaseModel):
    """The current quote. `lines` and `total` are the chosen option's (until one is chosen, the
    first's): the stable contract; `options` has every option's figures."""

    version: int
    lines: list[QuoteLine]
    total: Decimal
    options: list[QuoteOptionView]
    chosen: str | None
    # Percent, as the quote settings gave it when the quote was drafted.
    tax_rate: Decimal
    discount: Discount | None
    valid_until: date | None
    notes: str
    drafted_at: datetime | None
    sent_at: datetime | None
    sent_to: str | None
    approval_expected_at: datetime | None


class EarlierQuoteView(BaseModel):
    """A version a newer draft replaced: its options' figures."""

    version: int
    drafted_at: datetime | None
    sent_at: datetime | None
    options: list[QuoteOptionView]


class JobView(BaseModel):
    slug: str
    number: int | None
    title: str
    description: str
    source: str
    priority: str
    site_address: str
    stage: Stage
    milestone: Milestone
    waiting_on: str
    client: ClientSnapshot
    owner: str | None
    allowed_events: list[str]
    quote: QuoteView | None
    earlier_quotes: list[EarlierQuoteView] = []
    supplier_requests: list[SupplierRequest] = []
    approval_pending: bool
    contract_amount: Decimal | None
    parts: list[PartOrder]
    schedule: Schedule | None
    checklist: Checklist | None
    completion: Completion | None
    # The job's current result (Sale / No Sale): its latest revision, as `GET …/result` gives
    # it with every earlier one. Null until the job is resulted.
    result: dict[str, Any] | None
    # No result though one is due (its quote went, or it was canceled, N days ago).
    unresulted: bool = False
    invoice: Invoice | None
    payments: list[Payment]
    paid_total: Decimal
    evidence_verified_at: datetime | None
    cancel_reason: str | None
    timeline: list[TimelineEntry]
    communications: list[OutboxPublic]
    # Messages the provider may or may not have (status `unknown`): a person should check, then
    # resend them or mark them sent (POST /api/v1/outbox/{id}/resend, .../mark-sent).
    messages_in_doubt: int = 0
    next_reminder_at: datetime | None
    stuck: bool
    # The quote went unanswered through every follow-up.
    quote_stale: bool
    follow_ups_sent: int
    portal_url: str | None
    # Open until then; the office can pass the link on (null before closeout and once expired).
    portal_expires_at: datetime | None = None
    # The customer's link to the current quote version (`/q/…`) while it opens, for the office
    # to pass on; null before the quote is sent, once expired, and while a newer draft is unsent.
    quote_url: str | None = None
    quote_url_expires_at: datetime | None = None
    seq: int
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime


class JobListItem(BaseModel):
    slug: str
    number: int | None
    title: str
    client_id: int
    client_name: str
    stage: Stage
    milestone: Milestone
    owner: str | None
    assigned_tech: str | None
    priority: str
    waiting_on: str
    stuck: bool
    # Due a result and without one; the current result's type (sale / no_sale) once resulted.
    unresulted: bool = False
    result_type: str | None = None
    contract_amount: Decimal | None
    next_reminder_at: datetime | None
    stage_entered_at: datetime
    updated_at: datetime


class JobPage(BaseModel):
    items: list[JobListItem]
    total: int
    page: int
    page_size: int


class SendRequest(BaseModel):
    """The Send dialog (DESIGN.md §6 "Customer updates"). Strict: `"sms": "yes"` is a mistake."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: Text
    to_email: Email | None = None
    bcc_me: bool = False
    sms: bool = False
    sms_phone: Phone | None = None
    preview: bool = False


class EmailPreview(BaseModel):
    to: list[str]
    bcc: list[str]
    subject: str
    body: str


class SendPreview(BaseModel):
    email: EmailPreview
    sms: SmsPreview


class SendResult(BaseModel):
    messages: list[OutboxPublic]


_QuoteViewT = TypeVar("_QuoteViewT", "QuoteView", "EarlierQuoteView")


def option_view(option: QuoteOption) -> QuoteOptionView:
    t = option.totals
    return QuoteOptionView(
        key=option.key,
        name=option.name,
        lines=option.lines,
        subtotal=t.subtotal,
        discount=t.discount,
        tax=t.tax,
        total=t.total,
    )


def _view_of(view: type[_QuoteViewT], quote: Quote) -> _QuoteViewT:
    """`view` of the quote: the fields it shares with `Quote` as they are, each option priced."""
    same = {name: getattr(quote, name) for name in view.model_fields if name != "options"}
    return view(**same, options=[option_view(o) for o in quote.options])


def quote_view(quote: Quote) -> QuoteView:
    return _view_of(QuoteView, quote)


def earlier_view(quote: Quote) -> EarlierQuoteView:
    return _view_of(EarlierQuoteView, quote)
