"""Dates at the edge of the allowed range, for every date field, through the API (issue 8 item 4).

The range is models/bounds.py's: 2000-01-01 to 2100-12-31, a time's instant in UTC. For each
date field of the events (`window_start`, `window_end`, `expected_delivery`, `valid_until`,
`approval_expected_at`) and the closeout receipt fields' dates: one step outside either end is a
422 that names the field and the range, and leaves the job as it was; the first and the last
allowed values are taken (200) — and the job goes on answering, which the values that used to
stop it (year 9999 at -12:00, year 1, 9999-12-31) did not let it do. Both databases.

`approval_expected_at` must also be in the future (a rule, not the range): its first allowed
value passes the range and is refused by that rule instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models.bounds import DATE_MAX, DATE_MIN, DATETIME_MAX, DATETIME_MIN
from tests.api.journeys import QUOTE, drive, on_site, quoted
from tests.api.settings import api_error, closeout_settings
from tests.conftest import Stack

US = timedelta(microseconds=1)
H = timedelta(hours=1)
RANGE = ("2000-01-01", "2100-12-31")


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def snapshot(stack: Stack, slug: str) -> tuple[Any, ...]:
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    return (
        job["seq"],
        job["stage"],
        job["quote"],
        job["parts"],
        job["schedule"],
        [e["seq"] for e in job["timeline"]],
    )


async def refused(stack: Stack, slug: str, type_: str, field: str, **fields: Any) -> None:
    """The event is a 422 naming the field and the range, and the job is as it was."""
    before = await snapshot(stack, slug)
    response = await stack.event("olga", slug, type_, **fields)
    error = api_error(response, 422, field, *RANGE)
    assert error["code"] == "validation_error"
    assert await snapshot(stack, slug) == before


async def taken(stack: Stack, slug: str, username: str, type_: str, **fields: Any) -> dict:
    before = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["seq"]
    response = await stack.event(username, slug, type_, **fields)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["seq"] > before  # the event, and any reminder it made due at once (parts overdue)
    return job


async def still_answers(stack: Stack, slug: str) -> None:
    """The job takes its next event at once: nothing about the date holds it up."""
    await taken(stack, slug, "olga", "note_added", text="still here")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- job_scheduled: window_start and window_end ---------------------------------------------------


def window(start: datetime | str, end: datetime | str) -> dict[str, Any]:
    return {
        "technician": "tess",
        "window_start": start if isinstance(start, str) else iso(start),
        "window_end": end if isinstance(end, str) else iso(end),
    }


async def test_the_window_takes_the_edges_and_refuses_a_step_outside(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    await taken(stack, slug, "olga", "emergency_dispatch")

    await refused(
        stack, slug, "job_scheduled", "window_start", **window(DATETIME_MIN - US, DATETIME_MIN + H)
    )
    await refused(
        stack, slug, "job_scheduled", "window_end", **window(DATETIME_MAX - H, DATETIME_MAX + US)
    )
    # The same instants written in the offsets furthest east and west.
    await refused(
        stack,
        slug,
        "job_scheduled",
        "window_start",
        **window("2000-01-01T13:59:59.999999+14:00", DATETIME_MIN + H),
    )
    await refused(
        stack,
        slug,
        "job_scheduled",
        "window_end",
        **window(DATETIME_MAX - H, "2100-12-31T12:00:00-12:00"),
    )
    # What stopped jobs: year 9999 at -12:00 (past what a datetime in UTC holds), and year 1.
    await refused(
        stack,
        slug,
        "job_scheduled",
        "window_start",
        **window("9999-12-31T20:00:00-12:00", "9999-12-31T23:00:00-12:00"),
    )
    await refused(
        stack,
        slug,
        "job_scheduled",
        "window_start",
        **window("0001-01-01T09:00:00Z", "0001-01-01T12:00:00Z"),
    )

    first = await taken(
        stack, slug, "olga", "job_scheduled", **window(DATETIME_MIN, DATETIME_MIN + H)
    )
    assert parse(first["schedule"]["window_start"]) == DATETIME_MIN
    await still_answers(stack, slug)
    # Rescheduled to the very end of the range, written at -12:00.
    last = await taken(
        stack,
        slug,
        "olga",
        "job_scheduled",
        **window("2100-12-31T10:59:59.999999-12:00", "2100-12-31T11:59:59.999999-12:00"),
    )
    assert parse(last["schedule"]["window_end"]) == DATETIME_MAX
    await still_answers(stack, slug)
    canceled = await taken(stack, slug, "mia", "job_canceled", reason="date edge test")
    assert canceled["stage"] == "canceled"


# --- parts_ordered: expected_delivery -------------------------------------------------------------


def part(sku: str, expected: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": f"Part {sku}",
        "quantity": 1,
        "supplier": "Example Supply Co",
        "po_number": f"PO-{sku}",
        "expected_delivery": expected,
    }


async def test_expected_delivery_takes_the_edges_and_refuses_a_step_outside(stack: Stack) -> None:
    slug = await quoted(stack, approved=True)
    day = timedelta(days=1)
    for outside in (DATE_MIN - day, DATE_MAX + day, datetime(9999, 12, 31).date()):
        await refused(
            stack,
            slug,
            "parts_ordered",
            "expected_delivery",
            parts=[part("FAN", outside.isoformat())],
        )
    job = await taken(
        stack,
        slug,
        "olga",
        "parts_ordered",
        parts=[part("FAN", DATE_MIN.isoformat()), part("CAP", DATE_MAX.isoformat())],
    )
    assert job["stage"] == "awaiting_parts"
    expected = sorted(p["line"]["expected_delivery"] for p in job["parts"])
    assert expected == [DATE_MIN.isoformat(), DATE_MAX.isoformat()]
    await still_answers(stack, slug)


# --- quote_drafted.valid_until and quote_sent.approval_expected_at --------------------------------


async def quoting(stack: Stack) -> str:
    job = await stack.new_job()
    await drive(
        stack,
        job["slug"],
        [("olga", "owner_assigned", {"owner": "sam"}), ("sam", "lead_qualified", {})],
    )
    return job["slug"]


async def test_valid_until_takes_the_edges_and_refuses_a_step_outside(stack: Stack) -> None:
    slug = await quoting(stack)
    day = timedelta(days=1)
    for outside in (DATE_MIN - day, DATE_MAX + day):
        await refused(
            stack, slug, "quote_drafted", "valid_until", **QUOTE, valid_until=outside.isoformat()
        )
    for edge in (DATE_MIN, DATE_MAX):
        job = await taken(
            stack, slug, "sam", "quote_drafted", **QUOTE, valid_until=edge.isoformat()
        )
        assert job["quote"]["valid_until"] == edge.isoformat()
    await still_answers(stack, slug)


async def test_approval_expected_at_takes_the_edges_and_refuses_a_step_outside(
    stack: Stack,
) -> None:
    slug = await quoting(stack)
    await taken(stack, slug, "sam", "quote_drafted", **QUOTE)
    for outside in (iso(DATETIME_MIN - US), iso(DATETIME_MAX + US), "9999-12-31T23:00:00-12:00"):
        await refused(
            stack, slug, "quote_sent", "approval_expected_at", approval_expected_at=outside
        )

    # The first instant passes the range; the rules then want a time in the future.
    before = await snapshot(stack, slug)
    response = await stack.event("sam", slug, "quote_sent", approval_expected_at=iso(DATETIME_MIN))
    error = api_error(response, 422, "approval_expected_at", "future")
    assert "2100-12-31" not in error["message"]
    assert await snapshot(stack, slug) == before

    last = "2100-12-31T11:59:59.999999-12:00"
    job = await taken(stack, slug, "sam", "quote_sent", approval_expected_at=last)
    assert parse(job["quote"]["approval_expected_at"]) == DATETIME_MAX
    # The first follow-up waits for that moment (some 75 years on); the job answers meanwhile.
    await still_answers(stack, slug)


# --- job_completed: receipt fields of type date ---------------------------------------------------

RECEIPT_DATES = [
    {"key": "next_visit", "label": "Next visit", "type": "date"},
    {"key": "warranty_until", "label": "Warranty until", "type": "date"},
]


async def test_a_receipt_date_takes_the_edges_and_refuses_a_step_outside(stack: Stack) -> None:
    async with closeout_settings(stack, receipt_fields=RECEIPT_DATES):
        job = await on_site(stack)
        slug = job["slug"]
        done = {"work_performed": "Serviced the unit"}
        for outside in ("1999-12-31", "2101-01-01", "9999-12-31", "0001-01-01"):
            before = await snapshot(stack, slug)
            response = await stack.event(
                "tess", slug, "job_completed", **done, fields={"next_visit": outside}
            )
            error = api_error(response, 422, "Next visit (next_visit)", *RANGE)
            assert error["code"] == "invalid_event"
            assert await snapshot(stack, slug) == before
        edges = {"next_visit": "2000-01-01", "warranty_until": "2100-12-31"}
        completed = await taken(stack, slug, "tess", "job_completed", **done, fields=edges)
        assert completed["stage"] == "completed"
        assert completed["completion"]["fields"] == edges


async def test_a_date_is_text_not_a_number(stack: Stack) -> None:
    """A number for a date would be read as seconds since 1970: refused, naming the field."""
    job = await stack.new_job()
    slug = job["slug"]
    await taken(stack, slug, "olga", "emergency_dispatch")
    before = await snapshot(stack, slug)
    response = await stack.event(
        "olga",
        slug,
        "job_scheduled",
        technician="tess",
        window_start=1893488400,
        window_end="2030-01-05T12:00:00Z",
    )
    api_error(response, 422, "window_start", "ISO 8601")
    assert await snapshot(stack, slug) == before
