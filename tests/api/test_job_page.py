"""The job page and its event forms over ASGI, on both databases (issue 9 item 3).

Each form is posted as a browser would (form fields, the CSRF token, the hidden idempotency key
the page made) and the job is then read back through the JSON API: the form became exactly the
event the API would have taken. Also: refusals shown on the form with everything typed kept,
a technician's 404 on another technician's job, the CSRF 403, and a double submit applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from html import unescape
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.users.service import create_user, find_user, set_password
from core.config import Settings
from tests.api.settings import closeout_settings, put, read
from tests.conftest import Stack

PASSWORD = "correct horse battery"
COMMS = "/api/v1/settings/communications"
SignIn = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def sign_in(stack: Stack) -> AsyncIterator[SignIn]:
    """`await sign_in("olga")`: a client signed in through /signin as that person of the stack."""
    app = create_app(
        Settings(environment="test", task_queue=stack.task_queue), db=stack.db,
        temporal=stack.temporal,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(app.router.lifespan_context(app))

        async def _sign_in(username: str) -> httpx.AsyncClient:
            async with stack.db.session() as session:
                user = await find_user(session, username)
                if user is None:
                    user = await create_user(session, username, "technician", f"{username}@x.test")
                await set_password(session, user, PASSWORD)
            address = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
            client = await running.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app, client=(address, 4000)),
                    base_url="http://jobline.test",
                )
            )
            form = await client.get("/signin")
            answer = await client.post(
                "/signin", data={"login": username, "password": PASSWORD, "csrf_token": _csrf(form)}
            )
            assert answer.status_code == 303, answer.text
            return client

        yield _sign_in


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _key(page: httpx.Response, event_type: str) -> str:
    """The idempotency key the page made for this event's form."""
    form = re.search(
        rf'action="/jobs/[a-z0-9]+/events/{event_type}".*?name="idempotency_key" value="([^"]+)"',
        page.text,
        re.S,
    )
    assert form, f"no {event_type} form on the page"
    return form.group(1)


