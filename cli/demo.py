"""Demo users, clients and jobs for `jobline dev`: a pipeline with something in every stage.

Jobs are created and moved through the public HTTP API, exactly as a person would, so the demo
exercises the real path (workflows, projection, search attributes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import func, select

from api.users.service import (
    add_token,
    authenticate,
    create_user,
    demo_token,
    find_user,
    set_password,
)
from core.db import Database
from models.tables import Job

DEMO_USERS = [
    ("ada", "admin"),
    ("mia", "manager"),
    ("olga", "office"),
    ("sam", "sales"),
    ("tess", "technician"),
]

DEMO_CLIENTS = [
    {
        "name": "Harbor View Apartments",
        "tier": "platinum",
        "email": "facilities@harborview.example",
        "billing_email": "ap@harborview.example",
        "phone": "+1 555 0100",
        "address": "1 Harbor View Rd",
    },
    {
        "name": "Maple Street Dental",
        "email": "office@maplestreetdental.example",
        "phone": "+1 555 0101",
        "address": "22 Maple St",
    },
    {
        "name": "City of Easton Facilities",
        "tier": "gov",
        "email": "facilities@easton.example",
        "phone": "+1 555 0102",
        "address": "100 Main St",
    },
    {
        "name": "Rivera Residence",
        "email": "rivera.home@example.com",
        "phone": "+1 555 0103",
        "address": "9 Oak Lane",
    },
]


def demo_password(username: str) -> str:
    """A fixed, printed demo password ("olga-demo"): for a laptop's demo data, never for real."""
    return f"{username}-demo"


async def ensure_demo_users(db: Database, secret_key: str) -> dict[str, tuple[str, str]]:
    """Demo users with tokens derived from the data dir's secret: {username: (role, token)}.

    Each gets its demo password for the web pages when it has none (a changed one is kept)."""
    tokens: dict[str, tuple[str, str]] = {}
    async with db.session() as session:
        for username, role in DEMO_USERS:
            user = await find_user(session, username)
            if user is None:
                user = await create_user(
                    session, username, role, f"{username}@demo.jobline.example"
                )
            token = demo_token(secret_key, username)
            if await authenticate(session, token) is None:
                await add_token(session, user, token, label="demo")
            if user.password_hash is None:
                await set_password(session, user, demo_password(username))
            tokens[username] = (role, token)
    return tokens


async def has_jobs(db: Database) -> bool:
    async with db.session() as session:
        return bool(await session.scalar(select(func.count()).select_from(Job)))


def _window(days: int, now: datetime) -> dict[str, str]:
    start = (now + timedelta(days=days)).replace(hour=14, minute=0, second=0, microsecond=0)
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
    }


def demo_events(kind: str, now: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(username, event body): the events that take a fresh lead to the named point of the
    pipeline (`closed` is the whole lifecycle, which bench/events.py also drives)."""
    now = now or datetime.now(UTC)
    quote = {
        "type": "quote_drafted",
        "lines": [
            {
                "description": "Diagnose and repair rooftop unit",
                "quantity": "1",
                "unit_price": "640.00",
            },
            {
                "description": "Refrigerant R-410A (lb)",
                "quantity": "4",
                "unit_price": "38.50",
                "sku": "R410A",
            },
        ],
    }
    part = {
        "sku": "CMP-24",
        "description": "Compressor 2-ton",
        "quantity": 1,
        "supplier": "Ferguson",
        "po_number": "PO-4411",
        "expected_delivery": (now + timedelta(days=4)).date().isoformat(),
    }
    checklist = {
        "type": "checklist_completed",
        "parts_verified": True,
        "check_in_phone": "+1 555 0199",
        "pricing_discussion": "not_allowed",
        "platinum_protocol_acknowledged": True,
    }
    evidence = {
        "type": "evidence_verified",
        **{
            k: True
            for k in ("documents", "notes", "parts_usage", "photos", "customer_communication")
        },
    }
    sold = [
        ("olga", {"type": "owner_assigned", "owner": "sam"}),
        ("sam", {"type": "lead_qualified"}),
        ("sam", quote),
        ("sam", {"type": "quote_sent"}),
        ("olga", {"type": "quote_approved"}),
    ]
    on_site = [
        ("olga", {"type": "job_scheduled", "technician": "tess", **_window(1, now)}),
        ("olga", checklist),
        ("tess", {"type": "tech_dispatched"}),
        ("tess", {"type": "tech_checked_in"}),
    ]
    completed = [
        *on_site,
        (
            "tess",
            {
                "type": "job_completed",
                "work_performed": "Replaced contactor, "
                "recharged refrigerant, verified cooling at 18°F split",
            },
        ),
    ]
    steps: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "lead": [],
        "prospect": sold[:2],
        "quote_sent": sold[:4],
        "awaiting_parts": [*sold, ("olga", {"type": "parts_ordered", "parts": [part]})],
        "scheduled": [
            *sold,
            ("olga", {"type": "job_scheduled", "technician": "tess", **_window(2, now)}),
        ],
        "emergency_on_site": [("olga", {"type": "emergency_dispatch"}), *on_site],
        "completed": [*sold, *completed],
        "closed": [
            *sold,
            *completed,
            ("olga", {"type": "invoice_sent", "po_number": "PO-7781"}),
            ("mia", evidence),
            ("olga", {"type": "payment_recorded", "amount": "794.00", "method": "check"}),
        ],
        "canceled": [
            *sold[:4],
            ("mia", {"type": "job_canceled", "reason": "Customer chose another contractor"}),
        ],
    }
    return steps[kind]


DEMO_JOBS = [
    (1, "Water heater leaking", "incoming_call", "lead"),
    (3, "Annual HVAC maintenance, 12 buildings", "outgoing_email", "prospect"),
    (1, "Roof drain replacement, building C", "incoming_email", "quote_sent"),
    (0, "Compressor failure, tower 2", "incoming_call", "awaiting_parts"),
    (2, "Boiler inspection, city hall", "incoming_email", "scheduled"),
    (3, "No heat, upstairs", "incoming_call", "emergency_on_site"),
    (1, "Replace thermostat, operatory 3", "incoming_call", "completed"),
    (0, "Rooftop unit not cooling", "incoming_call", "closed"),
    (3, "Duct cleaning quote", "outgoing_call", "canceled"),
]


def create_demo_data(base_url: str, tokens: dict[str, tuple[str, str]]) -> int:
    def auth(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[username][1]}"}

    with httpx.Client(base_url=base_url, timeout=30) as http:
        client_ids = []
        for body in DEMO_CLIENTS:
            response = http.post("/api/v1/clients", json=body, headers=auth("olga"))
            response.raise_for_status()
            client_ids.append(response.json()["id"])
        for client_index, title, source, kind in DEMO_JOBS:
            creator = "sam" if kind in {"prospect", "quote_sent"} else "olga"
            body = {
                "client_id": client_ids[client_index],
                "title": title,
                "source": source,
                "priority": "emergency" if kind.startswith("emergency") else "standard",
                "site_address": DEMO_CLIENTS[client_index]["address"],
            }
            response = http.post("/api/v1/jobs", json=body, headers=auth(creator))
            response.raise_for_status()
            slug = response.json()["slug"]
            for username, event in demo_events(kind):
                if creator == "sam" and event["type"] == "owner_assigned":
                    continue
                http.post(
                    f"/api/v1/jobs/{slug}/events", json=event, headers=auth(username)
                ).raise_for_status()
    return len(DEMO_JOBS)
