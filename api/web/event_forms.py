"""Each event's form on the job page: built from the event's payload model (models/events.py), read
back into that model, and shown again with what the person typed when it is refused.

Simple scalar fields come from the pydantic model itself (text, checkbox, select, date,
datetime-local in the company's zone, money); the lists (quote and invoice lines, parts ordered,
parts used, parts delivered), the people pickers and the configured receipt fields have their own
editors. Nothing here decides whether an event is allowed: the rules do (models/lifecycle.py).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ValidationError
from starlette.datastructures import FormData

from models import display
from models import events as ev
from models.bounds import EDGE
from models.closeout import CloseoutSettings, ReceiptField, validate_receipt_fields
from models.lifecycle import JobState
from models.tables import User

# Event types the job page offers as forms; the Send dialog (customer_update_sent) is its own page.
FORM_EVENTS: dict[str, type[ev._Event]] = {
    "owner_assigned": ev.OwnerAssigned,
    "lead_qualified": ev.LeadQualified,
    "quote_drafted": ev.QuoteDrafted,
    "quote_sent": ev.QuoteSent,
    "quote_approved": ev.QuoteApproved,
    "approval_requested": ev.ApprovalRequested,
    "approval_granted": ev.ApprovalGranted,
    "approval_denied": ev.ApprovalDenied,
    "quote_declined": ev.QuoteDeclined,
    "emergency_dispatch": ev.EmergencyDispatch,
    "parts_ordered": ev.PartsOrdered,
    "parts_delivered": ev.PartsDelivered,
    "job_scheduled": ev.JobScheduled,
    "checklist_completed": ev.ChecklistCompleted,
    "tech_dispatched": ev.TechDispatched,
    "tech_checked_in": ev.TechCheckedIn,
    "job_completed": ev.JobCompleted,
    "job_incomplete": ev.JobIncomplete,
    "invoice_sent": ev.InvoiceSent,
    "evidence_verified": ev.EvidenceVerified,
    "payment_recorded": ev.PaymentRecorded,
    "job_canceled": ev.JobCanceled,
    "note_added": ev.NoteAdded,
    "contact_updated": ev.ContactUpdated,
    "communication_logged": ev.CommunicationLogged,
    "supplier_quote_requested": ev.SupplierQuoteRequested,
}

# Fields Jobline sets itself (from the price book, the quote settings, the customer's own page):
# never on a staff form.
HIDDEN_FIELDS = frozenset({"tax_rate", "ip_address", "quote_version", "price_basis",
                           "signature_name"})  # fmt: skip
# The quote builder's options: each a name and a rows editor; the first is the plain quote's.
OPTION_GROUPS = ("lines", "lines2", "lines3")
OPTION_NAMES = ("Good", "Better", "Best")
QUOTE_COLUMNS = ("sku", "description", "quantity", "unit_price")
DATALIST = "pricebook-items"

# What each event's button says (the action, in the person's words) and one line of what it does.
ACTIONS: dict[str, tuple[str, str]] = {
    "owner_assigned": ("Assign owner", "Who owns this job from now on."),
    "lead_qualified": ("Qualify lead", "The lead is worth quoting: it becomes a prospect."),
    "quote_drafted": ("Draft quote", "The quote's lines; drafting again makes a new version."),
    "quote_sent": ("Send quote", "The quote PDF goes to the customer by email (SMS if ticked)."),
    "quote_approved": ("Mark quote approved", "The customer accepted: the job gets its number."),
    "approval_requested": (
        "Request manager approval",
        "A manager approves the quote before the job moves to Approved.",
    ),
    "approval_granted": ("Grant approval", "Approve the quote as manager: the job is Approved."),
    "approval_denied": ("Deny approval", "Refuse the approval request, with the reason."),
    "quote_declined": ("Quote declined", "The customer turned the quote down."),
    "emergency_dispatch": ("Emergency dispatch", "Skip the quote and send a technician now."),
    "parts_ordered": ("Order parts", "One line per part ordered from a supplier."),
    "parts_delivered": ("Parts delivered", "Tick the parts that have arrived."),
    "job_scheduled": ("Schedule visit", "The technician and the visit's window."),
    "checklist_completed": ("Complete checklist", "The checks before dispatch."),
    "tech_dispatched": ("Dispatch technician", "The technician is on the way."),
    "tech_checked_in": ("Check in", "The technician has arrived on site."),
    "job_completed": ("Complete job", "The work done and the receipt's fields."),
    "job_incomplete": ("Could not finish", "Hand the job back to the office, with the reason."),
    "invoice_sent": ("Send invoice", "The invoice's lines default to the approved quote's."),
    "evidence_verified": ("Verify evidence", "Confirm the done job's evidence, every item."),
    "payment_recorded": ("Record payment", "A payment received."),
    "job_canceled": ("Cancel job", "The job leaves the active pipeline; say why."),
    "note_added": ("Add note", "An internal note on the timeline (never sent to the customer)."),
    "contact_updated": ("Update contact", "The customer's new email, phone or notes."),
    "communication_logged": ("Log communication", "A call, email, SMS or visit, after the fact."),
    "supplier_quote_requested": (
        "Request supplier quote",
        "Email a supplier a request for quote (RFQ) for parts, under a PO number.",
    ),
}

# The main next step, first allowed one wins (UI.md: one primary action per stage).
PRIMARY_ORDER = (
    "lead_qualified",
    "quote_sent",
    "quote_approved",
    "approval_granted",
    "approval_requested",
    "quote_drafted",
    "parts_delivered",
    "tech_dispatched",
    "checklist_completed",
    "job_scheduled",
    "parts_ordered",
    "tech_checked_in",
    "job_completed",
    "invoice_sent",
    "evidence_verified",
    "payment_recorded",
)
# Events that never lead: the record-keeping ones, and cancel (last and apart).
NEVER_PRIMARY = frozenset(
    {"note_added", "contact_updated", "communication_logged", "job_canceled",
     "supplier_quote_requested"}
)  # fmt: skip

LABELS: dict[str, str] = {
    "owner": "Owner",
    "technician": "Technician",
    "valid_until": "Valid until",
    "notes": "Notes",
    "to_email": "Send to (email)",
    "sms": "Also send by SMS",
    "approval_expected_at": "Customer expects to decide by",
    "reason": "Reason",
    "window_start": "Window starts",
    "window_end": "Window ends",
    "parts_verified": "Parts verified: the technician has every part",
    "check_in_phone": "Check-in phone (IVR number on the work order)",
    "pricing_discussion": "Pricing discussion on site",
    "platinum_protocol_acknowledged": "Platinum protocol acknowledged",
    "notify_customer": "Text the customer that the technician is on the way",
    "work_performed": "Work performed",
    "override_reason": "Why the invoice differs from the approved quote",
    "billing_email": "Billing email",
    "po_number": "Customer PO number",
    "submitted_to_client_portal": "Submitted to the client's portal",
    "documents": "Documents",
    "photos": "Photos",
    "parts_usage": "Parts usage",
    "customer_communication": "Customer communication",
    "amount": "Amount",
    "method": "Method",
    "paid_on_site": "Paid on site",
    "text": "Note",
    "email": "New email",
    "phone": "New phone",
    "channel": "Channel",
    "direction": "Direction",
    "summary": "Summary",
    "supplier": "Supplier",
    "supplier_email": "Supplier email",
}
EVENT_LABELS: dict[tuple[str, str], str] = {
    ("evidence_verified", "notes"): "Notes",
    ("job_incomplete", "notes"): "What happened",
    ("approval_requested", "notes"): "Note for the manager",
    ("emergency_dispatch", "notes"): "Why it is an emergency",
    ("supplier_quote_requested", "po_number"): "PO number",
    ("supplier_quote_requested", "notes"): "Notes for the supplier",
    ("quote_drafted", "notes"): "Notes for the customer",
}
HINTS: dict[tuple[str, str], str] = {
    ("quote_sent", "to_email"): "Leave empty to send to the client's email on file.",
    ("invoice_sent", "billing_email"): "Leave empty for the client's billing email on file.",
    ("invoice_sent", "override_reason"): "Needed only when the lines differ from the quote.",
    ("contact_updated", "email"): "Give at least one of email, phone or notes.",
    ("payment_recorded", "paid_on_site"): "Only for a payment taken as the job was completed.",
}
OPTION_WORDS: dict[str, str] = {
    "allowed": "Allowed",
    "not_allowed": "Not allowed",
    "wrong_parts": "Wrong parts",
    "insufficient_time": "Not enough time",
    "cash": "Cash",
    "check": "Check",
    "card": "Card",
    "ach": "ACH bank transfer",
    "other": "Other",
    "call": "Call",
    "email": "Email",
    "sms": "SMS",
    "in_person": "In person",
    "incoming": "Incoming",
    "outgoing": "Outgoing",
}
TEXTAREAS = frozenset({"text", "reason", "notes", "summary", "work_performed", "override_reason"})
OWNER_ROLES = frozenset({"sales", "office", "manager"})
TECHNICIAN_ROLES = frozenset({"technician"})
# Blank rows below any typed or prefilled ones (more with "Add more rows", with or without JS).
BLANK_ROWS = {"lines": 3, "lines2": 2, "lines3": 2, "parts": 2, "parts_used": 2}
_ROW_COLUMNS = {
    "lines": ("description", "quantity", "unit_price", "sku"),
    "lines2": ("description", "quantity", "unit_price", "sku"),
    "lines3": ("description", "quantity", "unit_price", "sku"),
    "parts": ("sku", "description", "quantity", "supplier", "po_number", "expected_delivery"),
    "parts_used": ("sku", "quantity"),
}
MAX_ROWS = 200


@dataclass
class Field:
    """One input: `kind` is text, textarea, email, tel, number, money, date, datetime, checkbox,
    select or radios."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    hint: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    # Say "(required)" in the label (the receipt's configured fields, where it varies by field).
    marked: bool = False
    # The id of a <datalist> the input suggests from (the price book's SKUs).
    datalist: str = ""