def _text(page: httpx.Response) -> str:
    """The page's words, without tags, for checks of what a person reads."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def _post(
    client: httpx.AsyncClient, slug: str, event_type: str, fields: dict[str, Any] | None = None,
    *, back: str | None = None, status: int = 303, offered: bool = True,
) -> httpx.Response:  # fmt: skip
    """Open the event's form page, fill it in, send it; the answer (checked for `status`).
    A form the job does not offer this person now still opens (409), saying so."""
    page = await client.get(f"/jobs/{slug}/events/{event_type}")
    assert page.status_code == (200 if offered else 409), (event_type, _text(page)[:2000])
    if not offered:
        assert "This job does not take" in _text(page)
    data = {"csrf_token": _csrf(page), "idempotency_key": _key(page, event_type),
            "back": back or f"/jobs/{slug}", **(fields or {})}  # fmt: skip
    answer = await client.post(f"/jobs/{slug}/events/{event_type}", data=data)
    assert answer.status_code == status, (event_type, answer.status_code, _text(answer)[:3000])
    return answer


async def _job(stack: Stack, slug: str) -> dict[str, Any]:
    response = await stack.get("olga", f"/api/v1/jobs/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.asynccontextmanager
async def _zone(stack: Stack, zone: str) -> AsyncIterator[None]:
    before = await read(stack, COMMS)
    try:
        response = await put(stack, COMMS, {**before, "timezone": zone})
        assert response.status_code == 200, response.text
        yield
    finally:
        assert (await put(stack, COMMS, before)).status_code == 200


async def _document_links(client: httpx.AsyncClient, slug: str) -> list[str]:
    """The job page's document links, once the worker has stored the quote, receipt and
    invoice (each rendered after its event is answered)."""
    async with asyncio.timeout(30):
        while True:
            page = await client.get(f"/jobs/{slug}")
            found = re.findall(rf'href="(/jobs/{slug}/documents/[0-9a-f]{{32}})"', page.text)
            if len(set(found)) >= 3:
                return found
            await asyncio.sleep(0.2)


def _lines(*rows: tuple[str, str, str, str]) -> dict[str, str]:
    fields = {}
    for i, (description, quantity, price, sku) in enumerate(rows):
        fields |= {f"lines-{i}-description": description, f"lines-{i}-quantity": quantity,
                   f"lines-{i}-unit_price": price, f"lines-{i}-sku": sku}  # fmt: skip
    return fields


async def test_an_office_user_takes_a_job_from_lead_to_closed_with_the_forms(
    stack: Stack, sign_in: SignIn
) -> None:
    olga, mia = await sign_in("olga"), await sign_in("mia")
    job = await stack.new_job()
    slug = job["slug"]
    fields = [{"key": "serial_number", "label": "Serial number", "type": "text",
               "required": True},
              {"key": "warranty", "label": "Under warranty", "type": "checkbox"}]  # fmt: skip
    async with _zone(stack, "America/New_York"), closeout_settings(stack, receipt_fields=fields):
        page = await olga.get(f"/jobs/{slug}")
        assert page.status_code == 200
        words = _text(page)
        assert "No cooling, unit 4" in words and "Unassigned lead" in words
        # Only what the rules allow: an unowned lead cannot be qualified yet.
        assert 'action="/jobs/' + slug + '/events/owner_assigned"' in page.text
        assert "/events/lead_qualified" not in page.text

        await _post(olga, slug, "owner_assigned", {"owner": "sam"})
        assert (await _job(stack, slug))["owner"] == "sam"
        await _post(olga, slug, "lead_qualified")
        # Two lines typed, the third row left empty; money as people type it.
        await _post(olga, slug, "quote_drafted", {
            **_lines(("Compressor", "1", "$1,200.00", "CMP-1"), ("Labour", "2.5", "80", ""),
                     ("", "", "", "")),
            "valid_until": "2030-01-31", "notes": "Includes disposal"})  # fmt: skip
        quote = (await _job(stack, slug))["quote"]
        assert [(line["description"], line["quantity"], line["unit_price"], line["sku"])
                for line in quote["lines"]] == [("Compressor", "1", "1200.00", "CMP-1"),
                                                ("Labour", "2.5", "80", None)]  # fmt: skip
        assert quote["total"] == "1400.00" and quote["valid_until"] == "2030-01-31"
        # A time typed is read in the company's zone: 09:00 in New York is 14:00 UTC in winter.
        await _post(olga, slug, "quote_sent", {"approval_expected_at": "2030-01-15T09:00"})
        sent = (await _job(stack, slug))["quote"]
        assert datetime.fromisoformat(sent["approval_expected_at"]) == datetime(
            2030, 1, 15, 14, 0, tzinfo=UTC
        )
        await _post(olga, slug, "quote_approved")
        await _post(olga, slug, "parts_ordered", {
            "parts-0-sku": "CMP-1", "parts-0-description": "Compressor", "parts-0-quantity": "1",
            "parts-0-supplier": "Ferguson", "parts-0-po_number": "PO-77",
            "parts-0-expected_delivery": "2030-01-20"})  # fmt: skip
        parts = (await _job(stack, slug))["parts"]
        assert parts[0]["line"]["quantity"] == 1 and parts[0]["line"]["supplier"] == "Ferguson"
        await _post(olga, slug, "parts_delivered", {"skus": "CMP-1"})
        # 09:00 to 11:00 on 2 July in New York is 13:00 to 15:00 UTC (summer time).
        window = {"window_start": "2030-07-02T09:00", "window_end": "2030-07-02T11:00"}
        await _post(olga, slug, "job_scheduled", {"technician": "tess", **window})
        schedule = (await _job(stack, slug))["schedule"]
        assert datetime.fromisoformat(schedule["window_start"]) == datetime(
            2030, 7, 2, 13, 0, tzinfo=UTC
        )
        assert datetime.fromisoformat(schedule["window_end"]) == datetime(
            2030, 7, 2, 15, 0, tzinfo=UTC
        )
        # The page names the zone with the window.
        assert "Tue 2 Jul, 09:00–11:00 EDT" in _text(await olga.get(f"/jobs/{slug}"))
        await _post(olga, slug, "checklist_completed", {
            "parts_verified": "on", "check_in_phone": "+1 555 0100",
            "pricing_discussion": "not_allowed"})  # fmt: skip
        checklist = (await _job(stack, slug))["checklist"]
        assert checklist["parts_verified"] is True
        assert checklist["pricing_discussion"] == "not_allowed"
        await _post(olga, slug, "tech_dispatched", {"notify_customer": "on"})
        await _post(olga, slug, "tech_checked_in")
        await _post(olga, slug, "job_completed", {
            "work_performed": "Replaced the compressor", "notes": "",
            "parts_used-0-sku": "CMP-1", "parts_used-0-quantity": "1",
            "receipt-serial_number": "SN-42"})  # fmt: skip
        completion = (await _job(stack, slug))["completion"]
        assert completion["fields"] == {"serial_number": "SN-42", "warranty": False}
        assert completion["parts_used"] == [{"sku": "CMP-1", "quantity": "1"}]
        # The invoice form comes prefilled with the approved quote's lines: sent unchanged.
        invoice_page = await olga.get(f"/jobs/{slug}/events/invoice_sent")
        assert 'value="Compressor"' in invoice_page.text and 'value="1200.00"' in invoice_page.text
        await _post(olga, slug, "invoice_sent", {
            **_lines(("Compressor", "1", "1200.00", "CMP-1"), ("Labour", "2.5", "80.00", "")),
            "po_number": ""})  # fmt: skip
        invoiced = await _job(stack, slug)
        assert invoiced["stage"] == "invoiced" and invoiced["invoice"]["total"] == "1400.00"
        assert invoiced["invoice"]["override_reason"] is None
        await _post(mia, slug, "evidence_verified", {name: "on" for name in (
            "documents", "notes", "parts_usage", "photos", "customer_communication")})  # fmt: skip
        # The payment form is prefilled with what is still due.
        payment_page = await olga.get(f"/jobs/{slug}/events/payment_recorded")
        assert 'value="1400.00"' in payment_page.text
        await _post(olga, slug, "payment_recorded", {"amount": "1400.00", "method": "card"})
        closed = await _job(stack, slug)
        assert closed["stage"] == "closed"
        assert closed["payments"][0]["method"] == "card"

        page = await olga.get(f"/jobs/{slug}")
        words = _text(page)
        assert "Closed on" in words and "$1,400.00" in words
        # The timeline, newest first, filtered by what a person is looking for.
        money = _text(await olga.get(f"/jobs/{slug}?show=money"))
        assert "Payment $1,400.00 by card" in money and "Quote drafted" in money
        assert "Lead qualified" not in money
        status = _text(await olga.get(f"/jobs/{slug}?show=status"))
        assert "Lead qualified" in status
        assert status.index("Payment $1,400.00") < status.index("Lead qualified")
        # The documents the job produced (rendered by the worker) open from the page.
        links = await _document_links(olga, slug)
        pdf = await olga.get(links[0])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_a_refusal_shows_on_the_form_with_everything_typed_kept(
    stack: Stack, sign_in: SignIn
) -> None:
    olga, sam = await sign_in("olga"), await sign_in("sam")
    slug = (await stack.new_job())["slug"]
    await _post(olga, slug, "owner_assigned", {"owner": "sam"})
    await _post(olga, slug, "lead_qualified")

    # "Add more rows" without JavaScript: the form again with more rows, nothing sent.
    page = await olga.get(f"/jobs/{slug}/events/quote_drafted")
    assert 'name="lines-2-description"' in page.text
    assert 'name="lines-3-description"' not in page.text
    more = await olga.post(f"/jobs/{slug}/events/quote_drafted", data={
        "csrf_token": _csrf(page), "idempotency_key": _key(page, "quote_drafted"),
        "more_rows": "1", "extra_rows": "0", **_lines(("Fan", "1", "90", ""))})  # fmt: skip
    assert more.status_code == 200
    assert 'name="lines-5-description"' in more.text and 'value="Fan"' in more.text
    assert (await _job(stack, slug))["quote"] is None
    assert (
        'name="lines-5-description"'
        in (await olga.get(f"/jobs/{slug}/events/quote_drafted?rows=3")).text
    )

    # Not valid (422): the form again, the error at its field and in the summary, input kept.
    answer = await _post(olga, slug, "quote_drafted", {
        **_lines(("Compressor & fan", "two", "1200", ""), ("Labour", "1", "80", "LAB")),
        "notes": "Keep <this> note"}, status=422)  # fmt: skip
    words = _text(answer)
    assert "There is a problem" in words
    assert "Line 1, quantity" in words
    assert 'value="Compressor &amp; fan"' in answer.text and 'value="two"' in answer.text
    assert 'value="LAB"' in answer.text and "Keep &lt;this&gt; note</textarea>" in answer.text
    assert 'href="#quote_drafted-lines-0-quantity"' in answer.text
    assert (await _job(stack, slug))["stage"] == "prospect"  # nothing was sent

    await _post(olga, slug, "quote_drafted", _lines(("Compressor", "1", "1200", "")))
    # The stage refuses it (409): the rule's words and what the job takes now.
    answer = await _post(olga, slug, "lead_qualified", status=409, offered=False)
    words = _text(answer)
    assert "lead_qualified is not possible while the job is quoting" in words
    assert "What this job takes from you now:" in words and "Send quote" in words

    await _post(olga, slug, "quote_sent")
    # The role refuses it (403): a sales user is told to ask a manager.
    answer = await _post(sam, slug, "quote_approved", status=403, offered=False)
    assert "approval_requested" in _text(answer)
    await _post(olga, slug, "quote_approved")
    # The rules refuse the payload (422): the invoice's lines differ, and no reason is given.
    await _post(olga, slug, "job_scheduled", {"technician": "tom",
                "window_start": "2030-03-01T09:00", "window_end": "2030-03-01T10:00"})  # fmt: skip
    await _post(olga, slug, "checklist_completed", {"parts_verified": "on",
                "check_in_phone": "555 0100", "pricing_discussion": "allowed"})  # fmt: skip
    for step in ("tech_dispatched", "tech_checked_in"):
        await _post(olga, slug, step)
    await _post(olga, slug, "job_completed", {"work_performed": "Done"})
    answer = await _post(olga, slug, "invoice_sent", {
        **_lines(("Compressor", "1", "1100", "")), "billing_email": "ap@example.com"},
        status=422)  # fmt: skip
    words = _text(answer)
    assert "override_reason: the invoice lines differ from the approved quote" in words
    assert 'value="1100"' in answer.text and 'value="ap@example.com"' in answer.text
    assert 'id="invoice_sent-override_reason-error"' in answer.text
    # A new key for the corrected form: the refused one is never reused.
    assert _key(answer, "invoice_sent")
    assert (await _job(stack, slug))["stage"] == "completed"


async def test_a_technician_gets_404_for_another_technicians_job(
    stack: Stack, sign_in: SignIn
) -> None:
    olga, tom, tess = await sign_in("olga"), await sign_in("tom"), await sign_in("tess")
    slug = (await stack.new_job())["slug"]
    await _post(olga, slug, "emergency_dispatch")
    await _post(olga, slug, "job_scheduled", {"technician": "tess",
                "window_start": "2030-03-01T09:00", "window_end": "2030-03-01T10:00"})  # fmt: skip
    assert (await tess.get(f"/jobs/{slug}")).status_code == 200
    for path in (f"/jobs/{slug}", f"/jobs/{slug}/events/note_added"):
        page = await tom.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text and "text/html" in page.headers["content-type"]
    page = await tess.get(f"/jobs/{slug}/events/note_added")
    answer = await tom.post(f"/jobs/{slug}/events/note_added", data={
        "csrf_token": _csrf(await tom.get("/jobs")), "idempotency_key": "k-tom-1",
        "text": "not mine"})  # fmt: skip
    assert answer.status_code == 404
    assert [e for e in (await _job(stack, slug))["timeline"] if e["type"] == "note_added"] == []
    assert page.status_code == 200
    # Nor its documents (an id of no document, or another job's, reads the same).
    assert (await tom.get(f"/jobs/{slug}/documents/{'a' * 32}")).status_code == 404
    assert (await tess.get(f"/jobs/{slug}/documents/{'a' * 32}")).status_code == 404


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    stack: Stack, sign_in: SignIn
) -> None:
    olga = await sign_in("olga")
    slug = (await stack.new_job())["slug"]
    page = await olga.get(f"/jobs/{slug}")
    answer = await olga.post(f"/jobs/{slug}/events/note_added", data={
        "idempotency_key": _key(page, "note_added"), "text": "sneaky"})  # fmt: skip
    assert answer.status_code == 403
    assert "This form could not be accepted" in answer.text
    answer = await olga.post(f"/jobs/{slug}/events/note_added", data={
        "csrf_token": "not-the-token", "text": "sneaky"})  # fmt: skip
    assert answer.status_code == 403
    assert [e["type"] for e in (await _job(stack, slug))["timeline"]] == ["job_created"]


async def test_a_double_submit_with_the_same_key_makes_one_event(
    stack: Stack, sign_in: SignIn
) -> None:
    olga = await sign_in("olga")
    slug = (await stack.new_job())["slug"]
    page = await olga.get(f"/jobs/{slug}/events/note_added?back=/my")
    data = {"csrf_token": _csrf(page), "idempotency_key": _key(page, "note_added"),
            "back": "/my", "text": "Gate code 4711"}  # fmt: skip
    first = await olga.post(f"/jobs/{slug}/events/note_added", data=data)
    second = await olga.post(f"/jobs/{slug}/events/note_added", data=data)
    assert (first.status_code, second.status_code) == (303, 303)
    assert first.headers["location"] == "/my"
    notes = [e for e in (await _job(stack, slug))["timeline"] if e["type"] == "note_added"]
    assert [n["payload"]["text"] for n in notes] == ["Gate code 4711"]
    # `back` is a local path only: anything else goes to the job.
    data = {**data, "idempotency_key": "another-key", "back": "//evil.example/x"}
    third = await olga.post(f"/jobs/{slug}/events/note_added", data=data)
    assert third.headers["location"] == f"/jobs/{slug}"
    # The banner shows once on the page it led to.
    shown = await olga.get(third.headers["location"])
    assert "Done: Add note." in shown.text


async def test_the_technicians_one_tap_forms_and_the_sales_approval_path(
    stack: Stack, sign_in: SignIn
) -> None:
    olga, tess, sam, mia = [await sign_in(n) for n in ("olga", "tess", "sam", "mia")]
    slug = (await stack.new_job())["slug"]
    await _post(olga, slug, "owner_assigned", {"owner": "sam"})
    await _post(sam, slug, "lead_qualified")
    await _post(sam, slug, "quote_drafted", _lines(("Service", "1", "150", "")))
    await _post(sam, slug, "quote_sent", {"sms": ""})
    page = await sam.get(f"/jobs/{slug}")
    assert "/events/approval_requested" in page.text and "/events/quote_approved" not in page.text
    await _post(sam, slug, "approval_requested", {"notes": "Regular customer"})
    assert "/events/approval_granted" in (await mia.get(f"/jobs/{slug}")).text
    await _post(mia, slug, "approval_granted")
    assert (await _job(stack, slug))["stage"] == "approved"

    await _post(olga, slug, "job_scheduled", {"technician": "tess",
                "window_start": "2030-03-01T09:00", "window_end": "2030-03-01T10:00"})  # fmt: skip
    await _post(olga, slug, "checklist_completed", {"parts_verified": "on",
                "check_in_phone": "555 0100", "pricing_discussion": "allowed"})  # fmt: skip
    # What /my posts: the token, back=/my, the key, and for dispatch notify_customer=on.
    for event_type, extra in (("tech_dispatched", {"notify_customer": "on"}),
                              ("tech_checked_in", {})):  # fmt: skip
        page = await tess.get(f"/jobs/{slug}/events/{event_type}?back=/my")
        answer = await tess.post(f"/jobs/{slug}/events/{event_type}", data={
            "csrf_token": _csrf(page), "back": "/my", "idempotency_key": uuid.uuid4().hex,
            **extra})  # fmt: skip
        assert answer.status_code == 303 and answer.headers["location"] == "/my", answer.text
    dispatched = [e for e in (await _job(stack, slug))["timeline"]
                  if e["type"] == "tech_dispatched"]  # fmt: skip
    assert dispatched[0]["payload"]["notify_customer"] is True
    answer = await _post(tess, slug, "job_incomplete", {"reason": "insufficient_time",
                         "notes": "Needs a second day"}, back="/my")  # fmt: skip
    assert answer.headers["location"] == "/my"
    assert (await _job(stack, slug))["stage"] == "ready_to_schedule"


async def test_the_other_forms_become_their_events(stack: Stack, sign_in: SignIn) -> None:
    olga, mia, sam = [await sign_in(n) for n in ("olga", "mia", "sam")]
    slug = (await stack.new_job("sam"))["slug"]
    await _post(sam, slug, "lead_qualified")
    await _post(sam, slug, "quote_drafted", _lines(("Service", "1", "150", "")))
    await _post(sam, slug, "quote_sent", {"to_email": "other@example.com"})
    await _post(sam, slug, "approval_requested")
    await _post(mia, slug, "approval_denied", {"reason": "Price too low for the work"})
    await _post(olga, slug, "quote_declined", {"reason": "Went with a cheaper firm"})
    # A form with nothing to say is refused by the model's own check, in words.
    answer = await _post(olga, slug, "contact_updated", {"email": "", "phone": ""}, status=422)
    assert "give at least one of email, phone or notes" in _text(answer)
    await _post(olga, slug, "contact_updated", {"phone": "+1 555 0199"})
    call = {"channel": "call", "direction": "incoming", "summary": "Asked for a revised price"}
    await _post(olga, slug, "communication_logged", call)
    answer = await _post(olga, slug, "job_canceled", {"reason": ""}, status=422)
    assert "Reason: enter a value" in _text(answer)
    await _post(olga, slug, "job_canceled", {"reason": "Customer chose another firm"})
    job = await _job(stack, slug)
    assert job["stage"] == "canceled" and job["cancel_reason"] == "Customer chose another firm"
    assert job["quote"]["sent_to"] == "other@example.com"
    assert job["client"]["phone"] == "+1 555 0199"
    payloads = {e["type"]: e["payload"] for e in job["timeline"]}
    assert payloads["approval_denied"]["reason"] == "Price too low for the work"
    assert payloads["quote_declined"]["reason"] == "Went with a cheaper firm"
    logged = {"type": "communication_logged", **call, "po_number": None}
    assert payloads["communication_logged"] == logged
    # A final job offers nothing, and says so.
    assert "takes no more actions" in _text(await olga.get(f"/jobs/{slug}"))
