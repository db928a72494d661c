"""Table tests: the quote rules of issue 11 (models/lifecycle.py) — options, the customer's signed
approval of one version, earlier versions kept, supplier requests for quote and their answers,
and quotes stored before options and tax."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from models.lifecycle import JobState, Quote, Role, Stage, allowed_events
from tests.models.test_lifecycle_table import (
    CUSTOMER,
    MANAGER,
    OFFICE,
    OWNER,
    QUOTE_LINES,
    TECH,
    Job,
    event,
    reach,
)

S = Stage
OPTIONS = [
    {"name": "Repair", "lines": [{"description": "Repair", "quantity": 1, "unit_price": "200"}]},
    {"name": "Replace", "lines": [{"description": "Unit", "quantity": 1, "unit_price": "900"}]},
    {
        "name": "Replace + plan",
        "lines": [
            {"description": "Unit", "quantity": 1, "unit_price": "900"},
            {"description": "Plan", "quantity": 1, "unit_price": "150", "taxable": False},
        ],
    },
]
RFQ: dict[str, Any] = {
    "supplier": "Northside HVAC Supply",
    "supplier_email": "orders@northside.example.com",
    "po_number": "PO-2291",
    "lines": [{"sku": "CAP-455", "description": "Run capacitor", "quantity": 2}],
}


def sent_with_options(count: int = 3, **fields: Any) -> Job:
    job = reach(S.prospect)
    job.do(OFFICE, "quote_drafted", options=OPTIONS[:count], **fields)
    job.do(OFFICE, "quote_sent")
    return job


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "keys"), [(2, ["good", "better"]), (3, ["good", "better", "best"])]
)
def test_options_are_good_better_best_in_order(count: int, keys: list[str]) -> None:
    job = sent_with_options(count, tax_rate="10")
    quote = job.state.quote
    assert quote is not None
    assert [o.key for o in quote.options] == keys
    assert [o.name for o in quote.options] == [o["name"] for o in OPTIONS[:count]]
    # until one is chosen, the quote shows the first
    assert quote.chosen is None
    assert quote.lines == quote.options[0].lines
    assert quote.total == quote.options[0].totals.total == Decimal("220.00")


def test_a_single_quote_is_the_option_quote() -> None:
    job = reach(S.quote_sent)
    quote = job.state.quote
    assert quote is not None and [o.key for o in quote.options] == ["quote"]
    state = job.do(OFFICE, "quote_approved").state
    assert state.quote is not None and state.quote.chosen == "quote"


@pytest.mark.parametrize(
    "fields",
    [
        {"lines": QUOTE_LINES, "options": OPTIONS[:2]},
        {},
        {"options": OPTIONS[:1]},
        {"options": [*OPTIONS, OPTIONS[0]]},
        {"options": [{"name": " ", "lines": QUOTE_LINES}, OPTIONS[0]]},
        {"options": [{"name": "x", "lines": []}, OPTIONS[0]]},
    ],
    ids=["both", "neither", "one-option", "four-options", "blank-name", "no-lines"],
)
def test_lines_or_two_or_three_options(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event("quote_drafted", **fields)


@pytest.mark.parametrize("actor", [OFFICE, MANAGER, CUSTOMER], ids=lambda a: a.role.value)
def test_approving_options_without_choosing_names_them(actor: Any) -> None:
    job = sent_with_options()
    fields = {"signature_name": "Ann Customer"} if actor.role == Role.customer else {}
    refusal = job.refused(actor, "quote_approved", **fields)
    assert refusal.code == "invalid_event"
    assert "option" in refusal.message
    assert "good, better, best" in refusal.message
    assert "none was chosen" in refusal.message


def test_approving_an_option_the_quote_does_not_have() -> None:
    job = sent_with_options(2)
    refusal = job.refused(OFFICE, "quote_approved", option="best")
    assert refusal.code == "invalid_event"
    assert "'best' is not one of them" in refusal.message
    assert "good, better" in refusal.message
    single = reach(S.quote_sent)
    assert single.refused(OFFICE, "quote_approved", option="good").code == "invalid_event"
    with pytest.raises(ValidationError):
        event("quote_approved", option="premium")


def test_approving_an_option_makes_it_the_quote_and_the_contract() -> None:
    job = sent_with_options(tax_rate="8.875", discount={"percent": "10", "reason": "loyal"})
    result = job.do(OFFICE, "quote_approved", option="best")
    state = result.state
    assert result.assign_number is True
    quote = state.quote
    assert quote is not None and quote.chosen == "best"
    best = quote.option("best")
    assert best is not None
    # 1050.00 less 105.00; the unit's share 90.00 off 900.00 -> 810.00 x 8.875 % = 71.89
    assert (best.totals.subtotal, best.totals.discount) == (Decimal("1050.00"), Decimal("105.00"))
    assert best.totals.tax == Decimal("71.89")
    assert quote.lines == best.lines
    assert state.contract_amount == quote.total == best.totals.total == Decimal("1016.89")
    # the invoice bills it as quoted: same rate, same discount, the contract amount
    for actor, event_type in [
        (OFFICE, "job_scheduled"),
        (OFFICE, "checklist_completed"),
        (TECH, "tech_dispatched"),
        (TECH, "tech_checked_in"),
        (TECH, "job_completed"),
    ]:
        job.do(actor, event_type)
    invoice = job.do(OFFICE, "invoice_sent").state.invoice
    assert invoice is not None
    assert invoice.total == Decimal("1016.89")
    assert (invoice.tax_rate, invoice.discount) == (quote.tax_rate, quote.discount)


def test_a_managers_approval_chooses_an_option_too() -> None:
    job = sent_with_options(2)
    job.do(OWNER, "approval_requested")
    refusal = job.refused(MANAGER, "approval_granted")
    assert refusal.code == "invalid_event" and "good, better" in refusal.message
    state = job.do(MANAGER, "approval_granted", option="better").state
    assert state.quote is not None and state.quote.chosen == "better"
    assert state.contract_amount == Decimal("900.00")


# --- the customer ------------------------------------------------------------------------------


def test_the_customer_must_sign() -> None:
    job = reach(S.quote_sent)
    refusal = job.refused(CUSTOMER, "quote_approved", quote_version=1)
    assert refusal.code == "invalid_event"
    assert "signature_name" in refusal.message
    assert refusal.allowed_events == ["quote_approved", "quote_declined"]
    with pytest.raises(ValidationError):
        event("quote_approved", signature_name="   ")
    # the office approving on the customer's word needs no signature
    assert job.send(OFFICE, "quote_approved").state.stage == S.approved  # type: ignore[union-attr]
    state = job.do(CUSTOMER, "quote_approved", signature_name="Ann Customer").state
    assert state.stage == S.approved and state.contract_amount is not None


@pytest.mark.parametrize("event_type", ["quote_approved", "quote_declined"])
def test_a_stale_version_is_refused_naming_the_newer(event_type: str) -> None:
    job = reach(S.quote_sent)
    job.do(OFFICE, "quote_declined", reason="too much")
    job.do(OFFICE, "quote_drafted")
    job.do(OFFICE, "quote_sent")
    assert job.state.quote is not None and job.state.quote.version == 2
    fields: dict[str, Any] = {"quote_version": 1}
    fields |= (
        {"signature_name": "Ann Customer"} if event_type == "quote_approved" else {"reason": "no"}
    )
    refusal = job.refused(CUSTOMER, event_type, **fields)
    assert refusal.code == "invalid_event"
    assert "version 1 has been replaced by version 2" in refusal.message
    assert job.send(CUSTOMER, event_type, **fields | {"quote_version": 2}).state  # type: ignore[union-attr]


def test_the_customer_declines() -> None:
    job = reach(S.quote_sent)
    state = job.do(
        CUSTOMER,
        "quote_declined",
        reason="found cheaper",
        quote_version=1,
        ip_address="203.0.113.9",
    ).state
    assert state.stage == S.saving
    assert allowed_events(state, CUSTOMER) == ["quote_approved"]


def test_earlier_versions_are_kept() -> None:
    job = reach(S.quote_sent)
    first = job.state.quote
    job.do(OFFICE, "quote_declined", reason="too much")
    job.do(OFFICE, "quote_drafted", options=OPTIONS[:2], tax_rate="5")
    job.do(OFFICE, "quote_drafted", lines=QUOTE_LINES[1:])
    state = job.state
    assert state.quote is not None and state.quote.version == 3
    assert [q.version for q in state.earlier_quotes] == [1, 2]
    assert state.earlier_quotes[0] == first  # as it was sent
    assert state.earlier_quotes[0].sent_at is not None
    assert [o.key for o in state.earlier_quotes[1].options] == ["good", "better"]
    assert JobState.model_validate_json(state.model_dump_json()) == state


# --- supplier requests for quote ---------------------------------------------------------------


@pytest.mark.parametrize("stage", [S.quoting, S.quote_sent, S.saving, S.approved])
@pytest.mark.parametrize("actor", [OFFICE, MANAGER], ids=lambda a: a.role.value)
def test_supplier_request_by_office_and_manager(stage: Stage, actor: Any) -> None:
    job = reach(stage)
    before = job.state
    state = job.do(actor, "supplier_quote_requested", **RFQ).state
    assert state.stage == stage
    (request,) = state.supplier_requests
    assert (request.supplier, request.po_number, request.requested_by) == (
        "Northside HVAC Supply",
        "PO-2291",
        actor.username,
    )
    assert request.requested_at == job.at and request.answered_at is None
    assert state.model_dump(exclude={"supplier_requests"}) == before.model_dump(
        exclude={"supplier_requests"}
    )


@pytest.mark.parametrize("actor", [OWNER, TECH, CUSTOMER], ids=lambda a: a.role.value)
def test_supplier_request_roles(actor: Any) -> None:
    job = reach(S.quoting)
    refusal = job.refused(actor, "supplier_quote_requested", **RFQ)
    assert refusal.code == "role_not_allowed"
    assert "manager, office" in refusal.message


@pytest.mark.parametrize("stage", [S.lead, S.prospect, S.awaiting_parts, S.completed])
def test_supplier_request_stages(stage: Stage) -> None:
    job = reach(stage)
    assert job.refused(OFFICE, "supplier_quote_requested", **RFQ).code == "event_not_allowed"


def test_supplier_request_with_a_used_po_is_invalid() -> None:
    job = reach(S.quoting)
    job.do(OFFICE, "supplier_quote_requested", **RFQ)
    refusal = job.refused(MANAGER, "supplier_quote_requested", **RFQ | {"supplier": "Other"})
    assert refusal.code == "invalid_event"
    assert "PO-2291 was already used" in refusal.message
    job.do(OFFICE, "supplier_quote_requested", **RFQ | {"po_number": "PO-2292"})
    assert [r.po_number for r in job.state.supplier_requests] == ["PO-2291", "PO-2292"]


@pytest.mark.parametrize(
    "bad",
    [
        {"lines": []},
        {"supplier_email": "not-an-email"},
        {"po_number": " "},
        {"lines": [{"description": "x", "quantity": 0}]},
    ],
)
def test_supplier_request_payload(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event("supplier_quote_requested", **RFQ | bad)


ANSWER = {"channel": "email", "direction": "incoming", "summary": "$41.20 each, 3 days"}


def test_a_supplier_answer_marks_the_request_answered() -> None:
    job = reach(S.quoting)
    job.do(OFFICE, "supplier_quote_requested", **RFQ)
    refusal = job.refused(OFFICE, "communication_logged", **ANSWER | {"po_number": "PO-9"})
    assert refusal.code == "invalid_event"
    assert "no supplier request PO-9" in refusal.message and "PO-2291" in refusal.message
    state = job.do(OWNER, "communication_logged", **ANSWER | {"po_number": "PO-2291"}).state
    answered_at = job.at
    assert state.supplier_requests[0].answered_at == answered_at
    # a second answer keeps the first time
    state = job.do(OFFICE, "communication_logged", **ANSWER | {"po_number": "PO-2291"}).state
    assert state.supplier_requests[0].answered_at == answered_at
    # a communication without a PO number is only recorded
    before = job.state
    assert job.do(OFFICE, "communication_logged", **ANSWER).state == before


def test_an_answer_on_a_job_without_requests_is_invalid() -> None:
    job = reach(S.approved)
    refusal = job.refused(OFFICE, "communication_logged", **ANSWER | {"po_number": "PO-1"})
    assert refusal.code == "invalid_event"
    assert "there are: none" in refusal.message


# --- quotes stored before options and tax ------------------------------------------------------

OLD_QUOTE = {
    "version": 2,
    "lines": [
        {"description": "Compressor", "quantity": "1", "unit_price": "450.00", "sku": "CMP-1"},
        {"description": "Labour (hours)", "quantity": "2", "unit_price": "95.00"},
    ],
    "total": "640.00",
    "valid_until": None,
    "notes": "",
    "sent_at": "2026-11-20T10:00:00Z",
    "sent_to": "client@example.com",
    "approval_expected_at": None,
}


def test_an_old_quote_loads_with_one_option() -> None:
    quote = Quote.model_validate_json(Quote.model_validate(OLD_QUOTE).model_dump_json())
    assert [(o.key, o.name) for o in quote.options] == [("quote", "Quote")]
    assert quote.total == quote.totals.total == Decimal("640.00")
    assert quote.totals.subtotal == Decimal("640.00") and quote.totals.tax == 0
    assert quote.chosen is None and quote.tax_rate == 0 and quote.discount is None
    assert all(line.taxable and line.price_basis == "free" for line in quote.lines)


def test_an_old_state_approves_and_invoices_as_before() -> None:
    job = Job()
    job.do(OFFICE, "job_created")
    job.do(OFFICE, "owner_assigned")
    job.do(OFFICE, "lead_qualified")
    data = job.state.model_dump(mode="json", exclude={"earlier_quotes", "supplier_requests"})
    data |= {"stage": "quote_sent", "quote": OLD_QUOTE}
    job.state = JobState.model_validate(data)
    state = job.do(OFFICE, "quote_approved").state
    assert state.quote is not None and state.quote.chosen == "quote"
    assert state.contract_amount == Decimal("640.00")
    # a customer's link to it answers version 2
    assert job.state.quote is not None and job.state.quote.version == 2