@dataclass
class Rows:
    """A list editor: one row per line, `columns` per row (names are `{name}-{i}-{column}`)."""

    name: str
    legend: str
    columns: list[Field]
    count: int
    required: bool = False
    total: bool = False  # a running total of quantity x unit price
    hint: str = ""
    row_word: str = "Line"  # each row's legend: "Line 1"


@dataclass
class Choices:
    """Checkboxes with one name and several values (the parts that arrived)."""

    name: str
    legend: str
    options: list[tuple[str, str]]
    required: bool = False


@dataclass
class Context:
    """What a form needs to know about the job and the company."""

    state: JobState
    zone: ZoneInfo
    owners: list[User]
    technicians: list[User]
    receipt_fields: list[ReceiptField]
    currency_symbol: str = "$"
    # The price book for the quote builder (api/pricebook/service.ResolvedPrice, priced for this
    # job's client): the active items the SKU inputs suggest, and every item a shown row names.
    pricebook: list[Any] = field(default_factory=list)
    prices: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventForm:
    type: str
    button: str
    intro: str
    items: list[Field | Rows | Choices]
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    # Problems with no one field (the rules' refusal): shown in the summary only.
    general: list[str] = field(default_factory=list)
    extra_rows: int = 0
    # Inputs the person may not change (a fixed price's unit price), and a word under a row.
    readonly: set[str] = field(default_factory=set)
    row_notes: dict[str, str] = field(default_factory=dict)
    datalist: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_inputs(self) -> bool:
        return bool(self.items)

    def line_total(self, name: str) -> str:
        """The lines' total as typed (quantity x unit price, the rows that read as numbers),
        for the page without JavaScript; the script keeps it current while typing."""
        total = Decimal("0")
        for _, row in _rows(self.values, name, ["quantity", "unit_price"]):
            try:
                total += Decimal(row["quantity"]) * Decimal(row["unit_price"].replace(",", ""))
            except ArithmeticError:
                continue
        return f"{total.quantize(Decimal('0.01')):,.2f}"

    @property
    def summary(self) -> list[tuple[str, str]]:
        """(field name or "", message): the error summary's links, in the form's order."""
        listed = [("", m) for m in self.general]
        return listed + list(self.errors.items())


