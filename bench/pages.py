"""Page timings: the board and the job page with 10,000 jobs, on SQLite and on PostgreSQL.

    .venv/bin/python bench/pages.py [--jobs 10000] [--requests 40] [--backends sqlite postgresql]
                                    [--json out.json] [--quick]

1. For each backend, a fresh migrated database (a SQLite file in a temporary dir; a new
   PostgreSQL database at JOBLINE_BENCH_POSTGRES_ADMIN, default
   postgresql://postgres@127.0.0.1:5432/postgres, dropped at the end).
2. Seeds --jobs jobs straight into the projection (clients, `jobs` rows and a few timeline rows
   each), spread over every stage the way an office's year looks: leads with and without an
   owner, quotes sent (some stale), parts on order (some overdue), scheduled visits, unpaid
   invoices, a tail of closed and canceled jobs, some of them stuck. The rows are written from
   real `JobState`s through core/projection_store.job_row, so they are what the workflow would
   have written (the board's columns included: models/board.py). Page reads need no Temporal:
   the app gets a lazy client that never connects.
3. Signs an office person in (a real session cookie) and times --requests GETs of each page,
   in the ASGI app (httpx.ASGITransport: server time, no network) and over a real uvicorn
   socket: `/jobs` (the board: nothing is kept between GETs, every one is computed afresh),
   `/jobs/board.fragment` (what the board's script polls),
   `/jobs?view=list&stage=quote_sent` (the list, filtered),
   `/jobs/{slug}` (the job page; "not built" if it answers 404 for a job that exists), and the
   baselines in the same run: the JSON API's `GET /api/v1/jobs?page_size=50` and a bare
   `SELECT count(*) FROM jobs`.
4. Prints p50 / p95 / max per page and backend against the goal (server p95 < 100 ms), with
   this process's CPU time per GET (on a loaded machine wall times mostly measure the wait for
   a core; for SQLite the CPU time includes the database's work, for PostgreSQL not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.db import Database  # noqa: E402
from models.communications import CommunicationSettings  # noqa: E402
from models.lifecycle import (  # noqa: E402
    Checklist,
    ClientSnapshot,
    Completion,
    Invoice,
    JobState,
    PartOrder,
    Payment,
    Quote,
    Reminders,
    Schedule,
    Stage,
)

GOAL_P95_MS = 100.0
QUICK_JOBS = 300
QUICK_REQUESTS = 5
POSTGRES_ADMIN_URL = os.environ.get(
    "JOBLINE_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench pages password"
OFFICE = "olga"
OWNERS = ("sam", "sue", "olga", "mia")
TECHNICIANS = ("tess", "tom", "tia")
PEOPLE = {
    "ada": "admin",
    "mia": "manager",
    "olga": "office",
    "sam": "sales",
    "sue": "sales",
    "tess": "technician",
    "tom": "technician",
    "tia": "technician",
}
# How an office's jobs spread over the stages (weights): most of a year's jobs are done.
STAGE_WEIGHTS: dict[Stage, int] = {
    Stage.lead: 6,
    Stage.prospect: 4,
    Stage.quoting: 3,
    Stage.quote_sent: 7,
    Stage.saving: 1,
    Stage.approved: 3,
    Stage.awaiting_parts: 4,
    Stage.ready_to_schedule: 3,
    Stage.scheduled: 5,
    Stage.dispatched: 1,
    Stage.on_site: 1,
    Stage.completed: 3,
    Stage.invoiced: 4,
    Stage.verified: 2,
    Stage.closed: 45,
    Stage.canceled: 8,
}
TITLES = (
    "No cooling, unit 4",
    "Boiler service",
    "Leaking water heater",
    "Replace thermostat",
    "Annual maintenance",
    "Furnace makes noise",
    "Install heat pump",
    "Drain blocked",
)
ORDER = list(Stage)


# --- seeding: real states, written as the projection would be -----------------------------


def job_state(
    slug: str,
    client: ClientSnapshot,
    stage: Stage,
    now: datetime,
    rng: random.Random,
    *,
    number: int | None = None,
    stuck: bool = False,
    stale_quote: bool = False,
    parts_overdue: bool = False,
    owner: str | None = "sam",
    technician: str = "tess",
    title: str = "No cooling, unit 4",
    paid: bool = False,
) -> JobState:
    """A job as the workflow would hold it in `stage`, with what that stage implies (a quote,
    parts, a schedule, an invoice ...), entered some hours or days before `now`."""
    from models import events as ev

    at = ORDER.index(stage)
    created = now - timedelta(days=rng.uniform(1, 120), hours=rng.uniform(0, 12))
    entered = max(created, now - timedelta(hours=rng.uniform(1, 24 * 10)))
    if stuck:
        entered = now - timedelta(days=rng.uniform(8, 20))
        created = min(created, entered - timedelta(days=1))
    reached = {s: created + (entered - created) * (i / max(at, 1)) for i, s in enumerate(ORDER)}
    price = Decimal(rng.choice((180, 240, 420, 650, 980, 1450, 2300, 5100)))
    quote_stage = at >= ORDER.index(Stage.quoting) and stage is not Stage.canceled
    quote = None
    if quote_stage or (stage is Stage.canceled and rng.random() < 0.5):
        lines = [
            ev.QuoteLine(description="Labour", quantity=Decimal(2), unit_price=price / 2),
            ev.QuoteLine(description="Parts", quantity=Decimal(1), unit_price=Decimal("85.50")),
        ]
        sent = reached[Stage.quote_sent] if at >= ORDER.index(Stage.quote_sent) else None
        quote = Quote(
            version=1, lines=lines, total=price + Decimal("85.50"), sent_at=sent, sent_to=None
        )
    approved = at >= ORDER.index(Stage.approved) and stage is not Stage.canceled
    reminders = Reminders()
    if stale_quote and quote and quote.sent_at:
        reminders.follow_ups_for = quote.sent_at
        reminders.follow_ups_sent = 3
        reminders.last_follow_up_at = entered + timedelta(days=6)
        reminders.quote_stale = True
    parts: list[PartOrder] = []
    if approved and at >= ORDER.index(Stage.awaiting_parts):
        expected = (reached[Stage.awaiting_parts] + timedelta(days=3)).date()
        if stage is Stage.awaiting_parts and parts_overdue:
            expected = (now - timedelta(days=2)).date()
        elif stage is Stage.awaiting_parts:
            expected = max(expected, (now + timedelta(days=2)).date())
        line = ev.PartLine(
            sku=f"SKU-{rng.randint(100, 999)}",
            description="Compressor",
            quantity=1,
            supplier="Ferguson",
            po_number=f"PO-{rng.randint(1000, 9999)}",
            expected_delivery=expected,
        )
        delivered = None if stage is Stage.awaiting_parts else reached[Stage.ready_to_schedule]
        parts.append(
            PartOrder(line=line, ordered_at=reached[Stage.awaiting_parts], delivered_at=delivered)
        )
        if stage is Stage.awaiting_parts and parts_overdue:
            reminders.parts_overdue_skus = [line.sku]
    schedule = checklist = completion = invoice = None
    if approved and at >= ORDER.index(Stage.scheduled):
        start = now + timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 8))
        if at > ORDER.index(Stage.scheduled):
            start = reached[Stage.dispatched]
        start = start.replace(minute=0, second=0, microsecond=0)
        schedule = Schedule(
            technician=technician,
            window_start=start,
            window_end=start + timedelta(hours=2),
            scheduled_at=reached[Stage.scheduled],
        )
        if at > ORDER.index(Stage.scheduled) or rng.random() < 0.5:
            checklist = Checklist(
                parts_verified=True,
                check_in_phone="+15555550100",
                pricing_discussion="allowed",
                platinum_protocol_acknowledged=False,
                completed_by="olga",
                completed_at=reached[Stage.scheduled],
            )
    if approved and at >= ORDER.index(Stage.completed):
        completion = Completion(
            work_performed="Replaced the capacitor; tested",
            completed_by=technician,
            completed_at=reached[Stage.completed],
        )
    if approved and at >= ORDER.index(Stage.invoiced) and quote is not None:
        invoice = Invoice(lines=quote.lines, total=quote.total, sent_at=reached[Stage.invoiced])
    payments = []
    if invoice is not None and (paid or stage is Stage.closed):
        payments.append(
            Payment(
                amount=invoice.total,
                method="card",
                recorded_by="olga",
                recorded_at=reached[Stage.closed] if stage is Stage.closed else entered,
            )
        )
    if stuck:
        reminders.stuck_since = entered
    return JobState(
        slug=slug,
        client=client,
        stage=stage,
        seq=at + 2,
        created_at=created,
        stage_entered_at=entered,
        title=title,
        description="",
        source="incoming_call",
        site_address="12 Main St",
        owner=owner if at >= ORDER.index(Stage.lead) else None,
        number=number if approved else None,
        quote=quote,
        contract_amount=quote.total if approved and quote else None,
        parts=parts,
        schedule=schedule,
        checklist=checklist,
        completion=completion,
        invoice=invoice,
        evidence_verified_at=reached[Stage.verified] if at >= ORDER.index(Stage.verified) else None,
        payments=payments,
        cancel_reason="Customer went elsewhere" if stage is Stage.canceled else None,
        reminders=reminders,
    )


def rows_of(state: JobState, updated_at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `jobs` row (core/projection_store.job_row, with the next reminder the workflow would
    wait for) and a few timeline rows of one job."""
    from core.projection_store import job_row
    from models import reminders

    due = reminders.pending(state, CommunicationSettings())
    row = job_row(state, state.seq, updated_at, due[0].at if due else None)
    assert state.created_at is not None
    events = [
        {
            "job_slug": state.slug,
            "seq": 1,
            "type": "job_created",
            "actor": "olga",
            "actor_role": "office",
            "at": state.created_at,
            "summary": f"Job created: {state.title}",
            "payload": {"type": "job_created", "title": state.title},
            "request_id": None,
        },
        {
            "job_slug": state.slug,
            "seq": 2,
            "type": "note_added",
            "actor": "olga",
            "actor_role": "office",
            "at": state.created_at + timedelta(minutes=5),
            "summary": "Note: customer prefers mornings",
            "payload": {"type": "note_added", "text": "customer prefers mornings"},
            "request_id": None,
        },
    ]
    return row, events


