"""Closeout, documents and billing through the HTTP API on a real Temporal server (issue 4):

- `job_completed` without a required receipt field is a 422 naming it, and changes nothing;
- once completed, the customer gets the closeout notification by the configured channel: the
  email with the work receipt PDF (the configured fields on it), the SMS with the portal link;
  the job view shows the same link and the portal opens with it;
- a configured webhook receives the snapshot, signed with HMAC-SHA256, retried after a 503;
- the quote email carries the quote PDF; the invoice PDF goes to the billing email.

Settings are shared by the whole session, so tests that change them restore what they found.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from core.temporal import workflow_id
from models.tables import PortalSnapshot
from tests.activities.test_documents import pdf_text
from tests.api.journeys import EVIDENCE, drive, on_site
from tests.api.settings import closeout_settings
from tests.conftest import Stack
from tests.fakes.providers import FakeHttpProvider, Reply, wait_until

UPDATE_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
}

SECRET = "webhook-secret-for-tests-0123456789"
FIELDS = [
    {"key": "serial_number", "label": "Unit serial number", "type": "text", "required": True},
    {
        "key": "refrigerant",
        "label": "Refrigerant",
        "type": "dropdown",
        "required": False,
        "options": ["R-410A", "R-22"],
    },
    {"key": "customer_present", "label": "Customer present", "type": "checkbox"},
]
COMPLETED = {
    "work_performed": "Replaced the condenser fan motor; tested cooling for 20 minutes.",
    "notes": "Filter due for change in spring.",
    "parts_used": [{"sku": "FAN-1", "quantity": "1"}],
}


async def messages(stack: Stack, slug: str, purpose: str, count: int = 1) -> list[dict]:
    """The job's outbox messages for `purpose` (email first), once `count` of them exist."""
    found: list[dict] = []

    async def look() -> bool:
        nonlocal found
        page = await stack.get(
            "olga", "/api/v1/outbox", params={"job_slug": slug, "purpose": purpose}
        )
        found = page.json()["items"]
        return len(found) >= count

    await wait_until(look, 20, f"{count} {purpose} message(s) for job {slug}")
    return sorted(found, key=lambda m: m["channel"])


