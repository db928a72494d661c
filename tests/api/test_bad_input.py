"""Every route answers bad input with a clear 4xx in the one error shape, and changes nothing.

DESIGN.md §8: errors are `{"error": {"code", "message", ...}}` with 401/403/404/409/422, never a
500 for bad input; a refused event is 409 with `stage` and `allowed_events`. Each case below sends
one mistake and then checks that the job (its seq, stage and timeline) or the lists are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Stack

CLIENTS = "/api/v1/clients"
JOBS = "/api/v1/jobs"
NO_SUCH_ID = 2**31 - 1
LONG = "x" * 100_000


@dataclass(frozen=True)
class Case:
    """One bad request: what to send, the status it must get, and what the message must name."""

    id: str
    body: Any = None
    status: int = 422
    mentions: tuple[str, ...] = ()
    raw: bytes | None = None  # sent as-is instead of `body`
    params: dict[str, Any] = field(default_factory=dict)

    async def send(
        self, stack: Stack, method: str, path: str, user: str = "olga"
    ) -> httpx.Response:
        headers = stack.auth(user)
        if self.raw is not None:
            headers["Content-Type"] = "application/json"
            return await stack.http.request(method, path, content=self.raw, headers=headers)
        json = self.body if method != "GET" else None
        return await stack.http.request(
            method, path, json=json, params=self.params or None, headers=headers
        )


def assert_error(response: httpx.Response, case: Case) -> dict:
    """The status, the shape, and a message a person can act on."""
    assert response.status_code == case.status, (case.id, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], error
    message = error.get("message")
    assert isinstance(message, str) and len(message.strip()) >= 8, error
    assert "Traceback" not in message and "sqlalchemy" not in message.lower(), message
    for word in case.mentions:
        assert word in message, (case.id, word, message)
    if case.status == 409:
        assert error["code"] == "event_not_allowed"
        assert isinstance(error["stage"], str) and error["stage"]
        assert isinstance(error["allowed_events"], list)
    if case.status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
    return error


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def _window(start_in_days: int = 2, hours: int = 3) -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(days=start_in_days)).replace(microsecond=0)
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=hours)).isoformat(),
    }


async def _client_total(stack: Stack) -> int:
    response = await stack.get("olga", CLIENTS, params={"page_size": 1})
    assert response.status_code == 200
    return response.json()["total"]


async def _job_total(stack: Stack) -> int:
    response = await stack.get("olga", JOBS, params={"page_size": 1})
    assert response.status_code == 200
    return response.json()["total"]


async def _job_snapshot(stack: Stack, slug: str) -> tuple:
    job = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    return (
        job["seq"],
        job["stage"],
        job["updated_at"],
        job["owner"],
        job["schedule"],
        [e["seq"] for e in job["timeline"]],
    )


# --- clients --------------------------------------------------------------------------------------

MALFORMED = [
    Case("truncated-json", raw=b'{"name": "Acme', mentions=("JSON",)),
    Case("not-json-at-all", raw=b"name=Acme", mentions=("JSON",)),
    Case("trailing-comma", raw=b'{"name": "Acme",}', mentions=("JSON",)),
    Case("invalid-utf8", raw=b'{"name": "\xff\xfe"}', mentions=("JSON",)),
    Case("nested-too-deeply", raw=b"[" * 100_000 + b"]" * 100_000),
    Case("empty-body", raw=b"", mentions=("body",)),
    Case("null-body", body=None, raw=b"null", mentions=("body",)),
    Case("list-body", body=[{"name": "Acme"}], mentions=("body",)),
    Case("string-body", body="Acme", mentions=("body",)),
]

CLIENT_CREATE = [
    *MALFORMED,
    Case("missing-name", {"email": "a@example.com"}, mentions=("name",)),
    Case("empty-name", {"name": ""}, mentions=("name",)),
    Case("blank-name", {"name": "   "}, mentions=("name",)),
    Case("name-not-a-string", {"name": 42}, mentions=("name",)),
    Case("name-is-an-object", {"name": {"first": "A"}}, mentions=("name",)),
    Case("name-too-long", {"name": "n" * 201}, mentions=("name",)),
    Case("absurdly-long-notes", {"name": "Acme", "notes": LONG}, mentions=("notes",)),
    Case("absurdly-long-address", {"name": "Acme", "address": LONG}, mentions=("address",)),
    Case("nul-in-name", {"name": "Acme\x00Corp"}, mentions=("name", "NUL")),
    Case("nul-in-email", {"name": "Acme", "email": "a\x00@example.com"}, mentions=("email",)),
    Case("unknown-tier", {"name": "Acme", "tier": "gold"}, mentions=("tier",)),
    Case("tier-wrong-case", {"name": "Acme", "tier": "GOV"}, mentions=("tier",)),
    Case("bad-email", {"name": "Acme", "email": "not-an-email"}, mentions=("email",)),
    Case("bad-billing-email", {"name": "Acme", "billing_email": "a@b"}, mentions=("billing",)),
    Case("email-too-long", {"name": "Acme", "email": f"{'a' * 250}@example.com"}),
    Case("bad-phone", {"name": "Acme", "phone": "call me maybe"}, mentions=("phone",)),
    Case("phone-is-a-number", {"name": "Acme", "phone": 5550100}, mentions=("phone",)),
    Case("unknown-field", {"name": "Acme", "vip": True}, mentions=("vip",)),
    Case("id-is-not-settable", {"name": "Acme", "id": 7}, mentions=("id",)),
    Case(
        "client-number-is-not-settable",
        {"name": "Acme", "client_number": "C-00001"},
        mentions=("client_number",),
    ),
]


@pytest.mark.parametrize("case", CLIENT_CREATE, ids=_ids(CLIENT_CREATE))
async def test_create_client_refuses(stack: Stack, case: Case) -> None:
    before = await _client_total(stack)
    assert_error(await case.send(stack, "POST", CLIENTS), case)
    assert await _client_total(stack) == before


CLIENT_PATCH = [
    *MALFORMED,
    Case("null-name", {"name": None}, mentions=("name",)),
    Case("null-tier", {"tier": None}, mentions=("tier",)),
    Case("null-address", {"address": None}, mentions=("address",)),
    Case("empty-name", {"name": ""}, mentions=("name",)),
    Case("unknown-tier", {"tier": "diamond"}, mentions=("tier",)),
    Case("bad-email", {"email": "nobody at example dot com"}, mentions=("email",)),
    Case("unknown-field", {"colour": "blue"}, mentions=("colour",)),
    Case("one-good-one-bad", {"notes": "fine", "phone": "???"}, mentions=("phone",)),
    Case("absurdly-long-notes", {"notes": LONG}, mentions=("notes",)),
    Case("nul-in-notes", {"notes": "gate\x00code"}, mentions=("notes", "NUL")),
]


@pytest.mark.parametrize("case", CLIENT_PATCH, ids=_ids(CLIENT_PATCH))
async def test_patch_client_refuses(stack: Stack, case: Case) -> None:
    client = await stack.new_client(phone="555-0100", notes="original", address="1 Main St")
    path = f"{CLIENTS}/{client['id']}"
    assert_error(await case.send(stack, "PATCH", path), case)
    assert (await stack.get("olga", path)).json() == client


BAD_CLIENT_IDS = [
    Case("letters", mentions=("client_id",), params={"id": "abc"}),
    Case("zero", mentions=("client_id",), params={"id": "0"}),
    Case("negative", mentions=("client_id",), params={"id": "-3"}),
    Case("fraction", mentions=("client_id",), params={"id": "1.5"}),
    Case("beyond-32-bits", mentions=("client_id",), params={"id": str(2**31)}),
    Case("beyond-64-bits", mentions=("client_id",), params={"id": str(2**70)}),
    # int() reads these as 1 or 10: an id is the ASCII digits, nothing else (issue 8 item 10).
    Case("plus-sign", mentions=("client_id", "0-9"), params={"id": "+1"}),
    Case("underscore", mentions=("client_id", "0-9"), params={"id": "1_0"}),
    Case("arabic-indic-digit", mentions=("client_id", "0-9"), params={"id": "١"}),
    Case("leading-space", mentions=("client_id", "0-9"), params={"id": " 1"}),
    Case("unknown", status=404, mentions=(str(NO_SUCH_ID),), params={"id": str(NO_SUCH_ID)}),
]


@pytest.mark.parametrize("case", BAD_CLIENT_IDS, ids=_ids(BAD_CLIENT_IDS))
async def test_client_ids_out_of_range(stack: Stack, case: Case) -> None:
    path = f"{CLIENTS}/{case.params['id']}"
    assert_error(await stack.get("olga", path), case)
    before = await _client_total(stack)
    assert_error(await stack.patch("olga", path, {"name": "Renamed"}), case)
    assert await _client_total(stack) == before


CLIENT_LIST = [
    Case("page-zero", params={"page": 0}, mentions=("page",)),
    Case("page-negative", params={"page": -1}, mentions=("page",)),
    Case("page-not-a-number", params={"page": "two"}, mentions=("page",)),
    Case("page-absurd", params={"page": 10**30}, mentions=("page",)),
    Case("page-size-zero", params={"page_size": 0}, mentions=("page_size",)),
    Case("page-size-too-big", params={"page_size": 1000}, mentions=("page_size",)),
    Case("unknown-tier", params={"tier": "gold"}, mentions=("tier",)),
    Case("q-too-long", params={"q": "q" * 201}, mentions=("q",)),
    Case("q-with-nul", params={"q": "acme\x00"}, mentions=("q",)),
]


@pytest.mark.parametrize("case", CLIENT_LIST, ids=_ids(CLIENT_LIST))
async def test_list_clients_refuses(stack: Stack, case: Case) -> None:
    assert_error(await case.send(stack, "GET", CLIENTS), case)


# --- jobs: create and read ------------------------------------------------------------------------


def _job_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": None, "title": "Leaking valve", "source": "incoming_call"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


JOB_CREATE = [
    *MALFORMED,
    Case("missing-title", _job_body(title=...), mentions=("title",)),
    Case("missing-source", _job_body(source=...), mentions=("source",)),
    Case("missing-client", _job_body(client_id=...), mentions=("client_id",)),
    Case("blank-title", _job_body(title="  "), mentions=("title",)),
    Case("title-too-long", _job_body(title="t" * 201), mentions=("title",)),
    Case("absurd-description", _job_body(description=LONG), mentions=("description",)),
    Case("nul-in-title", _job_body(title="Leak\x00"), mentions=("title", "NUL")),
    Case("unknown-source", _job_body(source="carrier_pigeon"), mentions=("source",)),
    Case("unknown-priority", _job_body(priority="urgent"), mentions=("priority",)),
    Case("title-wrong-type", _job_body(title=["Leak"]), mentions=("title",)),
    Case("client-id-wrong-type", _job_body(client_id="first"), mentions=("client_id",)),
    Case("client-id-zero", _job_body(client_id=0), mentions=("client_id",)),
    Case("client-id-negative", _job_body(client_id=-1), mentions=("client_id",)),
    Case("client-id-unknown", _job_body(client_id=NO_SUCH_ID), mentions=("client_id",)),
    Case("client-id-beyond-32-bits", _job_body(client_id=2**40), mentions=("client_id",)),
    Case("client-id-beyond-64-bits", _job_body(client_id=2**70), mentions=("client_id",)),
    # Read as client 1 before (issue 8 item 10): an id is a JSON integer.
    Case("client-id-true", _job_body(client_id=True), mentions=("client_id", "integer")),
    Case("client-id-as-text", _job_body(client_id="1"), mentions=("client_id", "integer")),
    Case("client-id-arabic-indic", _job_body(client_id="١"), mentions=("client_id", "integer")),
    Case("client-id-a-float", _job_body(client_id=1.0), mentions=("client_id", "integer")),
    Case("unknown-field", _job_body(budget="lots"), mentions=("budget",)),
    Case("another-event-type", _job_body(type="note_added"), mentions=("type",)),
    Case("technician-may-not-create", _job_body(), status=403, mentions=("office",)),
]


@pytest.mark.parametrize("case", JOB_CREATE, ids=_ids(JOB_CREATE))
async def test_create_job_refuses(stack: Stack, case: Case) -> None:
    client = await stack.new_client()
    if isinstance(case.body, dict) and case.body.get("client_id", 1) is None:
        case = Case(case.id, {**case.body, "client_id": client["id"]}, case.status, case.mentions)
    user = "tess" if case.status == 403 else "olga"
    before = await _job_total(stack)
    assert_error(await case.send(stack, "POST", JOBS, user=user), case)
    assert await _job_total(stack) == before
    listed = (await stack.get("olga", JOBS, params={"client_id": client["id"]})).json()
    assert listed["total"] == 0 and listed["items"] == []


async def test_a_job_for_a_client_that_does_not_exist(stack: Stack) -> None:
    before = await _job_total(stack)
    response = await stack.post("olga", JOBS, _job_body(client_id=NO_SUCH_ID))
    error = assert_error(response, Case("unknown-client", mentions=("client_id", str(NO_SUCH_ID))))
    assert error["code"] == "invalid"
    assert await _job_total(stack) == before
    listed = (await stack.get("olga", JOBS, params={"client_id": NO_SUCH_ID})).json()
    assert listed["total"] == 0 and listed["items"] == []


JOB_LIST = [
    Case("unknown-stage", params={"stage": "bogus"}, mentions=("stage",)),
    Case("stage-wrong-case", params={"stage": "LEAD"}, mentions=("stage",)),
    Case("unknown-milestone", params={"milestone": "Nearly"}, mentions=("milestone",)),
    Case("stuck-not-a-bool", params={"stuck": "maybe"}, mentions=("stuck",)),
    Case("client-id-zero", params={"client_id": 0}, mentions=("client_id",)),
    Case("client-id-letters", params={"client_id": "abc"}, mentions=("client_id",)),
    Case("client-id-beyond-32-bits", params={"client_id": 2**31}, mentions=("client_id",)),
    Case("client-id-plus-sign", params={"client_id": "+1"}, mentions=("client_id", "0-9")),
    Case("client-id-underscore", params={"client_id": "1_0"}, mentions=("client_id", "0-9")),
    Case("client-id-arabic-indic", params={"client_id": "١"}, mentions=("client_id", "0-9")),
    Case("client-id-space", params={"client_id": " 1"}, mentions=("client_id", "0-9")),
    Case("page-zero", params={"page": 0}, mentions=("page",)),
    Case("page-size-too-big", params={"page_size": 1000}, mentions=("page_size",)),
    Case("page-size-negative", params={"page_size": -5}, mentions=("page_size",)),
    Case("q-too-long", params={"q": "q" * 201}, mentions=("q",)),
    Case("q-with-nul", params={"q": "valve\x00"}, mentions=("q",)),
]


@pytest.mark.parametrize("case", JOB_LIST, ids=_ids(JOB_LIST))
async def test_list_jobs_refuses(stack: Stack, case: Case) -> None:
    assert_error(await case.send(stack, "GET", JOBS), case)


BAD_SLUGS = [
    Case("not-a-slug", status=422, mentions=("slug",), params={"slug": "NOT_A_SLUG!"}),
    Case("too-short", status=422, mentions=("slug",), params={"slug": "abc"}),
    Case("too-long", status=422, mentions=("slug",), params={"slug": "a" * 33}),
    Case("spaces", status=422, mentions=("slug",), params={"slug": "ab cd"}),
    Case("unknown", status=404, mentions=("zzzzzzzz",), params={"slug": "zzzzzzzz"}),
]


@pytest.mark.parametrize("case", BAD_SLUGS, ids=_ids(BAD_SLUGS))
async def test_job_slugs_out_of_range(stack: Stack, case: Case) -> None:
    slug = case.params["slug"]
    assert_error(await stack.get("olga", f"{JOBS}/{slug}"), case)
    before = await _job_total(stack)
    assert_error(await stack.event("olga", slug, "note_added", text="hello?"), case)
    assert await _job_total(stack) == before


# --- jobs: events ---------------------------------------------------------------------------------


@pytest.fixture
async def ready_job(stack: Stack) -> dict:
    """A job in `ready_to_schedule`, where a well-formed `job_scheduled` would be accepted."""
    job = await stack.new_job()
    response = await stack.event("olga", job["slug"], "emergency_dispatch")
    assert response.status_code == 200, response.text
    return response.json()


_QUOTE_LINE = {"description": "Valve", "quantity": "1", "unit_price": "40.00"}
_PART = {
    "sku": "V-1",
    "description": "Valve",
    "quantity": 1,
    "supplier": "Ferguson",
    "po_number": "PO-1",
    "expected_delivery": "2030-01-05",
}


def _scheduled(**changes: Any) -> dict[str, Any]:
    return {"type": "job_scheduled", "technician": "tess", **_window(), **changes}


EVENTS = [
    *MALFORMED,
    # the type
    Case("missing-type", {"text": "hello"}, mentions=("type",)),
    Case("unknown-type", {"type": "job_teleported"}, mentions=("job_teleported",)),
    Case("type-wrong-case", {"type": "NOTE_ADDED", "text": "hi"}, mentions=("NOTE_ADDED",)),
    Case("type-not-a-string", {"type": 7}),
    Case("job-created-through-events", {"type": "job_created", "title": "x"}),
    # fields: missing, unknown, wrong types, invalid values
    Case("missing-required", {"type": "note_added"}, mentions=("text",)),
    Case("unknown-field", {"type": "note_added", "text": "hi", "mood": "sad"}, mentions=("mood",)),
    Case("wrong-type-text", {"type": "note_added", "text": 12}, mentions=("text",)),
    Case("wrong-type-bool", {"type": "tech_dispatched", "notify_customer": "maybe"}),
    Case("missing-technician", _scheduled(technician=None), mentions=("technician",)),
    Case(
        "invalid-enum-channel",
        {"type": "communication_logged", "channel": "fax", "direction": "incoming", "summary": "s"},
        mentions=("channel",),
    ),
    Case(
        "invalid-enum-direction",
        {"type": "communication_logged", "channel": "call", "direction": "up", "summary": "s"},
        mentions=("direction",),
    ),
    Case("invalid-enum-reason", {"type": "job_incomplete", "reason": "bored"}),
    Case("invalid-enum-method", {"type": "payment_recorded", "amount": "10", "method": "gold"}),
    # dates and times
    Case("datetime-without-offset", _scheduled(window_start="2030-01-05T09:00:00")),
    Case(
        "both-datetimes-without-offset",
        _scheduled(window_start="2030-01-05T09:00:00", window_end="2030-01-05T12:00:00"),
        mentions=("window_start",),
    ),
    Case("impossible-date", _scheduled(window_start="2030-02-30T09:00:00+00:00")),
    Case("words-for-a-date", _scheduled(window_end="tomorrow afternoon"), mentions=("window_end",)),
    Case("datetime-is-a-bool", _scheduled(window_start=True), mentions=("window_start",)),
    Case(
        "window-end-before-start",
        _scheduled(window_start="2030-01-05T12:00:00+00:00", window_end="2030-01-05T09:00:00Z"),
        mentions=("window_end",),
    ),
    Case(
        "empty-window",
        _scheduled(window_start="2030-01-05T12:00:00+02:00", window_end="2030-01-05T10:00:00Z"),
        mentions=("window_end",),
    ),
    Case(
        "bad-delivery-date",
        {"type": "parts_ordered", "parts": [{**_PART, "expected_delivery": "2030-13-01"}]},
        mentions=("expected_delivery",),
    ),
    Case(
        "bad-valid-until",
        {"type": "quote_drafted", "lines": [_QUOTE_LINE], "valid_until": "31/12/2030"},
        mentions=("valid_until",),
    ),
    # money and quantities
    Case(
        "negative-unit-price",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": "-40.00"}]},
        mentions=("unit_price",),
    ),
    Case(
        "fraction-of-a-cent",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": "40.001"}]},
        mentions=("unit_price",),
    ),
    Case(
        "zero-quantity",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "quantity": "0"}]},
        mentions=("quantity",),
    ),
    Case("no-quote-lines", {"type": "quote_drafted", "lines": []}, mentions=("lines",)),
    Case(
        "negative-payment",
        {"type": "payment_recorded", "amount": "-10.00", "method": "cash"},
        mentions=("amount",),
    ),
    Case(
        "zero-payment",
        {"type": "payment_recorded", "amount": "0", "method": "cash"},
        mentions=("amount",),
    ),
    Case(
        "not-a-number-payment",
        {"type": "payment_recorded", "amount": "NaN", "method": "cash"},
        mentions=("amount",),
    ),
    Case(
        "astronomical-payment",
        {"type": "payment_recorded", "amount": "1" * 40, "method": "cash"},
        mentions=("amount",),
    ),
    # money: what a field-service business invoices (models/bounds.py; issue 8 item 10)
    Case(
        "unit-price-arabic-indic-digit",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": "٥"}]},
        mentions=("unit_price", "0-9"),
    ),
    Case(
        "unit-price-true",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": True}]},
        mentions=("unit_price",),
    ),
    Case(
        "unit-price-with-spaces",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": " 40.00"}]},
        mentions=("unit_price",),
    ),
    Case(
        "unit-price-a-cent-over-the-limit",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "unit_price": "10000000.01"}]},
        mentions=("unit_price", "10,000,000.00"),
    ),
    Case(
        "quantity-over-the-limit",
        {"type": "quote_drafted", "lines": [{**_QUOTE_LINE, "quantity": "100000.001"}]},
        mentions=("quantity", "100,000"),
    ),
    Case(
        "line-over-the-limit",
        {
            "type": "quote_drafted",
            "lines": [{**_QUOTE_LINE, "quantity": 1000, "unit_price": 10000.01}],
        },
        mentions=("lines.0", "10,000,000.00"),
    ),
    Case(
        "quote-total-a-cent-over-the-limit",
        {
            "type": "quote_drafted",
            "lines": [
                {**_QUOTE_LINE, "unit_price": "5000000.00"},
                {**_QUOTE_LINE, "unit_price": "5000000.01"},
            ],
        },
        mentions=("lines", "10,000,000.01"),
    ),
    Case(
        "astronomical-quote",  # 200 lines that came to 1.99e23 in all
        {
            "type": "quote_drafted",
            "lines": [{**_QUOTE_LINE, "quantity": "999999999.999", "unit_price": "999999999999.99"}]
            * 200,
        },
        mentions=("quantity",),
    ),
    Case(
        "invoice-total-over-the-limit",
        {
            "type": "invoice_sent",
            "lines": [{**_QUOTE_LINE, "unit_price": "9000000.00"}] * 2,
            "override_reason": "extra work",
        },
        mentions=("lines", "18,000,000.00"),
    ),
    Case(
        "payment-a-cent-over-the-limit",
        {"type": "payment_recorded", "amount": "10000000.01", "method": "check"},
        mentions=("amount", "10,000,000.00"),
    ),
    # strict types: a flag is a JSON boolean, a count a JSON integer
    Case(
        "flag-as-text",
        {"type": "tech_dispatched", "notify_customer": "true"},
        mentions=("notify_customer",),
    ),
    Case(
        "part-quantity-as-text",
        {"type": "parts_ordered", "parts": [{**_PART, "quantity": "2"}]},
        mentions=("quantity",),
    ),
    Case(
        "duplicate-skus",
        {"type": "parts_ordered", "parts": [_PART, _PART]},
        mentions=("sku",),
    ),
    # absurd sizes and unstorable text
    Case("absurdly-long-note", {"type": "note_added", "text": LONG}, mentions=("text",)),
    Case(
        "too-many-quote-lines",
        {"type": "quote_drafted", "lines": [_QUOTE_LINE] * 201},
        mentions=("lines",),
    ),
    Case("nul-in-note", {"type": "note_added", "text": "hi\x00there"}, mentions=("text", "NUL")),
    Case(
        "nul-in-a-name",
        {"type": "owner_assigned", "owner": "sam\x00"},
        mentions=("owner", "NUL"),
    ),
    Case(
        "nothing-to-update",
        {"type": "contact_updated"},
        mentions=("email", "phone"),
    ),
    # people who do not exist, or cannot do the job
    Case("unknown-owner", {"type": "owner_assigned", "owner": "nobody"}, mentions=("nobody",)),
    Case(
        "technician-as-owner",
        {"type": "owner_assigned", "owner": "tess"},
        mentions=("owner", "technician"),
    ),
    Case("unknown-technician", _scheduled(technician="ghost"), mentions=("ghost",)),
    Case("office-as-technician", _scheduled(technician="olga"), mentions=("technician",)),
    # well-formed, but the stage or the role refuses it
    Case("stage-refuses", {"type": "tech_checked_in"}, status=409, mentions=("tech_checked_in",)),
    Case("stage-refuses-qualify", {"type": "lead_qualified"}, status=409),
    Case(
        "missing-evidence",
        {"type": "evidence_verified", **dict.fromkeys(("documents", "notes", "photos"), True)},
        mentions=("parts_usage",),
    ),
]


def _clean(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if v is not None}
    return body


@pytest.mark.parametrize("case", EVENTS, ids=_ids(EVENTS))
async def test_post_event_refuses(stack: Stack, ready_job: dict, case: Case) -> None:
    slug = ready_job["slug"]
    if case.raw is None:
        case = Case(case.id, _clean(case.body), case.status, case.mentions)
    before = await _job_snapshot(stack, slug)
    error = assert_error(await case.send(stack, "POST", f"{JOBS}/{slug}/events"), case)
    if case.status == 409:
        assert error["stage"] == "ready_to_schedule"
        assert "job_scheduled" in error["allowed_events"]
    assert await _job_snapshot(stack, slug) == before

    # The job still takes a well-formed event: the refusal left nothing half-done behind.
    accepted = await stack.post("olga", f"{JOBS}/{slug}/events", _scheduled())
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["seq"] == before[0] + 1


async def test_job_created_is_refused_through_events(stack: Stack, ready_job: dict) -> None:
    slug = ready_job["slug"]
    before = await _job_snapshot(stack, slug)
    total = await _job_total(stack)
    body = {"client_id": ready_job["client"]["id"], "title": "Again", "source": "incoming_call"}
    response = await stack.event("olga", slug, "job_created", **body)
    error = assert_error(response, Case("job_created", mentions=("job_created", "/api/v1/jobs")))
    assert error["code"] == "invalid"
    assert await _job_snapshot(stack, slug) == before
    assert await _job_total(stack) == total


async def test_role_and_stage_refusals_change_nothing(stack: Stack) -> None:
    lead = await stack.new_job()
    slug = lead["slug"]
    before = await _job_snapshot(stack, slug)

    # A salesperson may not dispatch an emergency: 403, and the message says who may.
    refused = await stack.event("sam", slug, "emergency_dispatch")
    error = assert_error(refused, Case("role", status=403, mentions=("office", "manager")))
    assert error["code"] == "role_not_allowed"
    # The stage refuses what is not possible yet: 409 with what is.
    refused = await stack.event("olga", slug, "invoice_sent")
    error = assert_error(refused, Case("stage", status=409, mentions=("invoice_sent",)))
    assert error["stage"] == "lead"
    assert "owner_assigned" in error["allowed_events"]
    assert "invoice_sent" not in error["allowed_events"]
    # An unassigned lead cannot be qualified.
    refused = await stack.event("olga", slug, "lead_qualified")
    assert refused.status_code in (403, 409), refused.text
    assert_error(refused, Case("qualify", status=refused.status_code))

    assert await _job_snapshot(stack, slug) == before


async def test_a_final_job_refuses_everything_and_stays_put(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    response = await stack.event("mia", slug, "job_canceled", reason="duplicate call")
    assert response.status_code == 200, response.text
    before = await _job_snapshot(stack, slug)
    for type_, fields in [
        ("note_added", {"text": "one more thing"}),
        ("emergency_dispatch", {}),
        ("job_canceled", {"reason": "again"}),
    ]:
        refused = await stack.event("olga", slug, type_, **fields)
        error = assert_error(refused, Case(type_, status=409))
        assert error["stage"] == "canceled" and error["allowed_events"] == []
    assert await _job_snapshot(stack, slug) == before


# --- authentication, everywhere -------------------------------------------------------------------

ROUTES = [
    ("GET", CLIENTS),
    ("POST", CLIENTS),
    ("GET", f"{CLIENTS}/1"),
    ("PATCH", f"{CLIENTS}/1"),
    ("GET", JOBS),
    ("POST", JOBS),
    ("GET", f"{JOBS}/abcdefgh"),
    ("POST", f"{JOBS}/abcdefgh/events"),
    ("GET", "/api/v1/users/me"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_no_or_bad_token_is_401_before_anything_else(
    stack: Stack, method: str, path: str
) -> None:
    # A well-formed JSON body that would still be invalid: authentication is checked first.
    body = {"type": "note_added", "surprise": True} if method != "GET" else None
    clients, jobs = await _client_total(stack), await _job_total(stack)
    for headers in (
        {},
        {"Authorization": "Bearer jl_definitely-not-a-token"},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer " + "x" * 10_000},
    ):
        response = await stack.http.request(method, path, json=body, headers=headers)
        assert_error(response, Case("auth", status=401))
    assert (await _client_total(stack), await _job_total(stack)) == (clients, jobs)


async def test_users_me(stack: Stack) -> None:
    me = await stack.get("tess", "/api/v1/users/me")
    assert me.status_code == 200
    assert me.json() == {"username": "tess", "email": "tess@jobline.test", "role": "technician"}
    wrong_method = await stack.post("tess", "/api/v1/users/me", {"role": "admin"})
    assert_error(wrong_method, Case("method", status=405))
    assert (await stack.get("tess", "/api/v1/users/me")).json()["role"] == "technician"


async def test_unknown_paths_are_404_in_the_same_shape(stack: Stack) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/clients/1/jobs", "/api/v2/clients"):
        assert_error(await stack.get("olga", path), Case(path, status=404))


# --- money, as it is stored (issue 8 item 10) -----------------------------------------------------


async def _quoting(stack: Stack) -> str:
    job = await stack.new_job()
    for username, type_, fields in [
        ("olga", "owner_assigned", {"owner": "sam"}),
        ("sam", "lead_qualified", {}),
    ]:
        response = await stack.event(username, job["slug"], type_, **fields)
        assert response.status_code == 200, response.text
    return job["slug"]


async def test_minus_zero_is_stored_as_zero_and_json_numbers_are_amounts(stack: Stack) -> None:
    slug = await _quoting(stack)
    lines = [
        {"description": "Goodwill", "quantity": "1", "unit_price": "-0"},
        {"description": "Goodwill again", "quantity": 1, "unit_price": "-0.00"},
        {"description": "Filter", "quantity": 2.5, "unit_price": 19.99},
    ]
    response = await stack.event("sam", slug, "quote_drafted", lines=lines)
    assert response.status_code == 200, response.text
    stored = (await stack.get("olga", f"{JOBS}/{slug}")).json()["quote"]
    prices = [line["unit_price"] for line in stored["lines"]]
    assert prices == ["0", "0.00", "19.99"], prices
    assert [line["quantity"] for line in stored["lines"]] == ["1", "1", "2.5"]
    assert stored["total"] == "49.98"  # 2.5 x 19.99 = 49.975, to the cent


async def test_the_largest_quote_is_taken_and_a_cent_more_is_not(stack: Stack) -> None:
    slug = await _quoting(stack)
    line = {"description": "Tower crane hire", "quantity": "1", "unit_price": "50000.00"}
    over = [*[line] * 199, {**line, "unit_price": "50000.01"}]
    before = await _job_snapshot(stack, slug)
    error = assert_error(
        await stack.event("sam", slug, "quote_drafted", lines=over),
        Case("a-cent-over", mentions=("lines", "10,000,000.01", "10,000,000.00")),
    )
    assert error["code"] == "validation_error"
    assert await _job_snapshot(stack, slug) == before

    taken = await stack.event("sam", slug, "quote_drafted", lines=[line] * 200)
    assert taken.status_code == 200, taken.text
    assert taken.json()["quote"]["total"] == "10000000.00"


# --- settings text: no NUL, anywhere (issue 8 item 10) --------------------------------------------

SETTINGS_NUL = [
    (
        "/api/v1/settings/communications",
        {"company_name": "Acme\x00"},
        ("company_name",),
    ),
    (
        "/api/v1/settings/communications",
        {"templates": {"quote": {"email_subject": "Quote", "email_body": "Hello\x00"}}},
        ("templates.quote.email_body",),
    ),
    (
        "/api/v1/settings/closeout",
        {"receipt_fields": [{"key": "serial", "label": "Serial\x00 number"}]},
        ("receipt_fields.0.label",),
    ),
    (
        "/api/v1/settings/closeout",
        {"receipt_fields": [{"key": "r", "label": "R", "type": "dropdown", "options": ["a\x00"]}]},
        ("receipt_fields.0.options.0",),
    ),
    ("/api/v1/settings/branding", {"footer": "Net 30\x00"}, ("footer",)),
    ("/api/v1/settings/branding", {"website": "\x00"}, ("website",)),
]


@pytest.mark.parametrize(
    ("path", "changes", "mentions"),
    SETTINGS_NUL,
    ids=[f"{p.rsplit('/', 1)[1]}-{m[0]}" for p, _, m in SETTINGS_NUL],
)
async def test_settings_refuse_nul(
    stack: Stack, path: str, changes: dict[str, Any], mentions: tuple[str, ...]
) -> None:
    """On PostgreSQL a NUL in a template made `quote_sent` hang: every settings text refuses it."""
    before = (await stack.get("ada", path)).json()
    document = {k: v for k, v in before.items() if k != "webhook_secret_set"}
    response = await stack.http.put(path, headers=stack.auth("ada"), json={**document, **changes})
    assert_error(response, Case(path, mentions=(*mentions, "NUL")))
    assert (await stack.get("ada", path)).json() == before


# --- the Send dialog: a preview refuses exactly what sending refuses (issue 8 item 10) ------------

BAD_UPDATES = [
    ("nul-in-message", {"message": "Running late\x00"}, ("message", "NUL")),
    ("nul-in-phone", {"message": "Hi", "sms": True, "sms_phone": "555\x000100"}, ("sms_phone",)),
    ("bcc-me-as-text", {"message": "Hi", "bcc_me": "yes"}, ("bcc_me",)),
    ("sms-as-number", {"message": "Hi", "sms": 1}, ("sms",)),
    ("message-too-long", {"message": "x" * 2001}, ("message",)),
]


@pytest.mark.parametrize(
    ("body", "mentions"), [c[1:] for c in BAD_UPDATES], ids=[c[0] for c in BAD_UPDATES]
)
async def test_preview_refuses_what_send_refuses(
    stack: Stack, body: dict[str, Any], mentions: tuple[str, ...]
) -> None:
    job = await stack.new_job(client_id=(await stack.new_client(phone="555-0100"))["id"])
    slug = job["slug"]
    path = f"{JOBS}/{slug}/send"
    before = await _job_snapshot(stack, slug)
    answers = []
    for preview in (True, False):
        response = await stack.post("olga", path, {**body, "preview": preview})
        answers.append(
            (response.status_code, assert_error(response, Case(slug, mentions=mentions)))
        )
    (preview_status, preview_error), (send_status, send_error) = answers
    assert (preview_status, preview_error) == (send_status, send_error)
    assert await _job_snapshot(stack, slug) == before
    outbox = await stack.get("olga", "/api/v1/outbox", params={"job_slug": slug})
    assert outbox.status_code == 200 and outbox.json()["total"] == 0

    # The same dialog without the mistake: previewed, then sent.
    fine = {"message": "Running late", "sms": False}
    previewed = await stack.post("olga", path, {**fine, "preview": True})
    assert previewed.status_code == 200, previewed.text
    sent = await stack.post("olga", path, fine)
    assert sent.status_code == 202, sent.text


async def test_export_client_id_is_the_ascii_digits(stack: Stack) -> None:
    for value in ("+1", "1_0", "١"):
        response = await stack.get("olga", "/api/v1/exports/jobs.csv", params={"client_id": value})
        assert_error(response, Case(value, mentions=("client_id", "0-9")))
