"""Jobline at a company's scale on PostgreSQL: closed jobs in bulk, open jobs with live workflows.

    .venv/bin/python bench/scale.py [--closed 90000] [--open 10000] [--concurrency 8]
        [--reminder-minutes 10] [--cache-sizes 1000 100] [--requests 50]
        [--database-url URL] [--json OUT]

Issue 12, item 3, composed from the other benchmarks (the reminder storm is bench/storm.py's):

1. A fresh PostgreSQL database (created at JOBLINE_BENCH_POSTGRES_ADMIN as bench/reports.py
   makes one and dropped at the end, or --database-url: an empty database you created), and the
   embedded stack on it (bench/events.py's `Stack`: `jobline dev --no-demo`, which migrates it).
2. --closed closed and canceled jobs IN BULK: bench/reports.py's COPY of the projection rows,
   timelines, stage visits, results and follow-ups, with their job numbers claimed in
   job_numbers and a real closed / canceled JobState (bench/pages.py's) as each row's state;
   then VACUUM ANALYZE, as autovacuum would leave a bulk load within minutes.
   This is the bulk the code path allows: a closed job's workflow has completed, so
   it has no running workflow and nothing in Temporal but a finished history (not written here:
   the dev server keeps closed histories only for its retention), and the rows are what its
   projection left behind.
3. --open open jobs through the real API, --concurrency at a time: `POST /api/v1/jobs`, then the
   events (bench/events.py's lifecycle) that leave them spread over the pipeline with live
   timers: 40 % leads with an owner, 30 % quotes sent (quote follow-ups), 20 % scheduled
   (appointment reminders), 10 % invoiced (payment reminders).
4. Simulated reminders: the dev server cannot skip time, so before step 3 the communication
   settings are set to remind 1 hour before an appointment, with no quiet hours, and each
   scheduled job's window starts 1 hour plus a slice of --reminder-minutes after its event:
   its reminder fires during the run. The worker's RSS is sampled after the open jobs are
   created and again after --reminder-minutes (an hour of a real office's reminders is fewer
   than this; the figure is the count of reminders actually queued).
5. Reads through the stack's API over HTTP (wall time on loopback): the job list unfiltered and
   by stage, milestone, owner, stuck, unresulted and q= (p50 / p99 over --requests GETs each);
   the board, the list view and two job pages, signed in as the office (p95, bench/pages.py's
   `timed`, --requests / 2 GETs each); each report for the year as the manager (p95, as many).
6. Sizes: Temporal's SQLite file and PostgreSQL's database, each divided by the jobs.
7. The worker's workflow cache (JOBLINE_WORKER_WORKFLOW_CACHE, the SDK's `max_cached_workflows`;
   default 100, the SDK's own 1000): `jobline dev`'s supervisor is paused (SIGSTOP) so it does not
   restart its worker, that worker is stopped, and for each of --cache-sizes a `jobline worker`
   is started with that setting and every open job gets a note through the API (so every open
   workflow passes through its cache); then its RSS, alone and with its PDF processes, and
   again at rest, once the PDF processes have stopped for want of work (after 120 s, the
   default JOBLINE_WORKER_PDF_IDLE_SECONDS). The supervisor is resumed at the end and starts
   its worker again.

Prints one table against the goals (list p99 < 50 ms, pages p95 < 100 ms, reports p95 < 500
ms, worker RSS < 300 MB at 10,000 open jobs); --json writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, only bench/ is on the path
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from bench.events import Stack

GOALS = {"list_p99_ms": 50.0, "page_p95_ms": 100.0, "report_p95_ms": 500.0, "rss_mib": 300.0}
# bench/events.py's people and an admin (only an admin changes the settings).
USERS = {"office": "olga", "sales": "sam", "manager": "mia", "technician": "tess", "admin": "ada"}
LIST_FILTERS: dict[str, dict[str, str]] = {
    "no filter": {},
    "stage=quote_sent": {"stage": "quote_sent"},
    "milestone=Approved": {"milestone": "Approved"},
    "owner=sam": {"owner": "sam"},
    "stuck=true": {"stuck": "true"},
    "unresulted=true": {"unresulted": "true"},
    "q=rooftop": {"q": "rooftop"},
    "q=client 042": {"q": "client 042"},
}
# Where each open job stops: the last event type it gets (None: a lead with an owner only).
OPEN_SPREAD = [
    ("owner_assigned", 4),  # leads
    ("quote_sent", 3),  # quote follow-ups
    ("job_scheduled", 2),  # appointment reminders
    ("invoice_sent", 1),  # payment reminders
]


# --- seeding ------------------------------------------------------------------------------------


async def seed_closed(url: str, jobs: int) -> dict[str, Any]:
    """bench/reports.py's bulk rows, closed and canceled only, and their job numbers."""
    import asyncpg

    from bench.pages import job_state
    from bench.reports import seed
    from models.lifecycle import ClientSnapshot, Stage

    now, rng = datetime.now(UTC), random.Random(12)

    started = time.perf_counter()
    rows = await seed(url, jobs, spread={Stage.closed: 85, Stage.canceled: 15}) if jobs else {}
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # The numbers the seeded jobs carry, claimed as allocate_job_number claims them, so the
        # open jobs' numbers follow on.
        await connection.execute(
            "INSERT INTO job_numbers (number, job_slug, assigned_at) "
            "SELECT number, slug, created_at FROM jobs WHERE number IS NOT NULL"
        )
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('job_numbers', 'number'), "
            "coalesce((SELECT max(number) FROM job_numbers), 1))"
        )
        # reports.py's rows carry an empty state (reports never read it); the job page renders
        # it, so each gets a real closed / canceled JobState (bench/pages.py's) under its slug.
        for stage in (Stage.closed, Stage.canceled):
            template = job_state(
                "SLUGXXXX", ClientSnapshot(id=1, name="Client 000"), stage, now, rng, number=1
            ).model_dump_json()
            await connection.execute(
                "UPDATE jobs SET state = replace($1, 'SLUGXXXX', slug)::json WHERE stage = $2",
                template,
                stage.value,
            )
        # The UPDATE above left a dead copy of every row, and nothing is marked all-visible
        # yet: autovacuum would see to both within minutes of a bulk load like this, and a
        # company's database has long had it done. Without it every count reads the table
        # (the list's exact total: 270 ms for 100,000 jobs, against 21 ms from an index).
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return {**rows, "seed_s": round(time.perf_counter() - started, 1)}


