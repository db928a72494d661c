"""Closeout latency on the embedded stack, and PDF receipts per second against bare WeasyPrint.

    .venv/bin/python bench/closeout.py [--jobs 100] [--concurrency 8] [--receipts 24]
        [--poll-ms 20] [--json out.json] [--quick]

1. Starts the embedded stack (`jobline dev --no-demo`, with `bench.events.Stack`) on free ports in
   a fresh temporary data dir, with an office, a sales, a manager and a technician user and an
   admin, who saves the closeout settings: email channel, three receipt fields (a required serial
   number, a refrigerant dropdown, a customer-present checkbox).
2. Setup, untimed: creates --jobs jobs and drives each to `on_site` through the HTTP API with the
   first nine events of `bench.events.lifecycle_events` (owner_assigned ... tech_checked_in),
   --concurrency jobs at a time. Then waits --settle seconds (by default the job workflow's
   SETTLE_QUIET + SETTLE_SPREAD and 5 s more, from the last setup event) so that the worker's
   settles are over before the timed phase starts.
3. Closeout phase, timed, --concurrency jobs at a time: `POST /api/v1/jobs/{slug}/events` with
   `job_completed` (parts used, receipt fields; its 2xx latency is timed), then
   `GET /api/v1/outbox?job_slug=..&purpose=closeout` every --poll-ms until the closeout email is
   listed with its receipt attached. "2xx -> closeout email" runs from the arrival of the 2xx to
   the arrival of the poll response that lists the email, so it includes up to one poll interval
   (and one GET) more than the worker took. The RSS and CPU time of the worker, the API and the
   Temporal server (each with its children: the worker's PDF processes) are sampled every 100 ms.
   Afterwards, untimed: the first job's receipt downloads as a PDF, and the database's own
   timestamps split each job's time into receipt stored, portal synced, email queued and seen.
4. Stops the stack, then measures receipts per second in this process, on the quiet machine: one
   work receipt's HTML from `activities.documents.document_html` (a completed job with parts and
   receipt fields, default branding), rendered --receipts times by bare WeasyPrint
   (`HTML(string=html).write_pdf()`, one after another, after one warm-up render) and by Jobline's
   `PdfRenderer` (a fresh process pool, warmed with `warm()`, all at once with asyncio.gather as a
   burst of completions would, then one at a time). Both render the same HTML string.
5. Prints a table and a line for each goal (p99 of 2xx -> closeout email under 2 s; the pool's
   receipts per second at least 0.8x bare WeasyPrint), writes the figures as JSON with --json and
   exits 0 whether or not the goals are met: this is a measurement, not a test. Stops everything it
   started, also on an error, Ctrl-C or SIGTERM.

Nothing may run at import time: the PDF pool starts its processes with `spawn`, which re-imports
this file (as `__mp_main__`) in each of them. Bytecode is cached under the temporary dir for the
stack (as bench/events.py does; --no-pycache keeps PYTHONDONTWRITEBYTECODE as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.events import Stack

ADMIN = "ada"
QUICK_JOBS = 10
QUICK_RECEIPTS = 6
GOAL_P99_MS = 2000.0
GOAL_RECEIPTS_RATIO = 0.8
WAIT_FOR_CLOSEOUT_S = 120
RECEIPT_FIELDS: list[dict[str, Any]] = [
    {"key": "serial_number", "label": "Unit serial number", "type": "text", "required": True},
    {
        "key": "refrigerant",
        "label": "Refrigerant",
        "type": "dropdown",
        "required": False,
        "options": ["R-410A", "R-22", "R-32"],
    },
    {"key": "customer_present", "label": "Customer present", "type": "checkbox"},
]


def _events_module() -> Any:
    """bench.events, with the repository on sys.path (run as a script, only bench/ is)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    import bench.events

    return bench.events


# --- the workload -------------------------------------------------------------------------------


def on_site_events() -> list[tuple[str, dict[str, Any]]]:
    """(role, event body) from a fresh lead to the technician on site: bench/events.py's first 9."""
    events = _events_module().lifecycle_events(datetime.now(UTC))
    types = [event["type"] for _, event in events]
    return events[: types.index("tech_checked_in") + 1]


