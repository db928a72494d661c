"""Property tests: random event sequences by random actors through the lifecycle rules.

A sequence starts from `new_job` and at each step picks an event type (mostly one that some actor
may send now, sometimes anything), an actor (mostly one allowed to send it, sometimes anyone from
a small pool of usernames and roles) and a payload (mostly one that is valid for the job as it is,
sometimes one that is well-formed but wrong for the job). The test plays the workflow's part: it
keeps the accepted state, bumps `seq` and allocates a job number when asked.

- `test_random_sequences_keep_the_rules`, at every step: the state is never invalid (the
  invariants in `check_invariants`: final stages stay final, one job number at most and never
  changed, `seq` left to the workflow, `stage_entered_at` moves exactly with the stage, closed
  means paid in full and verified, ...); `apply` never mutates its input; a refusal lists exactly
  `allowed_events(state, actor)`; an accepted event was allowed and its actor's role (and, for
  owner/technician events, identity) fits the rule; a valid payload is never `invalid_event`.
- `test_allowed_events_is_exact`: `allowed_events(state, actor)` is exactly the set of event
  types whose canonical valid payload is accepted (every event type, both directions).
- `test_final_stages_stay_final`: closed and canceled jobs refuse everything, by anyone.

Quotes (issue 11): payloads draft quotes of lines or of two or three options, with taxable and
non-taxable lines, discounts and tax rates; approvals choose an option (the customer signs and
names the version they saw); supplier requests for quote and their answers. Every quote's total
is its chosen (or first) option's `totals.total`, the contract amount is the chosen option's
total, an invoice from the approved quote bills exactly the contract amount, and the customer
moves a job only by approving or declining its quote.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from models import pricing
from models.events import EVENT_TYPES, Event
from models.lifecycle import (
    AFTER_COMPLETION,
    BEFORE_COMPLETION,
    FINAL_STAGES,
    MILESTONE_OF,
    RULES,
    USER_ROLES,
    Accepted,
    Actor,
    ClientSnapshot,
    JobState,
    Refusal,
    Reminders,
    Role,
    Stage,
    allowed_events,
    apply,
    new_job,
)

S = Stage
# people, a supplier feed, and Jobline itself (which no rule lets send an event)
ROLES: tuple[Role, ...] = (*USER_ROLES, Role.integration, Role.system, Role.customer)
CUSTOMER = "customer"
OWNER = "sam"
TECHNICIAN = "tina"
USERNAMES = (OWNER, TECHNICIAN, "olive", "mona", "sid", "tom", CUSTOMER)
ACTORS = [Actor(username=u, role=r) for u in USERNAMES for r in ROLES]
CLIENT_ID = 42
BASE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

PRE_SALE = frozenset({S.lead, S.prospect, S.quoting, S.quote_sent, S.saving})
SOLD = frozenset(Stage) - PRE_SALE - {S.canceled}
DONE = frozenset({S.completed, S.invoiced, S.verified, S.closed})
# events that never move the job
RECORD_ONLY = frozenset(
    {
        "note_added",
        "contact_updated",
        "communication_logged",
        "customer_update_sent",
        "supplier_quote_requested",
    }
)
CUSTOMER_EVENTS = frozenset({"quote_approved", "quote_declined"})
TECHNICIAN_EVENTS = frozenset(
    {"tech_dispatched", "tech_checked_in", "job_completed", "job_incomplete"}
)
EVIDENCE = ("documents", "notes", "parts_usage", "photos", "customer_communication")
SKUS = ("A", "B", "C", "D")
MAX_STEPS = 40  # a sequence runs until its job is final (and a few steps more) or this many

_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def make_event(event_type: str, payload: dict[str, Any]) -> Any:
    return _EVENT.validate_python({"type": event_type, **payload})


# --- payloads ----------------------------------------------------------------------------------

LINE_POOL: list[dict[str, Any]] = [
    {"description": "Compressor", "quantity": "1", "unit_price": "450.00", "sku": "CMP-1"},
    {"description": "Labour (hours)", "quantity": "2", "unit_price": "95.00"},
    {"description": "Filter", "quantity": "0.5", "unit_price": "19.99", "sku": "F-2"},
    {"description": "Goodwill", "quantity": "1", "unit_price": "0.00"},
    {"description": "Permit fee", "quantity": "1", "unit_price": "33.33", "taxable": False},
    {"description": "Refrigerant (lb)", "quantity": "3", "unit_price": "10.05", "sku": "R-410"},
]
OPTION_NAMES = ("Repair", "Replace", "Replace + 10-year plan")
SUPPLIER_LINES = [{"sku": "CAP-455", "description": "Run capacitor", "quantity": 2}]


def some_lines(rnd: random.Random, k_max: int = 3) -> list[dict[str, Any]]:
    """1..k_max lines from the pool, each taxable or not at random."""
    lines = rnd.choices(LINE_POOL, k=rnd.randint(1, k_max))
    return [line | {"taxable": rnd.random() < 0.7} for line in lines]


def some_discount(rnd: random.Random) -> dict[str, Any] | None:
    match rnd.randint(0, 3):
        case 0:
            return None
        case 1:  # may be more than the subtotal: capped
            return {"amount": rnd.choice(["5", "10.50", "99999"]), "reason": "goodwill"}
        case 2:
            return {"percent": rnd.choice(["5", "12.5", "33.33"]), "reason": "returning"}
        case _:
            return {"percent": "100", "reason": "warranty"}


def option_keys(state: JobState) -> list[str]:
    return [o.key for o in state.quote.options] if state.quote is not None else []


def quote_version(state: JobState) -> int:
    return state.quote.version if state.quote is not None else 1


def part_line(sku: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": f"part {sku}",
        "quantity": 2,
        "supplier": "Acme Supply",
        "po_number": f"PO-{sku}",
        "expected_delivery": "2026-12-01",
    }


def line_dicts(state: JobState) -> list[dict[str, Any]] | None:
    """The approved quote's lines as a payload, or None when the job has no approved quote."""
    if state.quote is None or state.contract_amount is None:
        return None
    return [line.model_dump(mode="json") for line in state.quote.lines]