def open_plan(count: int) -> list[str]:
    """The last event type of each open job, spread as OPEN_SPREAD weighs them."""
    total = sum(w for _, w in OPEN_SPREAD)
    cycle = [last for last, weight in OPEN_SPREAD for _ in range(weight)]
    return [cycle[(i * 7) % total] for i in range(count)]


async def set_reminders_soon(http: Any, admin: dict[str, str]) -> dict[str, Any]:
    from bench.events import expect

    current = await http.get("/api/v1/settings/communications", headers=admin)
    expect(current, "GET communications")
    body = {**current.json(), "appointment_reminder_hours": 1, "quiet_hours": None}
    answer = await http.put("/api/v1/settings/communications", json=body, headers=admin)
    expect(answer, "PUT communications")
    return {"appointment_reminder_hours": 1, "quiet_hours": None}


async def create_open(
    stack: Stack, count: int, concurrency: int, reminder_minutes: float
) -> dict[str, Any]:
    import httpx

    from bench import events as ev

    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in stack.tokens.items()}
    plan = open_plan(count)
    slugs: dict[str, str] = {}
    took: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=300, limits=limits) as http:
        settings = await set_reminders_soon(http, headers["admin"])
        client_ids = await ev.bench_clients(http, headers["office"], count=8)

        async def one(index: int) -> None:
            t0 = time.perf_counter()
            body = ev.job_body(client_ids[index % len(client_ids)], index)
            answer = await http.post("/api/v1/jobs", json=body, headers=headers["office"])
            ev.expect(answer, "POST /api/v1/jobs")
            slug = answer.json()["slug"]
            for role, event in ev.lifecycle_events(datetime.now(UTC)):
                if event["type"] == "job_scheduled" and plan[index] == "job_scheduled":
                    # The reminder (1 h before the window) falls 0 to --reminder-minutes after
                    # this event, spread evenly over the jobs: always ahead, never past.
                    delay = 60 * reminder_minutes * index / max(count, 1)
                    window = datetime.now(UTC) + timedelta(hours=1, seconds=30 + delay)
                    event = {
                        **event,
                        "window_start": window.isoformat(),
                        "window_end": (window + timedelta(hours=2)).isoformat(),
                    }
                answer = await http.post(
                    f"/api/v1/jobs/{slug}/events", json=event, headers=headers[role]
                )
                ev.expect(answer, f"{event['type']} on {slug}")
                if event["type"] == plan[index]:
                    break
            slugs[slug] = plan[index]
            took.append(time.perf_counter() - t0)
            if len(slugs) % 100 == 0:
                print(f"  {len(slugs)} open jobs", file=sys.stderr, flush=True)

        wall = await ev.run_pool(count, concurrency, one)
    by_stop: dict[str, int] = {}
    for last in slugs.values():
        by_stop[last] = by_stop.get(last, 0) + 1
    return {
        "jobs": len(slugs),
        "wall_s": round(wall, 1),
        "per_job": ev.summary_ms(took),
        "stopped_after": by_stop,
        "settings": settings,
        # The scheduled ones first: their job page is the fullest an open job has.
        "slugs": sorted(slugs, key=lambda slug: slugs[slug] != "job_scheduled"),
    }