def completion_body(index: int) -> dict[str, Any]:
    """The technician's `job_completed`: bench/events.py's, with parts used and receipt fields."""
    events = _events_module().lifecycle_events(datetime.now(UTC))
    [completed] = [event for _, event in events if event["type"] == "job_completed"]
    return {
        **completed,
        "notes": "Filter due for change in spring; coil cleaned.",
        "parts_used": [{"sku": "R410A", "quantity": "4"}],
        "fields": {
            "serial_number": f"SN-{index:05d}-RTU",
            "refrigerant": "R-410A",
            "customer_present": True,
        },
    }


def receipt_html() -> str:
    """One work receipt as the worker renders it for a job of the closeout phase."""
    from activities.documents import document_html
    from models.branding import BrandingSettings
    from models.communications import CommunicationSettings
    from models.documents import RenderDocument
    from models.lifecycle import JobState

    events = _events_module()
    now = datetime.now(UTC)
    bodies = {event["type"]: event for _, event in events.lifecycle_events(now)}
    job = events.job_body(1, 1)
    completed = completion_body(1)
    lines = bodies["quote_drafted"]["lines"]
    total = sum(Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in lines)
    state = JobState.model_validate(
        {
            "slug": "benchreceipt01",
            "client": {"id": 1, "name": "Bench client 0", "email": "bench0@example.com"},
            "stage": "completed",
            "seq": 11,
            "created_at": now,
            "stage_entered_at": now,
            "title": job["title"],
            "site_address": job["site_address"],
            "number": 1001,
            "owner": events.USERS["sales"],
            "quote": {"version": 1, "lines": lines, "total": total, "sent_at": now},
            "schedule": {
                "technician": events.USERS["technician"],
                "window_start": bodies["job_scheduled"]["window_start"],
                "window_end": bodies["job_scheduled"]["window_end"],
            },
            "completion": {
                "work_performed": completed["work_performed"],
                "notes": completed["notes"],
                "parts_used": completed["parts_used"],
                "fields": completed["fields"],
                "completed_by": events.USERS["technician"],
                "completed_at": now,
            },
        }
    )
    labels = {field["key"]: field["label"] for field in RECEIPT_FIELDS}
    request = RenderDocument(state=state, kind="work_receipt", field_labels=labels)
    return document_html(request, BrandingSettings(), CommunicationSettings(), at=now).html


# --- the closeout phase -------------------------------------------------------------------------


