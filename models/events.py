"""Event payloads of the job lifecycle (DESIGN.md §4).

Every change to a job is one of these events. They are plain pydantic models so the same class
validates an HTTP body, travels through Temporal (pydantic data converter) and is stored in the
timeline. Shape checks live here; rules that depend on the job's state live in `lifecycle`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

# The form and the ranges of dates, money and ids are defined once, in models.bounds.
from models.bounds import (
    CENT,
    EDGE,
    BoundedDate,
    BoundedDatetime,
    Id,
    Money,
    PositiveMoney,
    Quantity,
    WholeQuantity,
    at_the_edge,
    total_problem,
)
from models.event_examples import EVENT_EXAMPLES
from models.pricing import Discount, OptionKey, TaxRate

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_PHONE = re.compile(r"^[0-9+()\-. #*x]{3,32}$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an email address (like name@example.com)")
    return value


def _phone(value: str) -> str:
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < 3:
        raise ValueError("not a phone number (digits, spaces, + ( ) - . # * x)")
    return value


Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_phone)
]
Source = Literal["incoming_call", "incoming_email", "outgoing_call", "outgoing_email"]
Priority = Literal["standard", "emergency"]
PaymentMethod = Literal["cash", "check", "card", "ach", "other"]


def _example_of(schema: dict[str, Any], event: type[BaseModel]) -> None:
    """The OpenAPI schema of each event shows its example (models.event_examples)."""
    example = EVENT_EXAMPLES.get(event.model_fields["type"].default)
    if example is not None:
        schema["examples"] = [example]


class _Event(BaseModel):
    # Unknown fields are a client's mistake worth telling them about, not something to drop.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_example_of)

    type: str


class QuoteLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: ShortText
    quantity: Quantity
    unit_price: Money
    sku: ShortText | None = None
    # Tax applies to the line (a price-book line takes the item's flag).
    taxable: StrictBool = True
    # Where the unit price came from; set by Jobline from the price book (a value sent is
    # replaced): `free` for a line typed by hand, `tier`/`client` for a fixed price that the
    # quote may not change (a GOV client's, or one client's own).
    price_basis: Literal["free", "list", "tier", "client"] = "free"

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT)

    @model_validator(mode="after")
    def _line_total_bounded(self, info: ValidationInfo) -> QuoteLine:
        what = "the line's amount (quantity x unit_price)"
        if at_the_edge(info) and (problem := total_problem([self.amount], what)):
            raise ValueError(problem)
        return self


def _document_total_bounded(lines: list[QuoteLine], info: ValidationInfo) -> list[QuoteLine]:
    amounts = (line.amount for line in lines)
    if at_the_edge(info) and (problem := total_problem(amounts, "the lines' total")):
        raise ValueError(problem)
    return lines


# A quote's or an invoice's lines: what one document may hold, its total bounded too.
Lines = Annotated[
    list[QuoteLine], Field(min_length=1, max_length=200), AfterValidator(_document_total_bounded)
]


class PartLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: ShortText
    description: ShortText
    quantity: WholeQuantity
    supplier: ShortText
    po_number: ShortText
    expected_delivery: BoundedDate


class PartUsed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: ShortText
    quantity: Quantity


class JobCreated(_Event):
    """A new job for a client (sent by POST /api/v1/jobs, not the events route)."""

    type: Literal["job_created"] = "job_created"
    client_id: Id
    title: ShortText
    description: OptionalText = ""
    source: Source
    priority: Priority = "standard"
    site_address: OptionalText = ""


class OwnerAssigned(_Event):
    """The staff member (username) who owns the job from now on."""

    type: Literal["owner_assigned"] = "owner_assigned"
    owner: ShortText


class LeadQualified(_Event):
    """The lead is worth quoting: the job moves on to the quote stage."""

    type: Literal["lead_qualified"] = "lead_qualified"


class QuoteOptionDraft(BaseModel):
    """One of a quote's options (good / better / best) the customer picks from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    lines: Lines


class QuoteDrafted(_Event):
    """The quote's lines — or two or three options (good, better, best) the customer picks
    from — an optional discount with its reason, and how long it holds; drafting again makes a
    new quote version. `tax_rate` is set by Jobline from the quote settings (a value sent is
    replaced)."""

    type: Literal["quote_drafted"] = "quote_drafted"
    lines: Lines | None = None
    options: Annotated[list[QuoteOptionDraft], Field(min_length=2, max_length=3)] | None = None
    discount: Discount | None = None
    tax_rate: TaxRate | None = None
    valid_until: BoundedDate | None = None
    notes: OptionalText = ""

    @model_validator(mode="after")
    def _lines_or_options(self) -> QuoteDrafted:
        if (self.lines is None) == (self.options is None):
            raise ValueError("give the quote's lines, or its options (two or three), not both")
        return self