def person_name(user: User) -> str:
    return user.display_name or user.username


# --- building the fields ---------------------------------------------------------------------


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The type under Annotated and `| None`, and whether None is allowed."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        elif annotation is AwareDatetime:
            return datetime, optional
        else:
            return annotation, optional


def _kind(name: str, annotation: Any) -> tuple[str, list[tuple[str, str]]]:
    if typing.get_origin(annotation) is Literal:
        values = [str(v) for v in typing.get_args(annotation)]
        options = [(v, OPTION_WORDS.get(v, v.replace("_", " ").capitalize())) for v in values]
        return ("radios" if len(values) <= 3 else "select"), options
    if annotation is bool:
        return "checkbox", []
    if annotation is datetime:
        return "datetime", []
    if annotation is date:
        return "date", []
    if annotation is Decimal:
        return "money", []
    if annotation is int:
        return "number", []
    if "email" in name:
        return "email", []
    if "phone" in name:
        return "tel", []
    return ("textarea" if name in TEXTAREAS else "text"), []


def _people(users: list[User]) -> list[tuple[str, str]]:
    return [(u.username, f"{person_name(u)} ({u.role})") for u in users]


def _scalar(event_type: str, model: type[BaseModel], name: str, ctx: Context) -> Field:
    info = model.model_fields[name]
    annotation, _ = _plain(info.annotation)
    label = EVENT_LABELS.get((event_type, name)) or LABELS.get(name) or name.replace("_", " ")
    hint = HINTS.get((event_type, name), "")
    # Booleans the rules require to be true (the evidence, parts verified) are required boxes.
    required = info.is_required() and annotation is not bool
    if name == "owner":
        return Field(name, label, "select", True, hint, _people(ctx.owners))
    if name == "technician":
        return Field(name, label, "select", True, hint, _people(ctx.technicians))
    kind, options = _kind(name, annotation)
    if kind == "datetime":
        hint = hint or f"In {ctx.zone.key} time."
    return Field(name, label, kind, required, hint, options)


def _line_columns() -> list[Field]:
    return [
        Field("description", "Description", "text", True),
        Field("quantity", "Quantity", "number", True),
        Field("unit_price", "Unit price", "money", True),
        Field("sku", "SKU", "text"),
        Field("taxable", "Taxable", "checkbox"),
    ]


def _part_columns() -> list[Field]:
    return [
        Field("sku", "SKU", "text", True),
        Field("description", "Description", "text", True),
        Field("quantity", "Quantity", "number", True),
        Field("supplier", "Supplier", "text", True),
        Field("po_number", "PO number", "text", True),
        Field("expected_delivery", "Expected delivery", "date", True),
    ]


def _quote_columns() -> list[Field]:
    return [
        Field("sku", "SKU", "text", False, datalist=DATALIST),
        Field("description", "Description", "text", True),
        Field("quantity", "Quantity", "number", True),
        Field("unit_price", "Unit price", "money", True),
        Field("taxable", "Taxable", "checkbox"),
    ]


def _supplier_columns() -> list[Field]:
    return [
        Field("sku", "SKU", "text"),
        Field("description", "Description", "text", True),
        Field("quantity", "Quantity", "number", True),
    ]


def _used_columns() -> list[Field]:
    return [Field("sku", "SKU", "text", True), Field("quantity", "Quantity", "number", True)]


