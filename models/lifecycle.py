"""The job lifecycle rules (DESIGN.md §4), pure and free of I/O.

`apply(state, event, actor, at)` either returns the job's next state or a `Refusal` that names the
reason and the events allowed now. The workflow wraps these rules with timers and activities; the
API and UI show `allowed_events` from the same rules, so what a person is offered is exactly what
the workflow will accept.

Order of checks, so that refusals say the most useful thing first:
1. a final job refuses everything (409 `event_not_allowed`);
2. the actor's role, or for owner/technician-only events their identity (403 `role_not_allowed`);
3. the stage (409 `event_not_allowed`);
4. preconditions on the job (409 `event_not_allowed`, e.g. dispatch before the checklist);
5. the payload against the job (422 `invalid_event`, e.g. platinum protocol not acknowledged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from models import events as ev
from models import pricing
from models.pricing import SINGLE, Discount, OptionKey, Totals


class Stage(StrEnum):
    lead = "lead"
    prospect = "prospect"
    quoting = "quoting"
    quote_sent = "quote_sent"
    saving = "saving"
    approved = "approved"
    awaiting_parts = "awaiting_parts"
    ready_to_schedule = "ready_to_schedule"
    scheduled = "scheduled"
    dispatched = "dispatched"
    on_site = "on_site"
    completed = "completed"
    invoiced = "invoiced"
    verified = "verified"
    closed = "closed"
    canceled = "canceled"


class Milestone(StrEnum):
    lead = "Lead"
    prospect = "Prospect"
    approved = "Approved"
    completed = "Completed"
    invoiced = "Invoiced"
    closed = "Closed"
    canceled = "Canceled"


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    office = "office"
    sales = "sales"
    technician = "technician"
    # Not a person: a supplier feed or other system sending Signals to the workflow.
    integration = "integration"
    # Jobline itself (reminders and flags); no rule lets it send an event.
    system = "system"
    # The job's customer, from their quote's link (`/q/…`): approves or declines the quote.
    customer = "customer"


USER_ROLES: tuple[Role, ...] = (Role.admin, Role.manager, Role.office, Role.sales, Role.technician)

MILESTONE_OF: dict[Stage, Milestone] = {
    Stage.lead: Milestone.lead,
    Stage.prospect: Milestone.prospect,
    Stage.quoting: Milestone.prospect,
    Stage.quote_sent: Milestone.prospect,
    Stage.saving: Milestone.prospect,
    Stage.approved: Milestone.approved,
    Stage.awaiting_parts: Milestone.approved,
    Stage.ready_to_schedule: Milestone.approved,
    Stage.scheduled: Milestone.approved,
    Stage.dispatched: Milestone.approved,
    Stage.on_site: Milestone.approved,
    Stage.completed: Milestone.completed,
    Stage.invoiced: Milestone.invoiced,
    Stage.verified: Milestone.invoiced,
    Stage.closed: Milestone.closed,
    Stage.canceled: Milestone.canceled,
}

FINAL_STAGES = frozenset({Stage.closed, Stage.canceled})
OPEN_STAGES = frozenset(Stage) - FINAL_STAGES
BEFORE_COMPLETION = frozenset(
    {
        Stage.lead,
        Stage.prospect,
        Stage.quoting,
        Stage.quote_sent,
        Stage.saving,
        Stage.approved,
        Stage.awaiting_parts,
        Stage.ready_to_schedule,
        Stage.scheduled,
        Stage.dispatched,
        Stage.on_site,
    }
)
AFTER_COMPLETION = frozenset({Stage.completed, Stage.invoiced, Stage.verified})


# --- the job's state -------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientSnapshot(_Model):
    """What the job needs to know about its client; contact_updated keeps it current."""

    id: int
    name: str
    tier: Literal["standard", "platinum", "gov"] = "standard"
    email: str | None = None
    phone: str | None = None
    billing_email: str | None = None


class Actor(_Model):
    username: str
    role: Role


class QuoteOption(_Model):
    """One option of a quote, priced (models.pricing): the figures every document prints."""

    key: OptionKey
    name: str
    lines: list[ev.QuoteLine]
    totals: Totals


class Quote(_Model):
    version: int
    # The chosen option's lines and total (tax and discount included); until the customer
    # chooses, the first option's. A quote of one option has only that one.
    lines: list[ev.QuoteLine]
    total: Decimal
    options: list[QuoteOption] = []
    chosen: OptionKey | None = None
    tax_rate: Decimal = Decimal("0")
    discount: Discount | None = None
    valid_until: date | None = None
    notes: str = ""
    drafted_at: datetime | None = None
    sent_at: datetime | None = None
    sent_to: str | None = None
    approval_expected_at: datetime | None = None

    def model_post_init(self, context: object) -> None:
        # Quotes from before options and tax (stored states, replayed histories): one option.
        if not self.options:
            option = QuoteOption(
                key=SINGLE, name="Quote", lines=self.lines, totals=pricing.totals(self.lines)
            )
            object.__setattr__(self, "options", [option])

    def option(self, key: str | None) -> QuoteOption | None:
        return next((o for o in self.options if o.key == key), None)

    @property
    def totals(self) -> Totals:
        """The figures of the chosen option (until one is chosen, the first)."""
        return (self.option(self.chosen) or self.options[0]).totals


class PartOrder(_Model):
    line: ev.PartLine
    ordered_at: datetime
    delivered_at: datetime | None = None


class Schedule(_Model):
    technician: str
    window_start: datetime
    window_end: datetime
    scheduled_at: datetime | None = None


class Checklist(_Model):
    parts_verified: bool
    check_in_phone: str
    pricing_discussion: Literal["allowed", "not_allowed"]
    platinum_protocol_acknowledged: bool
    completed_by: str
    completed_at: datetime


class Completion(_Model):
    work_performed: str
    notes: str = ""
    parts_used: list[ev.PartUsed] = []
    fields: dict[str, object] = {}
    completed_by: str
    completed_at: datetime


class Invoice(_Model):
    lines: list[ev.QuoteLine]
    total: Decimal
    tax_rate: Decimal = Decimal("0")
    discount: Discount | None = None
    override_reason: str | None = None
    billing_email: str | None = None
    po_number: str | None = None
    submitted_to_client_portal: bool = False
    sent_at: datetime

    @property
    def totals(self) -> Totals:
        return pricing.totals(self.lines, self.tax_rate, self.discount)


class SupplierRequest(_Model):
    """A request for quote emailed to a supplier; `answered_at` once their answer is logged."""

    supplier: str
    supplier_email: str
    po_number: str
    lines: list[ev.SupplierLine]
    notes: str = ""
    requested_by: str
    requested_at: datetime
    answered_at: datetime | None = None


class Payment(_Model):
    amount: Decimal
    method: str
    paid_on_site: bool = False
    recorded_by: str
    recorded_at: datetime


class Reminders(BaseModel):
    """What has been reminded, per subject. Kept by the workflow (models.reminders)."""

    follow_ups_for: datetime | None = None  # the quote's sent_at the count below belongs to
    follow_ups_sent: int = 0
    last_follow_up_at: datetime | None = None
    quote_stale: bool = False
    appointment_reminded_for: datetime | None = None  # window_start
    parts_overdue_skus: list[str] = []
    payment_reminders_for: datetime | None = None  # the invoice's sent_at
    payment_reminders_sent: int = 0
    last_payment_reminder_at: datetime | None = None
    stuck_since: datetime | None = None  # the stage_entered_at of the stage that got stuck


class JobState(_Model):
    """Everything the workflow knows about one job. `stage is None` until `job_created`."""

    slug: str
    client: ClientSnapshot
    stage: Stage | None = None
    seq: int = 0
    created_at: datetime | None = None
    stage_entered_at: datetime | None = None
    title: str = ""
    description: str = ""
    source: str = ""
    priority: Literal["standard", "emergency"] = "standard"
    site_address: str = ""
    owner: str | None = None
    number: int | None = None
    quote: Quote | None = None
    # Versions a newer draft replaced, oldest first (what was sent stays readable).
    earlier_quotes: list[Quote] = []
    supplier_requests: list[SupplierRequest] = []
    approval_pending: bool = False
    contract_amount: Decimal | None = None
    parts: list[PartOrder] = []
    schedule: Schedule | None = None
    checklist: Checklist | None = None
    completion: Completion | None = None
    incomplete_visits: int = 0
    invoice: Invoice | None = None
    evidence_verified_at: datetime | None = None
    payments: list[Payment] = []
    cancel_reason: str | None = None
    canceled_from: Stage | None = None
    reminders: Reminders = Reminders()

    @property
    def milestone(self) -> Milestone | None:
        return MILESTONE_OF[self.stage] if self.stage else None

    @property
    def paid_total(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0"))

    @property
    def amount_due(self) -> Decimal | None:
        """The invoice total once invoiced, else the approved contract amount, else unknown."""
        if self.invoice is not None:
            return self.invoice.total
        return self.contract_amount

    @property
    def paid_in_full(self) -> bool:
        due = self.amount_due
        return due is not None and bool(self.payments) and self.paid_total >= due

    @property
    def outstanding_parts(self) -> list[PartOrder]:
        return [p for p in self.parts if p.delivered_at is None]

    @property
    def waiting_on(self) -> str:
        """Who the job waits on now, for ops (search attribute `WaitingOn`)."""
        match self.stage:
            case None | Stage.closed | Stage.canceled:
                return "nobody"
            case Stage.lead:
                return "office" if self.owner is None else "owner"
            case Stage.quote_sent:
                return "manager" if self.approval_pending else "customer"
            case Stage.saving:
                return "manager" if self.approval_pending else "office"
            case Stage.awaiting_parts:
                # After a visit with the wrong parts, the office has to order before anyone ships.
                return "supplier" if self.outstanding_parts else "office"
            case Stage.scheduled:
                return "office" if self.checklist is None else "technician"
            case Stage.dispatched | Stage.on_site:
                return "technician"
            case Stage.invoiced:
                return "manager"
            case Stage.verified:
                return "customer"
            case _:
                return "office"


# --- outcomes --------------------------------------------------------------------------------

RefusalCode = Literal["role_not_allowed", "event_not_allowed", "invalid_event"]


class Refusal(_Model):
    code: RefusalCode
    message: str
    stage: Stage | None
    allowed_events: list[str]


@dataclass(frozen=True)
class Accepted:
    state: JobState
    # Approval (or an emergency) makes the job a sale: the workflow allocates its number.
    assign_number: bool = False


class _Invalid(Exception):
    """Raised by a transition when the payload does not fit the job (422)."""


# --- the rules table -------------------------------------------------------------------------

Transition = Callable[[JobState, ev._Event, Actor, datetime], JobState]
Guard = Callable[[JobState], str | None]
ActorCheck = Callable[[JobState, Actor], str | None]

STAFF = frozenset(USER_ROLES)
OFFICE = frozenset({Role.office})
OFFICE_MANAGER = frozenset({Role.office, Role.manager})
OFFICE_SALES_MANAGER = frozenset({Role.office, Role.sales, Role.manager})
MANAGER = frozenset({Role.manager})
CUSTOMER = frozenset({Role.customer})


@dataclass(frozen=True)
class Rule:
    from_stages: frozenset[Stage | None]
    roles: frozenset[Role]
    transition: Transition
    guard: Guard | None = None
    actor_check: ActorCheck | None = None
    # Shown in the 403 when a role may not send the event: what that role should do instead.
    instead: dict[Role, str] | None = None


def _enter(state: JobState, stage: Stage, at: datetime, **changes: object) -> JobState:
    if stage != state.stage:
        changes["stage_entered_at"] = at
    return state.model_copy(update={"stage": stage, **changes})


def _update(state: JobState, **changes: object) -> JobState:
    return state.model_copy(update=changes)


def _priced_options(e: ev.QuoteDrafted, tax_rate: Decimal) -> list[QuoteOption]:
    drafts = [(SINGLE, "Quote", list(e.lines))] if e.lines is not None else []
    for key, option in zip(pricing.OPTION_KEYS, e.options or [], strict=False):
        drafts.append((key, option.name, list(option.lines)))
    return [
        QuoteOption(
            key=key, name=name, lines=lines, totals=pricing.totals(lines, tax_rate, e.discount)
        )
        for key, name, lines in drafts
    ]


# transitions: (state, event, actor, at) -> new state; raise _Invalid for a payload that cannot fit


def _job_created(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.JobCreated)
    if e.client_id != s.client.id:
        raise _Invalid(f"client_id {e.client_id} does not match this job's client {s.client.id}")
    return _enter(
        s,
        Stage.lead,
        at,
        created_at=at,
        title=e.title,
        description=e.description,
        source=e.source,
        priority=e.priority,
        site_address=e.site_address,
        # Sales own the leads they bring in; anyone else's lead waits for an owner.
        owner=a.username if a.role == Role.sales else None,
    )


def _owner_assigned(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.OwnerAssigned)
    return _update(s, owner=e.owner)


def _lead_qualified(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _enter(s, Stage.prospect, at)


def _quote_drafted(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.QuoteDrafted)
    version = (s.quote.version if s.quote else 0) + 1
    tax_rate = e.tax_rate if e.tax_rate is not None else Decimal("0")
    options = _priced_options(e, tax_rate)
    quote = Quote(
        version=version,
        lines=options[0].lines,
        total=options[0].totals.total,
        options=options,
        tax_rate=tax_rate,
        discount=e.discount,
        valid_until=e.valid_until,
        notes=e.notes,
        drafted_at=at,
    )
    earlier = [*s.earlier_quotes, s.quote] if s.quote is not None else s.earlier_quotes
    return _enter(s, Stage.quoting, at, quote=quote, earlier_quotes=earlier, approval_pending=False)


def _quote_sent(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.QuoteSent) and s.quote is not None
    to = e.to_email or s.client.email
    if not to:
        raise _Invalid("the client has no email address on file; give to_email")
    if e.approval_expected_at is not None and e.approval_expected_at <= at:
        raise _Invalid("approval_expected_at must be in the future")
    quote = s.quote.model_copy(
        update={"sent_at": at, "sent_to": to, "approval_expected_at": e.approval_expected_at}
    )
    return _enter(s, Stage.quote_sent, at, quote=quote)


def _same_version(s: JobState, e: ev.QuoteApproved | ev.QuoteDeclined) -> None:
    assert s.quote is not None
    if e.quote_version is not None and e.quote_version != s.quote.version:
        raise _Invalid(
            f"quote_version: version {e.quote_version} has been replaced by version "
            f"{s.quote.version}; answer the newer quote"
        )


def _approve(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.QuoteApproved | ev.ApprovalGranted) and s.quote is not None
    if isinstance(e, ev.QuoteApproved):
        _same_version(s, e)
        if a.role == Role.customer and not e.signature_name:
            raise _Invalid("signature_name: type your full name to sign the approval")
    quote = s.quote
    keys = [o.key for o in quote.options]
    chosen = e.option or (keys[0] if len(keys) == 1 else None)
    option = quote.option(chosen)
    if option is None:
        picked = f"{e.option!r} is not one of them" if e.option else "none was chosen"
        raise _Invalid(f"option: this quote's options are {', '.join(keys)}; {picked}")
    quote = quote.model_copy(
        update={"chosen": option.key, "lines": option.lines, "total": option.totals.total}
    )
    return _enter(
        s, Stage.approved, at, quote=quote, approval_pending=False, contract_amount=quote.total
    )


def _approval_requested(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _update(s, approval_pending=True)


def _approval_denied(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _update(s, approval_pending=False)


def _quote_declined(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.QuoteDeclined)
    _same_version(s, e)
    return _enter(s, Stage.saving, at, approval_pending=False)


def _supplier_quote_requested(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.SupplierQuoteRequested)
    if any(r.po_number == e.po_number for r in s.supplier_requests):
        raise _Invalid(f"po_number: {e.po_number} was already used for a request on this job")
    request = SupplierRequest(
        supplier=e.supplier,
        supplier_email=e.supplier_email,
        po_number=e.po_number,
        lines=list(e.lines),
        notes=e.notes,
        requested_by=a.username,
        requested_at=at,
    )
    return _update(s, supplier_requests=[*s.supplier_requests, request])


def _communication_logged(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.CommunicationLogged)
    if e.po_number is None:
        return s
    requests = list(s.supplier_requests)
    index = next((i for i, r in enumerate(requests) if r.po_number == e.po_number), None)
    if index is None:
        known = ", ".join(r.po_number for r in requests) or "none"
        raise _Invalid(
            f"po_number: no supplier request {e.po_number} on this job (there are: {known})"
        )
    if requests[index].answered_at is None:
        requests[index] = requests[index].model_copy(update={"answered_at": at})
    return _update(s, supplier_requests=requests)


def _emergency_dispatch(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _enter(s, Stage.ready_to_schedule, at, priority="emergency")


def _parts_ordered(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.PartsOrdered)
    outstanding = {p.line.sku for p in s.outstanding_parts}
    clash = sorted(outstanding & {p.sku for p in e.parts})
    if clash:
        raise _Invalid(f"already on order and not yet delivered: {', '.join(clash)}")
    orders = [PartOrder(line=line, ordered_at=at) for line in e.parts]
    return _enter(s, Stage.awaiting_parts, at, parts=[*s.parts, *orders])


def _parts_delivered(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.PartsDelivered)
    outstanding = {p.line.sku for p in s.outstanding_parts}
    unknown = sorted(set(e.skus) - outstanding)
    if unknown:
        raise _Invalid(
            f"not awaiting delivery of: {', '.join(unknown)}; "
            f"outstanding: {', '.join(sorted(outstanding))}"
        )
    arrived = set(e.skus)
    parts = [
        p.model_copy(update={"delivered_at": at})
        if p.delivered_at is None and p.line.sku in arrived
        else p
        for p in s.parts
    ]
    done = all(p.delivered_at is not None for p in parts)
    return _enter(s, Stage.ready_to_schedule if done else Stage.awaiting_parts, at, parts=parts)


def _job_scheduled(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.JobScheduled)
    schedule = Schedule(
        technician=e.technician,
        window_start=e.window_start,
        window_end=e.window_end,
        scheduled_at=at,
    )
    # A checklist is prepared for one technician's visit; a different technician starts over.
    keep = s.checklist if s.schedule and s.schedule.technician == e.technician else None
    return _enter(s, Stage.scheduled, at, schedule=schedule, checklist=keep)


def _checklist_completed(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.ChecklistCompleted)
    if not e.parts_verified:
        raise _Invalid("parts_verified: confirm the technician has every part before dispatch")
    if s.client.tier == "platinum" and not e.platinum_protocol_acknowledged:
        raise _Invalid(
            "platinum_protocol_acknowledged: platinum clients need the technician to acknowledge "
            "the client's communication protocol"
        )
    checklist = Checklist(
        parts_verified=e.parts_verified,
        check_in_phone=e.check_in_phone,
        pricing_discussion=e.pricing_discussion,
        platinum_protocol_acknowledged=e.platinum_protocol_acknowledged,
        completed_by=a.username,
        completed_at=at,
    )
    return _update(s, checklist=checklist)


def _tech_dispatched(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _enter(s, Stage.dispatched, at)


def _tech_checked_in(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return _enter(s, Stage.on_site, at)


def _job_completed(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.JobCompleted)
    completion = Completion(
        work_performed=e.work_performed,
        notes=e.notes,
        parts_used=list(e.parts_used),
        fields=dict(e.fields),
        completed_by=a.username,
        completed_at=at,
    )
    return _enter(s, Stage.completed, at, completion=completion)


def _job_incomplete(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.JobIncomplete)
    # Wrong parts go back to the parts desk; too little time needs only a new visit.
    stage = Stage.awaiting_parts if e.reason == "wrong_parts" else Stage.ready_to_schedule
    return _enter(
        s, stage, at, schedule=None, checklist=None, incomplete_visits=s.incomplete_visits + 1
    )


def _invoice_sent(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.InvoiceSent)
    quoted = s.quote if s.quote is not None and s.contract_amount is not None else None
    approved = quoted.lines if quoted is not None else None
    if e.lines is None and approved is None:
        raise _Invalid("lines: this job has no approved quote to invoice from; give the lines")
    lines = list(e.lines) if e.lines is not None else list(approved or [])
    if approved is not None and lines != approved and not e.override_reason:
        raise _Invalid("override_reason: the invoice lines differ from the approved quote; say why")
    billing_email = e.billing_email or s.client.billing_email or s.client.email
    if s.client.tier == "platinum":
        missing = [
            name
            for name, value in (("billing_email", billing_email), ("po_number", e.po_number))
            if not value
        ]
        if missing:
            raise _Invalid(
                "platinum clients are billed with a billing email and a PO number; missing: "
                + ", ".join(missing)
            )
    if not billing_email:
        raise _Invalid("billing_email: the client has no billing or contact email on file")
    # Billed as quoted: the approved quote's rate and discount (one without a quote: today's rate).
    tax_rate = quoted.tax_rate if quoted is not None else (e.tax_rate or Decimal("0"))
    discount = quoted.discount if quoted is not None else None
    invoice = Invoice(
        lines=lines,
        total=pricing.totals(lines, tax_rate, discount).total,
        tax_rate=tax_rate,
        discount=discount,
        override_reason=e.override_reason,
        billing_email=billing_email,
        po_number=e.po_number,
        submitted_to_client_portal=e.submitted_to_client_portal,
        sent_at=at,
    )
    nxt = _update(s, invoice=invoice)
    return _enter(nxt, Stage.invoiced, at)


def _evidence_verified(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.EvidenceVerified)
    missing = [
        name
        for name in ("documents", "notes", "parts_usage", "photos", "customer_communication")
        if not getattr(e, name)
    ]
    if missing:
        raise _Invalid("done-job evidence incomplete: " + ", ".join(missing))
    verified = _update(s, evidence_verified_at=at)
    return _enter(verified, Stage.closed if verified.paid_in_full else Stage.verified, at)


def _payment_recorded(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.PaymentRecorded)
    if e.paid_on_site and s.stage != Stage.completed:
        raise _Invalid("paid_on_site: only a payment taken at completion was paid on site")
    payment = Payment(
        amount=e.amount,
        method=e.method,
        paid_on_site=e.paid_on_site,
        recorded_by=a.username,
        recorded_at=at,
    )
    paid = _update(s, payments=[*s.payments, payment])
    if paid.stage == Stage.verified and paid.paid_in_full:
        return _enter(paid, Stage.closed, at)
    return paid


def _job_canceled(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.JobCanceled)
    return _enter(s, Stage.canceled, at, cancel_reason=e.reason, canceled_from=s.stage)


def _contact_updated(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.ContactUpdated)
    client = s.client.model_copy(
        update={"email": e.email or s.client.email, "phone": e.phone or s.client.phone}
    )
    return _update(s, client=client)


def _record_only(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    return s


def _customer_update(s: JobState, e: ev._Event, a: Actor, at: datetime) -> JobState:
    assert isinstance(e, ev.CustomerUpdateSent)
    if not (e.to_email or s.client.email):
        raise _Invalid("to_email: the client has no email address on file; give one")
    if e.sms and not (e.sms_phone or s.client.phone):
        raise _Invalid("sms_phone: the client has no phone number on file; give one")
    return s


# guards: (state) -> reason it is not possible now, or None


def _needs_owner(s: JobState) -> str | None:
    return "unassigned lead: assign an owner before qualifying" if s.owner is None else None


def _needs_pending_approval(s: JobState) -> str | None:
    return None if s.approval_pending else "no approval has been requested for this quote"


def _no_pending_approval(s: JobState) -> str | None:
    return "approval already requested; waiting on a manager" if s.approval_pending else None


def _needs_outstanding_parts(s: JobState) -> str | None:
    return None if s.outstanding_parts else "no parts are awaiting delivery"


def _needs_checklist(s: JobState) -> str | None:
    return None if s.checklist else "the pre-dispatch checklist is not complete"


# actor checks: (state, actor) -> reason this person may not send it, or None


def _owner_or_staff(s: JobState, a: Actor) -> str | None:
    if a.role == Role.sales and s.owner != a.username:
        return (
            f"only the lead's owner ({s.owner or 'nobody yet'}), office or a manager may qualify it"
        )
    return None


def _assigned_technician(s: JobState, a: Actor) -> str | None:
    if a.role != Role.technician:
        return None
    assigned = s.schedule.technician if s.schedule else None
    if assigned != a.username:
        return f"only the assigned technician ({assigned or 'none'}) or office may do this"
    return None


RULES: dict[str, Rule] = {
    "job_created": Rule(frozenset({None}), OFFICE_SALES_MANAGER, _job_created),
    "owner_assigned": Rule(frozenset(OPEN_STAGES), OFFICE_MANAGER, _owner_assigned),
    "lead_qualified": Rule(
        frozenset({Stage.lead}),
        frozenset({Role.office, Role.manager, Role.sales}),
        _lead_qualified,
        guard=_needs_owner,
        actor_check=_owner_or_staff,
    ),
    "quote_drafted": Rule(
        frozenset({Stage.prospect, Stage.quoting, Stage.saving}),
        OFFICE_SALES_MANAGER,
        _quote_drafted,
    ),
    "quote_sent": Rule(frozenset({Stage.quoting}), OFFICE_SALES_MANAGER, _quote_sent),
    "quote_approved": Rule(
        frozenset({Stage.quote_sent, Stage.saving}),
        OFFICE_MANAGER | CUSTOMER,
        _approve,
        instead={Role.sales: "send approval_requested for a manager's approval"},
    ),
    "approval_requested": Rule(
        frozenset({Stage.quote_sent, Stage.saving}),
        frozenset({Role.sales}),
        _approval_requested,
        guard=_no_pending_approval,
    ),
    "approval_granted": Rule(
        frozenset({Stage.quote_sent, Stage.saving}),
        MANAGER,
        _approve,
        guard=_needs_pending_approval,
    ),
    "approval_denied": Rule(
        frozenset({Stage.quote_sent, Stage.saving}),
        MANAGER,
        _approval_denied,
        guard=_needs_pending_approval,
    ),
    "quote_declined": Rule(
        frozenset({Stage.quote_sent}), OFFICE_SALES_MANAGER | CUSTOMER, _quote_declined
    ),
    "supplier_quote_requested": Rule(
        frozenset({Stage.quoting, Stage.quote_sent, Stage.saving, Stage.approved}),
        OFFICE_MANAGER,
        _supplier_quote_requested,
    ),
    "emergency_dispatch": Rule(
        frozenset({Stage.lead, Stage.prospect}), OFFICE_MANAGER, _emergency_dispatch
    ),
    "parts_ordered": Rule(
        frozenset({Stage.approved, Stage.awaiting_parts}), OFFICE, _parts_ordered
    ),
    "parts_delivered": Rule(
        frozenset({Stage.awaiting_parts}),
        frozenset({Role.office, Role.integration}),
        _parts_delivered,
        guard=_needs_outstanding_parts,
    ),
    "job_scheduled": Rule(
        frozenset({Stage.approved, Stage.ready_to_schedule, Stage.scheduled}),
        OFFICE,
        _job_scheduled,
    ),
    "checklist_completed": Rule(frozenset({Stage.scheduled}), OFFICE, _checklist_completed),
    "tech_dispatched": Rule(
        frozenset({Stage.scheduled}),
        frozenset({Role.office, Role.technician}),
        _tech_dispatched,
        guard=_needs_checklist,
        actor_check=_assigned_technician,
    ),
    "tech_checked_in": Rule(
        frozenset({Stage.dispatched}),
        frozenset({Role.technician, Role.office}),
        _tech_checked_in,
        actor_check=_assigned_technician,
    ),
    "job_completed": Rule(
        frozenset({Stage.on_site}),
        frozenset({Role.technician, Role.office}),
        _job_completed,
        actor_check=_assigned_technician,
    ),
    "job_incomplete": Rule(
        frozenset({Stage.on_site}),
        frozenset({Role.technician, Role.office}),
        _job_incomplete,
        actor_check=_assigned_technician,
    ),
    "invoice_sent": Rule(frozenset({Stage.completed}), OFFICE, _invoice_sent),
    "evidence_verified": Rule(frozenset({Stage.invoiced}), MANAGER, _evidence_verified),
    "payment_recorded": Rule(frozenset(AFTER_COMPLETION), OFFICE, _payment_recorded),
    "job_canceled": Rule(frozenset(BEFORE_COMPLETION), OFFICE_MANAGER, _job_canceled),
    "note_added": Rule(frozenset(OPEN_STAGES), STAFF, _record_only),
    # Where the customer's messages go is the office's call (DESIGN.md §4), not a technician's.
    "contact_updated": Rule(
        frozenset(OPEN_STAGES),
        OFFICE_SALES_MANAGER,
        _contact_updated,
        instead={Role.technician: "tell the office with note_added"},
    ),
    "communication_logged": Rule(frozenset(OPEN_STAGES), STAFF, _communication_logged),
    "customer_update_sent": Rule(frozenset(OPEN_STAGES), OFFICE_SALES_MANAGER, _customer_update),
}

# Events that make a job a sale and so give it a job number.
_NUMBERED = frozenset({"quote_approved", "approval_granted", "emergency_dispatch"})


def _role_refusal(event_type: str, rule: Rule, actor: Actor) -> str:
    who = ", ".join(sorted(r.value for r in rule.roles))
    message = f"{event_type} may be sent by: {who}; not by {actor.role.value}"
    if rule.instead and actor.role in rule.instead:
        message += f" — {rule.instead[actor.role]}"
    return message


def _check(state: JobState, event_type: str, actor: Actor) -> tuple[RefusalCode, str] | None:
    """Everything but the payload: the reason this actor may not send this event now, or None."""
    rule = RULES.get(event_type)
    if rule is None:
        return "invalid_event", f"unknown event type {event_type!r}"
    if state.stage in FINAL_STAGES:
        return (
            "event_not_allowed",
            f"the job is {state.stage.value}; it stays readable but takes no more events "
            "(a returning customer gets a new job)",
        )
    if actor.role not in rule.roles:
        return "role_not_allowed", _role_refusal(event_type, rule, actor)
    if rule.actor_check is not None and (reason := rule.actor_check(state, actor)):
        return "role_not_allowed", reason
    if state.stage not in rule.from_stages:
        where = state.stage.value if state.stage else "not created"
        return "event_not_allowed", f"{event_type} is not possible while the job is {where}"
    if rule.guard is not None and (reason := rule.guard(state)):
        return "event_not_allowed", f"{event_type} is not possible now: {reason}"
    return None


def allowed_events(state: JobState, actor: Actor) -> list[str]:
    """The event types this actor may send now (each has at least one payload that is accepted)."""
    return [t for t in RULES if _check(state, t, actor) is None]


def apply(state: JobState, event: ev._Event, actor: Actor, at: datetime) -> Accepted | Refusal:
    event_type: str = event.type
    problem = _check(state, event_type, actor)
    if problem is None:
        try:
            new_state = RULES[event_type].transition(state, event, actor, at)
        except _Invalid as invalid:
            problem = ("invalid_event", str(invalid))
        else:
            return Accepted(state=new_state, assign_number=event_type in _NUMBERED)
    assert problem is not None
    return refusal(state, actor, *problem)


def refusal(state: JobState, actor: Actor, code: RefusalCode, message: str) -> Refusal:
    """A refusal that says what the job takes now, as the API answers it."""
    return Refusal(
        code=code, message=message, stage=state.stage, allowed_events=allowed_events(state, actor)
    )


def new_job(slug: str, client: ClientSnapshot) -> JobState:
    """The state of a job whose workflow has started but whose `job_created` is still to come."""
    return JobState(slug=slug, client=client)