class QuoteSent(_Event):
    """The drafted quote goes to the customer by email (and SMS when asked)."""

    type: Literal["quote_sent"] = "quote_sent"
    to_email: Email | None = None
    sms: StrictBool = False
    approval_expected_at: BoundedDatetime | None = None


class QuoteApproved(_Event):
    """The customer accepted the quote: told to the office, or online from the quote's link
    (`/q/…`), signed with their typed name. With options, `option` is the one they chose."""

    type: Literal["quote_approved"] = "quote_approved"
    option: OptionKey | None = None
    # The version the customer saw; refused if a newer quote has been drafted since.
    quote_version: Annotated[int, Field(gt=0, le=100_000)] | None = None
    signature_name: ShortText | None = None
    # Set by Jobline for an approval made online (a value sent is replaced).
    ip_address: Annotated[str, StringConstraints(max_length=64)] | None = None


class ApprovalRequested(_Event):
    """The quote needs a manager's approval before it is sent."""

    type: Literal["approval_requested"] = "approval_requested"
    notes: OptionalText = ""


class ApprovalGranted(_Event):
    """A manager approved the quote; it may be sent."""

    type: Literal["approval_granted"] = "approval_granted"
    option: OptionKey | None = None


class ApprovalDenied(_Event):
    """A manager refused the quote, with the reason."""

    type: Literal["approval_denied"] = "approval_denied"
    reason: Text


class QuoteDeclined(_Event):
    """The customer turned the quote down, with the reason."""

    type: Literal["quote_declined"] = "quote_declined"
    reason: Text
    quote_version: Annotated[int, Field(gt=0, le=100_000)] | None = None
    ip_address: Annotated[str, StringConstraints(max_length=64)] | None = None


class EmergencyDispatch(_Event):
    """Skip the quote: send a technician now."""

    type: Literal["emergency_dispatch"] = "emergency_dispatch"
    notes: OptionalText = ""


