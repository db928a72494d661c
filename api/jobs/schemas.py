"""The job as the API shows it (DESIGN.md §4 "The job as the API returns it")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from api.outbox.schemas import OutboxPublic
from models.communications import SmsPreview
from models.events import Email, Phone, Text
from models.lifecycle import (
    Checklist,
    ClientSnapshot,
    Completion,
    Invoice,
    Milestone,
    PartOrder,
    Payment,
    Quote,
    Schedule,
    Stage,
)


class TimelineEntry(BaseModel):
    seq: int
    type: str
    actor: str
    actor_role: str
    at: datetime
    summary: str
    payload: dict[str, Any]


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
    quote: Quote | None
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