def receipt_name(key: str) -> str:
    return f"receipt-{key}"


_RECEIPT_KINDS = {
    "text": "text",
    "number": "number",
    "currency": "money",
    "date": "date",
    "dropdown": "select",
    "checkbox": "checkbox",
}


def _receipt_field(f: ReceiptField) -> Field:
    options = [(o, o) for o in f.options]
    hint = "On the work receipt." if f.type != "checkbox" else ""
    return Field(receipt_name(f.key), f.label, _RECEIPT_KINDS[f.type], f.required, hint, options,
                 marked=f.required)  # fmt: skip


def _quote_builder(ctx: Context, values: dict[str, Any], extra: int) -> list[Any]:
    """Up to three options, each a name and its lines; one option filled is a plain quote."""
    items: list[Any] = []
    quote = ctx.state.quote
    drafted = len(quote.options) if quote is not None else 0
    for n, group in enumerate(OPTION_GROUPS):
        prefilled = len(quote.options[n].lines) if quote is not None and n < drafted else 0
        hint = (
            "Type a SKU (suggested from the price book) and a quantity: the description and "
            "price come from the price book. A line without a SKU is a free line: give its "
            "description and price. Leave a row empty to skip it."
            if n == 0
            else "Optional: fill a second or third option to let the customer choose."
        )
        items.append(
            Field(f"option{n + 1}_name", f"Option {n + 1} name", "text", False,
                  "Used when the quote has two or three options.")
        )  # fmt: skip
        items.append(
            Rows(group, f"Option {n + 1} lines", _quote_columns(),
                 _row_count(values, group, prefilled, extra), n == 0, True, hint)
        )  # fmt: skip
    items.append(Field("discount_amount", "Discount amount", "money", False,
                       "Money off the subtotal; or give a percentage instead."))  # fmt: skip
    items.append(Field("discount_percent", "Discount percent", "number", False,
                       "For example 10 for 10% off the subtotal."))  # fmt: skip
    items.append(Field("discount_reason", "Discount reason", "text", False,
                       "Needed with a discount; printed on the quote."))  # fmt: skip
    return items


def _option_picker(ctx: Context) -> Field | None:
    quote = ctx.state.quote
    if quote is None or len(quote.options) < 2:
        return None
    options = [
        (str(o.key), f"{o.name} ({display.money(o.totals.total, ctx.currency_symbol)})")
        for o in quote.options
    ]
    return Field("option", "Option the customer chose", "radios", True, "", options)


def _row_count(values: dict[str, Any], name: str, prefilled: int, extra: int) -> int:
    """Rows enough for every row typed in (where it was typed) or prefilled, then a few blank."""
    typed = max((i + 1 for i, _ in _rows(values, name, list(_ROW_COLUMNS[name]))), default=0)
    blank = BLANK_ROWS.get(name, 2)
    return min(MAX_ROWS, max(typed, prefilled) + blank + max(0, extra))


def items_for(event_type: str, ctx: Context, values: dict[str, Any], extra: int) -> list[Any]:
    model = FORM_EVENTS[event_type]
    items: list[Any] = []
    for name in model.model_fields:
        if name == "type" or name in HIDDEN_FIELDS:
            continue
        if event_type == "quote_drafted" and name == "lines":
            items.extend(_quote_builder(ctx, values, extra))
        elif event_type == "quote_drafted" and name in ("options", "discount"):
            continue
        elif name == "option":
            picker = _option_picker(ctx)
            if picker is not None:
                items.append(picker)
        elif event_type == "supplier_quote_requested" and name == "lines":
            items.append(
                Rows("lines", "Parts to quote", _supplier_columns(),
                     _row_count(values, "lines", 0, extra), True, False,
                     "Prefilled from the quote's price-book lines. Leave a row empty to skip it.")
            )  # fmt: skip
        elif event_type == "communication_logged" and name == "po_number":
            requests = ctx.state.supplier_requests
            if requests:
                items.append(
                    Field("po_number", "Supplier request (PO)", "select", False,
                          "When this is a supplier's answer to a request for quote.",
                          [(r.po_number, f"PO {r.po_number}: {r.supplier}") for r in requests])
                )  # fmt: skip
        elif name == "lines":
            prefilled = len(_quote_lines(ctx)) if event_type == "invoice_sent" else 0
            required = False
            hint = (
                "Prefilled from the approved quote; a change needs a reason below."
                if event_type == "invoice_sent"
                else "Leave a row empty to skip it."
            )
            items.append(
                Rows("lines", "Lines", _line_columns(),
                     _row_count(values, "lines", prefilled, extra), required, True, hint)
            )  # fmt: skip
        elif name == "parts":
            items.append(
                Rows("parts", "Parts ordered", _part_columns(),
                     _row_count(values, "parts", 0, extra), True, False,
                     "One line per SKU. Leave a row empty to skip it.", "Part")
            )  # fmt: skip
        elif name == "parts_used":
            items.append(
                Rows("parts_used", "Parts used", _used_columns(),
                     _row_count(values, "parts_used", 0, extra), False, False,
                     "Leave empty if no parts were used.", "Part used")
            )  # fmt: skip
        elif name == "skus":
            outstanding = [
                (p.line.sku, f"{p.line.sku}: {p.line.description} (x{p.line.quantity}, "
                 f"{p.line.supplier}, PO {p.line.po_number})")
                for p in ctx.state.outstanding_parts
            ]  # fmt: skip
            items.append(Choices("skus", "Parts that arrived", outstanding, True))
        elif name == "fields":
            items.extend(_receipt_field(f) for f in ctx.receipt_fields)
        elif event_type == "job_incomplete" and name == "reason":
            field_ = _scalar(event_type, model, name, ctx)
            field_.kind = "radios"
            items.append(field_)
        else:
            items.append(_scalar(event_type, model, name, ctx))
    return items