async def document(stack: Stack, document_id: str, username: str = "olga") -> bytes:
    response = await stack.get(username, f"/api/v1/documents/{document_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


async def updates_in_history(handle: WorkflowHandle[Any, Any]) -> int:
    """How many Updates the job's history holds. A refused one leaves none; the count, not the
    history's length, because deliveries and the settle timer may still be adding their events."""
    history = await handle.fetch_history()
    return sum(1 for event in history.events if event.event_type in UPDATE_EVENTS)


async def test_required_receipt_field_is_refused_by_name_and_changes_nothing(stack: Stack) -> None:
    async with closeout_settings(stack, receipt_fields=FIELDS):
        job = await on_site(stack)
        slug = job["slug"]
        history = stack.temporal.get_workflow_handle(workflow_id(slug))
        updates = await updates_in_history(history)
        assert updates > 0  # the events that brought it on site

        missing = await stack.event("tess", slug, "job_completed", **COMPLETED)
        assert missing.status_code == 422, missing.text
        error = missing.json()["error"]
        assert error["code"] == "invalid_event"
        assert "Unit serial number (serial_number) is required" in error["message"]

        wrong = await stack.event(
            "tess",
            slug,
            "job_completed",
            **COMPLETED,
            fields={"serial_number": "SN-1", "refrigerant": "water", "mood": "good"},
        )
        assert wrong.status_code == 422
        assert "'water' is not one of the options" in wrong.json()["error"]["message"]
        assert "unknown receipt field 'mood'" in wrong.json()["error"]["message"]

        after = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        assert after["stage"] == "on_site" and after["seq"] == job["seq"]
        assert after["completion"] is None and after["portal_url"] is None
        # Refused by the Update's validator: nothing of either request entered history.
        assert await updates_in_history(history) == updates

        done = await stack.event(
            "tess", slug, "job_completed", **COMPLETED, fields={"serial_number": "SN-1"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["stage"] == "completed"


async def test_closeout_sends_the_receipt_and_the_portal_link(stack: Stack) -> None:
    async with closeout_settings(stack, receipt_fields=FIELDS, channel="both"):
        job = await on_site(stack, email="zoe@example.com", phone="+15550104444")
        slug = job["slug"]
        done = await stack.event(
            "tess",
            slug,
            "job_completed",
            **COMPLETED,
            fields={"serial_number": "SN-88-QX", "refrigerant": "R-410A", "customer_present": True},
        )
        assert done.status_code == 200, done.text

        email, sms = await messages(stack, slug, "closeout", count=2)
    assert (email["channel"], sms["channel"]) == ("email", "sms")
    assert email["to"] == "zoe@example.com" and sms["to"] == "+15550104444"
    [attachment] = email["attachments"]
    assert attachment["filename"].startswith("work-receipt-") and attachment["filename"].endswith(
        ".pdf"
    )

    # The job view, the email and the SMS give the same portal link.
    view = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    portal_url = view["portal_url"]
    assert portal_url and portal_url.startswith("http://127.0.0.1:8000/portal/")
    assert view["portal_expires_at"]
    assert portal_url in sms["body"] and portal_url in email["body"]
    token = portal_url.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, base64url

    # The receipt carries the work and the configured fields under their labels.
    text = pdf_text(await document(stack, attachment["document_id"]))
    for expected in (
        "Work receipt",
        "Replaced the condenser fan motor",
        "FAN-1",
        "Condenser fan motor",
        "Unit serial number",
        "SN-88-QX",
        "Refrigerant",
        "R-410A",
        "Customer present",
        "Yes",
    ):
        assert expected.lower() in text.lower(), (expected, text)

    # The technician who did the work can read it too.
    await document(stack, attachment["document_id"], username="tess")

    # The portal: no bearer token, just the link.
    page = await stack.http.get(f"/portal/{token}")
    assert page.status_code == 200, page.text
    assert "Replaced the condenser fan motor" in page.text and "SN-88-QX" in page.text
    receipt = await stack.http.get(f"/portal/{token}/receipt.pdf")
    assert receipt.status_code == 200
    assert receipt.content == await document(stack, attachment["document_id"])

    # One version of the snapshot, no webhook configured.
    async with stack.db.session() as session:
        snapshots = (
            await session.exec(select(PortalSnapshot).where(PortalSnapshot.job_slug == slug))
        ).all()
    assert [(s.version, s.webhook_status) for s in snapshots] == [(1, None)]
    assert snapshots[0].data["fields"][0]["label"] == "Unit serial number"
    assert snapshots[0].data["receipt_document_id"] == attachment["document_id"]


async def test_sms_channel_without_a_phone_falls_back_to_email(stack: Stack) -> None:
    async with closeout_settings(stack, channel="sms"):
        job = await on_site(stack, email="nophone@example.com")
        await drive(stack, job["slug"], [("tess", "job_completed", COMPLETED)])
        [only] = await messages(stack, job["slug"], "closeout")
    assert only["channel"] == "email" and only["to"] == "nophone@example.com"
    assert len(only["attachments"]) == 1


def _verify(request: Any, secret: str) -> dict:
    timestamp = request.headers["x-jobline-timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers["x-jobline-signature"] == f"sha256={expected}"
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.body)


async def test_webhook_gets_the_signed_snapshot_and_is_retried(stack: Stack) -> None:
    receiver = FakeHttpProvider()
    receiver.answer_next(Reply(503, "busy"))
    try:
        async with closeout_settings(
            stack, webhook_url=f"{receiver.base_url}/jobline", webhook_secret=SECRET
        ):
            job = await on_site(stack)
            slug = job["slug"]
            await drive(stack, slug, [("tess", "job_completed", COMPLETED)])
            # The first answer is a 503; Temporal retries the activity after its backoff.
            first, second = await receiver.wait_for_requests(2, within=60)
    finally:
        receiver.close()

    assert (first.status, second.status) == (503, 200)
    body = _verify(second, SECRET)
    assert _verify(first, SECRET) == body
    assert first.headers["x-jobline-delivery"] == second.headers["x-jobline-delivery"]
    assert body["type"] == "job.completed" and body["version"] == 1
    snapshot = body["snapshot"]
    assert (
        snapshot["job_slug"] == slug and snapshot["work_performed"] == COMPLETED["work_performed"]
    )
    assert snapshot["parts_used"] == [
        {"sku": "FAN-1", "description": "Condenser fan motor", "quantity": "1"}
    ]
    assert SECRET not in second.body.decode()

    async def recorded() -> bool:
        async with stack.db.session() as session:
            row = (
                await session.exec(select(PortalSnapshot).where(PortalSnapshot.job_slug == slug))
            ).one()
        return row.webhook_status == "sent" and row.webhook_attempts == 2

    await wait_until(recorded, 10, "the webhook's delivery recorded on the snapshot")


async def test_quote_email_carries_the_quote_pdf(stack: Stack) -> None:
    job = await on_site(stack)
    [quote] = [m for m in await messages(stack, job["slug"], "quote") if m["channel"] == "email"]
    [attachment] = quote["attachments"]
    assert attachment["filename"].startswith("quote-")
    text = pdf_text(await document(stack, attachment["document_id"]))
    assert "QUOTE" in text.upper() and "Condenser fan motor" in text and "657.50" in text


async def test_invoice_goes_to_the_billing_email_with_its_pdf(stack: Stack) -> None:
    job = await on_site(stack, email="site@example.com", billing_email="ap@example.com")
    slug = job["slug"]
    invoiced = await drive(
        stack,
        slug,
        [
            ("tess", "job_completed", COMPLETED),
            ("olga", "invoice_sent", {"po_number": "PO-4471", "submitted_to_client_portal": True}),
        ],
    )
    assert invoiced["stage"] == "invoiced"
    assert invoiced["invoice"]["submitted_to_client_portal"] is True
    assert invoiced["invoice"]["billing_email"] == "ap@example.com"
    [invoice] = await messages(stack, slug, "invoice")
    assert invoice["channel"] == "email" and invoice["to"] == "ap@example.com"
    assert "657.50" in invoice["body"]
    [attachment] = invoice["attachments"]
    text = pdf_text(await document(stack, attachment["document_id"]))
    assert "INVOICE" in text.upper() and "PO-4471" in text and "657.50" in text

    # Paid and verified closes the job; a closed job takes nothing more.
    closed = await drive(
        stack,
        slug,
        [
            ("olga", "payment_recorded", {"amount": "657.50", "method": "card"}),
            ("mia", "evidence_verified", EVIDENCE),
        ],
    )
    assert closed["stage"] == "closed" and closed["allowed_events"] == []
    refused = await stack.event("olga", slug, "invoice_sent", override_reason="again")
    assert refused.status_code == 409


async def test_portal_link_is_only_for_completed_jobs(stack: Stack) -> None:
    job = await on_site(stack)
    assert job["portal_url"] is None
    unknown = await stack.http.get("/portal/" + "A" * 43)
    assert unknown.status_code == 404


async def test_billing_rules_refuse_with_what_is_missing(stack: Stack) -> None:
    job = await on_site(stack, tier="platinum")
    slug = job["slug"]
    await drive(stack, slug, [("tess", "job_completed", COMPLETED)])

    no_po = await stack.event("olga", slug, "invoice_sent", billing_email="ap@example.com")
    assert no_po.status_code == 422
    assert (
        "platinum clients are billed with a billing email and a PO number; missing: po_number"
        in (no_po.json()["error"]["message"])
    )
    other_lines = [{"description": "Fan motor, warranty", "quantity": "1", "unit_price": "0.00"}]
    unexplained = await stack.event(
        "olga",
        slug,
        "invoice_sent",
        lines=other_lines,
        billing_email="ap@example.com",
        po_number="PO-1",
    )
    assert unexplained.status_code == 422
    assert "override_reason" in unexplained.json()["error"]["message"]
    assert (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["stage"] == "completed"

    invoiced = await drive(
        stack,
        slug,
        [
            (
                "olga",
                "invoice_sent",
                {
                    "lines": other_lines,
                    "override_reason": "motor replaced under warranty",
                    "billing_email": "ap@example.com",
                    "po_number": "PO-1",
                },
            )
        ],
    )
    assert invoiced["invoice"]["total"] == "0.00"
    assert invoiced["invoice"]["override_reason"] == "motor replaced under warranty"

    incomplete = await stack.event(
        "mia", slug, "evidence_verified", **{**EVIDENCE, "photos": False}
    )
    assert incomplete.status_code == 422
    assert "photos" in incomplete.json()["error"]["message"]
