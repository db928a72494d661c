"""Table tests: the lifecycle rules (`models/lifecycle.py`) against DESIGN.md §4.

The expected table below is written out from the design document by hand, not derived from
`RULES`, so that a drift between the two is caught. Every row gets at least one case per
from-stage, one per allowed role, one per refused role and one per stage it may not be sent from;
the special rules of the table (owners, approvals, checklist, platinum, parts, invoicing,
evidence, payment, final stages, cancelation, assigned technicians) have their own tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from models.events import EVENT_TYPES, Event
from models.lifecycle import (
    MILESTONE_OF,
    RULES,
    Accepted,
    Actor,
    ClientSnapshot,
    JobState,
    Milestone,
    Refusal,
    Role,
    Stage,
    allowed_events,
    apply,
    new_job,
)

# --- the design table, written out from DESIGN.md §4 ------------------------------------------

S = Stage
FINAL = frozenset({S.closed, S.canceled})
OPEN = frozenset(S) - FINAL
BEFORE_COMPLETED = frozenset(
    {
        S.lead,
        S.prospect,
        S.quoting,
        S.quote_sent,
        S.saving,
        S.approved,
        S.awaiting_parts,
        S.ready_to_schedule,
        S.scheduled,
        S.dispatched,
        S.on_site,
    }
)
ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.admin, Role.manager, Role.office, Role.sales, Role.technician})
OFFICE_ONLY = frozenset({Role.office})
OFFICE_MANAGER = frozenset({Role.office, Role.manager})
OFFICE_SALES_MANAGER = frozenset({Role.office, Role.sales, Role.manager})
# The job's customer, from the quote's link (issue 11): answers the quote and nothing else.
CUSTOMER_ONLY = frozenset({Role.customer})
TECH_OFFICE = frozenset({Role.technician, Role.office})
SAME = "same"  # the event does not move the job

# event -> (from stages, roles, to stage)
DESIGN: dict[str, tuple[frozenset[Stage | None], frozenset[Role], Stage | str]] = {
    "job_created": (frozenset({None}), OFFICE_SALES_MANAGER, S.lead),
    "owner_assigned": (OPEN, OFFICE_MANAGER, SAME),
    "lead_qualified": (frozenset({S.lead}), OFFICE_SALES_MANAGER, S.prospect),
    "quote_drafted": (
        frozenset({S.prospect, S.quoting, S.saving}),
        OFFICE_SALES_MANAGER,
        S.quoting,
    ),
    "quote_sent": (frozenset({S.quoting}), OFFICE_SALES_MANAGER, S.quote_sent),
    "quote_approved": (
        frozenset({S.quote_sent, S.saving}),
        OFFICE_MANAGER | CUSTOMER_ONLY,
        S.approved,
    ),
    "approval_requested": (frozenset({S.quote_sent, S.saving}), frozenset({Role.sales}), SAME),
    "approval_granted": (
        frozenset({S.quote_sent, S.saving}),
        frozenset({Role.manager}),
        S.approved,
    ),
    "approval_denied": (frozenset({S.quote_sent, S.saving}), frozenset({Role.manager}), SAME),
    "quote_declined": (
        frozenset({S.quote_sent}),
        OFFICE_SALES_MANAGER | CUSTOMER_ONLY,
        S.saving,
    ),
    "emergency_dispatch": (frozenset({S.lead, S.prospect}), OFFICE_MANAGER, S.ready_to_schedule),
    "parts_ordered": (frozenset({S.approved, S.awaiting_parts}), OFFICE_ONLY, S.awaiting_parts),
    # every outstanding line arrives in the canonical payload
    "parts_delivered": (
        frozenset({S.awaiting_parts}),
        frozenset({Role.office, Role.integration}),
        S.ready_to_schedule,
    ),
    "job_scheduled": (
        frozenset({S.approved, S.ready_to_schedule, S.scheduled}),
        OFFICE_ONLY,
        S.scheduled,
    ),
    "checklist_completed": (frozenset({S.scheduled}), OFFICE_ONLY, SAME),
    "tech_dispatched": (frozenset({S.scheduled}), TECH_OFFICE, S.dispatched),
    "tech_checked_in": (frozenset({S.dispatched}), TECH_OFFICE, S.on_site),
    "job_completed": (frozenset({S.on_site}), TECH_OFFICE, S.completed),
    # the canonical payload reports wrong parts
    "job_incomplete": (frozenset({S.on_site}), TECH_OFFICE, S.awaiting_parts),
    "invoice_sent": (frozenset({S.completed}), OFFICE_ONLY, S.invoiced),
    # nothing paid yet on the canonical path
    "evidence_verified": (frozenset({S.invoiced}), frozenset({Role.manager}), S.verified),
    # a part payment in the transition cases
    "payment_recorded": (frozenset({S.completed, S.invoiced, S.verified}), OFFICE_ONLY, SAME),
    "job_canceled": (BEFORE_COMPLETED, OFFICE_MANAGER, S.canceled),
    "note_added": (OPEN, STAFF, SAME),
    "contact_updated": (OPEN, OFFICE_SALES_MANAGER, SAME),
    "communication_logged": (OPEN, STAFF, SAME),
    # Not a row of §4: the "send a customer update" dialog (§4 outbox purpose customer_update).
    "customer_update_sent": (OPEN, OFFICE_SALES_MANAGER, SAME),
    # Not a row of §4 either: §4's "optional supplier quote request (PO)" of quote_drafted, made
    # its own event (issue 11); a new PO number per request on the job.
    "supplier_quote_requested": (
        frozenset({S.quoting, S.quote_sent, S.saving, S.approved}),
        OFFICE_MANAGER,
        SAME,
    ),
}
NUMBERED = frozenset({"quote_approved", "approval_granted", "emergency_dispatch"})
TECHNICIAN_EVENTS = ("tech_dispatched", "tech_checked_in", "job_completed", "job_incomplete")

STAGE_ORDER: list[Stage | None] = [None, *Stage]

# --- people ------------------------------------------------------------------------------------

OFFICE = Actor(username="olive", role=Role.office)
MANAGER = Actor(username="mona", role=Role.manager)
ADMIN = Actor(username="ada", role=Role.admin)
OWNER = Actor(username="sam", role=Role.sales)  # owns the lead on the canonical path
OTHER_SALES = Actor(username="sid", role=Role.sales)
TECH = Actor(username="tina", role=Role.technician)  # scheduled on the canonical path
OTHER_TECH = Actor(username="tom", role=Role.technician)
FEED = Actor(username="parts-feed", role=Role.integration)
SYSTEM = Actor(username="jobline", role=Role.system)  # reminders and flags: sends no events
CUSTOMER = Actor(username="customer", role=Role.customer)  # from the quote's link

ACTOR_OF_ROLE = {
    Role.office: OFFICE,
    Role.manager: MANAGER,
    Role.admin: ADMIN,
    Role.sales: OWNER,
    Role.technician: TECH,
    Role.integration: FEED,
    Role.system: SYSTEM,
    Role.customer: CUSTOMER,
}


def canonical_actor(event_type: str) -> Actor:
    """Someone whose role may send the event and who passes the owner/technician checks."""
    roles = DESIGN[event_type][1]
    for role in (Role.office, Role.manager, Role.sales):
        if role in roles:
            return ACTOR_OF_ROLE[role]
    raise AssertionError(event_type)


# --- building jobs -----------------------------------------------------------------------------

BASE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CLIENT_ID = 7
QUOTE_LINES = [
    {"description": "Compressor", "quantity": "1", "unit_price": "450.00", "sku": "CMP-1"},
    {"description": "Labour (hours)", "quantity": "2", "unit_price": "95.00"},
]
QUOTE_TOTAL = Decimal("640.00")
OTHER_LINES = [{"description": "Labour (hours)", "quantity": "3", "unit_price": "95.00"}]

_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def event(event_type: str, **fields: Any) -> Any:
    return _EVENT.validate_python({"type": event_type, **fields})


def part_line(sku: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": f"part {sku}",
        "quantity": 1,
        "supplier": "Acme Supply",
        "po_number": f"PO-{sku}",
        "expected_delivery": "2026-11-30",
    }


def valid_payload(event_type: str, state: JobState, actor: Actor | None = None) -> dict[str, Any]:
    """A payload the rules accept for this job whenever the event is allowed at all."""
    client = state.client
    customer = actor is not None and actor.role == Role.customer
    match event_type:
        case "job_created":
            return {"client_id": client.id, "title": "No heat", "source": "incoming_call"}
        case "owner_assigned":
            return {"owner": OWNER.username}
        case "quote_drafted":
            return {"lines": QUOTE_LINES}
        case "quote_sent":
            return {} if client.email else {"to_email": "buyer@example.com"}
        case "quote_approved" if customer:
            version = state.quote.version if state.quote else 1
            return {"signature_name": "Ann Customer", "quote_version": version}
        case "approval_denied" | "quote_declined" | "job_canceled":
            return {"reason": "customer went elsewhere"}
        case "supplier_quote_requested":
            return {
                "supplier": "Northside HVAC Supply",
                "supplier_email": "orders@northside.example.com",
                "po_number": f"RFQ-{len(state.supplier_requests) + 1}",
                "lines": [{"sku": "CAP-455", "description": "Run capacitor", "quantity": 2}],
            }
        case "parts_ordered":
            n = len(state.parts)
            return {"parts": [part_line(f"P-{n + 1}"), part_line(f"P-{n + 2}")]}
        case "parts_delivered":
            return {"skus": [p.line.sku for p in state.outstanding_parts] or ["P-1"]}
        case "job_scheduled":
            return {
                "technician": TECH.username,
                "window_start": "2026-11-30T13:00:00+00:00",
                "window_end": "2026-11-30T15:00:00+00:00",
            }
        case "checklist_completed":
            return {
                "parts_verified": True,
                "check_in_phone": "+1-555-0100",
                "pricing_discussion": "not_allowed",
                "platinum_protocol_acknowledged": True,
            }
        case "job_completed":
            return {"work_performed": "Replaced the compressor"}
        case "job_incomplete":
            return {"reason": "wrong_parts", "notes": "wrong compressor model"}
        case "invoice_sent":
            payload: dict[str, Any] = {}
            if state.contract_amount is None:
                payload["lines"] = QUOTE_LINES
            if client.tier == "platinum":
                payload |= {"billing_email": "ap@example.com", "po_number": "PO-9"}
            elif not (client.billing_email or client.email):
                payload["billing_email"] = "ap@example.com"
            return payload
        case "evidence_verified":
            return dict.fromkeys(
                ("documents", "notes", "parts_usage", "photos", "customer_communication"), True
            )
        case "payment_recorded":
            due = state.amount_due
            left = due - state.paid_total if due is not None else Decimal("0")
            return {"amount": str(left if left > 0 else Decimal("1.00")), "method": "card"}
        case "note_added":
            return {"text": "Customer prefers mornings"}
        case "contact_updated":
            return {"phone": "+1-555-0199"}
        case "communication_logged":
            return {"channel": "call", "direction": "incoming", "summary": "Asked for an ETA"}
        case "customer_update_sent":
            fields = {"message": "Your part has shipped"}
            return fields if client.email else fields | {"to_email": "buyer@example.com"}
        case _:
            return {}


class Job:
    """One job driven through the rules with an increasing, timezone-aware clock."""

    def __init__(
        self,
        tier: str = "standard",
        email: str | None = "client@example.com",
        billing_email: str | None = None,
    ) -> None:
        client = ClientSnapshot(
            id=CLIENT_ID, name="Acme Heating", tier=tier, email=email, billing_email=billing_email
        )
        self.state = new_job("acme-no-heat", client)
        self.at = BASE

    def send(self, actor: Actor, event_type: str, **fields: Any) -> Accepted | Refusal:
        """Apply without keeping the result; `fields` replace the canonical payload."""
        payload = fields if fields else valid_payload(event_type, self.state, actor)
        self.at += timedelta(minutes=5)
        return apply(self.state, event(event_type, **payload), actor, self.at)

    def do(self, actor: Actor, event_type: str, **fields: Any) -> Accepted:
        result = self.send(actor, event_type, **fields)
        assert isinstance(result, Accepted), result
        self.state = result.state
        return result

    def refused(self, actor: Actor, event_type: str, **fields: Any) -> Refusal:
        before = self.state.model_dump()
        result = self.send(actor, event_type, **fields)
        assert isinstance(result, Refusal), result
        assert self.state.model_dump() == before
        assert result.stage == self.state.stage
        assert result.allowed_events == allowed_events(self.state, actor)
        return result


MAIN_PATH: list[tuple[Actor, str]] = [
    (OFFICE, "job_created"),  # lead (unassigned)
    (OFFICE, "owner_assigned"),  # owned by sam
    (OFFICE, "lead_qualified"),  # prospect
    (OFFICE, "quote_drafted"),  # quoting
    (OFFICE, "quote_sent"),  # quote_sent
    (OFFICE, "quote_approved"),  # approved
    (OFFICE, "parts_ordered"),  # awaiting_parts (P-1, P-2)
    (OFFICE, "parts_delivered"),  # ready_to_schedule
    (OFFICE, "job_scheduled"),  # scheduled (tina)
    (OFFICE, "checklist_completed"),
    (TECH, "tech_dispatched"),  # dispatched
    (TECH, "tech_checked_in"),  # on_site
    (TECH, "job_completed"),  # completed
    (OFFICE, "invoice_sent"),  # invoiced
    (MANAGER, "evidence_verified"),  # verified
    (OFFICE, "payment_recorded"),  # closed
]


def reach(stage: Stage | None, *, checklist: bool = True, **client: Any) -> Job:
    """A job at `stage` by the canonical path (at `scheduled`: with or without the checklist)."""
    job = Job(**client)
    if stage is None:
        return job
    if stage == S.saving:
        job = reach(S.quote_sent, **client)
        job.do(OFFICE, "quote_declined")
        return job
    if stage == S.canceled:
        job.do(OFFICE, "job_created")
        job.do(MANAGER, "job_canceled")
        return job
    for actor, event_type in MAIN_PATH:
        if job.state.stage == stage and (
            stage != S.scheduled or not checklist or job.state.checklist is not None
        ):
            break
        job.do(actor, event_type)
    assert job.state.stage == stage
    return job


def first_stage(event_type: str) -> Stage | None:
    return next(s for s in STAGE_ORDER if s in DESIGN[event_type][0])


def prepare(job: Job, event_type: str) -> None:
    """Preconditions of the event beyond its stage."""
    if event_type in ("approval_granted", "approval_denied"):
        job.do(OWNER, "approval_requested")
    if event_type == "lead_qualified" and job.state.owner is None:
        job.do(OFFICE, "owner_assigned")


# --- the table itself --------------------------------------------------------------------------


def test_every_event_type_has_a_rule_and_a_design_row() -> None:
    assert set(EVENT_TYPES) == set(RULES) == set(DESIGN)
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES))


@pytest.mark.parametrize("event_type", list(DESIGN))
def test_rule_matches_design_row(event_type: str) -> None:
    from_stages, roles, _ = DESIGN[event_type]
    rule = RULES[event_type]
    assert rule.from_stages == from_stages
    assert rule.roles == roles


TRANSITIONS = [
    pytest.param(event_type, stage, id=f"{event_type}-from-{stage}")
    for event_type, (from_stages, _, _) in DESIGN.items()
    for stage in STAGE_ORDER
    if stage in from_stages
]


@pytest.mark.parametrize(("event_type", "stage"), TRANSITIONS)
def test_transition(event_type: str, stage: Stage | None) -> None:
    job = reach(stage)
    prepare(job, event_type)
    before = job.state
    actor = canonical_actor(event_type)
    assert event_type in allowed_events(before, actor)
    fields = {"amount": "1.00", "method": "cash"} if event_type == "payment_recorded" else {}
    result = job.send(actor, event_type, **fields)
    assert isinstance(result, Accepted), result
    after = result.state
    to = DESIGN[event_type][2]
    assert after.stage == (stage if to == SAME else to)
    assert result.assign_number is (event_type in NUMBERED)
    assert after.seq == before.seq
    assert after.number == before.number
    if after.stage != before.stage:
        assert after.stage_entered_at == job.at
    else:
        assert after.stage_entered_at == before.stage_entered_at
    if after.stage is not None:
        assert after.milestone == MILESTONE_OF[after.stage]


ALLOWED_ROLES = [
    pytest.param(event_type, role, id=f"{event_type}-by-{role.value}")
    for event_type, (_, roles, _) in DESIGN.items()
    for role in sorted(roles)
]


@pytest.mark.parametrize(("event_type", "role"), ALLOWED_ROLES)
def test_each_allowed_role_may_send(event_type: str, role: Role) -> None:
    job = reach(first_stage(event_type))
    prepare(job, event_type)
    actor = ACTOR_OF_ROLE[role]
    assert event_type in allowed_events(job.state, actor)
    assert isinstance(job.send(actor, event_type), Accepted)


REFUSED_ROLES = [
    pytest.param(event_type, role, id=f"{event_type}-by-{role.value}")
    for event_type, (_, roles, _) in DESIGN.items()
    for role in sorted(ALL_ROLES - roles)
]


@pytest.mark.parametrize(("event_type", "role"), REFUSED_ROLES)
def test_role_not_allowed(event_type: str, role: Role) -> None:
    job = reach(first_stage(event_type))
    prepare(job, event_type)
    actor = ACTOR_OF_ROLE[role]
    refusal = job.refused(actor, event_type)
    assert refusal.code == "role_not_allowed"
    assert event_type not in refusal.allowed_events
    # the 403 says who may send it
    assert event_type in refusal.message
    for allowed in DESIGN[event_type][1]:
        assert allowed.value in refusal.message
    assert f"not by {role.value}" in refusal.message


def test_sales_quote_approved_is_403_naming_approval_requested() -> None:
    job = reach(S.quote_sent)
    refusal = job.refused(OWNER, "quote_approved")
    assert refusal.code == "role_not_allowed"
    assert "approval_requested" in refusal.message
    assert "approval_requested" in refusal.allowed_events
    assert "quote_approved" not in refusal.allowed_events


WRONG_STAGES = [
    pytest.param(event_type, stage, id=f"{event_type}-at-{stage}")
    for event_type, (from_stages, _, _) in DESIGN.items()
    for stage in STAGE_ORDER
    if stage not in from_stages and stage not in FINAL
]


@pytest.mark.parametrize(("event_type", "stage"), WRONG_STAGES)
def test_stage_refusal(event_type: str, stage: Stage | None) -> None:
    job = reach(stage)
    actor = canonical_actor(event_type)
    refusal = job.refused(actor, event_type)
    assert refusal.code == "event_not_allowed"
    assert refusal.stage == stage
    assert event_type in refusal.message
    assert (stage.value if stage else "not created") in refusal.message
    assert event_type not in refusal.allowed_events


@pytest.mark.parametrize("stage", sorted(FINAL))
@pytest.mark.parametrize("event_type", list(DESIGN))
def test_final_stages_refuse_every_event(stage: Stage, event_type: str) -> None:
    job = reach(stage)
    for actor in (*ACTOR_OF_ROLE.values(), OTHER_SALES, OTHER_TECH):
        assert allowed_events(job.state, actor) == []
        refusal = job.refused(actor, event_type)
        assert refusal.code == "event_not_allowed"
        assert refusal.allowed_events == []
        assert stage.value in refusal.message


def test_milestones_of_design() -> None:
    assert MILESTONE_OF[S.lead] == Milestone.lead
    assert MILESTONE_OF[S.prospect] == Milestone.prospect
    assert MILESTONE_OF[S.approved] == Milestone.approved
    assert MILESTONE_OF[S.completed] == Milestone.completed
    assert MILESTONE_OF[S.invoiced] == Milestone.invoiced
    assert MILESTONE_OF[S.closed] == Milestone.closed
    assert MILESTONE_OF[S.canceled] == Milestone.canceled
    assert set(MILESTONE_OF) == set(Stage)


# --- creation and owners -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGE_ORDER, ids=str)
def test_system_role_sends_no_events(stage: Stage | None) -> None:
    job = reach(stage)
    assert allowed_events(job.state, SYSTEM) == []


@pytest.mark.parametrize("stage", STAGE_ORDER, ids=str)
def test_the_customer_may_only_answer_the_quote(stage: Stage | None) -> None:
    job = reach(stage)
    allowed = allowed_events(job.state, CUSTOMER)
    assert set(allowed) <= {"quote_approved", "quote_declined"}
    expected = {t for t in ("quote_approved", "quote_declined") if stage in DESIGN[t][0]}
    assert set(allowed) == expected
    for event_type in sorted(set(DESIGN) - expected - {"job_created"}):
        refusal = job.refused(CUSTOMER, event_type)
        assert refusal.code in ("role_not_allowed", "event_not_allowed")


def test_quote_total_includes_tax_and_discount() -> None:
    job = reach(S.prospect)
    quote = job.do(
        OFFICE,
        "quote_drafted",
        lines=[QUOTE_LINES[0], QUOTE_LINES[1] | {"taxable": False}],
        tax_rate="8.875",
        discount={"percent": "10", "reason": "returning customer"},
    ).state.quote
    assert quote is not None
    # 640.00 less 10 % = 576.00; tax on the compressor's 450.00 less its share 45.00 = 405.00
    # at 8.875 % = 35.94375 -> 35.94
    assert quote.totals.subtotal == sum(line.amount for line in quote.lines) == QUOTE_TOTAL
    assert (quote.totals.discount, quote.totals.taxable) == (Decimal("64.00"), Decimal("405.00"))
    assert quote.totals.tax == Decimal("35.94")
    assert quote.total == quote.totals.total == Decimal("611.94")
    assert quote.tax_rate == Decimal("8.875")
    job.do(OFFICE, "quote_sent")
    state = job.do(OFFICE, "quote_approved").state
    assert state.contract_amount == Decimal("611.94")


def test_not_created_job_only_takes_job_created() -> None:
    job = Job()
    assert job.state.stage is None
    assert allowed_events(job.state, OFFICE) == ["job_created"]
    assert allowed_events(job.state, TECH) == []
    assert allowed_events(job.state, FEED) == []


def test_job_created_records_the_call() -> None:
    job = Job()
    result = job.do(
        OFFICE,
        "job_created",
        client_id=CLIENT_ID,
        title="Boiler leak",
        source="incoming_email",
        priority="emergency",
        site_address="1 Main St",
    )
    state = result.state
    assert state.stage == S.lead
    assert state.created_at == job.at == state.stage_entered_at
    assert (state.title, state.source, state.priority) == (
        "Boiler leak",
        "incoming_email",
        "emergency",
    )
    assert state.site_address == "1 Main St"
    assert state.owner is None


def test_job_created_for_another_client_is_invalid() -> None:
    job = Job()
    refusal = job.refused(
        OFFICE, "job_created", client_id=CLIENT_ID + 1, title="x", source="incoming_call"
    )
    assert refusal.code == "invalid_event"
    assert "job_created" in refusal.allowed_events


def test_unassigned_lead_cannot_be_qualified() -> None:
    job = reach(S.lead)
    assert job.state.owner is None
    for actor in (OFFICE, MANAGER):
        assert "lead_qualified" not in allowed_events(job.state, actor)
        refusal = job.refused(actor, "lead_qualified")
        assert refusal.code == "event_not_allowed"
        assert "unassigned" in refusal.message
        assert "owner_assigned" in refusal.allowed_events
    job.do(MANAGER, "owner_assigned", owner=OWNER.username)
    assert job.state.owner == OWNER.username
    assert job.do(OFFICE, "lead_qualified").state.stage == S.prospect


def test_sales_lead_is_owned_by_its_creator_who_may_qualify_it() -> None:
    job = Job()
    job.do(OWNER, "job_created")
    assert job.state.owner == OWNER.username
    assert "lead_qualified" in allowed_events(job.state, OWNER)
    assert job.do(OWNER, "lead_qualified").state.stage == S.prospect


def test_only_the_owner_among_sales_may_qualify() -> None:
    job = Job()
    job.do(OWNER, "job_created")
    refusal = job.refused(OTHER_SALES, "lead_qualified")
    assert refusal.code == "role_not_allowed"
    assert OWNER.username in refusal.message
    assert "lead_qualified" not in allowed_events(job.state, OTHER_SALES)
    for actor in (OFFICE, MANAGER, OWNER):
        assert isinstance(job.send(actor, "lead_qualified"), Accepted)
    # reassigning the lead moves the right to qualify to the new owner
    job.do(OFFICE, "owner_assigned", owner=OTHER_SALES.username)
    assert "lead_qualified" in allowed_events(job.state, OTHER_SALES)
    assert job.refused(OWNER, "lead_qualified").code == "role_not_allowed"
    assert job.do(OTHER_SALES, "lead_qualified").state.stage == S.prospect


def test_sales_may_not_qualify_a_lead_owned_by_nobody() -> None:
    job = reach(S.lead)
    refusal = job.refused(OWNER, "lead_qualified")
    assert refusal.code == "role_not_allowed"
    assert "nobody" in refusal.message


# --- quotes and approval -----------------------------------------------------------------------


def test_quote_drafted_versions_and_totals() -> None:
    job = reach(S.prospect)
    first = job.do(OWNER, "quote_drafted").state.quote
    assert first is not None and first.version == 1 and first.total == QUOTE_TOTAL
    second = job.do(OFFICE, "quote_drafted", lines=OTHER_LINES).state.quote
    assert second is not None and second.version == 2 and second.total == Decimal("285.00")


def test_quote_sent_needs_an_address() -> None:
    job = reach(S.quoting, email=None)
    refusal = job.refused(OFFICE, "quote_sent", sms=True)
    assert refusal.code == "invalid_event"
    assert "to_email" in refusal.message
    state = job.do(OFFICE, "quote_sent", to_email="buyer@example.com").state
    assert state.quote is not None and state.quote.sent_to == "buyer@example.com"


def test_quote_sent_approval_expected_at_must_be_in_the_future() -> None:
    job = reach(S.quoting)
    refusal = job.refused(OFFICE, "quote_sent", approval_expected_at=BASE.isoformat())
    assert refusal.code == "invalid_event"
    later = (BASE + timedelta(days=30)).isoformat()
    state = job.do(OFFICE, "quote_sent", approval_expected_at=later).state
    assert state.quote is not None and state.quote.approval_expected_at == BASE + timedelta(days=30)


@pytest.mark.parametrize("stage", [S.quote_sent, S.saving])
def test_sales_approval_flow_granted(stage: Stage) -> None:
    job = reach(stage)
    assert "approval_requested" in allowed_events(job.state, OWNER)
    assert "approval_granted" not in allowed_events(job.state, MANAGER)
    assert job.refused(MANAGER, "approval_granted").code == "event_not_allowed"

    requested = job.do(OWNER, "approval_requested", notes="customer signed")
    assert requested.state.stage == stage
    assert requested.state.approval_pending is True
    assert requested.assign_number is False
    assert job.state.waiting_on == "manager"

    # one request at a time
    again = job.refused(OWNER, "approval_requested")
    assert again.code == "event_not_allowed"
    assert "approval_requested" not in again.allowed_events
    # only a manager decides
    for actor in (OWNER, OFFICE):
        assert job.refused(actor, "approval_granted").code == "role_not_allowed"
        assert job.refused(actor, "approval_denied", reason="no").code == "role_not_allowed"

    granted = job.do(MANAGER, "approval_granted")
    assert granted.state.stage == S.approved
    assert granted.state.approval_pending is False
    assert granted.state.contract_amount == QUOTE_TOTAL
    assert granted.assign_number is True


@pytest.mark.parametrize("stage", [S.quote_sent, S.saving])
def test_sales_approval_flow_denied(stage: Stage) -> None:
    job = reach(stage)
    assert job.refused(MANAGER, "approval_denied", reason="too cheap").code == "event_not_allowed"
    job.do(OWNER, "approval_requested")
    with pytest.raises(ValidationError):
        event("approval_denied")  # a reason is required
    with pytest.raises(ValidationError):
        event("approval_denied", reason="   ")
    denied = job.do(MANAGER, "approval_denied", reason="margin too thin")
    assert denied.state.stage == stage
    assert denied.state.approval_pending is False
    assert denied.assign_number is False
    assert denied.state.contract_amount is None
    # sales may ask again
    assert "approval_requested" in allowed_events(job.state, OWNER)


def test_office_approval_bypasses_a_pending_request() -> None:
    job = reach(S.quote_sent)
    job.do(OWNER, "approval_requested")
    result = job.do(OFFICE, "quote_approved")
    assert result.state.stage == S.approved
    assert result.state.approval_pending is False
    assert result.assign_number is True


def test_redrafting_a_quote_withdraws_the_approval_request() -> None:
    job = reach(S.saving)
    job.do(OWNER, "approval_requested")
    state = job.do(OWNER, "quote_drafted").state
    assert state.stage == S.quoting
    assert state.approval_pending is False


def test_quote_declined_needs_a_reason_and_goes_to_saving() -> None:
    job = reach(S.quote_sent)
    with pytest.raises(ValidationError):
        event("quote_declined")
    state = job.do(OWNER, "quote_declined", reason="too expensive").state
    assert state.stage == S.saving
    assert "quote_drafted" in allowed_events(state, OWNER)
    assert "job_canceled" in allowed_events(state, MANAGER)


# --- job numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(NUMBERED))
def test_events_that_make_a_sale_ask_for_a_number(event_type: str) -> None:
    stage = S.lead if event_type == "emergency_dispatch" else S.quote_sent
    job = reach(stage)
    prepare(job, event_type)
    result = job.do(canonical_actor(event_type), event_type)
    assert result.assign_number is True
    assert result.state.number is None  # the workflow allocates it


@pytest.mark.parametrize("stage", [S.lead, S.prospect])
def test_emergency_dispatch_skips_the_quote(stage: Stage) -> None:
    job = reach(stage)
    result = job.do(MANAGER, "emergency_dispatch", notes="no heat, elderly customer")
    state = result.state
    assert state.stage == S.ready_to_schedule
    assert state.priority == "emergency"
    assert state.quote is None and state.contract_amount is None
    assert result.assign_number is True
    for actor, event_type in MAIN_PATH[8:13]:
        job.do(actor, event_type)
    assert job.state.stage == S.completed
    # no approved quote: the invoice needs its lines
    refusal = job.refused(OFFICE, "invoice_sent", billing_email="ap@example.com")
    assert refusal.code == "invalid_event"
    assert "lines" in refusal.message
    state = job.do(OFFICE, "invoice_sent", lines=OTHER_LINES).state
    assert state.invoice is not None and state.invoice.total == Decimal("285.00")
    assert state.invoice.override_reason is None


# --- parts -------------------------------------------------------------------------------------


def test_parts_partial_delivery_stays_awaiting_parts() -> None:
    job = reach(S.awaiting_parts)
    assert [p.line.sku for p in job.state.outstanding_parts] == ["P-1", "P-2"]
    partial = job.do(FEED, "parts_delivered", skus=["P-1"]).state
    assert partial.stage == S.awaiting_parts
    assert [p.line.sku for p in partial.outstanding_parts] == ["P-2"]
    assert partial.stage_entered_at == job.state.stage_entered_at
    done = job.do(OFFICE, "parts_delivered", skus=["P-2"]).state
    assert done.stage == S.ready_to_schedule
    assert done.outstanding_parts == []
    assert all(p.delivered_at is not None for p in done.parts)


def test_parts_delivered_unknown_sku_is_invalid() -> None:
    job = reach(S.awaiting_parts)
    refusal = job.refused(FEED, "parts_delivered", skus=["P-1", "NOPE"])
    assert refusal.code == "invalid_event"
    assert "NOPE" in refusal.message and "P-2" in refusal.message
    assert "parts_delivered" in refusal.allowed_events


def test_parts_ordered_twice_for_an_outstanding_sku_is_invalid() -> None:
    job = reach(S.awaiting_parts)
    refusal = job.refused(OFFICE, "parts_ordered", parts=[part_line("P-2")])
    assert refusal.code == "invalid_event"
    assert "P-2" in refusal.message
    more = job.do(OFFICE, "parts_ordered", parts=[part_line("P-3")]).state
    assert more.stage == S.awaiting_parts
    assert len(more.outstanding_parts) == 3


def test_parts_ordered_event_needs_distinct_skus() -> None:
    with pytest.raises(ValidationError):
        event("parts_ordered", parts=[part_line("A"), part_line("A")])


# --- scheduling, checklist and dispatch --------------------------------------------------------


def test_checklist_gates_dispatch() -> None:
    job = reach(S.scheduled, checklist=False)
    assert job.state.checklist is None
    for actor in (OFFICE, TECH):
        assert "tech_dispatched" not in allowed_events(job.state, actor)
        refusal = job.refused(actor, "tech_dispatched")
        assert refusal.code == "event_not_allowed"
        assert "checklist" in refusal.message
    assert "checklist_completed" in allowed_events(job.state, OFFICE)
    job.do(OFFICE, "checklist_completed")
    assert "tech_dispatched" in allowed_events(job.state, TECH)
    assert job.do(TECH, "tech_dispatched", notify_customer=True).state.stage == S.dispatched


def test_checklist_needs_parts_verified() -> None:
    job = reach(S.scheduled, checklist=False)
    fields = valid_payload("checklist_completed", job.state) | {"parts_verified": False}
    refusal = job.refused(OFFICE, "checklist_completed", **fields)
    assert refusal.code == "invalid_event"
    assert "parts_verified" in refusal.message


def test_platinum_checklist_needs_the_protocol_acknowledged() -> None:
    job = reach(S.scheduled, checklist=False, tier="platinum")
    fields = valid_payload("checklist_completed", job.state)
    fields["platinum_protocol_acknowledged"] = False
    refusal = job.refused(OFFICE, "checklist_completed", **fields)
    assert refusal.code == "invalid_event"
    assert "platinum_protocol_acknowledged" in refusal.message
    assert "checklist_completed" in refusal.allowed_events
    fields["platinum_protocol_acknowledged"] = True
    checklist = job.do(OFFICE, "checklist_completed", **fields).state.checklist
    assert checklist is not None and checklist.platinum_protocol_acknowledged
    assert checklist.completed_by == OFFICE.username


@pytest.mark.parametrize("tier", ["standard", "gov"])
def test_non_platinum_checklist_needs_no_acknowledgement(tier: str) -> None:
    job = reach(S.scheduled, checklist=False, tier=tier)
    fields = valid_payload("checklist_completed", job.state)
    fields["platinum_protocol_acknowledged"] = False
    assert job.do(OFFICE, "checklist_completed", **fields).state.checklist is not None


def test_rescheduling_keeps_the_checklist_only_for_the_same_technician() -> None:
    job = reach(S.scheduled)
    same = job.do(OFFICE, "job_scheduled").state
    assert same.checklist is not None
    fields = valid_payload("job_scheduled", job.state) | {"technician": OTHER_TECH.username}
    other = job.do(OFFICE, "job_scheduled", **fields).state
    assert other.schedule is not None and other.schedule.technician == OTHER_TECH.username
    assert other.checklist is None
    assert "tech_dispatched" not in allowed_events(other, OFFICE)


def test_schedule_window_must_be_ordered() -> None:
    with pytest.raises(ValidationError):
        event(
            "job_scheduled",
            technician="tina",
            window_start="2026-11-30T15:00:00+00:00",
            window_end="2026-11-30T13:00:00+00:00",
        )


@pytest.mark.parametrize("event_type", TECHNICIAN_EVENTS)
def test_technician_events_only_by_the_assigned_technician(event_type: str) -> None:
    job = reach(first_stage(event_type))
    refusal = job.refused(OTHER_TECH, event_type)
    assert refusal.code == "role_not_allowed"
    assert TECH.username in refusal.message
    assert event_type not in refusal.allowed_events
    assert event_type in allowed_events(job.state, TECH)
    assert event_type in allowed_events(job.state, OFFICE)
    assert isinstance(job.send(TECH, event_type), Accepted)
    assert isinstance(job.send(OFFICE, event_type), Accepted)


@pytest.mark.parametrize("event_type", TECHNICIAN_EVENTS)
def test_technician_events_refused_to_technicians_before_scheduling(event_type: str) -> None:
    job = reach(S.approved)
    refusal = job.refused(TECH, event_type)
    assert refusal.code == "role_not_allowed"
    assert "none" in refusal.message


def test_technician_dispatch_check_in_and_completion() -> None:
    job = reach(S.scheduled)
    job.do(TECH, "tech_dispatched")
    assert job.do(TECH, "tech_checked_in").state.stage == S.on_site
    state = job.do(
        TECH,
        "job_completed",
        work_performed="Replaced compressor",
        parts_used=[{"sku": "P-1", "quantity": "1"}],
        fields={"serial": "X1"},
    ).state
    assert state.stage == S.completed
    assert state.completion is not None
    assert state.completion.completed_by == TECH.username
    assert state.completion.fields == {"serial": "X1"}


# --- incomplete visits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "to"),
    [("wrong_parts", S.awaiting_parts), ("insufficient_time", S.ready_to_schedule)],
)
def test_job_incomplete(reason: str, to: Stage) -> None:
    job = reach(S.on_site)
    assert job.state.schedule is not None and job.state.checklist is not None
    state = job.do(TECH, "job_incomplete", reason=reason, notes="see photos").state
    assert state.stage == to
    assert state.schedule is None
    assert state.checklist is None
    assert state.incomplete_visits == 1
    assert state.stage_entered_at == job.at
    # the technician is no longer assigned
    assert allowed_events(state, TECH) == ["note_added", "communication_logged"]


def test_job_incomplete_reason_is_required_and_constrained() -> None:
    with pytest.raises(ValidationError):
        event("job_incomplete")
    with pytest.raises(ValidationError):
        event("job_incomplete", reason="customer_away")


def test_wrong_parts_then_reorder_and_revisit() -> None:
    job = reach(S.on_site)
    job.do(TECH, "job_incomplete", reason="wrong_parts")
    assert job.state.outstanding_parts == []
    # nothing outstanding: delivery makes no sense until parts are ordered again
    refusal = job.refused(FEED, "parts_delivered", skus=["P-1"])
    assert refusal.code == "event_not_allowed"
    job.do(OFFICE, "parts_ordered", parts=[part_line("P-1B")])
    assert job.do(FEED, "parts_delivered", skus=["P-1B"]).state.stage == S.ready_to_schedule
    job.do(OFFICE, "job_scheduled")
    assert "tech_dispatched" not in allowed_events(job.state, OFFICE)  # the checklist again


def test_insufficient_time_then_reschedule() -> None:
    job = reach(S.on_site)
    job.do(OFFICE, "job_incomplete", reason="insufficient_time")
    assert job.do(OFFICE, "job_scheduled").state.stage == S.scheduled
    assert job.state.checklist is None


# --- invoice -----------------------------------------------------------------------------------


def test_invoice_defaults_to_the_approved_quote_lines() -> None:
    job = reach(S.completed)
    quote = job.state.quote
    assert quote is not None
    state = job.do(OFFICE, "invoice_sent", submitted_to_client_portal=True).state
    assert state.stage == S.invoiced
    assert state.invoice is not None
    assert state.invoice.lines == quote.lines
    assert state.invoice.total == QUOTE_TOTAL
    assert state.invoice.billing_email == "client@example.com"
    assert state.invoice.submitted_to_client_portal is True
    assert state.amount_due == QUOTE_TOTAL


def test_invoice_with_the_same_lines_needs_no_reason() -> None:
    job = reach(S.completed)
    state = job.do(OFFICE, "invoice_sent", lines=QUOTE_LINES).state
    assert state.invoice is not None and state.invoice.total == QUOTE_TOTAL


def test_invoice_with_other_lines_needs_an_override_reason() -> None:
    job = reach(S.completed)
    refusal = job.refused(OFFICE, "invoice_sent", lines=OTHER_LINES)
    assert refusal.code == "invalid_event"
    assert "override_reason" in refusal.message
    assert "invoice_sent" in refusal.allowed_events
    state = job.do(
        OFFICE, "invoice_sent", lines=OTHER_LINES, override_reason="compressor under warranty"
    ).state
    assert state.invoice is not None
    assert state.invoice.total == Decimal("285.00")
    assert state.invoice.override_reason == "compressor under warranty"
    assert state.amount_due == Decimal("285.00")


def test_invoice_uses_the_billing_email_on_file() -> None:
    job = reach(S.completed, billing_email="ap@acme.example")
    state = job.do(OFFICE, "invoice_sent").state
    assert state.invoice is not None and state.invoice.billing_email == "ap@acme.example"


def test_invoice_needs_some_billing_address() -> None:
    job = reach(S.completed, email=None)
    refusal = job.refused(OFFICE, "invoice_sent", submitted_to_client_portal=False)
    assert refusal.code == "invalid_event"
    assert "billing_email" in refusal.message
    assert job.do(OFFICE, "invoice_sent", billing_email="ap@example.com").state.invoice


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({}, ["billing_email", "po_number"]),
        ({"billing_email": "ap@example.com"}, ["po_number"]),
        ({"po_number": "PO-77"}, ["billing_email"]),
    ],
    ids=["nothing", "no-po", "no-email"],
)
def test_platinum_billing_needs_billing_email_and_po_number(
    fields: dict[str, Any], missing: list[str]
) -> None:
    job = reach(S.completed, tier="platinum", email=None)
    refusal = job.refused(OFFICE, "invoice_sent", submitted_to_client_portal=True, **fields)
    assert refusal.code == "invalid_event"
    message = refusal.message.split("missing:")[-1]
    for name in ("billing_email", "po_number"):
        assert (name in message) is (name in missing)


def test_platinum_invoice_with_both_is_accepted() -> None:
    job = reach(S.completed, tier="platinum", billing_email="ap@acme.example")
    refusal = job.refused(OFFICE, "invoice_sent", submitted_to_client_portal=True)
    assert "po_number" in refusal.message and "billing_email" not in refusal.message.split(":")[-1]
    invoice = job.do(OFFICE, "invoice_sent", po_number="PO-77").state.invoice
    assert invoice is not None
    assert (invoice.billing_email, invoice.po_number) == ("ap@acme.example", "PO-77")


# --- evidence and payment ----------------------------------------------------------------------

EVIDENCE = ("documents", "notes", "parts_usage", "photos", "customer_communication")


@pytest.mark.parametrize("missing", EVIDENCE)
def test_evidence_verified_needs_all_five(missing: str) -> None:
    job = reach(S.invoiced)
    fields = dict.fromkeys(EVIDENCE, True) | {missing: False}
    refusal = job.refused(MANAGER, "evidence_verified", **fields)
    assert refusal.code == "invalid_event"
    assert missing in refusal.message
    assert "evidence_verified" in refusal.allowed_events


def test_evidence_verified_all_true() -> None:
    job = reach(S.invoiced)
    state = job.do(MANAGER, "evidence_verified").state
    assert state.stage == S.verified
    assert state.evidence_verified_at == job.at
    assert state.waiting_on == "customer"


def test_paid_on_site_then_invoice_and_evidence_close_directly() -> None:
    job = reach(S.completed)
    paid = job.do(OFFICE, "payment_recorded", amount="640.00", method="cash", paid_on_site=True)
    assert paid.state.stage == S.completed
    assert paid.state.paid_in_full
    assert job.do(OFFICE, "invoice_sent").state.stage == S.invoiced
    closed = job.do(MANAGER, "evidence_verified").state
    assert closed.stage == S.closed
    assert closed.evidence_verified_at is not None
    assert closed.stage_entered_at == job.at


@pytest.mark.parametrize("stage", [S.invoiced, S.verified])
def test_paid_on_site_only_at_completion(stage: Stage) -> None:
    job = reach(stage)
    refusal = job.refused(
        OFFICE, "payment_recorded", amount="640.00", method="cash", paid_on_site=True
    )
    assert refusal.code == "invalid_event"
    assert "paid_on_site" in refusal.message


def test_paid_in_full_at_verified_closes() -> None:
    job = reach(S.verified)
    part = job.do(OFFICE, "payment_recorded", amount="600.00", method="check").state
    assert part.stage == S.verified and not part.paid_in_full
    closed = job.do(OFFICE, "payment_recorded", amount="40.00", method="ach").state
    assert closed.stage == S.closed
    assert closed.paid_in_full
    assert closed.stage_entered_at == job.at
    assert allowed_events(closed, OFFICE) == []


def test_paid_in_full_while_invoiced_closes_on_evidence() -> None:
    job = reach(S.invoiced)
    assert job.do(OFFICE, "payment_recorded", amount="640.00", method="card").state.stage == (
        S.invoiced
    )
    assert job.do(MANAGER, "evidence_verified").state.stage == S.closed


def test_payment_against_the_invoice_not_the_quote() -> None:
    job = reach(S.completed)
    job.do(OFFICE, "payment_recorded", amount="285.00", method="cash", paid_on_site=True)
    job.do(OFFICE, "invoice_sent", lines=OTHER_LINES + OTHER_LINES, override_reason="extra visit")
    assert job.state.amount_due == Decimal("570.00")
    assert not job.state.paid_in_full
    assert job.do(MANAGER, "evidence_verified").state.stage == S.verified
    assert job.do(OFFICE, "payment_recorded", amount="285.00", method="cash").state.stage == (
        S.closed
    )


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "1.001"])
def test_payment_amount_must_be_positive_money(amount: str) -> None:
    with pytest.raises(ValidationError):
        event("payment_recorded", amount=amount, method="cash")


# --- cancelation -------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", sorted(BEFORE_COMPLETED), ids=str)
def test_job_canceled_from_every_stage_before_completed(stage: Stage) -> None:
    job = reach(stage)
    state = job.do(OFFICE, "job_canceled", reason="customer moved").state
    assert state.stage == S.canceled
    assert state.canceled_from == stage
    assert state.cancel_reason == "customer moved"
    assert state.milestone == Milestone.canceled
    assert state.stage_entered_at == job.at


@pytest.mark.parametrize("stage", [S.completed, S.invoiced, S.verified, S.closed, S.canceled])
def test_job_canceled_refused_from_completed_on(stage: Stage) -> None:
    job = reach(stage)
    refusal = job.refused(MANAGER, "job_canceled", reason="too late")
    assert refusal.code == "event_not_allowed"
    assert "job_canceled" not in refusal.allowed_events


def test_job_canceled_needs_a_reason() -> None:
    with pytest.raises(ValidationError):
        event("job_canceled")
    with pytest.raises(ValidationError):
        event("job_canceled", reason="")


# --- record-only events ------------------------------------------------------------------------


def test_contact_updated_updates_the_client_snapshot() -> None:
    job = reach(S.quoting, email=None)
    state = job.do(OFFICE, "contact_updated", email="new@example.com").state
    assert state.client.email == "new@example.com"
    assert state.client.phone is None
    assert job.do(OFFICE, "quote_sent").state.quote.sent_to == "new@example.com"  # type: ignore[union-attr]


@pytest.mark.parametrize("change", [{"email": "attacker@example.com"}, {"phone": "555-0666"}])
def test_a_technician_cannot_change_where_the_customers_messages_go(change: dict) -> None:
    job = reach(S.on_site)  # tina is the assigned technician, at work on the job
    refusal = job.refused(TECH, "contact_updated", **change)
    assert refusal.code == "role_not_allowed"
    assert "office" in refusal.message and "note_added" in refusal.message
    assert "contact_updated" not in allowed_events(job.state, TECH)


def test_customer_update_needs_an_address() -> None:
    job = reach(S.approved, email=None)
    refusal = job.refused(OFFICE, "customer_update_sent", message="Parts ordered")
    assert refusal.code == "invalid_event"
    assert "to_email" in refusal.message
    result = job.do(
        OWNER, "customer_update_sent", message="Parts ordered", to_email="b@example.com"
    )
    assert result.state == job.state  # sending is the workflow's job: the state does not change


def test_customer_update_by_sms_needs_a_phone() -> None:
    job = reach(S.approved)
    assert job.state.client.phone is None
    refusal = job.refused(OFFICE, "customer_update_sent", message="On our way", sms=True)
    assert refusal.code == "invalid_event"
    assert "sms_phone" in refusal.message
    job.do(OFFICE, "customer_update_sent", message="On our way", sms=True, sms_phone="555-0100")
    job.do(OFFICE, "contact_updated", phone="555-0101")
    job.do(MANAGER, "customer_update_sent", message="On our way", sms=True)


def test_events_carry_no_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        event("note_added", text="hi", extra=1)
    with pytest.raises(ValidationError):
        event("no_such_event")