# --- prefilled values ------------------------------------------------------------------------


def _quote_lines(ctx: Context) -> list[ev.QuoteLine]:
    s = ctx.state
    return list(s.quote.lines) if s.quote is not None and s.contract_amount is not None else []


def _put_lines(
    values: dict[str, Any], lines: list[ev.QuoteLine], group: str = "lines", taxable: bool = False
) -> None:
    for i, line in enumerate(lines):
        values[f"{group}-{i}-description"] = line.description
        values[f"{group}-{i}-quantity"] = format(line.quantity.normalize(), "f")
        values[f"{group}-{i}-unit_price"] = f"{line.unit_price:.2f}"
        values[f"{group}-{i}-sku"] = line.sku or ""
        if taxable:
            values[f"{group}-{i}-taxable"] = "on" if line.taxable else ""


def _put_quote(values: dict[str, Any], state: JobState) -> None:
    quote = state.quote
    assert quote is not None
    for n, option in enumerate(quote.options[: len(OPTION_GROUPS)]):
        _put_lines(values, list(option.lines), OPTION_GROUPS[n], taxable=True)
        if len(quote.options) > 1:
            values[f"option{n + 1}_name"] = option.name
    discount = quote.discount
    if discount is not None:
        if discount.amount is not None:
            values["discount_amount"] = f"{discount.amount:.2f}"
        if discount.percent is not None:
            values["discount_percent"] = format(discount.percent.normalize(), "f")
        values["discount_reason"] = discount.reason


def defaults(event_type: str, ctx: Context) -> dict[str, Any]:
    """What a fresh form shows: the job's current values where there are some."""
    s = ctx.state
    values: dict[str, Any] = {}
    if event_type == "owner_assigned" and s.owner:
        values["owner"] = s.owner
    elif event_type == "quote_drafted" and s.quote is not None:
        _put_quote(values, s)
        values["valid_until"] = s.quote.valid_until.isoformat() if s.quote.valid_until else ""
        values["notes"] = s.quote.notes
    elif event_type == "invoice_sent":
        _put_lines(values, _quote_lines(ctx), taxable=True)
    elif event_type == "supplier_quote_requested" and s.quote is not None:
        for i, line in enumerate(x for x in s.quote.lines if x.sku):
            values[f"lines-{i}-sku"] = line.sku or ""
            values[f"lines-{i}-description"] = line.description
            values[f"lines-{i}-quantity"] = format(line.quantity.normalize(), "f")
    elif event_type == "job_scheduled" and s.schedule is not None:
        values["technician"] = s.schedule.technician
        values["window_start"] = display.local_input(s.schedule.window_start, ctx.zone)
        values["window_end"] = display.local_input(s.schedule.window_end, ctx.zone)
    elif event_type == "checklist_completed" and s.checklist is not None:
        values["check_in_phone"] = s.checklist.check_in_phone
        values["pricing_discussion"] = s.checklist.pricing_discussion
    elif event_type == "payment_recorded":
        due = s.amount_due
        if due is not None:
            left = due - s.paid_total
            if left > 0:
                values["amount"] = f"{left:.2f}"
    return values


def build(
    event_type: str,
    ctx: Context,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    extra_rows: int = 0,
) -> EventForm:
    shown = defaults(event_type, ctx) if values is None else values
    button, intro = ACTIONS[event_type]
    if event_type == "quote_drafted" and ctx.state.quote is not None:
        button = "Revise quote"
    form = EventForm(
        type=event_type,
        button=button,
        intro=intro,
        items=items_for(event_type, ctx, shown, extra_rows),
        values=shown,
        errors=errors or {},
        general=general or [],
        extra_rows=extra_rows,
    )
    if event_type == "quote_drafted":
        _builder_marks(form, ctx)
    elif event_type == "invoice_sent":
        _blank_rows_taxable(form)
    return form


def _blank_rows_taxable(form: EventForm) -> None:
    """A new line is taxed unless the person unticks it."""
    for item in form.items:
        if isinstance(item, Rows) and item.name == "lines":
            for i in range(item.count):
                prefix = f"lines-{i}-"
                if not any(_text(form.values, prefix + c) for c in _ROW_COLUMNS["lines"]):
                    form.values.setdefault(prefix + "taxable", "on")


