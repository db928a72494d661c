"""A request for quote to a supplier, from the job's quote (issue 11 item 4): the office emails
the part lines and a PO number through the delivery path, the request is tracked on the job, and
the supplier's answer is logged with `communication_logged` against its PO."""

from __future__ import annotations

from tests.api.journeys import quoted
from tests.api.settings import api_error
from tests.api.test_closeout import messages
from tests.conftest import Stack

SUPPLIER = "orders@northside.example.com"
RFQ = {
    "supplier": "Northside HVAC Supply",
    "supplier_email": SUPPLIER,
    "po_number": "PO-7001",
    "lines": [
        {"sku": "FAN-1", "description": "Condenser fan motor", "quantity": "2"},
        {"description": "Mounting bracket, universal", "quantity": "1"},
    ],
    "notes": "Please quote by Friday with lead time.",
}


async def _job(stack: Stack, slug: str) -> dict:
    response = await stack.get("olga", f"/api/v1/jobs/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_office_asks_a_supplier_and_logs_the_answer(stack: Stack) -> None:
    slug = await quoted(stack)
    response = await stack.event("olga", slug, "supplier_quote_requested", **RFQ)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["stage"] == "quote_sent"  # asking a supplier does not move the job
    [request] = job["supplier_requests"]
    assert request["po_number"] == "PO-7001" and request["supplier"] == "Northside HVAC Supply"
    assert request["requested_by"] == "olga" and request["answered_at"] is None

    # One email, to the supplier alone, with the PO, the lines and the notes; no quote PDF (the
    # supplier never sees the customer's prices).
    [email] = await messages(stack, slug, "supplier_quote_request")
    assert email["channel"] == "email" and email["to"] == SUPPLIER
    assert "PO-7001" in email["subject"]
    body = email["body"]
    assert "PO PO-7001" in body
    assert "- 2 x Condenser fan motor (SKU FAN-1)" in body
    assert "- 1 x Mounting bracket, universal" in body
    assert "Please quote by Friday with lead time." in body
    assert email["attachments"] == []
    assert email["status"] in {"queued", "sending", "captured"}
    summaries = [entry["summary"] for entry in job["timeline"]]
    assert "Request for quote PO-7001 sent to Northside HVAC Supply: 2 line(s)" in summaries

    # The same PO again is the office's mistake: refused, nothing more sent or tracked.
    api_error(await stack.event("olga", slug, "supplier_quote_requested", **RFQ), 422, "po_number")
    assert len((await _job(stack, slug))["supplier_requests"]) == 1
    assert len(await messages(stack, slug, "supplier_quote_request")) == 1

    # The answer, logged against a PO the job does not have, is refused; against its own, it
    # marks the request answered.
    answer = {"channel": "email", "direction": "incoming", "summary": "$410 each, in stock"}
    api_error(
        await stack.event("olga", slug, "communication_logged", **answer, po_number="PO-9"),
        422,
        "PO-9",
    )
    assert (await _job(stack, slug))["supplier_requests"][0]["answered_at"] is None
    response = await stack.event(
        "olga", slug, "communication_logged", **answer, po_number="PO-7001"
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["supplier_requests"][0]["answered_at"] is not None
    assert "Supplier answer to PO-7001: $410 each, in stock" in [
        entry["summary"] for entry in job["timeline"]
    ]


async def test_only_office_and_managers_ask_suppliers(stack: Stack) -> None:
    slug = await quoted(stack)
    api_error(await stack.event("sam", slug, "supplier_quote_requested", **RFQ), 403, "office")
    # A manager may; a second request needs its own PO.
    response = await stack.event("mia", slug, "supplier_quote_requested", **RFQ)
    assert response.status_code == 200, response.text
    second = {**RFQ, "po_number": "PO-7002", "supplier": "Ferguson"}
    response = await stack.event("olga", slug, "supplier_quote_requested", **second)
    assert response.status_code == 200, response.text
    assert [r["po_number"] for r in response.json()["supplier_requests"]] == ["PO-7001", "PO-7002"]


async def test_a_request_needs_a_quote_and_good_lines(stack: Stack) -> None:
    lead = (await stack.new_job())["slug"]
    refused = api_error(await stack.event("olga", lead, "supplier_quote_requested", **RFQ), 409)
    assert "supplier_quote_requested" not in refused["allowed_events"]
    slug = await quoted(stack)
    for bad, word in (
        ({**RFQ, "lines": []}, "lines"),
        ({**RFQ, "supplier_email": "not an address"}, "supplier_email"),
        ({key: value for key, value in RFQ.items() if key != "po_number"}, "po_number"),
    ):
        api_error(await stack.event("olga", slug, "supplier_quote_requested", **bad), 422, word)
    assert (await _job(stack, slug))["supplier_requests"] == []
