"""Every event in the OpenAPI document is described and carries an example a client may send;
the events route offers one example per event, and the one Swagger pre-fills is accepted."""

from __future__ import annotations

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