def _builder_marks(form: EventForm, ctx: Context) -> None:
    """The quote builder's extras: the price book's SKUs to suggest, option names, new rows
    taxable, a fixed price's input read-only (the server refuses a changed one anyway), and a
    word under each row saying where its price comes from."""
    symbol = ctx.currency_symbol
    form.datalist = [
        (item.sku, f"{item.name}: {display.money(item.unit_price, symbol)}")
        for item in ctx.pricebook
    ]
    values = form.values
    for n, name in enumerate(OPTION_NAMES):
        values.setdefault(f"option{n + 1}_name", name)
    for item in form.items:
        if not isinstance(item, Rows) or item.name not in OPTION_GROUPS:
            continue
        for i in range(item.count):
            prefix = f"{item.name}-{i}-"
            row = {c: _text(values, prefix + c) for c in QUOTE_COLUMNS}
            if not any(row.values()):
                values.setdefault(prefix + "taxable", "on")
                continue
            priced = ctx.prices.get(row["sku"]) if row["sku"] else None
            if priced is None:
                form.row_notes[prefix] = "Free line (not from the price book)"
            elif priced.basis in ("tier", "client"):
                # Shown at the fixed price, whatever was typed (a changed one was refused).
                values[prefix + "unit_price"] = f"{priced.unit_price:.2f}"
                form.readonly.add(prefix + "unit_price")
                whose = "client" if priced.basis == "client" else ctx.state.client.tier.upper()
                form.row_notes[prefix] = (
                    f"Fixed {whose} price {display.money(priced.unit_price, symbol)}: "
                    "it cannot be changed on a quote"
                )
            else:
                form.row_notes[prefix] = (
                    f"Price book: {priced.name}, {display.money(priced.unit_price, symbol)}"
                    + ("" if priced.taxable else ", not taxed")
                )


def kept(form: FormData) -> dict[str, Any]:
    """What the person typed, as the form shows it again (checkbox groups as lists)."""
    values: dict[str, Any] = {}
    for key in form:
        many = form.getlist(key)
        values[key] = [str(v) for v in many] if key == "skus" else str(many[-1])
    return values


# --- reading a form into the event -----------------------------------------------------------


class FormProblems(Exception):
    """What is wrong with a form, by field name (and any problem of the whole form)."""

    def __init__(self, errors: dict[str, str], general: list[str]) -> None:
        super().__init__("; ".join([*general, *errors.values()]))
        self.errors = errors
        self.general = general


def _text(values: dict[str, Any], name: str) -> str:
    value = values.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _checked(values: dict[str, Any], name: str) -> bool:
    return bool(_text(values, name))


def _rows(
    values: dict[str, Any], name: str, columns: list[str]
) -> list[tuple[int, dict[str, str]]]:
    """The non-empty rows of a list editor, with each row's form index."""
    indexes: set[int] = set()
    prefix = f"{name}-"
    for key in values:
        if key.startswith(prefix):
            index = key[len(prefix) :].split("-", 1)[0]
            if index.isdigit() and int(index) < MAX_ROWS:
                indexes.add(int(index))
    rows = []
    for i in sorted(indexes):
        row = {c: _text(values, f"{name}-{i}-{c}") for c in columns}
        if any(row.values()):
            rows.append((i, row))
    return rows


def _amount(text: str, ctx: Context) -> str:
    """Money as people type it: `$1,200.50` is 1200.50."""
    return _money_text(text, ctx.currency_symbol)


def _money_text(text: str, symbol: str) -> str:
    return text.replace(symbol, "").replace(",", "").replace(" ", "")


def _whole(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _payload(event_type: str, values: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], dict]:
    """The event's fields from the form, and where each list row came from (for errors)."""
    model = FORM_EVENTS[event_type]
    data: dict[str, Any] = {"type": event_type}
    where: dict[tuple[str, int], int] = {}  # (list name, position) -> form row index
    errors: dict[str, str] = {}
    for name in model.model_fields:
        if name == "type":
            continue
        info = model.model_fields[name]
        annotation, optional = _plain(info.annotation)
        if name in HIDDEN_FIELDS:
            continue
        if event_type == "quote_drafted" and name == "lines":
            _quote_payload(values, ctx.currency_symbol, data, where)
        elif event_type == "quote_drafted" and name in ("options", "discount"):
            continue
        elif event_type == "supplier_quote_requested" and name == "lines":
            lines: list[dict[str, Any]] = []
            for position, (i, row) in enumerate(
                _rows(values, "lines", ["sku", "description", "quantity"])
            ):
                where[("lines", position)] = i
                lines.append({**row, "sku": row["sku"] or None})
            data["lines"] = lines
        elif name == "lines":
            rows = _rows(values, "lines", ["description", "quantity", "unit_price", "sku"])
            lines = []
            for position, (i, row) in enumerate(rows):
                where[("lines", position)] = i
                lines.append(
                    {
                        **row,
                        "unit_price": _amount(row["unit_price"], ctx),
                        "sku": row["sku"] or None,
                        "taxable": _checked(values, f"lines-{i}-taxable"),
                    }
                )
            if event_type == "invoice_sent":
                # The approved quote's own lines, untouched, are the default the event means.
                approved = [line.model_dump(mode="json") for line in _quote_lines(ctx)]
                if lines and not _same_lines(lines, approved):
                    data["lines"] = lines
            else:
                data["lines"] = lines
        elif name == "parts":
            columns = ["sku", "description", "quantity", "supplier", "po_number",
                       "expected_delivery"]  # fmt: skip
            parts = []
            for position, (i, row) in enumerate(_rows(values, "parts", columns)):
                where[("parts", position)] = i
                parts.append({**row, "quantity": _whole(row["quantity"])})
            data["parts"] = parts
        elif name == "parts_used":
            used = []
            for position, (i, row) in enumerate(_rows(values, "parts_used", ["sku", "quantity"])):
                where[("parts_used", position)] = i
                used.append(row)
            data["parts_used"] = used
        elif name == "skus":
            chosen = values.get("skus", [])
            data["skus"] = [chosen] if isinstance(chosen, str) else list(chosen)
        elif name == "fields":
            data["fields"] = _receipt_values(values, ctx, errors)
        elif annotation is bool:
            data[name] = _checked(values, name)
        elif annotation is datetime:
            try:
                moment = display.from_local_input(_text(values, name), ctx.zone)
            except ValueError:
                errors[name] = f"{_label(event_type, name)}: enter a date and a time"
                continue
            if moment is not None:
                data[name] = moment
        else:
            # Empty means "not given": the model's default, or its "Field required".
            text = _text(values, name)
            if text:
                if annotation is int:
                    data[name] = _whole(text)
                elif annotation is Decimal:
                    data[name] = _amount(text, ctx)
                else:
                    data[name] = text
    return data, {"where": where, "errors": errors}