class PartsOrdered(_Event):
    """Parts ordered from suppliers for this job, one line per sku."""

    type: Literal["parts_ordered"] = "parts_ordered"
    parts: Annotated[list[PartLine], Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _unique_skus(self) -> PartsOrdered:
        skus = [p.sku for p in self.parts]
        if len(skus) != len(set(skus)):
            raise ValueError("each part line needs its own sku")
        return self


class PartsDelivered(_Event):
    """The listed skus (of those ordered) have arrived."""

    type: Literal["parts_delivered"] = "parts_delivered"
    skus: Annotated[list[ShortText], Field(min_length=1, max_length=200)]


class JobScheduled(_Event):
    """The technician (username) and the visit's window (ISO 8601, with an offset)."""

    type: Literal["job_scheduled"] = "job_scheduled"
    technician: ShortText
    window_start: BoundedDatetime
    window_end: BoundedDatetime

    @model_validator(mode="after")
    def _window_order(self) -> JobScheduled:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class ChecklistCompleted(_Event):
    """The office's pre-visit checklist; dispatch is refused until it is complete."""

    type: Literal["checklist_completed"] = "checklist_completed"
    parts_verified: StrictBool
    check_in_phone: Phone
    pricing_discussion: Literal["allowed", "not_allowed"]
    platinum_protocol_acknowledged: StrictBool = False


class TechDispatched(_Event):
    """The technician is on the way (optionally telling the customer)."""

    type: Literal["tech_dispatched"] = "tech_dispatched"
    notify_customer: StrictBool = False


class TechCheckedIn(_Event):
    """The technician arrived on site."""

    type: Literal["tech_checked_in"] = "tech_checked_in"


class JobCompleted(_Event):
    """The work is done: what was performed, parts used, the receipt's fields."""

    type: Literal["job_completed"] = "job_completed"
    work_performed: Text
    notes: OptionalText = ""
    parts_used: Annotated[list[PartUsed], Field(max_length=200)] = []
    fields: dict[str, Any] = {}


class JobIncomplete(_Event):
    """The visit ended without finishing the work, and why."""

    type: Literal["job_incomplete"] = "job_incomplete"
    reason: Literal["wrong_parts", "insufficient_time"]
    notes: OptionalText = ""


class InvoiceSent(_Event):
    """The invoice goes out; its lines default to the approved quote's (others need a reason)."""

    type: Literal["invoice_sent"] = "invoice_sent"
    lines: Lines | None = None
    override_reason: Text | None = None
    billing_email: Email | None = None
    po_number: ShortText | None = None
    submitted_to_client_portal: StrictBool = False
    # Set by Jobline from the quote settings, for an invoice without an approved quote (one with
    # a quote is taxed at the quote's rate); a value sent is replaced.
    tax_rate: TaxRate | None = None


class EvidenceVerified(_Event):
    """A manager checked the done job's evidence; every item must be true."""

    type: Literal["evidence_verified"] = "evidence_verified"
    documents: StrictBool
    notes: StrictBool
    parts_usage: StrictBool
    photos: StrictBool
    customer_communication: StrictBool


class PaymentRecorded(_Event):
    """A payment received, its amount and method."""

    type: Literal["payment_recorded"] = "payment_recorded"
    amount: PositiveMoney
    method: PaymentMethod
    paid_on_site: StrictBool = False


class JobCanceled(_Event):
    """The job is canceled, with the reason."""

    type: Literal["job_canceled"] = "job_canceled"
    reason: Text


class NoteAdded(_Event):
    """A note on the job's timeline; allowed at any open stage."""

    type: Literal["note_added"] = "note_added"
    text: Text


class ContactUpdated(_Event):
    """The customer's contact details changed (at least one field)."""

    type: Literal["contact_updated"] = "contact_updated"
    email: Email | None = None
    phone: Phone | None = None
    notes: OptionalText = ""

    @model_validator(mode="after")
    def _something_changed(self) -> ContactUpdated:
        if self.email is None and self.phone is None and not self.notes:
            raise ValueError("give at least one of email, phone or notes")
        return self


class CustomerUpdateSent(_Event):
    """The Send dialog: a message to the customer by email, and by SMS when asked."""

    type: Literal["customer_update_sent"] = "customer_update_sent"
    message: Text
    to_email: Email | None = None
    bcc_me: StrictBool = False
    sms: StrictBool = False
    sms_phone: Phone | None = None


class CommunicationLogged(_Event):
    """A call, email, SMS or visit with the customer — or a supplier's answer to a request for
    quote, named by its `po_number` — logged after the fact."""

    type: Literal["communication_logged"] = "communication_logged"
    channel: Literal["call", "email", "sms", "in_person"]
    direction: Literal["incoming", "outgoing"]
    summary: Text
    po_number: ShortText | None = None


class SupplierLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: ShortText | None = None
    description: ShortText
    quantity: Quantity


class SupplierQuoteRequested(_Event):
    """A request for quote (RFQ) emailed to a supplier: the part lines and a PO number."""

    type: Literal["supplier_quote_requested"] = "supplier_quote_requested"
    supplier: ShortText
    supplier_email: Email
    po_number: ShortText
    lines: Annotated[list[SupplierLine], Field(min_length=1, max_length=200)]
    notes: OptionalText = ""


Event = Annotated[
    JobCreated
    | OwnerAssigned
    | LeadQualified
    | QuoteDrafted
    | QuoteSent
    | QuoteApproved
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalDenied
    | QuoteDeclined
    | EmergencyDispatch
    | PartsOrdered
    | PartsDelivered
    | JobScheduled
    | ChecklistCompleted
    | TechDispatched
    | TechCheckedIn
    | JobCompleted
    | JobIncomplete
    | InvoiceSent
    | EvidenceVerified
    | PaymentRecorded
    | JobCanceled
    | NoteAdded
    | ContactUpdated
    | CommunicationLogged
    | CustomerUpdateSent
    | SupplierQuoteRequested,
    Field(discriminator="type"),
]

_EVENTS: TypeAdapter[Any] = TypeAdapter(Event)


def checked_at_the_edge(event: _Event) -> _Event:
    """The event checked as a client's input: the ranges of models.bounds, which a stored event
    (a workflow history, a job's timeline) is not held to. Raises pydantic's ValidationError,
    located like a parse error (`job_scheduled.window_start`)."""
    return _EVENTS.validate_python(event.model_dump(), context=EDGE)  # type: ignore[no-any-return]


EVENT_TYPES: tuple[str, ...] = (
    "job_created",
    "owner_assigned",
    "lead_qualified",
    "quote_drafted",
    "quote_sent",
    "quote_approved",
    "approval_requested",
    "approval_granted",
    "approval_denied",
    "quote_declined",
    "emergency_dispatch",
    "parts_ordered",
    "parts_delivered",
    "job_scheduled",
    "checklist_completed",
    "tech_dispatched",
    "tech_checked_in",
    "job_completed",
    "job_incomplete",
    "invoice_sent",
    "evidence_verified",
    "payment_recorded",
    "job_canceled",
    "note_added",
    "contact_updated",
    "communication_logged",
    "customer_update_sent",
    "supplier_quote_requested",
)