def _db_times(db_path: Path, slugs: list[str]) -> dict[str, dict[str, float]]:
    """{slug: {step: unix time}} from the rows' own created_at (UTC, written by the worker)."""

    def unix(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    queries = {
        "receipt_stored": "SELECT job_slug, MIN(created_at) FROM documents "
        "WHERE kind = 'work_receipt' GROUP BY job_slug",
        "portal_synced": "SELECT job_slug, MIN(created_at) FROM portal_snapshots GROUP BY job_slug",
        "email_queued": "SELECT job_slug, MIN(created_at) FROM outbox_messages "
        "WHERE purpose = 'closeout' AND channel = 'email' GROUP BY job_slug",
    }
    wanted = set(slugs)
    times: dict[str, dict[str, float]] = {slug: {} for slug in slugs}
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        for step, query in queries.items():
            for slug, created in db.execute(query):
                if slug in wanted and created:
                    times[slug][step] = unix(created)
    finally:
        db.close()
    return times


def breakdown(
    arrived: dict[str, float], seen: dict[str, float], db: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Each step's share of 2xx -> seen, from the jobs whose every step has a timestamp."""
    steps = ["receipt_stored", "portal_synced", "email_queued"]
    labels = [
        "2xx -> receipt PDF stored",
        "receipt stored -> portal synced",
        "portal synced -> email queued",
        "email queued -> seen by a poll",
    ]
    spans: dict[str, list[float]] = {label: [] for label in labels}
    for slug, at in arrived.items():
        marks = db.get(slug, {})
        if slug not in seen or any(step not in marks for step in steps):
            continue
        points = [at, *(marks[step] for step in steps), seen[slug]]
        for label, (start, end) in zip(labels, itertools.pairwise(points), strict=True):
            spans[label].append(end - start)
    summary_ms = _events_module().summary_ms
    return {label: summary_ms(values) for label, values in spans.items() if values}


async def configure(stack: Stack) -> None:
    import httpx

    expect = _events_module().expect
    settings = {"channel": "email", "receipt_fields": RECEIPT_FIELDS, "portal_link_days": 30}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        response = await http.put(
            "/api/v1/settings/closeout",
            json=settings,
            headers={"Authorization": f"Bearer {stack.tokens['admin']}"},
        )
        expect(response, "PUT /api/v1/settings/closeout")


async def closeout_phase(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    import httpx
    import psutil

    events = _events_module()
    expect, run_pool, summary_ms = events.expect, events.run_pool, events.summary_ms
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in stack.tokens.items()}
    steps = on_site_events()
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    slugs: list[str] = [""] * args.jobs
    post_s: list[float] = []
    to_email_s: list[float] = []
    polls: list[int] = []
    poll_get_s: list[float] = []
    seen_get_s: list[float] = []
    arrived_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    without_receipt: list[str] = []
    attachments: dict[str, dict[str, Any]] = {}
    poll_s = args.poll_ms / 1000

    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as http:
        client_ids = await events.bench_clients(http, headers["office"])

        async def to_on_site(index: int) -> None:
            response = await http.post(
                "/api/v1/jobs",
                json=events.job_body(client_ids[index % len(client_ids)], index),
                headers=headers["office"],
            )
            expect(response, "POST /api/v1/jobs")
            slug = response.json()["slug"]
            for role, event in steps:
                response = await http.post(
                    f"/api/v1/jobs/{slug}/events", json=event, headers=headers[role]
                )
                expect(response, f"{event['type']} on {slug}")
            if response.json()["stage"] != "on_site":
                raise AssertionError(f"job {slug} is {response.json()['stage']!r}, not on_site")
            slugs[index] = slug

        print(f"setup: {args.jobs} jobs to on_site, concurrency {args.concurrency} ...", flush=True)
        setup_s = await run_pool(args.jobs, args.concurrency, to_on_site)
        if args.settle > 0:
            print(f"waiting {args.settle:.0f} s for the jobs to settle ...", flush=True)
            await asyncio.sleep(args.settle)

        async def close_out(index: int) -> None:
            slug = slugs[index]
            body = completion_body(index)
            started = time.perf_counter()
            response = await http.post(
                f"/api/v1/jobs/{slug}/events", json=body, headers=headers["technician"]
            )
            arrived = time.perf_counter()
            arrived_at[slug] = time.time()
            expect(response, f"job_completed on {slug}")
            post_s.append(arrived - started)
            if response.json()["stage"] != "completed":
                raise AssertionError(f"job {slug} is {response.json()['stage']!r}, not completed")
            count = 0
            while True:
                asked = time.perf_counter()
                page = await http.get(
                    "/api/v1/outbox",
                    params={"job_slug": slug, "purpose": "closeout"},
                    headers=headers["office"],
                )
                now = time.perf_counter()
                poll_get_s.append(now - asked)
                count += 1
                expect(page, f"GET /api/v1/outbox for {slug}")
                email = next((m for m in page.json()["items"] if m["channel"] == "email"), None)
                if email is not None:
                    break
                if now - arrived > WAIT_FOR_CLOSEOUT_S:
                    raise AssertionError(
                        f"no closeout email for job {slug} within {WAIT_FOR_CLOSEOUT_S} s"
                    )
                await asyncio.sleep(poll_s)
            seen_at[slug] = time.time()
            seen_get_s.append(now - asked)
            polls.append(count)
            if email["attachments"]:
                to_email_s.append(now - arrived)
                attachments[slug] = email["attachments"][0]
            else:
                without_receipt.append(slug)

        print(
            f"closeout phase: {args.jobs} jobs, concurrency {args.concurrency}, polling every "
            f"{args.poll_ms:g} ms ...",
            flush=True,
        )
        bench = "bench (HTTP client)"
        processes = {**stack.processes, bench: psutil.Process()}
        with events.Sampler(processes, alone=frozenset({bench})) as sampler:
            wall_s = await run_pool(args.jobs, args.concurrency, close_out)

        # Untimed: the first job's receipt is a PDF anyone in the office can download.
        receipt_check: dict[str, Any] = {}
        first = attachments.get(slugs[0])
        if first is not None:
            response = await http.get(
                f"/api/v1/documents/{first['document_id']}", headers=headers["office"]
            )
            expect(response, f"GET /api/v1/documents/{first['document_id']}")
            content_type = response.headers.get("content-type", "")
            if content_type != "application/pdf" or not response.content.startswith(b"%PDF"):
                raise AssertionError(
                    f"the receipt of job {slugs[0]} is not a PDF: {content_type!r}, "
                    f"{response.content[:20]!r}"
                )
            receipt_check = {
                "job_slug": slugs[0],
                "document_id": first["document_id"],
                "filename": first["filename"],
                "bytes": len(response.content),
            }

    # The split by the rows' own timestamps reads the embedded SQLite file; on another database
    # the table has the end-to-end rows only.
    times = {} if args.database_url else _db_times(stack.data_dir / "jobline.db", slugs)
    return {
        "to_email": summary_ms(to_email_s),
        "post_2xx": summary_ms(post_s),
        "poll_get": summary_ms(poll_get_s),
        "seen_poll_get": summary_ms(seen_get_s),
        "breakdown": breakdown(arrived_at, seen_at, times),
        "wall_s": wall_s,
        "closeouts_per_s": args.jobs / wall_s,
        "polls_per_job_mean": sum(polls) / len(polls) if polls else 0.0,
        "without_receipt": without_receipt,
        "receipt_check": receipt_check,
        "setup_s": setup_s,
        "resources": sampler.figures(),
        "machine_cpu": sampler.machine,
    }


# --- receipts per second ------------------------------------------------------------------------


def bare_weasyprint(html: str, count: int) -> dict[str, Any]:
    """Bare WeasyPrint, one after another in this process, after one warm-up render."""
    from weasyprint import HTML

    started = time.perf_counter()
    first = HTML(string=html).write_pdf()
    warm_s = time.perf_counter() - started
    assert first is not None
    pdfs = []
    started = time.perf_counter()
    for _ in range(count):
        pdfs.append(HTML(string=html).write_pdf())
    elapsed = time.perf_counter() - started
    if not all(pdf is not None and pdf.startswith(b"%PDF") for pdf in pdfs):
        raise AssertionError("bare WeasyPrint rendered something that is not a PDF")
    return {
        "warmup_s": warm_s,
        "elapsed_s": elapsed,
        "per_s": count / elapsed,
        "ms_each": 1000 * elapsed / count,
        "pdf_bytes": len(first),
    }


async def jobline_pool(html: str, count: int) -> dict[str, Any]:
    """Jobline's renderer: a fresh process pool, warmed; a burst with gather, then one at a time."""
    from activities.pdf import PdfRenderer

    renderer = PdfRenderer()
    try:
        started = time.perf_counter()
        await renderer.warm()
        warm_s = time.perf_counter() - started

        started = time.perf_counter()
        pdfs = await asyncio.gather(*(renderer.render(html) for _ in range(count)))
        burst_s = time.perf_counter() - started

        started = time.perf_counter()
        for _ in range(count):
            pdfs.append(await renderer.render(html))
        sequential_s = time.perf_counter() - started
    finally:
        renderer.close()
    if not all(pdf.startswith(b"%PDF") for pdf in pdfs):
        raise AssertionError("Jobline's renderer rendered something that is not a PDF")
    return {
        "workers": renderer.workers,
        "warm_s": warm_s,
        "burst_s": burst_s,
        "per_s": count / burst_s,
        "sequential_s": sequential_s,
        "sequential_per_s": count / sequential_s,
        "pdf_bytes": len(pdfs[0]),
    }


def receipts_phase(count: int) -> dict[str, Any]:
    html = receipt_html()
    print(f"receipts: {count} renders each, bare WeasyPrint then Jobline's pool ...", flush=True)
    bare = bare_weasyprint(html, count)
    pool = asyncio.run(jobline_pool(html, count))
    return {
        "count": count,
        "html_chars": len(html),
        "bare": bare,
        "pool": pool,
        "ratio": pool["per_s"] / bare["per_s"],
        "ratio_sequential": pool["sequential_per_s"] / bare["per_s"],
    }


# --- report -------------------------------------------------------------------------------------


def figures(
    args: argparse.Namespace, closeout: dict[str, Any], receipts: dict[str, Any]
) -> dict[str, Any]:
    p99 = closeout["to_email"]["p99_ms"]
    complete = closeout["to_email"]["n"] == args.jobs
    return {
        "config": {
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "database": args.database_url.split(":", 1)[0] if args.database_url else "sqlite",
            "poll_ms": args.poll_ms,
            "settle_s": args.settle,
            "receipts": args.receipts,
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": os.getloadavg()[0],
            "bytecode_cache": not args.no_pycache,
            "python": sys.version.split()[0],
        },
        "closeout": closeout,
        "receipts": receipts,
        "goals": {
            "closeout_p99_ms": {
                "goal_below": GOAL_P99_MS,
                "value": p99,
                "met": complete and p99 < GOAL_P99_MS,
            },
            "receipts_ratio": {
                "goal_at_least": GOAL_RECEIPTS_RATIO,
                "value": receipts["ratio"],
                "met": receipts["ratio"] >= GOAL_RECEIPTS_RATIO,
            },
        },
        "peak_rss_mib": {
            name: closeout["resources"][name]["peak_rss_mib"]
            for name in ("worker", "api", "temporal")
        },
    }


def _met(goal: dict[str, Any]) -> str:
    return "MET" if goal["met"] else "NOT MET"


def report(f: dict[str, Any]) -> str:
    c, co, r, goals = f["config"], f["closeout"], f["receipts"], f["goals"]
    row = "{:<46} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}"

    def stats(label: str, s: dict[str, float]) -> str:
        return row.format(
            label,
            s["n"],
            *(f"{s[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")),
        )

    e, p = co["to_email"], co["post_2xx"]
    lines = [
        f"Jobline closeout benchmark: {c['jobs']} jobs, concurrency {c['concurrency']}, outbox "
        f"polled every {c['poll_ms']:g} ms, {c['settle_s']:.0f} s settle before the timed phase",
        f"machine: {c['cpus']} CPUs, load average {c['load_average_1m_at_end']:.2f} (1 min, at "
        f"the end), Python {c['python']}, bytecode cache {'on' if c['bytecode_cache'] else 'off'}, "
        f"database {c['database']}",
        "",
        row.format("latency", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"),
        stats("2xx -> closeout email with receipt (polled)", e),
        stats("POST job_completed (until its 2xx)", p),
        stats("GET /outbox (every poll)", co["poll_get"]),
        stats("GET /outbox (the poll that saw the email)", co["seen_poll_get"]),
    ]
    if co["breakdown"]:
        lines.append(
            "  the first, split by the rows' own created_at (negative: before the 2xx arrived):"
        )
        lines += [stats(f"  {label}", s) for label, s in co["breakdown"].items()]
    lines += [
        "",
        f"closeout: job_completed 2xx -> closeout email with receipt in outbox: "
        f"p50 {e['p50_ms']:.0f} p90 {e['p90_ms']:.0f} p99 {e['p99_ms']:.0f} "
        f"max {e['max_ms']:.0f} ms (goal p99 < {GOAL_P99_MS:.0f} ms: "
        f"{_met(goals['closeout_p99_ms'])})",
        f"job_completed 2xx latency: p50 {p['p50_ms']:.0f} p99 {p['p99_ms']:.0f} ms",
        f"throughput: {co['closeouts_per_s']:.2f} closeouts/s ({co['wall_s']:.2f} s wall), "
        f"{co['polls_per_job_mean']:.1f} outbox polls a job; setup {co['setup_s']:.1f} s",
    ]
    if co["without_receipt"]:
        lines.append(
            f"closeout emails WITHOUT a receipt: {len(co['without_receipt'])} "
            f"(e.g. job {co['without_receipt'][0]}); left out of the latency above"
        )
    if co["receipt_check"]:
        rc = co["receipt_check"]
        lines.append(
            f"receipt check: job {rc['job_slug']}'s {rc['filename']} downloads as a PDF "
            f"({rc['bytes']} bytes)"
        )
    bare, pool = r["bare"], r["pool"]
    lines += [
        "",
        f"receipts/s: Jobline pool {pool['per_s']:.2f} / bare WeasyPrint {bare['per_s']:.2f} = "
        f"{r['ratio']:.2f}x (goal >= {GOAL_RECEIPTS_RATIO}x: {_met(goals['receipts_ratio'])})",
        f"  {r['count']} renders of the same {r['html_chars']}-character receipt HTML on "
        f"{c['cpus']} CPUs; bare: one after another, {bare['ms_each']:.0f} ms each "
        f"({bare['pdf_bytes']} bytes); pool: {pool['workers']} processes (warmed in "
        f"{pool['warm_s']:.2f} s), all at once with asyncio.gather ({pool['pdf_bytes']} bytes)",
        f"  pool one at a time: {pool['sequential_per_s']:.2f}/s "
        f"= {r['ratio_sequential']:.2f}x bare",
        "",
        "peak RSS MiB (closeout phase, each with its children): "
        + ", ".join(f"{name} {mib:.1f}" for name, mib in f["peak_rss_mib"].items()),
        "",
        "{:<40} {:>13} {:>14} {:>8} {:>11}".format(
            "process (closeout phase)", "peak RSS MiB", "start RSS MiB", "CPU s", "CPU ms/job"
        ),
    ]
    for name, res in co["resources"].items():
        lines.append(
            "{:<40} {:>13.1f} {:>14.1f} {:>8.2f} {:>11.1f}".format(
                name,
                res["peak_rss_mib"],
                res["start_rss_mib"],
                res["cpu_s"],
                1000 * res["cpu_s"] / c["jobs"],
            )
        )
    m = co["machine_cpu"]
    lines += [
        "",
        f"closeout phase machine CPU: {m['busy_cpu_s']:.1f} of {m['capacity_cpu_s']:.1f} CPU-s "
        f"busy; these processes {m['ours_cpu_s']:.1f}, others {m['others_cpu_s']:.1f}",
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Jobline closeout latency and PDF receipts per second"
    )
    parser.add_argument("--jobs", type=int, help="jobs to close out (default 100)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in flight (default 8)")
    parser.add_argument(
        "--receipts", type=int, help="renders per renderer for receipts/s (default 24)"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=20.0, help="outbox poll interval (default 20)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        help="seconds to wait after setup (default: the job workflow's settle delay + 5 s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_JOBS} jobs, {QUICK_RECEIPTS} receipts, no settle wait",
    )
    _events_module().add_stack_options(parser)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else 100
    if args.receipts is None:
        args.receipts = QUICK_RECEIPTS if args.quick else 24
    if args.settle is None:
        if args.quick:
            args.settle = 0.0
        else:
            from workflows.job import SETTLE_QUIET, SETTLE_SPREAD

            args.settle = (SETTLE_QUIET + SETTLE_SPREAD).total_seconds() + 5
    if args.jobs < 1 or args.concurrency < 1 or args.receipts < 1:
        parser.error("--jobs, --concurrency and --receipts must be positive")
    if args.poll_ms <= 0 or args.settle < 0:
        parser.error("--poll-ms must be positive, --settle not negative")
    return args


async def measure_closeout(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    await configure(stack)
    return await closeout_phase(args, stack)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    events = _events_module()

    def measure(stack: Any) -> dict[str, Any]:
        closeout = asyncio.run(measure_closeout(args, stack))
        print("Stopping the stack before the receipts/s phase ...", flush=True)
        stack.stop()
        return figures(args, closeout, receipts_phase(args.receipts))

    return int(
        events.run_on_stack(
            args,
            measure,
            report,
            prefix="jobline-bench-closeout-",
            users={**events.USERS, "admin": ADMIN},
        )
    )


if __name__ == "__main__":
    sys.exit(main())