def _quote_payload(values: dict[str, Any], symbol: str, data: dict[str, Any], where: dict) -> None:
    """The builder's options: one filled is a plain quote (`lines`), two or three are
    `options`; empty ones are dropped. `where` keeps each list's form rows for errors."""
    filled: list[tuple[int, str, list[dict[str, Any]]]] = []
    for n, group in enumerate(OPTION_GROUPS):
        lines = []
        for position, (i, row) in enumerate(_rows(values, group, list(QUOTE_COLUMNS))):
            where[(group, position)] = i
            lines.append(
                {
                    **row,
                    "unit_price": _money_text(row["unit_price"], symbol),
                    "sku": row["sku"] or None,
                    "taxable": _checked(values, f"{group}-{i}-taxable"),
                }
            )
        if lines:
            filled.append((n, group, lines))
    where["groups"] = [(n, group) for n, group, _ in filled]
    if len(filled) <= 1:
        data["lines"] = filled[0][2] if filled else []
        where["groups"] = where["groups"] or [(0, "lines")]
    else:
        data["options"] = [
            {"name": _text(values, f"option{n + 1}_name") or OPTION_NAMES[n], "lines": lines}
            for n, _, lines in filled
        ]
    amount = _money_text(_text(values, "discount_amount"), symbol)
    percent = _text(values, "discount_percent").rstrip("%").strip()
    reason = _text(values, "discount_reason")
    if amount or percent or reason:
        discount: dict[str, Any] = {"reason": reason}
        if amount:
            discount["amount"] = amount
        if percent:
            discount["percent"] = percent
        data["discount"] = discount


def quote_field(values: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str, str] | None:
    """A quote builder's problem at `lines[i].x` or `options[k].lines[i].x` (the model's or the
    price book's): its form field and the words before the message, or None."""
    where: dict[Any, Any] = {}
    _quote_payload(values, "", {}, where)  # the rows only: no money read
    groups = where["groups"]
    if loc[:1] == ("lines",):
        k, rest = 0, loc[1:]
    elif loc[:1] == ("options",) and len(loc) >= 2 and isinstance(loc[1], int):
        k = loc[1]
        if len(loc) >= 3 and loc[2] == "name":
            n = groups[k][0] if k < len(groups) else k
            return f"option{n + 1}_name", f"Option {n + 1} name"
        rest = loc[3:] if len(loc) >= 3 and loc[2] == "lines" else ()
    else:
        return None
    if k >= len(groups):
        return None
    n, group = groups[k]
    option = f"Option {n + 1}, " if len(groups) > 1 or n > 0 else ""
    if not rest or not isinstance(rest[0], int):
        return f"{group}-0-sku", f"{option}lines".capitalize()
    row = where.get((group, rest[0]), rest[0])
    column = str(rest[1]) if len(rest) >= 2 else "description"
    column = column if column in (*QUOTE_COLUMNS, "taxable") else "description"
    words = f"{option}line {row + 1}, {_ROW_LABELS.get(column, column)}"
    return f"{group}-{row}-{column}", words[:1].upper() + words[1:]


_REFUSAL_PATH = re.compile(r"^(lines|options)((?:\[\d+\]|\.[a-z_]+)*)$")


def refusal_field(event_type: str, values: dict[str, Any], message: str) -> str | None:
    """The form field a price-book refusal names (`options[1].lines[0].unit_price: …`)."""
    if event_type != "quote_drafted":
        return None
    head = message.split(":", 1)[0].strip()
    match = _REFUSAL_PATH.match(head)
    if match is None:
        return None
    loc: list[Any] = [match.group(1)]
    for part in re.findall(r"\[(\d+)\]|\.([a-z_]+)", match.group(2)):
        loc.append(int(part[0]) if part[0] else part[1])
    found = quote_field(values, tuple(loc))
    return found[0] if found else None


