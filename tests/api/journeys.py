"""Driving a job through the HTTP API in tests: a step at a time, or straight to a stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Stack

QUOTE = {
    "lines": [
        {
            "description": "Condenser fan motor",
            "quantity": "1",
            "unit_price": "420.00",
            "sku": "FAN-1",
        },
        {"description": "Labour", "quantity": "2.5", "unit_price": "95.00", "sku": "LAB"},
    ]
}
CHECKLIST = {
    "parts_verified": True,
    "check_in_phone": "+1 555 0100",
    "pricing_discussion": "not_allowed",
    "platinum_protocol_acknowledged": True,  # needed for platinum clients only
}
EVIDENCE = {
    name: True for name in ("documents", "notes", "parts_usage", "photos", "customer_communication")
}


def window(days: int = 2) -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
    }


async def drive(stack: Stack, slug: str, steps: list[tuple[str, str, dict]]) -> dict:
    """Send each (user, event type, fields) in turn; every one must be accepted."""
    job: dict = {}
    for username, type_, fields in steps:
        response = await stack.event(username, slug, type_, **fields)
        assert response.status_code == 200, (type_, response.text)
        job = response.json()
    return job


# From a new lead to a quote sent (by sam, who owns the job); `approved` adds the approval.
QUOTE_SENT = [
    ("olga", "owner_assigned", {"owner": "sam"}),
    ("sam", "lead_qualified", {}),
    ("sam", "quote_drafted", QUOTE),
    ("sam", "quote_sent", {}),
]


async def prospect(stack: Stack, tier: str = "standard") -> str:
    """A new job for a new client of `tier`, owned by olga and qualified; its slug."""
    client = await stack.new_client(tier=tier)
    slug = (await stack.new_job(client_id=client["id"]))["slug"]
    steps = [("olga", "owner_assigned", {"owner": "olga"}), ("olga", "lead_qualified", {})]
    await drive(stack, slug, steps)
    return slug


async def quoted(stack: Stack, *, approved: bool = False, **job: object) -> str:
    """A new job (with `job`'s fields) with its quote sent, or approved; its slug."""
    slug = (await stack.new_job(**job))["slug"]
    approval = [("olga", "quote_approved", {})] if approved else []
    await drive(stack, slug, [*QUOTE_SENT, *approval])
    return slug


def quoted_and_scheduled(technician: str, when: dict[str, str] | None = None) -> list:
    """The steps from a new lead to `scheduled` with the checklist done, the quote's way."""
    return [
        *QUOTE_SENT,
        ("olga", "quote_approved", {}),
        ("olga", "job_scheduled", {"technician": technician, **(when or window())}),
        ("olga", "checklist_completed", CHECKLIST),
    ]


def dispatched_and_scheduled(technician: str, when: dict[str, str]) -> list:
    """The steps from a new lead to `scheduled` with the checklist done, as an emergency."""
    return [
        ("olga", "emergency_dispatch", {}),
        ("olga", "job_scheduled", {"technician": technician, **when}),
        ("olga", "checklist_completed", CHECKLIST),
    ]


async def on_site(stack: Stack, technician: str = "tess", **client: object) -> dict:
    """A new job, quoted, approved, scheduled and checked in: the technician is at work."""
    job = await stack.new_job(client_id=(await stack.new_client(**client))["id"])
    return await drive(
        stack,
        job["slug"],
        [
            *quoted_and_scheduled(technician),
            (technician, "tech_dispatched", {}),
            (technician, "tech_checked_in", {}),
        ],
    )