def billing(state: JobState) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if not (state.client.billing_email or state.client.email):
        fields["billing_email"] = "ap@example.com"
    if state.client.tier == "platinum":
        fields["po_number"] = "PO-7"
    return fields


def remaining(state: JobState) -> Decimal:
    due = state.amount_due
    left = due - state.paid_total if due is not None else Decimal("0")
    return left if left > 0 else Decimal("1.00")


def canonical(event_type: str, state: JobState, at: datetime) -> dict[str, Any]:
    """One payload per event type that the rules accept whenever the event is allowed (by any
    role that may send it: an approval is signed and names the first option and the version)."""
    match event_type:
        case "job_created":
            return {"client_id": state.client.id, "title": "No heat", "source": "incoming_call"}
        case "owner_assigned":
            return {"owner": OWNER}
        case "quote_drafted":
            return {"lines": LINE_POOL[:2]}
        case "quote_sent":
            return {"to_email": "buyer@example.com"}
        case "quote_approved":
            keys = option_keys(state)
            return {
                "signature_name": "Ann Customer",
                "quote_version": quote_version(state),
            } | ({"option": keys[0]} if keys else {})
        case "approval_granted":
            keys = option_keys(state)
            return {"option": keys[0]} if keys else {}
        case "approval_denied" | "quote_declined" | "job_canceled":
            return {"reason": "customer went elsewhere"}
        case "supplier_quote_requested":
            return {
                "supplier": "Northside HVAC Supply",
                "supplier_email": "orders@northside.example.com",
                "po_number": f"RFQ-{len(state.supplier_requests) + 1}",
                "lines": SUPPLIER_LINES,
            }
        case "parts_ordered":
            return {"parts": [part_line(f"N{len(state.parts)}")]}
        case "parts_delivered":
            return {"skus": [p.line.sku for p in state.outstanding_parts] or ["A"]}
        case "job_scheduled":
            return {
                "technician": TECHNICIAN,
                "window_start": (at + timedelta(days=1)).isoformat(),
                "window_end": (at + timedelta(days=1, hours=2)).isoformat(),
            }
        case "checklist_completed":
            return {
                "parts_verified": True,
                "check_in_phone": "+1 555 0100",
                "pricing_discussion": "allowed",
                "platinum_protocol_acknowledged": True,
            }
        case "job_completed":
            return {"work_performed": "Replaced the compressor"}
        case "job_incomplete":
            return {"reason": "insufficient_time"}
        case "invoice_sent":
            fields = billing(state)
            if line_dicts(state) is None:
                fields["lines"] = LINE_POOL[1:2]
            return fields
        case "evidence_verified":
            return dict.fromkeys(EVIDENCE, True)
        case "payment_recorded":
            return {"amount": str(remaining(state)), "method": "card"}
        case "note_added":
            return {"text": "Customer prefers mornings"}
        case "contact_updated":
            return {"phone": "555-0199"}
        case "communication_logged":
            return {"channel": "sms", "direction": "outgoing", "summary": "Sent the ETA"}
        case "customer_update_sent":
            return {"message": "Your part has shipped", "to_email": "buyer@example.com"}
        case _:
            return {}


