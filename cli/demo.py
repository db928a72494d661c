"""Demo users, clients and jobs for `jobline dev`: a board with every state on day one.

Most jobs are created and moved through the public HTTP API, exactly as a person would, so the
demo exercises the real path (workflows, projection, search attributes). Overdue parts come the
same way: the part's expected delivery was two days ago, and the workflow's parts check fires at
once.

Two states only time makes: a job stuck in its stage (held longer than the stage's limit) and a
stale quote (every follow-up sent, days apart, and no answer). Temporal's clock cannot be turned
back, and the rules stamp each event with the workflow's time, so these two jobs are backdated
(`backdate_demo_jobs`): their events are put through the same rules (models/lifecycle.py) at
times days ago, the follow-ups that would have fallen due since are recorded by the reminder
rules (models/reminders.py) at their due times, and the job workflow is started with that state,
as a continued run is. The workflow then does the rest with the company's real settings: the
stuck check and the stale flag are past due, so it raises them at once, writes the projection and
the timeline, and the board shows them. Nothing here writes the projection, and no setting
changes. Their timeline says which entries are backdated; the follow-ups recorded as sent in the
past were never sent, so the outbox has no copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlmodel import func, select
from temporalio.client import Client as TemporalClient
from temporalio.common import WorkflowIDReusePolicy

from activities.resulting import start_clock
from api.jobs.service import new_slug
from api.users.service import (
    add_token,
    authenticate,
    change_display_name,
    create_user,
    demo_token,
    find_user,
    set_password,
)
from core import settings_store
from core.db import Database
from core.settings_store import COMMUNICATIONS
from core.temporal import workflow_id
from models import events as ev
from models import lifecycle, reminders
from models.communications import CommunicationSettings
from models.lifecycle import Accepted, Actor, ClientSnapshot, Role
from models.messages import JobInput, TimelineRecord
from models.resulting import ResultingClock
from models.tables import Job
from models.timeline import describe
from workflows.job import JobWorkflow

# (username, role, display name): customers read the display name (the technician's in the
# appointment email, on the work receipt and in the portal).
DEMO_USERS = [
    ("ada", "admin", "Ada Lindqvist"),
    ("mia", "manager", "Mia Okafor"),
    ("olga", "office", "Olga Brandt"),
    ("sam", "sales", "Sam Whitaker"),
    ("tess", "technician", "Tess Turner"),
]
ROLES = {username: Role(role) for username, role, _ in DEMO_USERS}

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
        for username, role, display_name in DEMO_USERS:
            user = await find_user(session, username)
            if user is None:
                user = await create_user(
                    session,
                    username,
                    role,
                    f"{username}@demo.jobline.example",
                    display_name=display_name,
                )
            elif not user.display_name:  # made before demo users had names: a name is kept
                await change_display_name(session, user, display_name)
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
                "taxable": False,  # labour; the refrigerant is taxed (DEMO_QUOTES)
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
    # Promised for two days ago and not delivered: the workflow's parts check is past due, so it
    # alerts the office as soon as the order is in.
    late_part = {
        **part,
        "sku": "FAN-18",
        "description": "Condenser fan motor 1/3 hp",
        "po_number": "PO-4398",
        "expected_delivery": (now - timedelta(days=2)).date().isoformat(),
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
    # Good / better / best from the price book (Harbor View pays its own filter price), taxed at
    # the demo's 6.25 %, sent: its link (`/q/…`) is in the quote email in the outbox.
    capacitor = {
        "sku": "CAP-455",
        "description": "Run capacitor 45/5 MFD",
        "quantity": "1",
        "unit_price": "38.50",
    }
    labour = {
        "sku": "LAB-HR",
        "description": "Technician labour, per hour",
        "quantity": "1.5",
        "unit_price": "125.00",
    }
    contactor = {
        "description": "Contactor, 40 A (special order)",
        "quantity": "1",
        "unit_price": "64.00",
    }
    options = {
        "type": "quote_drafted",
        "options": [
            {"name": "Repair", "lines": [capacitor, contactor, labour]},
            {
                "name": "Repair and tune-up",
                "lines": [
                    capacitor, contactor, labour,
                    {"sku": "FLT-20251", "description": "Pleated filter 20x25x1, MERV 11",
                     "quantity": "2", "unit_price": "11.50"},
                    {"description": "Coil cleaning and full tune-up", "quantity": "1",
                     "unit_price": "165.00"},
                ],
            },
            {
                "name": "New condensing unit",
                "lines": [
                    {"description": "3-ton condensing unit", "quantity": "1",
                     "unit_price": "4850.00"},
                    {**labour, "quantity": "6"},
                ],
            },
        ],
        "discount": {"percent": "5", "reason": "Returning customer"},
        "valid_until": (now + timedelta(days=30)).date().isoformat(),
    }  # fmt: skip
    steps: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "lead": [],
        "prospect": sold[:2],
        "quote_sent": sold[:4],
        "quote_options": [*sold[:2], ("sam", options), ("sam", {"type": "quote_sent"})],
        "awaiting_parts": [*sold, ("olga", {"type": "parts_ordered", "parts": [part]})],
        "parts_overdue": [*sold, ("olga", {"type": "parts_ordered", "parts": [late_part]})],
        "scheduled": [
            *sold,
            ("olga", {"type": "job_scheduled", "technician": "tess", **_window(2, now)}),
        ],
        "emergency_on_site": [("olga", {"type": "emergency_dispatch"}), *on_site],
        "completed": [*sold, *completed],
        "invoiced": [
            *sold,
            *completed,
            ("olga", {"type": "invoice_sent", "po_number": "MSD-2207"}),
        ],
        "closed": [
            *sold,
            *completed,
            ("olga", {"type": "invoice_sent", "po_number": "PO-7781"}),
            ("mia", evidence),
            # 794.00 and 6.25 % tax on the refrigerant's 154.00
            ("olga", {"type": "payment_recorded", "amount": "803.63", "method": "check"}),
        ],
        "canceled": [
            *sold[:4],
            ("mia", {"type": "job_canceled", "reason": "Customer chose another contractor"}),
        ],
    }
    return steps[kind]


# Resulting turned on, as a sales team would set it up (the SOP's Step 1).
DEMO_RESULTING: dict[str, Any] = {
    "enabled": True,
    "unresulted_after_days": 7,
    "types": {
        "sale": {
            "pattern": "standard",
            "recipients": ["sales@example.com"],
            "fields": [
                {"key": "sale_amount", "label": "Sale amount", "type": "currency",
                 "required": True},
                {"key": "signed_on", "label": "Contract signed", "type": "date"},
                {"key": "financing", "label": "Financing arranged", "type": "checkbox"},
                {"key": "notes", "label": "Notes", "type": "text"},
            ],
        },
        "no_sale": {
            "pattern": "compact",
            "recipients": ["sales@example.com"],
            "fields": [
                {"key": "loss_reason", "label": "Why we lost it", "type": "dropdown",
                 "required": True,
                 "options": ["Price", "Timing", "Went with competitor", "No longer needed"]},
                {"key": "competitor", "label": "Competitor", "type": "text"},
                {"key": "notes", "label": "Notes", "type": "text"},
            ],
        },
    },
}  # fmt: skip
# (who, result) per DEMO_JOBS kind: the closed job sold; the canceled one lost, resulted first
# for the wrong reason and then resubmitted (its history keeps both).
DEMO_RESULTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "closed": [("sam", {"type": "sale", "fields": {"sale_amount": "794.00", "financing": False}})],
    "canceled": [
        ("sam", {"type": "no_sale", "fields": {"loss_reason": "Price"}}),
        (
            "mia",
            {
                "type": "no_sale",
                "fields": {"loss_reason": "Went with competitor", "competitor": "CoolAir Co"},
            },
        ),
    ],
}

# (client, title, source, how far it goes): through the API, as people would.
DEMO_JOBS = [
    (1, "Water heater leaking", "incoming_call", "lead"),  # no owner yet: unassigned
    (3, "Annual HVAC maintenance, 12 buildings", "outgoing_email", "prospect"),
    (1, "Roof drain replacement, building C", "incoming_email", "quote_sent"),
    # Three options, sent: open the link in its quote email (/outbox) to answer as the customer.
    (0, "AC short-cycling, unit 12B", "incoming_call", "quote_options"),
    (0, "Compressor failure, tower 2", "incoming_call", "awaiting_parts"),
    (2, "Condenser fan failing, library", "incoming_call", "parts_overdue"),
    (2, "Boiler inspection, city hall", "incoming_email", "scheduled"),
    (3, "No heat, upstairs", "incoming_call", "emergency_on_site"),
    (1, "Replace thermostat, operatory 3", "incoming_call", "completed"),  # with its portal
    (1, "Sterilizer room exhaust fan", "incoming_call", "invoiced"),  # awaiting payment
    (0, "Rooftop unit not cooling", "incoming_call", "closed"),
    (3, "Duct cleaning quote", "outgoing_call", "canceled"),
]


# Quotes are taxed (taxable price-book lines and free lines), and their links open for 30 days.
DEMO_QUOTES: dict[str, Any] = {"tax_rate": "6.25", "tax_label": "Sales tax", "link_days": 30}

# The price book (issue 11): government clients (City of Easton) have fixed prices on labour
# and the fan motor; Harbor View Apartments has its own price for filters.
DEMO_PRICEBOOK: list[dict[str, Any]] = [
    {
        "sku": "LAB-HR",
        "name": "Technician labour, per hour",
        "unit_price": "125.00",
        "taxable": False,
        "category": "Labour",
        "fixed_prices": [{"tier": "gov", "unit_price": "98.00"}],
    },
    {
        "sku": "FAN-1",
        "name": "Condenser fan motor 1/4 HP",
        "unit_price": "189.00",
        "category": "Motors",
        "fixed_prices": [{"tier": "gov", "unit_price": "165.00"}],
    },
    {
        "sku": "CAP-455",
        "name": "Run capacitor 45/5 MFD",
        "unit_price": "38.50",
        "category": "Electrical",
    },
    {
        "sku": "FLT-20251",
        "name": "Pleated filter 20x25x1, MERV 11",
        "unit_price": "14.00",
        "category": "Filters",
    },
    {
        "sku": "TRIP-CHG",
        "name": "Trip charge",
        "unit_price": "79.00",
        "taxable": False,
        "category": "Labour",
    },
]


def create_demo_data(base_url: str, tokens: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """The demo's clients and DEMO_JOBS, through the HTTP API; returns the clients as the API
    answered (for `backdate_demo_jobs`)."""

    def auth(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[username][1]}"}

    with httpx.Client(base_url=base_url, timeout=30) as http:
        http.put(
            "/api/v1/settings/resulting", json=DEMO_RESULTING, headers=auth("ada")
        ).raise_for_status()
        http.put(
            "/api/v1/settings/quotes", json=DEMO_QUOTES, headers=auth("ada")
        ).raise_for_status()
        clients = []
        for body in DEMO_CLIENTS:
            response = http.post("/api/v1/clients", json=body, headers=auth("olga"))
            response.raise_for_status()
            clients.append(response.json())
        for item in DEMO_PRICEBOOK:
            if item["sku"] == "FLT-20251":  # Harbor View's own price
                own = {"client_id": clients[0]["id"], "unit_price": "11.50"}
                item = {**item, "fixed_prices": [own]}
            response = http.post("/api/v1/pricebook", json=item, headers=auth("olga"))
            if response.status_code != 409:  # already in the book: keep it as it is
                response.raise_for_status()
        for client_index, title, source, kind in DEMO_JOBS:
            creator = "sam" if kind in {"prospect", "quote_sent", "quote_options"} else "olga"
            body = {
                "client_id": clients[client_index]["id"],
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
            for username, result in DEMO_RESULTS.get(kind, []):
                http.post(
                    f"/api/v1/jobs/{slug}/result", json=result, headers=auth(username)
                ).raise_for_status()
    return clients


# --- backdated jobs: the states only time makes (see the module's docstring) -------------------

_EVENT = TypeAdapter(ev.Event)
JOBLINE = Actor(username="jobline", role=Role.system)
BACKDATED_NOTE = " (backdated demo data)"
FOLLOW_UP_NOTE = " (backdated demo data: not actually sent)"


@dataclass(frozen=True)
class BackdatedJob:
    client: int  # index into DEMO_CLIENTS
    title: str
    # (username, event body, how long ago)
    steps: list[tuple[str, dict[str, Any], timedelta]]


def _ago(days: float, hours: float = 0) -> timedelta:
    return timedelta(days=days, hours=hours)


BACKDATED_JOBS = [
    # Stuck: qualified five days ago and nobody has started a quote; a prospect may wait 72 h.
    BackdatedJob(
        3,
        "Whole-house repipe estimate",
        [
            ("olga", {"type": "job_created", "source": "incoming_call"}, _ago(5, 3)),
            ("olga", {"type": "owner_assigned", "owner": "sam"}, _ago(5, 2)),
            ("sam", {"type": "lead_qualified"}, _ago(5)),
        ],
    ),
    # Stale: the quote went out 13 days ago; its follow-ups fell due every 72 h since, and the
    # last one has waited its interval too.
    BackdatedJob(
        0,
        "Replace rooftop units, building A",
        [
            ("sam", {"type": "job_created", "source": "outgoing_email"}, _ago(15)),
            ("sam", {"type": "lead_qualified"}, _ago(14, 6)),
            (
                "sam",
                {
                    "type": "quote_drafted",
                    "lines": [
                        {
                            "description": "Rooftop unit 10-ton, supply and install",
                            "quantity": "2",
                            "unit_price": "18450.00",
                            "sku": "RTU-10",
                        },
                        {"description": "Crane lift", "quantity": "1", "unit_price": "2400.00"},
                    ],
                },
                _ago(13, 2),
            ),
            ("sam", {"type": "quote_sent"}, _ago(13)),
        ],
    ),
]


def backdated_input(
    job: BackdatedJob,
    slug: str,
    client: ClientSnapshot,
    settings: CommunicationSettings,
    now: datetime,
    public_url: str,
) -> JobInput:
    """The job as the rules leave it after its events at their past times, and after the quote
    follow-ups that fell due since (each at its due time): the workflow's start input, as a
    continued run gets it, with the timeline still to write."""
    state = lifecycle.new_job(slug, client)
    records: list[TimelineRecord] = []
    for username, body, ago in job.steps:
        at = now - ago
        if body["type"] == "job_created":
            body = {
                **body,
                "client_id": client.id,
                "title": job.title,
                "site_address": DEMO_CLIENTS[job.client]["address"],
            }
        event = _EVENT.validate_python(body)
        actor = Actor(username=username, role=ROLES[username])
        decision = lifecycle.apply(state, event, actor, at)
        if not isinstance(decision, Accepted):
            raise ValueError(f"demo job {job.title!r}: {event.type} refused: {decision.message}")
        state = decision.state.model_copy(update={"seq": state.seq + 1})
        records.append(
            TimelineRecord(
                seq=state.seq,
                type=event.type,
                actor=actor,
                at=at,
                summary=describe(event) + BACKDATED_NOTE,
                payload=event.model_dump(mode="json"),
            )
        )
    # The customer's follow-ups fell due while the quote waited. The stale flag and the stuck
    # check are left to the workflow, which raises them itself once it runs.
    while (dues := reminders.pending(state, settings)) and dues[0].at <= now:
        due = dues[0]
        if due.kind != "quote_follow_up":
            break
        state = reminders.fired(state, due, due.at, settings)
        state = state.model_copy(update={"seq": state.seq + 1})
        records.append(
            TimelineRecord(
                seq=state.seq,
                type=due.kind,
                actor=JOBLINE,
                at=due.at,
                summary=reminders.describe(due, state, settings) + FOLLOW_UP_NOTE,
                payload={"due_at": due.at.isoformat(), "backdated": True},
            )
        )
    return JobInput(
        slug=slug,
        client=client,
        state=state,
        unprojected=records,
        job_url=f"{public_url}/api/v1/jobs/{slug}",
    )


def _snapshot(client: dict[str, Any]) -> ClientSnapshot:
    return ClientSnapshot.model_validate(
        {k: client.get(k) for k in ("id", "name", "tier", "email", "phone", "billing_email")}
    )


async def backdate_demo_jobs(
    temporal: TemporalClient,
    task_queue: str,
    db: Database,
    clients: list[dict[str, Any]],
    public_url: str,
    now: datetime | None = None,
) -> list[str]:
    """Starts the BACKDATED_JOBS' workflows (clients: as `create_demo_data` returned them);
    returns their slugs. The workflows flag them stuck and stale themselves, moments later."""
    async with db.session() as session:
        settings = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    now = now or datetime.now(UTC)
    slugs = []
    for job in BACKDATED_JOBS:
        slug = new_slug()
        client = _snapshot(clients[job.client])
        start = backdated_input(job, slug, client, settings, now, public_url)
        await temporal.start_workflow(
            JobWorkflow.run,
            start,
            id=workflow_id(slug),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{client.name}: {job.title}"[:200],
            static_details=f"Job `{slug}` for client {client.id} ({client.name}), backdated demo",
        )
        # A quote sent long ago is long due a result: its resulting clock starts at that time
        # (the workflow would have started it, had it run then), so it is flagged at once.
        quote = start.state.quote if start.state else None
        if quote is not None and quote.sent_at is not None:
            clock = ResultingClock(slug=slug, at=quote.sent_at, task_queue=task_queue)
            await start_clock(temporal, clock)
        slugs.append(slug)
    return slugs
