"""Every event in the OpenAPI document is described and carries an example a client may send;
the events route offers one example per event, and the one Swagger pre-fills is accepted."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from models.bounds import EDGE
from models.events import EVENT_TYPES, Event
from tests.conftest import Stack

EVENTS = TypeAdapter(Event)
ROUTE = "/api/v1/jobs/{slug}/events"


async def _spec(stack: Stack) -> dict[str, Any]:
    response = await stack.http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _event_schemas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each event type's schema, found the way a client finds it: the body's discriminator."""
    body = spec["paths"][ROUTE]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mapping = body["discriminator"]["mapping"]
    schemas = spec["components"]["schemas"]
    return {type_: schemas[ref.rsplit("/", 1)[-1]] for type_, ref in mapping.items()}


def _accepts(example: dict[str, Any], type_: str) -> None:
    # As a client's input: the edge's ranges apply (api/jobs/service.check_event).
    event = EVENTS.validate_python(example, context=EDGE)
    assert event.type == type_


async def test_every_event_schema_has_a_description_and_a_valid_example(stack: Stack) -> None:
    schemas = _event_schemas(await _spec(stack))
    assert set(schemas) == set(EVENT_TYPES)
    for type_, schema in schemas.items():
        assert schema.get("description", "").strip(), f"{type_} has no description"
        examples = schema.get("examples")
        assert examples, f"{type_} has no example"
        for example in examples:
            _accepts(example, type_)


async def test_the_events_route_offers_one_valid_example_per_event_it_takes(stack: Stack) -> None:
    body = (await _spec(stack))["paths"][ROUTE]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]
    # job_created is refused here (a job starts at POST /api/v1/jobs), so it is not offered.
    assert set(examples) == set(EVENT_TYPES) - {"job_created"}
    for type_, example in examples.items():
        assert example["summary"] == type_
        _accepts(example["value"], type_)
    # Swagger's "Try it out" pre-fills the first example: it must be welcome on any open job.
    assert next(iter(examples)) == "note_added"


async def test_the_prefilled_note_example_is_accepted_by_the_api(stack: Stack) -> None:
    body = (await _spec(stack))["paths"][ROUTE]["post"]["requestBody"]
    note = body["content"]["application/json"]["examples"]["note_added"]["value"]
    job = await stack.new_job()
    response = await stack.post("olga", f"/api/v1/jobs/{job['slug']}/events", note)
    assert response.status_code == 200, response.text
    timeline = response.json()["timeline"]
    assert any(entry["type"] == "note_added" for entry in timeline), timeline


# Who sends each example on the walk below (DESIGN.md §4's "who"); the rest are sent by olga.
SENDER = {"job_completed": "tess", "tech_checked_in": "tess", "evidence_verified": "mia"}
# A job's life in the order the rules take it, by the examples alone: a reader who copies them
# from /docs in this order gets a job from lead to paid without guessing a body.
WALK = (
    "owner_assigned",
    "lead_qualified",
    "quote_drafted",
    "quote_sent",
    "quote_approved",
    "parts_ordered",
    "parts_delivered",
    "job_scheduled",
    "checklist_completed",
    "tech_dispatched",
    "tech_checked_in",
    "job_completed",
    "invoice_sent",
    "evidence_verified",
    "communication_logged",
    "contact_updated",
    "payment_recorded",
)


async def test_the_examples_walk_a_job_from_lead_to_paid(stack: Stack) -> None:
    body = (await _spec(stack))["paths"][ROUTE]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]
    job = await stack.new_job(client_id=(await stack.new_client(phone="+1 555 0100"))["id"])
    for type_ in WALK:
        sender = SENDER.get(type_, "olga")
        response = await stack.post(
            sender, f"/api/v1/jobs/{job['slug']}/events", examples[type_]["value"]
        )
        assert response.status_code == 200, (type_, response.text)
        job = response.json()
    # The quote's 185.00 + 1.5 x 120.00 paid in full, after verification: the job is closed.
    assert Decimal(str(job["paid_total"])) == Decimal("365.00")
    assert job["stage"] == "closed", job["stage"]


# The other roads, each from a new job: every example the events route offers is sent once.
SIDE_ROADS = (
    # A quote whose parts a supplier is asked to price, that the customer turns down, then a
    # canceled job.
    [("olga", t) for t in ("owner_assigned", "lead_qualified", "quote_drafted", "quote_sent")]
    + [("olga", "supplier_quote_requested")]
    + [("olga", "quote_declined"), ("mia", "job_canceled")],
    # A sales person's quote needs a manager: refused once, asked again, approved.
    [("olga", "owner_assigned"), ("olga", "lead_qualified"), ("sam", "quote_drafted")]
    + [("sam", "quote_sent"), ("sam", "approval_requested"), ("mia", "approval_denied")]
    + [("sam", "approval_requested"), ("mia", "approval_granted")],
    # An emergency: no quote; the customer is told; the technician lacks the right part.
    [("olga", "emergency_dispatch"), ("olga", "customer_update_sent"), ("olga", "job_scheduled")]
    + [("olga", "checklist_completed"), ("tess", "tech_dispatched")]
    + [("tess", "tech_checked_in"), ("tess", "job_incomplete")],
)


async def test_every_offered_example_is_accepted_on_its_road(stack: Stack) -> None:
    body = (await _spec(stack))["paths"][ROUTE]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]
    sent = {"note_added", *WALK}
    for road in SIDE_ROADS:
        client = await stack.new_client(phone="+1 555 0100")
        slug = (await stack.new_job(client_id=client["id"]))["slug"]
        for sender, type_ in road:
            response = await stack.post(
                sender, f"/api/v1/jobs/{slug}/events", examples[type_]["value"]
            )
            assert response.status_code == 200, (type_, sender, response.text)
            sent.add(type_)
    assert sent == set(examples), set(examples) - sent