def vary(
    rnd: random.Random,
    event_type: str,
    state: JobState,
    at: datetime,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """A payload that is valid for this job now (sent by `actor`), varied where the rules leave
    a choice."""
    customer = actor is not None and actor.role == Role.customer
    match event_type:
        case "job_created":
            return canonical(event_type, state, at) | {
                "source": rnd.choice(["incoming_call", "outgoing_email"]),
                "priority": rnd.choice(["standard", "emergency"]),
            }
        case "owner_assigned":
            return {"owner": rnd.choice(USERNAMES)}
        case "quote_drafted":
            fields: dict[str, Any] = {}
            if rnd.random() < 0.4:
                count = rnd.randint(2, 3)
                fields["options"] = [
                    {"name": name, "lines": some_lines(rnd)} for name in OPTION_NAMES[:count]
                ]
            else:
                fields["lines"] = some_lines(rnd)
            if (discount := some_discount(rnd)) is not None:
                fields["discount"] = discount
            if rnd.random() < 0.7:
                fields["tax_rate"] = rnd.choice(["0", "6.25", "8.875", "30"])
            return fields
        case "quote_approved":
            keys = option_keys(state)
            fields = {}
            if keys and (len(keys) > 1 or rnd.random() < 0.5):
                fields["option"] = rnd.choice(keys)
            if customer or rnd.random() < 0.5:
                fields["signature_name"] = "Ann Customer"
            if customer or rnd.random() < 0.5:
                fields["quote_version"] = quote_version(state)
            if customer:
                fields["ip_address"] = "203.0.113.9"
            return fields
        case "approval_granted":
            keys = option_keys(state)
            return {"option": rnd.choice(keys)} if len(keys) > 1 else {}
        case "quote_declined":
            fields = {"reason": "too expensive"}
            if customer or rnd.random() < 0.5:
                fields["quote_version"] = quote_version(state)
            if customer:
                fields["ip_address"] = "203.0.113.9"
            return fields
        case "supplier_quote_requested":
            lines = [
                {"description": f"part {sku}", "quantity": rnd.randint(1, 4)}
                | ({"sku": sku} if rnd.random() < 0.5 else {})
                for sku in rnd.sample(SKUS, rnd.randint(1, 3))
            ]
            used = {r.po_number for r in state.supplier_requests}
            po = rnd.choice([f"PO-{n}" for n in range(1, 6) if f"PO-{n}" not in used] or ["PO-9"])
            return canonical(event_type, state, at) | {
                "po_number": po if po not in used else f"PO-{len(used) + 10}",
                "lines": lines,
                "notes": rnd.choice(["", "Quote by Friday"]),
            }
        case "communication_logged":
            fields = canonical(event_type, state, at)
            if state.supplier_requests and rnd.random() < 0.6:
                request = rnd.choice(state.supplier_requests)
                fields |= {"po_number": request.po_number, "direction": "incoming"}
            return fields
        case "quote_sent":
            fields = {}
            if not state.client.email or rnd.random() < 0.5:
                fields["to_email"] = "buyer@example.com"
            if rnd.random() < 0.5:
                fields["approval_expected_at"] = (at + timedelta(days=3)).isoformat()
            return fields
        case "parts_ordered":
            outstanding = {p.line.sku for p in state.outstanding_parts}
            free = [sku for sku in SKUS if sku not in outstanding]
            if not free:
                return canonical(event_type, state, at)
            return {"parts": [part_line(sku) for sku in rnd.sample(free, min(len(free), 2))]}
        case "parts_delivered":
            outstanding = sorted({p.line.sku for p in state.outstanding_parts})
            if not outstanding:
                return canonical(event_type, state, at)
            return {"skus": rnd.sample(outstanding, rnd.randint(1, len(outstanding)))}
        case "job_scheduled":
            technician = rnd.choice([TECHNICIAN, TECHNICIAN, "tom"])
            return canonical(event_type, state, at) | {"technician": technician}
        case "checklist_completed":
            ack = state.client.tier == "platinum" or rnd.random() < 0.5
            return canonical(event_type, state, at) | {"platinum_protocol_acknowledged": ack}
        case "job_incomplete":
            return {"reason": rnd.choice(["wrong_parts", "insufficient_time"])}
        case "invoice_sent":
            fields = billing(state)
            approved = line_dicts(state)
            choice = rnd.choice(["default", "same", "other"])
            if approved is None or choice == "other":
                fields["lines"] = rnd.choices(LINE_POOL, k=rnd.randint(1, 2))
                if approved is not None and fields["lines"] != approved:
                    fields["override_reason"] = "warranty"
            elif choice == "same":
                fields["lines"] = approved
            if state.client.tier != "platinum" and rnd.random() < 0.5:
                fields["po_number"] = "PO-8"
            return fields
        case "payment_recorded":
            amount = rnd.choice([remaining(state), remaining(state), Decimal("10.00")])
            return {
                "amount": str(amount),
                "method": rnd.choice(["cash", "check", "card", "ach", "other"]),
                "paid_on_site": state.stage == S.completed and rnd.random() < 0.5,
            }
        case "contact_updated":
            return rnd.choice([{"email": "new@example.com"}, {"phone": "555-0101"}])
        case "customer_update_sent":
            fields = {"message": "Running late", "bcc_me": rnd.random() < 0.5}
            if not state.client.email or rnd.random() < 0.5:
                fields["to_email"] = "buyer@example.com"
            if rnd.random() < 0.5:
                fields["sms"] = True
                if not state.client.phone or rnd.random() < 0.5:
                    fields["sms_phone"] = "555-0102"
            return fields
        case _:
            return canonical(event_type, state, at)


def junk(rnd: random.Random, event_type: str, state: JobState, at: datetime) -> dict[str, Any]:
    """A well-formed payload meant not to fit the job (the canonical one where none exists)."""
    outstanding = [p.line.sku for p in state.outstanding_parts]
    match event_type:
        case "job_created":
            return canonical(event_type, state, at) | {"client_id": CLIENT_ID + 1}
        case "quote_sent":
            return {"to_email": "x@example.com", "approval_expected_at": at.isoformat()}
        case "parts_ordered" if outstanding:
            return {"parts": [part_line(outstanding[0])]}
        case "parts_delivered":
            return {"skus": [*outstanding, "ZZZ"]}
        case "checklist_completed":
            key = rnd.choice(["parts_verified", "platinum_protocol_acknowledged"])
            return canonical(event_type, state, at) | {key: False}
        case "invoice_sent":
            return {"lines": LINE_POOL[3:4]}
        case "quote_approved" | "approval_granted" | "quote_declined":
            fields = canonical(event_type, state, at)
            keys = option_keys(state)
            match rnd.randint(0, 3) if event_type != "quote_declined" else 2:
                case 0:  # an option the quote does not have
                    fields["option"] = "best" if len(keys) < 3 else "quote"
                case 1 if len(keys) > 1:  # none chosen from several
                    fields.pop("option", None)
                case 2 if event_type != "approval_granted":  # an answer to another version
                    version = quote_version(state)
                    fields["quote_version"] = version + 1 if version == 1 else version - 1
                case 3 if event_type == "quote_approved":  # unsigned (refused to the customer)
                    fields.pop("signature_name", None)
            return fields
        case "supplier_quote_requested" if state.supplier_requests:  # the PO is taken
            po = rnd.choice(state.supplier_requests).po_number
            return canonical(event_type, state, at) | {"po_number": po}
        case "communication_logged":  # a PO of no request on the job
            return canonical(event_type, state, at) | {"po_number": "PO-UNKNOWN"}
        case "evidence_verified":
            return dict.fromkeys(EVIDENCE, True) | {rnd.choice(EVIDENCE): False}
        case "payment_recorded":
            return {"amount": "5.00", "method": "cash", "paid_on_site": True}
        case "customer_update_sent":  # no address on file and none given
            return {"message": "Running late", "sms": True}
        case _:
            return canonical(event_type, state, at)


# --- invariants --------------------------------------------------------------------------------


def check_invariants(s: JobState) -> None:
    """What must hold of every state the rules (and the simulated workflow) can reach."""
    assert s.stage is None or isinstance(s.stage, Stage)
    # the state survives the workflow's pydantic data converter unchanged
    assert JobState.model_validate_json(s.model_dump_json()) == s
    assert (s.stage is None) == (s.created_at is None) == (s.stage_entered_at is None)
    assert s.reminders == Reminders()  # the workflow keeps them; the rules never touch them
    if s.stage is None:
        return
    assert s.created_at is not None and s.stage_entered_at is not None
    assert s.stage_entered_at >= s.created_at
    assert s.milestone == MILESTONE_OF[s.stage]
    assert isinstance(s.waiting_on, str)

    if s.quote is not None:
        check_quote(s)
    else:
        assert s.earlier_quotes == []
    pos = [r.po_number for r in s.supplier_requests]
    assert len(pos) == len(set(pos))
    for request in s.supplier_requests:
        assert request.answered_at is None or request.answered_at >= request.requested_at
    if s.supplier_requests:
        assert s.quote is not None  # asked for while quoting at the earliest
    if s.stage in (S.quoting, S.quote_sent, S.saving):
        assert s.quote is not None
    if s.stage in (S.quote_sent, S.saving):
        assert s.quote is not None and s.quote.sent_at is not None
    if s.contract_amount is not None:
        assert s.quote is not None and s.quote.chosen is not None
        chosen = s.quote.option(s.quote.chosen)
        assert chosen is not None and s.contract_amount == chosen.totals.total == s.quote.total
    elif s.quote is not None:
        assert s.quote.chosen is None
    if s.approval_pending:
        assert s.stage in (S.quote_sent, S.saving, S.canceled)

    # a sale has a number; nothing before the sale has one
    if s.stage in SOLD:
        assert s.number is not None
        assert s.contract_amount is not None or s.priority == "emergency"
    if s.stage in PRE_SALE:
        assert s.number is None and s.contract_amount is None
    if s.stage == S.approved:
        assert s.contract_amount is not None

    if s.outstanding_parts:
        assert s.stage in (S.awaiting_parts, S.canceled)
    if s.stage == S.awaiting_parts:
        assert s.outstanding_parts or s.incomplete_visits > 0
    if s.parts or s.incomplete_visits:
        assert s.stage not in PRE_SALE

    if s.schedule is not None:
        assert s.schedule.scheduled_at is not None
        assert s.schedule.window_start < s.schedule.window_end
    if s.checklist is not None:
        assert s.schedule is not None
        assert s.checklist.parts_verified
        if s.client.tier == "platinum":
            assert s.checklist.platinum_protocol_acknowledged
    if s.stage in (S.scheduled, S.dispatched, S.on_site):
        assert s.schedule is not None
    if s.stage in (S.dispatched, S.on_site):
        assert s.checklist is not None

    if s.stage in DONE:
        assert s.completion is not None
    else:
        assert s.completion is None or s.stage == S.canceled
    if s.stage in (S.invoiced, S.verified, S.closed):
        assert s.invoice is not None
        invoiced = s.invoice.totals
        check_figures(invoiced, s.invoice.lines)
        assert s.invoice.total == invoiced.total
        if s.quote is not None and s.contract_amount is not None:  # billed as quoted
            assert (s.invoice.tax_rate, s.invoice.discount) == (
                s.quote.tax_rate,
                s.quote.discount,
            )
        assert s.invoice.billing_email
        if s.client.tier == "platinum":
            assert s.invoice.po_number
    else:
        assert s.invoice is None
    if s.stage in (S.verified, S.closed):
        assert s.evidence_verified_at is not None
    else:
        assert s.evidence_verified_at is None
    if s.stage == S.verified:
        assert not s.paid_in_full  # paid in full + verified is closed
    if s.stage == S.closed:
        assert s.paid_in_full
        assert s.evidence_verified_at is not None

    if s.payments:
        assert s.stage in AFTER_COMPLETION or s.stage == S.closed
        assert all(p.amount > 0 for p in s.payments)
        if s.invoice is not None:  # paid on site means taken at completion, before the invoice
            on_site = [p for p in s.payments if p.paid_on_site]
            assert all(p.recorded_at < s.invoice.sent_at for p in on_site)

    if s.stage == S.canceled:
        assert s.cancel_reason and s.canceled_from in BEFORE_COMPLETION
    else:
        assert s.cancel_reason is None and s.canceled_from is None


def check_figures(t: pricing.Totals, lines: list[Any]) -> None:
    assert t.subtotal == sum((line.amount for line in lines), Decimal("0"))
    assert t.total == t.subtotal - t.discount + t.tax
    assert 0 <= t.discount <= t.subtotal
    for value in (t.subtotal, t.discount, t.taxable, t.tax, t.total):
        assert value >= 0 and value.as_tuple().exponent == -2


def check_quote(s: JobState) -> None:
    quote = s.quote
    assert quote is not None
    keys = [o.key for o in quote.options]
    assert keys in (["quote"], ["good", "better"], ["good", "better", "best"])
    for option in quote.options:
        assert option.lines
        assert option.totals == pricing.totals(option.lines, quote.tax_rate, quote.discount)
        check_figures(option.totals, option.lines)
    shown = quote.option(quote.chosen) if quote.chosen is not None else quote.options[0]
    assert shown is not None
    assert quote.lines == shown.lines
    assert quote.total == quote.totals.total == shown.totals.total
    # every earlier version kept, oldest first
    assert [q.version for q in s.earlier_quotes] == list(range(1, quote.version))
    for earlier in s.earlier_quotes:
        assert earlier.chosen is None


def check_refusal(refusal: Refusal, state: JobState, actor: Actor, event_type: str) -> None:
    allowed = allowed_events(state, actor)
    assert refusal.allowed_events == allowed
    assert refusal.stage == state.stage
    assert refusal.message
    if state.stage in FINAL_STAGES:
        assert refusal.code == "event_not_allowed"
        assert allowed == []
    if refusal.code == "invalid_event":
        assert event_type in allowed  # only the payload was wrong
    else:
        assert event_type not in allowed
    if refusal.code == "role_not_allowed":
        rule = RULES[event_type]
        assert (
            actor.role not in rule.roles
            or (event_type in TECHNICIAN_EVENTS and actor.role == Role.technician)
            or (event_type == "lead_qualified" and actor.role == Role.sales)
        )


def check_accepted(
    result: Accepted, before: JobState, actor: Actor, event: Any, at: datetime
) -> None:
    event_type: str = event.type
    after = result.state
    rule = RULES[event_type]
    assert event_type in allowed_events(before, actor)
    assert actor.role in rule.roles
    assert before.stage in rule.from_stages
    if actor.role == Role.technician and event_type in TECHNICIAN_EVENTS:
        assert before.schedule is not None and before.schedule.technician == actor.username
    if actor.role == Role.sales and event_type == "lead_qualified":
        assert before.owner == actor.username
    if event_type == "lead_qualified":
        assert before.owner is not None
    if event_type == "tech_dispatched":
        assert before.checklist is not None
    # the workflow owns seq and the number
    assert after.seq == before.seq
    assert after.number == before.number
    if result.assign_number:
        assert before.number is None
    assert result.assign_number == (
        event_type in ("quote_approved", "approval_granted", "emergency_dispatch")
    )
    if after.stage != before.stage:
        assert after.stage_entered_at == at
    else:
        assert after.stage_entered_at == before.stage_entered_at
    if event_type in RECORD_ONLY or event_type == "owner_assigned":
        assert after.stage == before.stage
    if actor.role == Role.customer:  # the customer only answers the quote
        assert event_type in CUSTOMER_EVENTS
        if event_type == "quote_approved":
            assert event.signature_name
    if event_type in ("quote_approved", "quote_declined") and event.quote_version is not None:
        assert before.quote is not None and event.quote_version == before.quote.version
    if event_type in ("quote_approved", "approval_granted"):
        assert before.quote is not None and after.quote is not None
        keys = [o.key for o in before.quote.options]
        assert after.quote.chosen == (event.option or keys[0])
        assert event.option in keys or (event.option is None and len(keys) == 1)
        assert after.quote.options == before.quote.options
    if event_type == "quote_drafted":
        assert after.quote is not None
        assert after.quote.version == (before.quote.version if before.quote else 0) + 1
        kept = [before.quote] if before.quote is not None else []
        assert after.earlier_quotes == [*before.earlier_quotes, *kept]
        assert after.quote.tax_rate == (event.tax_rate or 0)
    if event_type == "invoice_sent" and before.contract_amount is not None:
        approved = before.quote.lines if before.quote is not None else None
        if event.lines is None or list(event.lines) == approved:
            assert after.invoice is not None
            assert after.invoice.total == before.contract_amount
    if event_type == "supplier_quote_requested":
        assert after.model_dump(exclude={"supplier_requests"}) == before.model_dump(
            exclude={"supplier_requests"}
        )
        assert after.supplier_requests[:-1] == before.supplier_requests
        assert after.supplier_requests[-1].po_number == event.po_number
        assert after.supplier_requests[-1].requested_by == actor.username
    if event_type == "communication_logged" and event.po_number is not None:
        assert after.model_dump(exclude={"supplier_requests"}) == before.model_dump(
            exclude={"supplier_requests"}
        )
        request = next(r for r in after.supplier_requests if r.po_number == event.po_number)
        assert request.answered_at is not None and request.answered_at <= at
    elif event_type in ("note_added", "communication_logged", "customer_update_sent"):
        assert after == before
    if event_type == "job_scheduled":
        assert after.schedule is not None and after.schedule.scheduled_at == at


_EXACT_CHECKED: set[tuple[str, str, Role]] = set()


def check_allowed_is_exact(state: JobState, actor: Actor, at: datetime) -> None:
    """allowed_events(state, actor) == {t | apply(canonical payload of t) is accepted}.

    Both functions are pure, so a (state, actor) pair already checked in an earlier example (the
    engine replays many prefixes) is not checked again: that keeps the file fast.
    """
    key = (state.model_dump_json(), actor.username, actor.role)
    if key in _EXACT_CHECKED:
        return
    allowed = allowed_events(state, actor)
    assert set(allowed) <= set(EVENT_TYPES)
    assert len(allowed) == len(set(allowed))
    accepted = set()
    for event_type in EVENT_TYPES:
        result = apply(state, make_event(event_type, canonical(event_type, state, at)), actor, at)
        if isinstance(result, Accepted):
            accepted.add(event_type)
        else:
            assert result.allowed_events == allowed
    assert set(allowed) == accepted, (
        f"{state.stage} as {actor.role.value} {actor.username}: "
        f"allowed but refused {sorted(set(allowed) - accepted)}, "
        f"accepted but not allowed {sorted(accepted - set(allowed))}"
    )
    _EXACT_CHECKED.add(key)


# --- the sequences -----------------------------------------------------------------------------

clients = st.builds(
    ClientSnapshot,
    id=st.just(CLIENT_ID),
    name=st.just("Acme Heating"),
    tier=st.sampled_from(["standard", "platinum", "gov"]),
    email=st.sampled_from(["client@example.com", None]),
    billing_email=st.sampled_from([None, "ap@acme.example"]),
)


def stalls(event_type: str, state: JobState) -> bool:
    """Events that leave the job where it is: sent again and again they would stall a sequence."""
    match event_type:
        case "quote_drafted":
            return state.stage == S.quoting
        case "parts_ordered":  # the way on after wrong parts, while nothing is outstanding
            return state.stage == S.awaiting_parts and bool(state.outstanding_parts)
        case "job_scheduled":
            return state.stage == S.scheduled
        case "checklist_completed":
            return state.checklist is not None
        case _:
            return event_type in RECORD_ONLY or event_type == "owner_assigned"


def weight(event_type: str, state: JobState) -> int:
    """Favour the events that move a job along, so that sequences reach the late stages."""
    if event_type == "job_canceled":
        return 1
    if event_type == "emergency_dispatch":  # skips the quote rules: not too often
        return 5
    return 3 if stalls(event_type, state) else 25


def candidates(state: JobState) -> list[Actor]:
    """The people most likely to move the job: one per role, plus its owner and technician."""
    people = {
        ("olive", Role.office),
        ("mona", Role.manager),
        ("ada", Role.admin),
        (OWNER, Role.sales),
        (TECHNICIAN, Role.technician),
        ("tom", Role.integration),
        (CUSTOMER, Role.customer),
    }
    if state.owner:
        people.add((state.owner, Role.sales))
    if state.schedule:
        people.add((state.schedule.technician, Role.technician))
    return [Actor(username=u, role=r) for u, r in sorted(people)]


# One draw per step keeps the engine's overhead low: (mode, event pick, actor pick, junk, seed).
# Everything shrinks towards 0: on-track mode, the first event and actor, a valid payload, and
# seed 0 is the canonical payload.
steps = st.tuples(
    st.integers(0, 9),
    st.integers(0, 1023),
    st.integers(0, 1023),
    st.integers(0, 9),
    st.integers(0, 2**32 - 1),
)


def choose(
    data: st.DataObject, state: JobState, at: datetime
) -> tuple[Actor, str, bool, dict[str, Any]]:
    """(actor, event type, is junk, payload) for the next step.

    Mostly an event the job's stage takes, sent by someone of a role that may send it (a guard or
    an identity check may still refuse it); one step in ten the right event by anyone, one in ten
    any event by anyone. One payload in ten is junk; valid payloads vary with the seed.
    """
    mode, event_pick, actor_pick, junk_pick, seed = data.draw(steps, label="step")
    people = candidates(state)
    by_type = {
        t: [a for a in people if a.role in rule.roles]
        for t, rule in RULES.items()
        if state.stage in rule.from_stages and state.stage not in FINAL_STAGES
    }
    if by_type and mode < 9:
        weighted = [t for t in by_type for _ in range(weight(t, state))]
        event_type = weighted[event_pick % len(weighted)]
        who = by_type[event_type] if mode < 8 else ACTORS
    else:
        event_type = EVENT_TYPES[event_pick % len(EVENT_TYPES)]
        who = ACTORS
    actor = who[actor_pick % len(who)]
    is_junk = junk_pick == 9
    if is_junk:
        payload = junk(random.Random(seed), event_type, state, at)
    elif seed == 0:
        payload = canonical(event_type, state, at)
    else:
        payload = vary(random.Random(seed), event_type, state, at, actor)
    return actor, event_type, is_junk, payload


def reached(sent: Any, actor: Actor, after: JobState) -> str:
    """What an accepted event showed of the quote rules (hypothesis's statistics count them)."""
    quote = after.quote
    match sent.type:
        case "quote_drafted" if quote is not None and len(quote.options) > 1:
            return "drafted options"
        case "quote_drafted" if quote is not None and quote.tax_rate and quote.discount:
            return "drafted with tax and discount"
        case "quote_approved" | "approval_granted" if quote and quote.chosen in ("better", "best"):
            return "approved a later option"
        case "quote_approved" if actor.role == Role.customer:
            return "the customer approved"
        case "quote_declined" if actor.role == Role.customer:
            return "the customer declined"
        case "supplier_quote_requested":
            return "supplier request"
        case "communication_logged" if sent.po_number is not None:
            return "supplier answered"
        case "invoice_sent" if after.invoice is not None and after.invoice.totals.tax:
            return "invoice taxed"
    return ""


def workflow_keeps(result: Accepted, state: JobState, numbers: list[int]) -> JobState:
    """Play the workflow: count the event and allocate a job number when asked."""
    updates: dict[str, Any] = {"seq": state.seq + 1}
    if result.assign_number:
        updates["number"] = 1000 + len(numbers)
        numbers.append(updates["number"])
    return result.state.model_copy(update=updates)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(client=clients, data=st.data())
def test_random_sequences_keep_the_rules(client: ClientSnapshot, data: st.DataObject) -> None:
    """Properties (1) valid states, (3) refusals change nothing, (4) roles are enforced."""
    state = new_job("prop-job", client)
    numbers: list[int] = []
    check_invariants(state)
    after_final = 0
    seen: set[str] = set()
    for step in range(MAX_STEPS):
        if state.stage in FINAL_STAGES:
            after_final += 1
            if after_final > 3:  # test_final_stages_stay_final tries harder
                break
        at = BASE + timedelta(minutes=7 * (step + 1))
        actor, event_type, is_junk, payload = choose(data, state, at)
        before_dump = state.model_dump()
        sent = make_event(event_type, payload)
        result = apply(state, sent, actor, at)
        assert state.model_dump() == before_dump  # apply never mutates its input

        if isinstance(result, Refusal):
            check_refusal(result, state, actor, event_type)
            if not is_junk:
                # a valid payload is refused only for who sends it or when
                assert result.code != "invalid_event", (event_type, payload, result)
            continue

        assert state.stage not in FINAL_STAGES
        check_accepted(result, state, actor, sent, at)
        seen.add(reached(sent, actor, result.state))
        state = workflow_keeps(result, state, numbers)
        check_invariants(state)
        assert state.number == (numbers[0] if numbers else None)

    assert len(numbers) <= 1  # a job gets at most one number
    for what in sorted(seen - {""}):
        event(what)
    event(f"ended {state.stage.value if state.stage else 'not created'}")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(client=clients, data=st.data())
def test_allowed_events_is_exact(client: ClientSnapshot, data: st.DataObject) -> None:
    """Property (2): at every state of a random sequence, for the step's actor and every event
    type, the canonical valid payload is accepted exactly when the type is in `allowed_events`;
    and for each of the job's usual people, every allowed event is accepted."""
    state = new_job("prop-job", client)
    numbers: list[int] = []
    for step in range(MAX_STEPS):
        at = BASE + timedelta(minutes=7 * (step + 1))
        actor, event_type, _, payload = choose(data, state, at)
        check_allowed_is_exact(state, actor, at)
        for person in candidates(state):
            for allowed in allowed_events(state, person):
                fields = canonical(allowed, state, at)
                accepted = apply(state, make_event(allowed, fields), person, at)
                assert isinstance(accepted, Accepted), (allowed, person, fields, accepted)
        if state.stage in FINAL_STAGES:
            break
        result = apply(state, make_event(event_type, payload), actor, at)
        if isinstance(result, Accepted):
            state = workflow_keeps(result, state, numbers)


@settings(max_examples=60, deadline=None)
@given(client=clients, data=st.data())
def test_final_stages_stay_final(client: ClientSnapshot, data: st.DataObject) -> None:
    """Once closed or canceled, every event by anyone is refused and nothing changes."""
    state = new_job("prop-job", client)
    path = [
        ("job_created", Actor(username="olive", role=Role.office)),
        ("emergency_dispatch", Actor(username="mona", role=Role.manager)),
    ]
    final = data.draw(st.sampled_from([S.canceled, S.closed]), label="final")
    if final == S.canceled:
        path.append(("job_canceled", Actor(username="mona", role=Role.manager)))
    else:
        office = Actor(username="olive", role=Role.office)
        tech = Actor(username=TECHNICIAN, role=Role.technician)
        path += [
            ("job_scheduled", office),
            ("checklist_completed", office),
            ("tech_dispatched", tech),
            ("tech_checked_in", tech),
            ("job_completed", tech),
            ("invoice_sent", office),
            ("payment_recorded", office),
            ("evidence_verified", Actor(username="mona", role=Role.manager)),
        ]
    at = BASE
    for event_type, actor in path:
        at += timedelta(minutes=5)
        result = apply(state, make_event(event_type, canonical(event_type, state, at)), actor, at)
        assert isinstance(result, Accepted), (event_type, result)
        state = result.state
    assert state.stage == final
    frozen = state.model_dump()
    for _ in range(data.draw(st.integers(1, 10), label="tries")):
        at += timedelta(minutes=5)
        event_type = data.draw(st.sampled_from(EVENT_TYPES), label="event")
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        make = junk if data.draw(st.booleans(), label="junk") else vary
        payload = make(random.Random(seed), event_type, state, at)
        result = apply(state, make_event(event_type, payload), actor, at)
        assert isinstance(result, Refusal)
        assert result.code == "event_not_allowed"
        assert result.allowed_events == []
        assert result.stage == final
        assert state.model_dump() == frozen


QUOTE_EVENTS = (
    "quote_approved",
    "quote_approved",
    "quote_declined",
    "quote_declined",
    "supplier_quote_requested",
    "communication_logged",
    "approval_granted",
    "approval_requested",
    "supplier_quote_requested",
    "communication_logged",
    "quote_drafted",
    "quote_sent",
)


@settings(max_examples=200, deadline=None)
@given(client=clients, data=st.data())
def test_quote_answers_keep_the_rules(client: ClientSnapshot, data: st.DataObject) -> None:
    """The quote rules up close: a job whose quote (options, tax, discount) has been sent, then
    answers, new drafts, supplier requests and their answers by anyone (the customer too), half
    of the payloads junk. The same checks as the random sequences, where these are rarer."""
    office = Actor(username="olive", role=Role.office)
    state = new_job("prop-job", client)
    at = BASE
    draft_seed = data.draw(st.integers(1, 2**32 - 1), label="draft")
    for event_type in ("job_created", "owner_assigned", "lead_qualified", "quote_drafted"):
        at += timedelta(minutes=5)
        payload = (
            vary(random.Random(draft_seed), event_type, state, at)
            if event_type == "quote_drafted"
            else canonical(event_type, state, at)
        )
        accepted = apply(state, make_event(event_type, payload), office, at)
        assert isinstance(accepted, Accepted)
        state = accepted.state
    if data.draw(st.booleans(), label="sent"):
        at += timedelta(minutes=5)
        accepted = apply(
            state, make_event("quote_sent", canonical("quote_sent", state, at)), office, at
        )
        assert isinstance(accepted, Accepted)
        state = accepted.state
    customer = Actor(username=CUSTOMER, role=Role.customer)
    people = [*candidates(state), customer, customer, customer]  # the customer answers often
    seen: set[str] = set()
    for _ in range(data.draw(st.integers(1, 15), label="steps")):
        at += timedelta(minutes=5)
        event_type = data.draw(st.sampled_from(QUOTE_EVENTS), label="event")
        actor = data.draw(st.sampled_from(people), label="actor")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        is_junk = data.draw(st.booleans(), label="junk")
        payload = (
            junk(random.Random(seed), event_type, state, at)
            if is_junk
            else vary(random.Random(seed), event_type, state, at, actor)
        )
        sent = make_event(event_type, payload)
        result = apply(state, sent, actor, at)
        if isinstance(result, Refusal):
            check_refusal(result, state, actor, event_type)
            if not is_junk:
                assert result.code != "invalid_event", (event_type, payload, result)
            continue
        check_accepted(result, state, actor, sent, at)
        state = result.state.model_copy(
            update={"seq": state.seq + 1, "number": 1000 if result.assign_number else None}
        )
        check_invariants(state)
        seen.add(reached(sent, actor, state))
        if state.stage == S.approved:
            break
    for what in sorted(seen - {""}):
        event(what)