# --- reads --------------------------------------------------------------------------------------


def p50_p99(samples: list[float]) -> dict[str, float]:
    from bench.events import percentile

    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 1),
        "p99_ms": round(percentile(samples, 0.99), 1),
        "max_ms": round(max(samples), 1),
    }


async def reads(stack: Stack, db_url: str, open_slugs: list[str], requests: int) -> dict[str, Any]:
    import httpx

    from api.reports.schemas import REPORT_NAMES
    from api.users.service import find_user, set_password
    from bench import pages
    from core.db import Database

    db = Database(db_url)
    try:
        async with db.session() as session:
            office = await find_user(session, pages.OFFICE)
            assert office is not None, "the stack has no office user olga"
            await set_password(session, office, pages.PASSWORD)
        async with db.session() as session:
            from sqlalchemy import text

            closed_slug = await session.scalar(
                text("SELECT slug FROM jobs WHERE stage = 'closed' ORDER BY slug LIMIT 1")
            )
    finally:
        await db.dispose()
    office_h = {"Authorization": f"Bearer {stack.tokens['office']}"}
    manager_h = {"Authorization": f"Bearer {stack.tokens['manager']}"}
    out: dict[str, Any] = {"list": {}, "pages": {}, "reports": {}}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
        for label, params in LIST_FILTERS.items():
            warm = await http.get("/api/v1/jobs", params=params, headers=office_h)
            assert warm.status_code == 200, (label, warm.status_code, warm.text[:300])
            samples = []
            for _ in range(requests):
                t0 = time.perf_counter()
                answer = await http.get("/api/v1/jobs", params=params, headers=office_h)
                samples.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200
            out["list"][label] = {**p50_p99(samples), "total": warm.json()["total"]}
            print(f"  list {label}: {out['list'][label]}", file=sys.stderr, flush=True)
        for name in REPORT_NAMES:
            path = f"/api/v1/reports/{name}"

            async def get_report(path: str = path) -> None:
                answer = await http.get(path, headers=manager_h)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])

            out["reports"][name] = await pages.timed(max(10, requests // 2), get_report)
            print(f"  report {name}: {out['reports'][name]}", file=sys.stderr, flush=True)
    scheduled = next(iter(open_slugs), None)  # a scheduled one when there is one
    page_paths = {
        "board /jobs": "/jobs",
        "board.fragment": "/jobs/board.fragment",
        "list view stage=quote_sent": "/jobs?view=list&stage=quote_sent",
        "job page (open)": f"/jobs/{scheduled}" if scheduled else None,
        "job page (closed)": f"/jobs/{closed_slug}" if closed_slug else None,
    }
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as browser:
        await pages.sign_in(browser)
        for label, maybe in page_paths.items():
            if maybe is None:
                continue

            async def get_page(path: str = maybe) -> None:
                answer = await browser.get(path)
                assert answer.status_code == 200, (path, answer.status_code)

            out["pages"][label] = await pages.timed(max(10, requests // 2), get_page)
            print(f"  page {label}: {out['pages'][label]}", file=sys.stderr, flush=True)
    return out


# --- reminders, sizes, the cache ----------------------------------------------------------------


async def outbox_by_purpose(db_url: str) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch(
            "SELECT purpose, count(*) AS n FROM outbox_messages "
            "WHERE job_slug NOT LIKE 'b%' GROUP BY purpose ORDER BY purpose"
        )
    finally:
        await connection.close()
    return {r["purpose"]: r["n"] for r in rows}


async def sizes(stack: Stack, db_url: str, jobs: int) -> dict[str, Any]:
    import asyncpg

    temporal_files = [p for p in stack.data_dir.rglob("*") if p.is_file() and "temporal" in p.name]
    temporal_bytes = sum(p.stat().st_size for p in temporal_files if not p.name.endswith(".log"))
    connection = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        database_bytes = await connection.fetchval("SELECT pg_database_size(current_database())")
        tables = await connection.fetch(
            "SELECT relname, pg_total_relation_size(c.oid) AS bytes FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 6"
        )
    finally:
        await connection.close()
    return {
        "temporal_files": [str(p.relative_to(stack.data_dir)) for p in temporal_files],
        "temporal_bytes": temporal_bytes,
        "postgres_bytes": database_bytes,
        "largest_tables": {r["relname"]: r["bytes"] for r in tables},
        "jobs": jobs,
    }


def worker_rss(stack: Stack) -> float:
    from bench.burst import rss_mib

    return round(rss_mib(stack.processes["worker"]), 1)


async def touch(stack: Stack, slugs: list[str], concurrency: int) -> float:
    """A note on every open job: each workflow runs a task (and enters the cache)."""
    import httpx

    from bench import events as ev

    office = {"Authorization": f"Bearer {stack.tokens['office']}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=300, limits=limits) as http:

        async def one(index: int) -> None:
            answer = await http.post(
                f"/api/v1/jobs/{slugs[index]}/events",
                json={"type": "note_added", "text": "cache check"},
                headers=office,
            )
            ev.expect(answer, "note_added")

        return await ev.run_pool(len(slugs), concurrency, one)


def pdf_processes(worker: Any) -> list[Any]:
    """The worker's rendering processes (spawned pool workers; not the resource tracker)."""
    found = []
    for child in worker.children(recursive=True):
        with contextlib.suppress(Exception):  # gone meanwhile
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def cache_phase(
    stack: Stack, slugs: list[str], cache_sizes: list[int], concurrency: int
) -> dict[str, Any]:
    import psutil

    from bench.burst import rss_mib
    from core.config import Settings

    assert stack.dev is not None
    supervisor = psutil.Process(stack.dev.pid)
    theirs = stack.processes["worker"]
    environ, cwd = theirs.environ(), theirs.cwd()
    found: dict[str, Any] = {}
    supervisor.suspend()
    try:
        theirs.send_signal(signal.SIGTERM)
        # Its parent is paused, so it stays a zombie until resumed: wait for that, not its end.
        deadline = time.monotonic() + 60
        while theirs.is_running() and theirs.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the worker did not stop within 60 s"
            time.sleep(0.2)
        for size in cache_sizes:
            log = open(stack.root / f"worker-cache-{size}.log", "wb")  # noqa: SIM115
            ours = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker"],
                cwd=cwd,
                env={**environ, "JOBLINE_WORKER_WORKFLOW_CACHE": str(size)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                # Connected and polling (worker.run_worker logs it): on a loaded machine the
                # start takes longer than an event's 15 s answer allows.
                started_by = time.monotonic() + 120
                logged = stack.root / f"worker-cache-{size}.log"
                while b"worker polling task queue" not in logged.read_bytes():
                    assert ours.poll() is None, f"the worker exited: see {logged}"
                    assert time.monotonic() < started_by, f"the worker did not start: {logged}"
                    time.sleep(0.5)
                time.sleep(2)  # and its PDF processes warm
                process = psutil.Process(ours.pid)
                before = rss_mib(process)
                print(f"  cache {size}: touching {len(slugs)} jobs ...", file=sys.stderr)
                wall = asyncio.run(touch(stack, slugs, concurrency))
                time.sleep(3)
                found[str(size)] = {
                    "rss_idle_mib": round(before, 1),
                    "rss_after_touch_mib": round(rss_mib(process), 1),
                    # The worker process without its PDF processes (a fixed cost apart).
                    "rss_after_touch_alone_mib": round(process.memory_info().rss / 2**20, 1),
                    "touch_wall_s": round(wall, 1),
                }
                # At rest: the PDF processes stop after JOBLINE_WORKER_PDF_IDLE_SECONDS with
                # nothing to render (activities/pdf.py), and what stays is the worker alone.
                idle_from, idle = time.monotonic(), Settings().worker_pdf_idle_seconds
                while pdf_processes(process):
                    if time.monotonic() - idle_from > idle + 60:
                        break
                    time.sleep(1)
                # With multiprocessing's resource tracker, which stays (~15 MiB).
                found[str(size)]["rss_at_rest_mib"] = round(rss_mib(process), 1)
                found[str(size)]["pdf_processes_at_rest"] = len(pdf_processes(process))
                found[str(size)]["rest_wait_s"] = round(time.monotonic() - idle_from, 1)
                print(f"  cache {size}: {found[str(size)]}", file=sys.stderr, flush=True)
            finally:
                ours.send_signal(signal.SIGTERM)
                try:
                    ours.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    ours.kill()
                    ours.wait()
                log.close()
    finally:
        supervisor.resume()  # it sees its worker gone and starts it again
    return found


# --- the run ------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    url = stack.database_url
    figures: dict[str, Any] = {"closed": args.closed, "open": args.open}
    print(f"Seeding {args.closed:,} closed jobs in bulk ...", flush=True)
    figures["seeded"] = asyncio.run(seed_closed(url, args.closed))
    print(f"  {figures['seeded']}", flush=True)
    print(f"Creating {args.open:,} open jobs through the API ...", flush=True)
    created = asyncio.run(create_open(stack, args.open, args.concurrency, args.reminder_minutes))
    created_at = time.monotonic()  # the last reminder falls --reminder-minutes after this
    slugs = created.pop("slugs")
    figures["created"] = created
    figures["rss_open_mib"] = worker_rss(stack)
    figures["outbox_after_create"] = asyncio.run(outbox_by_purpose(url))
    print("Reads ...", flush=True)
    figures["reads"] = asyncio.run(reads(stack, url, slugs, args.requests))
    wait = max(0.0, args.reminder_minutes * 60 + 90 - (time.monotonic() - created_at))
    print(f"Waiting {wait:.0f} s for the appointment reminders ...", flush=True)
    time.sleep(wait)
    figures["rss_after_reminders_mib"] = worker_rss(stack)
    figures["outbox_after_reminders"] = asyncio.run(outbox_by_purpose(url))
    figures["sizes"] = asyncio.run(sizes(stack, url, args.closed + created["jobs"]))
    if args.cache_sizes:
        print("Workflow cache ...", flush=True)
        try:
            figures["cache"] = cache_phase(stack, slugs, args.cache_sizes, args.concurrency)
        except Exception as error:  # the figures so far still get their table
            figures["cache_error"] = f"{type(error).__name__}: {error}"
    return figures


def report(f: dict[str, Any]) -> str:
    c, r, s = f["created"], f["reads"], f["sizes"]
    jobs = s["jobs"]
    lines = [
        f"Scale on PostgreSQL: {f['closed']:,} closed/canceled jobs seeded in bulk "
        f"({f['seeded'].get('events', 0):,} events, {f['seeded']['seed_s']} s), "
        f"{c['jobs']:,} open jobs through the API ({c['wall_s']} s: {c['stopped_after']})",
        f"{'measure':<40} {'p50':>8} {'p95/p99':>8}  goal",
    ]
    for label, x in r["list"].items():
        ok = "met" if x["p99_ms"] < GOALS["list_p99_ms"] else "MISSED"
        lines.append(
            f"{'list ' + label + ' (' + str(x['total']) + ')':<40} {x['p50_ms']:>8} "
            f"{x['p99_ms']:>8}  p99<50 {ok}"
        )
    for label, x in r["pages"].items():
        ok = "met" if x["p95_ms"] < GOALS["page_p95_ms"] else "MISSED"
        lines.append(f"{'page ' + label:<40} {x['p50_ms']:>8} {x['p95_ms']:>8}  p95<100 {ok}")
    for label, x in r["reports"].items():
        ok = "met" if x["p95_ms"] < GOALS["report_p95_ms"] else "MISSED"
        lines.append(f"{'report ' + label:<40} {x['p50_ms']:>8} {x['p95_ms']:>8}  p95<500 {ok}")
    lines += [
        f"worker RSS, {c['jobs']:,} open jobs: {f['rss_open_mib']} MiB; after the reminder "
        f"window: {f['rss_after_reminders_mib']} MiB (goal < 300 MB at 10,000)",
        f"reminders queued for the open jobs: before {f['outbox_after_create']}, "
        f"after {f['outbox_after_reminders']}",
        f"Temporal files {s['temporal_bytes'] / 2**20:.1f} MiB "
        f"({s['temporal_bytes'] / max(c['jobs'], 1) / 1024:.1f} KiB per open job); "
        f"PostgreSQL {s['postgres_bytes'] / 2**20:.1f} MiB "
        f"({s['postgres_bytes'] / max(jobs, 1) / 1024:.1f} KiB per job)",
    ]
    for size, x in f.get("cache", {}).items():
        lines.append(
            f"worker with JOBLINE_WORKER_WORKFLOW_CACHE={size}: idle {x['rss_idle_mib']} MiB, "
            f"after a note on every open job {x['rss_after_touch_mib']} MiB with its PDF "
            f"processes, {x['rss_after_touch_alone_mib']} MiB alone ({x['touch_wall_s']} s); "
            f"at rest {x.get('rss_at_rest_mib')} MiB with {x.get('pdf_processes_at_rest')} PDF "
            f"processes left, {x.get('rest_wait_s')} s later"
        )
    if "cache_error" in f:
        lines.append(f"workflow cache phase failed: {f['cache_error']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--closed", type=int, default=90_000, help="closed jobs, bulk")
    parser.add_argument("--open", type=int, default=10_000, help="open jobs, through the API")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="GETs per list filter")
    parser.add_argument("--reminder-minutes", type=float, default=10.0)
    parser.add_argument(
        "--cache-sizes", type=int, nargs="*", default=[1000, 100], help="worker caches to try"
    )
    from bench.events import add_stack_options

    add_stack_options(parser)
    args = parser.parse_args(argv)
    if args.closed < 0 or args.open < 1 or args.concurrency < 1 or args.requests < 1:
        parser.error("--open, --concurrency and --requests must be positive, --closed not negative")
    if args.database_url and not re.match(r"postgresql(\+asyncpg)?://", args.database_url):
        parser.error("--database-url must be a PostgreSQL URL")
    return args


def main(argv: list[str] | None = None) -> int:
    import asyncpg

    from bench import events as ev
    from bench.reports import POSTGRES_ADMIN_URL

    args = parse_args(argv)
    made = None
    if not args.database_url:
        made = f"jobline_bench_scale_{secrets.token_hex(4)}"

        async def create() -> None:
            admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
            try:
                await admin.execute(f'CREATE DATABASE "{made}"')
            finally:
                await admin.close()

        asyncio.run(create())
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        args.database_url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{made}"
    elif args.database_url.startswith("postgresql://"):
        args.database_url = args.database_url.replace("postgresql://", "postgresql+asyncpg://")
    try:
        return ev.run_on_stack(
            args, lambda stack: measure(args, stack), report, prefix="scale-", users=USERS
        )
    finally:
        if made:

            async def drop() -> None:
                admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')
                finally:
                    await admin.close()

            asyncio.run(drop())


if __name__ == "__main__":
    sys.exit(main())