def _same_lines(typed: list[dict[str, Any]], approved: list[dict[str, Any]]) -> bool:
    def norm(line: dict[str, Any]) -> tuple[str, Decimal | str, Decimal | str, str, bool]:
        def number(v: Any) -> Decimal | str:
            try:
                return Decimal(str(v))
            except ArithmeticError:
                return str(v)

        return (str(line["description"]).strip(), number(line["quantity"]),
                number(line["unit_price"]), str(line.get("sku") or ""),
                bool(line.get("taxable", True)))  # fmt: skip

    return len(typed) == len(approved) and all(
        norm(a) == norm(b) for a, b in zip(typed, approved, strict=True)
    )


def _receipt_values(values: dict[str, Any], ctx: Context, errors: dict[str, str]) -> dict:
    """The configured receipt fields' values; each checked by the closeout rules, so a problem
    shows at its field (the workflow checks them again)."""
    out: dict[str, Any] = {}
    for f in ctx.receipt_fields:
        name = receipt_name(f.key)
        if f.type == "checkbox":
            out[f.key] = _checked(values, name)
        else:
            text = _text(values, name)
            if text:
                out[f.key] = text
        problems = validate_receipt_fields(CloseoutSettings(receipt_fields=[f]), out)
        own = [p for p in problems if not p.startswith("unknown receipt field")]
        if own:
            errors[name] = own[0]
    return out


def _label(event_type: str, name: str) -> str:
    return EVENT_LABELS.get((event_type, name)) or LABELS.get(name) or name.replace("_", " ")


_ROW_LABELS = {
    "description": "description",
    "quantity": "quantity",
    "unit_price": "unit price",
    "sku": "SKU",
    "supplier": "supplier",
    "po_number": "PO number",
    "expected_delivery": "expected delivery",
}
_LIST_WORDS = {"lines": "Line", "parts": "Part line", "parts_used": "Part used row"}


def _message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _place(event_type: str, loc: tuple[Any, ...], where: dict, msg: str) -> tuple[str, str]:
    """A pydantic error's form field and the words for it."""
    if not loc:
        return "", msg
    head = str(loc[0])
    if event_type == "quote_drafted" and head in ("lines", "options"):
        found = quote_field(where.get("values", {}), loc)
        if found is not None:
            name, words = found
            if "at least 1" in msg:
                msg = "add at least one line"
            return name, f"{words}: {msg}"
    if event_type == "quote_drafted" and head == "discount":
        column = str(loc[1]) if len(loc) >= 2 else ""
        if column == "reason":
            return "discount_reason", f"Discount reason: {msg}"
        if column == "percent":
            return "discount_percent", f"Discount percent: {msg}"
        return "discount_amount", f"Discount: {msg}"
    if head in _LIST_WORDS and len(loc) >= 2 and isinstance(loc[1], int):
        row = where.get((head, loc[1]), loc[1])
        if len(loc) >= 3:
            column = str(loc[2])
            name = f"{head}-{row}-{column}"
            return name, f"{_LIST_WORDS[head]} {row + 1}, {_ROW_LABELS.get(column, column)}: {msg}"
        return f"{head}-{row}-description", f"{_LIST_WORDS[head]} {row + 1}: {msg}"
    if head in _LIST_WORDS:
        first = f"{head}-0-sku" if head != "lines" else "lines-0-description"
        what = {"lines": "Lines", "parts": "Parts ordered", "parts_used": "Parts used"}[head]
        if "at least 1" in msg:
            msg = "add at least one line"
        return first, f"{what}: {msg}"
    if head == "skus":
        if "at least 1" in msg:
            msg = "tick at least one part"
        return "skus", f"Parts that arrived: {msg}"
    label = _label(event_type, head)
    if msg == "Field required":
        model = FORM_EVENTS[event_type]
        info = model.model_fields.get(head)
        choice = info is not None and typing.get_origin(_plain(info.annotation)[0]) is Literal
        msg = "choose one" if choice or head in ("owner", "technician") else "enter a value"
    return head, f"{label}: {msg}"


def read(event_type: str, values: dict[str, Any], ctx: Context) -> ev._Event:
    """The event the form describes, checked as the API checks a body (models.bounds at the
    edge). Raises FormProblems, by field."""
    data, extra = _payload(event_type, values, ctx)
    extra["where"]["values"] = values
    errors: dict[str, str] = dict(extra["errors"])
    general: list[str] = []
    model = FORM_EVENTS[event_type]
    try:
        event = model.model_validate(data, context=EDGE)
    except ValidationError as invalid:
        for error in invalid.errors():
            loc = tuple(error.get("loc", ()))
            # A time the person typed was converted here: its error is already said.
            if loc and str(loc[0]) in errors:
                continue
            name, words = _place(event_type, loc, extra["where"], _message(error["msg"]))
            if name:
                errors.setdefault(name, words)
            else:
                general.append(words)
        raise FormProblems(errors, general) from None
    if errors:
        raise FormProblems(errors, general)
    return event


def place_refusal(form_items: list[Any], message: str) -> str | None:
    """The field a rule's refusal names first ("override_reason: ..."), if the form has it."""
    head = message.split(":", 1)[0].strip()
    for item in form_items:
        if isinstance(item, Field) and item.name == head:
            return head
        if isinstance(item, (Rows, Choices)) and item.name == head:
            return f"{head}-0-{item.columns[0].name}" if isinstance(item, Rows) else head
    return None
