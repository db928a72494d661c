"""A job driven through the HTTP API from first call to payment, on a real Temporal server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.api.journeys import drive as _drive
from tests.api.journeys import window as _window
from tests.conftest import Stack


async def _search_attribute_query(stack: Stack, query: str, workflow_id: str) -> bool:
    # Visibility is eventually consistent; give it a moment.
    for _ in range(50):
        found = [w.id async for w in stack.temporal.list_workflows(query)]
        if workflow_id in found:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_lead_to_closed(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    assert job["stage"] == "lead" and job["milestone"] == "Lead"
    assert job["number"] is None
    assert "lead_qualified" not in job["allowed_events"]  # an unassigned lead

    quote = {
        "lines": [
            {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"},
            {"description": "Labour", "quantity": "2.5", "unit_price": "95.00", "sku": "LAB"},
        ]
    }
    job = await _drive(
        stack,
        slug,
        [
            ("olga", "owner_assigned", {"owner": "sam"}),
            ("sam", "lead_qualified", {}),
            ("sam", "quote_drafted", quote),
            ("sam", "quote_sent", {}),
            ("olga", "quote_approved", {}),
        ],
    )
    assert job["stage"] == "approved" and job["milestone"] == "Approved"
    assert job["quote"]["total"] == "657.50" and job["quote"]["version"] == 1
    assert isinstance(job["number"], int)
    number = job["number"]

    job = await _drive(
        stack,
        slug,
        [
            (
                "olga",
                "parts_ordered",
                {
                    "parts": [
                        {
                            "sku": "FAN-1",
                            "description": "Fan motor",
                            "quantity": 1,
                            "supplier": "Ferguson",
                            "po_number": "PO-77",
                            "expected_delivery": "2030-01-05",
                        }
                    ]
                },
            ),
            ("olga", "parts_delivered", {"skus": ["FAN-1"]}),
            ("olga", "job_scheduled", {"technician": "tess", **_window()}),
            (
                "olga",
                "checklist_completed",
                {
                    "parts_verified": True,
                    "check_in_phone": "+1 555 0100",
                    "pricing_discussion": "not_allowed",
                },
            ),
            ("tess", "tech_dispatched", {}),
            ("tess", "tech_checked_in", {}),
            (
                "tess",
                "job_completed",
                {
                    "work_performed": "Replaced condenser fan motor",
                    "parts_used": [{"sku": "FAN-1", "quantity": "1"}],
                },
            ),
            ("olga", "invoice_sent", {}),
            (
                "mia",
                "evidence_verified",
                {
                    k: True
                    for k in (
                        "documents",
                        "notes",
                        "parts_usage",
                        "photos",
                        "customer_communication",
                    )
                },
            ),
        ],
    )
    assert job["stage"] == "verified"
    assert job["invoice"]["total"] == "657.50"
    job = await _drive(
        stack, slug, [("olga", "payment_recorded", {"amount": "657.50", "method": "check"})]
    )
    assert job["stage"] == "closed" and job["milestone"] == "Closed"
    assert job["number"] == number
    assert job["allowed_events"] == []
    assert [e["seq"] for e in job["timeline"]] == list(range(1, 17))
    assert job["timeline"][0]["type"] == "job_created"

    # Read-your-writes: the list shows the change the moment the event returned.
    listed = (await stack.get("olga", "/api/v1/jobs", params={"stage": "closed", "q": slug})).json()
    assert [item["slug"] for item in listed["items"]] == [slug]

    # Ops find it by search attribute, and the workflow has completed.
    assert await _search_attribute_query(
        stack, f"JobStage='closed' AND JobNumber={number}", f"job-{slug}"
    )
    handle = stack.temporal.get_workflow_handle(f"job-{slug}")
    result = await handle.result()
    assert result["stage"] == "closed" if isinstance(result, dict) else result.stage == "closed"

    # Final stays final: every further event is refused with the reason, and nothing changes.
    refused = await stack.event("olga", slug, "note_added", text="one more thing")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "event_not_allowed"
    assert refused.json()["error"]["allowed_events"] == []
    after = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert after["seq"] == job["seq"]


async def test_job_numbers_are_sequential_and_unique(stack: Stack) -> None:
    numbers = []
    for _ in range(3):
        job = await stack.new_job()
        job = await _drive(stack, job["slug"], [("olga", "emergency_dispatch", {})])
        numbers.append(job["number"])
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert numbers[2] - numbers[0] >= 2


async def test_sales_needs_a_managers_approval(stack: Stack) -> None:
    job = await stack.new_job("sam")
    slug = job["slug"]
    assert job["owner"] == "sam"  # sales own the leads they bring in
    await _drive(
        stack,
        slug,
        [
            ("sam", "lead_qualified", {}),
            (
                "sam",
                "quote_drafted",
                {
                    "lines": [
                        {"description": "Roof repair", "quantity": "1", "unit_price": "1500.00"}
                    ]
                },
            ),
            (
                "sam",
                "quote_sent",
                {"approval_expected_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
            ),
        ],
    )
    refused = await stack.event("sam", slug, "quote_approved")
    assert refused.status_code == 403
    assert "approval_requested" in refused.json()["error"]["message"]

    job = await _drive(stack, slug, [("sam", "approval_requested", {})])
    assert job["approval_pending"] is True and job["waiting_on"] == "manager"
    denied = await _drive(stack, slug, [("mia", "approval_denied", {"reason": "margin too thin"})])
    assert denied["approval_pending"] is False and denied["stage"] == "quote_sent"
    job = await _drive(
        stack, slug, [("sam", "approval_requested", {}), ("mia", "approval_granted", {})]
    )
    assert job["stage"] == "approved" and job["number"] is not None
    assert job["contract_amount"] == "1500.00"


async def test_incomplete_visit_goes_back_and_is_rescheduled(stack: Stack) -> None:
    job = await stack.new_job(priority="emergency")
    slug = job["slug"]
    checklist = {
        "parts_verified": True,
        "check_in_phone": "555-0101",
        "pricing_discussion": "allowed",
    }
    job = await _drive(
        stack,
        slug,
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tom", **_window(1)}),
            ("olga", "checklist_completed", checklist),
            ("tom", "tech_dispatched", {}),
            ("tom", "tech_checked_in", {}),
            (
                "tom",
                "job_incomplete",
                {"reason": "insufficient_time", "notes": "needs a second day"},
            ),
        ],
    )
    assert job["stage"] == "ready_to_schedule"
    assert job["schedule"] is None and job["checklist"] is None
    job = await _drive(
        stack, slug, [("olga", "job_scheduled", {"technician": "tom", **_window(3)})]
    )
    assert job["stage"] == "scheduled"
    refused = await stack.event("tom", slug, "tech_dispatched")
    assert refused.status_code == 409
    assert "checklist" in refused.json()["error"]["message"]
    assert "tech_dispatched" not in refused.json()["error"]["allowed_events"]


async def test_cancel_keeps_the_job_readable(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    refused = await stack.event("olga", slug, "job_canceled")
    assert refused.status_code == 422  # a reason is required
    job = await _drive(
        stack, slug, [("mia", "job_canceled", {"reason": "customer went elsewhere"})]
    )
    assert job["stage"] == "canceled" and job["milestone"] == "Canceled"
    assert job["cancel_reason"] == "customer went elsewhere"
    again = await stack.get("olga", f"/api/v1/jobs/{slug}")
    assert again.status_code == 200 and again.json()["stage"] == "canceled"
    refused = await stack.event("mia", slug, "job_canceled", reason="twice")
    assert refused.status_code == 409


async def test_integration_signal_goes_through_the_same_rules(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    part = {
        "sku": "CAP-45",
        "description": "Capacitor",
        "quantity": 2,
        "supplier": "Grainger",
        "po_number": "PO-9",
        "expected_delivery": "2030-02-01",
    }
    await _drive(stack, slug, [("olga", "emergency_dispatch", {})])
    # Not yet awaiting parts (office has to order them): the supplier feed's signal is refused.
    handle = stack.temporal.get_workflow_handle(f"job-{slug}")
    delivered = {
        "event": {"type": "parts_delivered", "skus": ["CAP-45"]},
        "actor": {"username": "supplier-feed", "role": "integration"},
    }
    await handle.signal("event", delivered)
    await asyncio.sleep(0.3)
    assert (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["stage"] == "ready_to_schedule"

    # Once parts are on order, the same signal moves the job on.
    job = await stack.new_job()
    slug = job["slug"]
    await _drive(
        stack,
        slug,
        [
            ("olga", "owner_assigned", {"owner": "olga"}),
            ("olga", "lead_qualified", {}),
            (
                "olga",
                "quote_drafted",
                {
                    "lines": [
                        {"description": "Capacitor swap", "quantity": "1", "unit_price": "180.00"}
                    ]
                },
            ),
            ("olga", "quote_sent", {}),
            ("olga", "quote_approved", {}),
            ("olga", "parts_ordered", {"parts": [part]}),
        ],
    )
    handle = stack.temporal.get_workflow_handle(f"job-{slug}")
    await handle.signal("event", delivered)
    for _ in range(50):
        job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        if job["stage"] == "ready_to_schedule":
            break
        await asyncio.sleep(0.1)
    assert job["stage"] == "ready_to_schedule"
    assert job["timeline"][-1]["actor"] == "supplier-feed"


async def test_technicians_see_only_their_jobs(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    assert (await stack.get("tess", f"/api/v1/jobs/{slug}")).status_code == 404
    await _drive(
        stack,
        slug,
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tess", **_window()}),
        ],
    )
    assert (await stack.get("tess", f"/api/v1/jobs/{slug}")).status_code == 200
    assert (await stack.get("tom", f"/api/v1/jobs/{slug}")).status_code == 404
    listed = (await stack.get("tom", "/api/v1/jobs", params={"q": slug})).json()
    assert listed["total"] == 0
    # Another technician's event on it is not even found, let alone applied.
    assert (await stack.event("tom", slug, "note_added", text="hi")).status_code == 404