async def write_states(db: Database, states: Iterable[tuple[JobState, datetime]]) -> None:
    """Insert these jobs' projection rows (fresh jobs: plain inserts, in batches)."""
    from core.db import insert
    from models.tables import Job, JobEvent

    batch: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    async def flush() -> None:
        if not batch:
            return
        jobs = [row for row, _ in batch]
        events = [e for _, evs in batch for e in evs]

        async def write(session: Any) -> None:
            connection = await session.connection()  # Core inserts, as projection_store's
            await connection.execute(insert(db.dialect, Job).values(jobs))
            await connection.execute(insert(db.dialect, JobEvent).values(events))

        await db.run(write)
        batch.clear()

    for state, updated_at in states:
        batch.append(rows_of(state, updated_at))
        if len(batch) >= 200:
            await flush()
    await flush()


async def seed(db: Database, jobs: int, *, rng_seed: int = 9) -> list[str]:
    """--jobs jobs over 2,000 clients; the slugs, in order."""
    from sqlalchemy import insert as sa_insert

    from api.jobs.service import new_slug
    from models.tables import Client

    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    clients = max(1, min(2000, jobs // 5))
    names = [f"Client {i:04d} {rng.choice(('Ltd', 'LLC', 'Inc', 'Co'))}" for i in range(clients)]

    async def add_clients(session: Any) -> None:
        connection = await session.connection()  # Core inserts, as write_states'
        for start in range(0, clients, 500):
            await connection.execute(
                sa_insert(Client),
                [
                    {"name": name, "email": f"c{start + i}@example.com", "address": "12 Main St"}
                    for i, name in enumerate(names[start : start + 500])
                ],
            )

    await db.run(add_clients)
    stages, weights = zip(*STAGE_WEIGHTS.items(), strict=True)
    slugs: list[str] = []
    number = 1000

    def states() -> Iterable[tuple[JobState, datetime]]:
        nonlocal number
        for i in range(jobs):
            stage = rng.choices(stages, weights)[0]
            client_id = rng.randrange(clients) + 1
            snapshot = ClientSnapshot(id=client_id, name=names[client_id - 1])
            approved = ORDER.index(stage) >= ORDER.index(Stage.approved)
            if approved and stage is not Stage.canceled:
                number += 1
            owner = None if stage is Stage.lead and rng.random() < 0.3 else rng.choice(OWNERS)
            slug = new_slug() + f"{i:x}"
            slugs.append(slug)
            state = job_state(
                slug,
                snapshot,
                stage,
                now,
                rng,
                number=number,
                stuck=stage not in (Stage.closed, Stage.canceled) and rng.random() < 0.06,
                stale_quote=stage is Stage.quote_sent and rng.random() < 0.15,
                parts_overdue=stage is Stage.awaiting_parts and rng.random() < 0.25,
                owner=owner,
                technician=rng.choice(TECHNICIANS),
                title=rng.choice(TITLES),
                paid=stage is Stage.invoiced and rng.random() < 0.3,
            )
            assert state.stage_entered_at is not None
            yield state, state.stage_entered_at + timedelta(minutes=rng.randint(0, 600))

    await write_states(db, states())
    return slugs


# --- timing ----------------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


async def timed(requests: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    """Wall time per call, and this process's CPU time per call (the app and, for SQLite, the
    database: what the call costs, apart from waiting for a loaded machine's cores)."""
    await call()  # warm: templates compiled, connections open
    samples, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    figures = summary(samples)
    cpu_figures = summary(cpu)
    figures["cpu_p50_ms"], figures["cpu_p95_ms"] = cpu_figures["p50_ms"], cpu_figures["p95_ms"]
    return figures


@contextlib.asynccontextmanager
async def database(backend: str, work_dir: Path) -> AsyncIterator[Database]:
    import asyncpg

    from core.migrate import upgrade

    dropped = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{work_dir / 'pages.db'}"
    else:
        dropped = f"jobline_bench_pages_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{dropped}"')
        finally:
            await admin.close()
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        url = f"{base}/{dropped}"
    db = Database(url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()
        if dropped:
            admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')
            finally:
                await admin.close()


async def add_people(db: Database) -> None:
    from api.users.service import create_user, set_password

    async with db.session() as session:
        for username, role in PEOPLE.items():
            user = await create_user(session, username, role, f"{username}@bench.test")
            if username == OFFICE:
                await set_password(session, user, PASSWORD)


async def sign_in(client: Any) -> None:
    form = await client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    answer = await client.post(
        "/signin", data={"login": OFFICE, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])


def _free_port() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextlib.asynccontextmanager
async def over_uvicorn(app: Any) -> AsyncIterator[str]:
    import uvicorn

    listener = _free_port()
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def measure_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text
    from temporalio.client import Client as TemporalClient
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app
    from api.users.service import add_token, find_user
    from core.config import Settings

    figures: dict[str, Any] = {"backend": backend, "jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="jobline-bench-pages-") as tmp:
        async with database(backend, Path(tmp)) as db:
            await add_people(db)
            started = time.perf_counter()
            slugs = await seed(db, args.jobs)
            figures["seed_s"] = round(time.perf_counter() - started, 1)
            if backend == "postgresql":
                # Fresh statistics, as autovacuum would have them for an office's table.
                async with db.session() as session:
                    await (await session.connection()).execute(text("ANALYZE jobs"))
            async with db.session() as session:
                office = await find_user(session, OFFICE)
                assert office is not None
                token = await add_token(session, office)
            # Page reads never reach Temporal: a lazy client that never connects.
            temporal = await TemporalClient.connect(
                "127.0.0.1:9", lazy=True, data_converter=pydantic_data_converter
            )
            app = create_app(Settings(environment="test"), db=db, temporal=temporal)
            # A job with a number and a stage in the middle of the pipeline, for the job page.
            slug = await _a_job_in(db, "scheduled") or slugs[len(slugs) // 2]
            pages = {
                "board /jobs": "/jobs",
                "board's refresh /jobs/board.fragment": "/jobs/board.fragment",
                "list ?view=list&stage=quote_sent": "/jobs?view=list&stage=quote_sent",
                "job page /jobs/{slug}": f"/jobs/{slug}",
                "baseline JSON /api/v1/jobs?page_size=50": "/api/v1/jobs?page_size=50",
            }
            bearer = {"Authorization": f"Bearer {token}"}
            async with app.router.lifespan_context(app):
                for where in ("asgi", "uvicorn"):
                    async with contextlib.AsyncExitStack() as stack:
                        if where == "asgi":
                            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                            base = "http://jobline.test"
                            client = await stack.enter_async_context(
                                httpx.AsyncClient(transport=transport, base_url=base)
                            )
                        else:
                            base = await stack.enter_async_context(over_uvicorn(app))
                            client = await stack.enter_async_context(
                                httpx.AsyncClient(base_url=base)
                            )
                        await sign_in(client)
                        for name, path in pages.items():
                            headers = bearer if path.startswith("/api/") else {}
                            probe = await client.get(path, headers=headers)
                            if probe.status_code != 200:
                                built = "not built" if probe.status_code == 404 else "failed"
                                figures[f"{where} {name}"] = {
                                    "status": probe.status_code,
                                    "note": built,
                                }
                                continue

                            async def get(
                                path: str = path, headers: Any = headers, client: Any = client
                            ) -> None:
                                answer = await client.get(path, headers=headers)
                                assert answer.status_code == 200, answer.status_code

                            figures[f"{where} {name}"] = await timed(args.requests, get)

                async def bare_count() -> None:
                    async with db.session() as session:
                        await session.scalar(text("SELECT count(*) FROM jobs"))

                figures["baseline SQL count(*) jobs"] = await timed(args.requests, bare_count)
    return figures


async def _a_job_in(db: Database, stage: str) -> str | None:
    from sqlalchemy import text

    async with db.session() as session:
        return await session.scalar(
            text("SELECT slug FROM jobs WHERE stage = :stage ORDER BY slug LIMIT 1"),
            {"stage": stage},
        )


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        f"Page timings: server time per GET, goal p95 < {GOAL_P95_MS:g} ms",
        f"{'backend':<11} {'page':<52} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'cpu p50':>8} {'cpu p95':>8}  goal",
    ]
    for figures in results:
        lines.append(
            f"{figures['backend']}: {figures['jobs']:,} jobs, seeded in {figures['seed_s']} s"
        )
        for name, s in figures.items():
            if not isinstance(s, dict):
                continue
            if "note" in s:
                lines.append(f"{figures['backend']:<11} {name:<52} {s['note']} ({s['status']})")
                continue
            goal = ""
            if name.startswith("asgi ") and "baseline" not in name:
                goal = "met" if s["p95_ms"] < GOAL_P95_MS else "MISSED"
            lines.append(
                f"{figures['backend']:<11} {name:<52} {s['n']:>4} {s['p50_ms']:>8} "
                f"{s['p95_ms']:>8} {s['max_ms']:>8} "
                f"{s['cpu_p50_ms']:>8} {s['cpu_p95_ms']:>8}  {goal}"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs seeded (default 10000)")
    parser.add_argument("--requests", type=int, default=40, help="GETs per page (default 40)")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_JOBS} jobs, {QUICK_REQUESTS} GETs per page (a smoke run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.requests = min(args.jobs, QUICK_JOBS), min(args.requests, QUICK_REQUESTS)
    return args


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [await measure_backend(backend, args) for backend in args.backends]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(measure(args))
    print(report(results), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
