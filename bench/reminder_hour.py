"""An hour of appointment reminders on the time-skipping test server, and the worker's RSS.

    .venv/bin/python bench/reminder_hour.py [--jobs 2000] [--concurrency 8]
        [--cache-sizes 100 1000] [--step-minutes 5] [--lead-in-minutes 60] [--json OUT]

Issue 12: the worker's RSS with open jobs and after an hour of reminders, which the dev server
(bench/scale.py) can only simulate over a few real minutes. For each of --cache-sizes, from
scratch:

1. The time-skipping test server (`.venv/bin/temporal-test-server`, with Jobline's search
   attributes: tests/workflows/time_skipping.py's `time_skipping_env`) on a free port, and a
   migrated SQLite file with the office user and one client (`prepare_database`).
2. `jobline worker` as a process of its own, at that server and file, with
   JOBLINE_WORKER_WORKFLOW_CACHE set to the size: its RSS is the worker's alone, and is given
   with and without its PDF processes.
3. Communication settings: appointment reminders 24 h ahead (the default), no quiet hours, no
   stage limits.
4. --jobs open jobs, --concurrency at a time, driven by signals as integrations drive them
   (time_skipping.py's `Job`: the `job_created` start signal, then the `event` Signal, each
   waited for in the job row), spread as bench/scale.py's OPEN_SPREAD without its invoiced
   share: 4 in 9 leads with an owner, 3 quotes sent, 2 approved and scheduled. The scheduled
   jobs' windows start 24 h after the reminder hour's slices: the hour begins --lead-in-minutes
   after the server's clock when creation began (the locked clock runs at wall-clock pace, so
   no reminder falls due while jobs are created), and each scheduled job's reminder is due in
   its own slice of it, evenly.
5. The worker's RSS after creation. One skip to the hour's start (nothing is due before it),
   then the hour in --step-minutes steps. The test server holds its clock while a workflow or
   activity task is outstanding, so a step's skip returns once the worker has done that step's
   reminders (its wall time is printed); then the bench checks (waiting at most --settle-s) that
   the outbox holds the reminders of every job due by the server's clock, samples the worker's
   RSS and counts the reminders (the email and the SMS of each) and the timeline's
   `appointment_reminder` records.
6. Prints, per cache size: jobs and creation time, reminders due against queued in the hour,
   duplicates (more than one reminder record, or more than one row a channel, for a job), early
   ones (queued before their due time), how late each fired in the server's time, and the
   worker's RSS per step and at the end, and the failed workflow tasks in the worker's log;
   --json writes the figures. A step that does not end within --settle-s stops the run (exit
   status 1) with the figures so far.

Measured 2026-12-01 on this 2-core machine while other work ran (load 2.8 to 17), 2,000 open
jobs (889 leads, 666 quotes sent, 445 scheduled), 5-minute steps:

- JOBLINE_WORKER_WORKFLOW_CACHE=2500 (every job cached): created in 473 s (p50 1.7 s a job, 8
  at a time); the worker 139 MiB at start, 746 MiB alone after creation (~0.30 MiB a cached
  job), 998 MiB with its 3 PDF processes; over the hour 743-753 MiB alone, 751 at the end. All
  445 reminders due in the hour queued once (890 rows, email and SMS), 0 duplicates, 0 early,
  at most 0.2 s after due in the server's time; each step's 37 reminders took 3.3-5.1 s.
- JOBLINE_WORKER_WORKFLOW_CACHE=100, first run: stopped at minute 25 (148 of 148 reminders
  queued once, 195-214 MiB alone) when one job's replay failed with "[TMPRL1100]
  Nondeterminism error: Activity type of scheduled event 'project_job' does not match activity
  type of activity command 'deliver_message'": its quote_approved arrived in the workflow task
  that carried render_document's completion, and two local activities (the job number, the
  quote email's queueing) ran side by side past the task's end; replayed, their results came
  back together and the commands after them in another order. Fixed by running a job's local
  activities one at a time (workflows/local_activities.py, patch one-local-activity;
  tests/workflows/test_local_activities.py).
- JOBLINE_WORKER_WORKFLOW_CACHE=100 after the fix (load 1.6 at the start, 7.4 at the end):
  created in 485 s (p50 1.7 s a job); the worker 139 MiB at start, 195 MiB alone after
  creation, 198-214 MiB over the hour, 213 at the end (464 with its two PDF processes and the
  multiprocessing resource tracker, which had rendered within the last 120 s of wall time: the
  hour takes ~75 s of it). All 445 reminders due in the hour queued once (890 rows), 0
  duplicates, 0 early, at most 0.3 s after due; 0 failed workflow tasks in the worker's log;
  steps 5.3-7.0 s (every reminder a cache miss and a replay).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, only bench/ is on the path
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import psutil

    from tests.workflows.time_skipping import Job, Stack

# The appointment reminder's lead time (the setting's default) and the window's length.
LEAD = timedelta(hours=24)
WINDOW = timedelta(hours=3)
HOUR = timedelta(hours=1)
PURPOSE = "appointment_reminder"
# The worker processes started here, stopped however the run ends.
_WORKERS: list[subprocess.Popen[bytes]] = []


def plan(count: int) -> list[str]:
    """Each job's last event: bench/scale.py's OPEN_SPREAD without the invoiced (their payment
    reminders are days away and their lifecycle passes the closeout)."""
    from bench.scale import OPEN_SPREAD

    spread = [(last, weight) for last, weight in OPEN_SPREAD if last != "invoice_sent"]
    cycle = [last for last, weight in spread for _ in range(weight)]
    return [cycle[(i * 7) % len(cycle)] for i in range(count)]


# --- the worker process -------------------------------------------------------------------------


def start_worker(address: str, db_path: Path, task_queue: str, cache: int, log: Path) -> Any:
    env = {
        **os.environ,
        "JOBLINE_ENVIRONMENT": "test",
        "JOBLINE_TEMPORAL_ADDRESS": address,
        "JOBLINE_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "JOBLINE_DATA_DIR": str(db_path.parent),
        "JOBLINE_TASK_QUEUE": task_queue,
        "JOBLINE_EMAIL_BACKEND": "outbox",
        "JOBLINE_SMS_BACKEND": "outbox",
        "JOBLINE_WORKER_WORKFLOW_CACHE": str(cache),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _WORKERS.append(process)
    return process


def stop_workers() -> None:
    while _WORKERS:
        process = _WORKERS.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rss(process: psutil.Process) -> dict[str, Any]:
    """The worker's RSS alone and with its children (MiB: the PDF processes and
    multiprocessing's resource tracker), and how many PDF processes run."""
    from bench.burst import rss_mib
    from bench.scale import pdf_processes

    return {
        "alone_mib": round(process.memory_info().rss / 2**20, 1),
        "with_pdf_mib": round(rss_mib(process), 1),
        "pdf_processes": len(pdf_processes(process)),
    }


# --- creating the jobs --------------------------------------------------------------------------


async def drive(job: Job, last: str, window_start: datetime | None) -> None:
    from tests.workflows.time_skipping import OLGA

    if last == "owner_assigned":
        await job.create()
        await job.send(OLGA, "owner_assigned", owner="sam")
    elif last == "quote_sent":
        await job.quote_sent()
    else:
        assert window_start is not None
        await job.approved()
        await job.send(
            OLGA,
            "job_scheduled",
            technician="tess",
            window_start=window_start.isoformat(),
            window_end=(window_start + WINDOW).isoformat(),
        )


async def create_jobs(
    stack: Stack, count: int, concurrency: int, hour_start: datetime
) -> dict[str, Any]:
    from bench.events import run_pool, summary_ms
    from tests.workflows.time_skipping import Job

    lasts = plan(count)
    scheduled = [i for i, last in enumerate(lasts) if last == "job_scheduled"]
    # Each scheduled job's reminder in the middle of its own slice of the hour.
    due = {
        index: (hour_start + HOUR * (k + 0.5) / len(scheduled)).replace(microsecond=0)
        for k, index in enumerate(scheduled)
    }
    slugs: dict[int, str] = {}
    took: list[float] = []

    async def one(index: int) -> None:
        job = Job(stack)
        started = time.perf_counter()
        window = due[index] + LEAD if index in due else None
        await drive(job, lasts[index], window)
        took.append(time.perf_counter() - started)
        slugs[index] = job.slug
        if len(slugs) % 100 == 0:
            print(f"  {len(slugs)} open jobs", file=sys.stderr, flush=True)

    wall = await run_pool(count, concurrency, one)
    by_stop: dict[str, int] = {}
    for last in lasts:
        by_stop[last] = by_stop.get(last, 0) + 1
    return {
        "jobs": len(slugs),
        "wall_s": round(wall, 1),
        "per_job_ms": {k: round(v, 1) for k, v in summary_ms(took).items()},
        "stopped_after": by_stop,
        "due": {slugs[index]: at for index, at in due.items()},
    }


# --- counting the reminders ---------------------------------------------------------------------


async def reminders(stack: Stack) -> dict[str, Any]:
    """The outbox's appointment reminders and the timeline's records of them, by job."""
    from sqlalchemy import text

    async with stack.db.session() as session:
        rows = (
            await session.exec(
                text(
                    "SELECT job_slug, channel, count(*) FROM outbox_messages "
                    "WHERE purpose = :purpose GROUP BY job_slug, channel"
                ).bindparams(purpose=PURPOSE)
            )
        ).all()
        records = (
            await session.exec(
                text(
                    "SELECT job_slug, at, payload FROM job_events WHERE type = :purpose"
                ).bindparams(purpose=PURPOSE)
            )
        ).all()
    by_job: dict[str, dict[str, int]] = {}
    for slug, channel, n in rows:
        by_job.setdefault(slug, {})[channel] = n
    fired: dict[str, list[tuple[datetime, datetime]]] = {}
    for slug, at, payload in records:
        data = json.loads(payload) if isinstance(payload, str) else payload
        at = datetime.fromisoformat(at) if isinstance(at, str) else at
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        fired.setdefault(slug, []).append((at, datetime.fromisoformat(data["due_at"])))
    return {"by_job": by_job, "fired": fired}


def tally(found: dict[str, Any], due: dict[str, datetime], now: datetime) -> dict[str, Any]:
    by_job, fired = found["by_job"], found["fired"]
    due_now = {slug for slug, at in due.items() if at <= now}
    queued = set(by_job) | set(fired)
    late = [(at - due_at).total_seconds() for records in fired.values() for at, due_at in records]
    return {
        "due": len(due_now),
        "queued": len(queued & due_now),
        # A reminder for a job not yet due (or not scheduled at all).
        "early": len(queued - due_now),
        "rows": sum(sum(channels.values()) for channels in by_job.values()),
        "duplicates": sum(1 for records in fired.values() if len(records) > 1)
        + sum(1 for channels in by_job.values() if any(n > 1 for n in channels.values())),
        "late_max_s": round(max(late, default=0.0), 1),
    }


async def settle(stack: Stack, due: dict[str, datetime], settle_s: float) -> dict[str, Any]:
    """Waits until every job due by the server's clock has its reminder queued (both rows)."""
    started = time.monotonic()
    while True:
        now = await stack.now()
        found = await reminders(stack)
        counts = tally(found, due, now)
        complete = counts["queued"] == counts["due"] and all(
            len(found["by_job"].get(slug, {})) == 2 for slug, at in due.items() if at <= now
        )
        waited = time.monotonic() - started
        if complete or waited > settle_s:
            return {**counts, "settle_s": round(waited, 1), "settled": complete}
        await asyncio.sleep(0.5)


# --- one run ------------------------------------------------------------------------------------


async def skip_to(stack: Stack, at: datetime, limit: timedelta) -> float:
    """`Stack.skip_to` with a deadline of our own; returns the wall seconds it took.

    The test server holds the clock while a workflow or activity task is outstanding, so the call
    returns only once the worker has done everything that came due on the way: with dozens of
    reminders in a step, longer than `env.sleep`'s 30 s deadline."""
    from tests.workflows.time_skipping import sleep

    ahead = at - await stack.now()
    assert ahead > timedelta(0), f"{at} is already past"
    started = time.monotonic()
    await sleep(stack.env, ahead, deadline=limit)
    return time.monotonic() - started


async def run_one(args: argparse.Namespace, cache: int, workdir: Path) -> dict[str, Any]:
    import psutil

    from bench.events import free_ports
    from tests.workflows.time_skipping import Stack, comms, prepare_database, time_skipping_env

    db_path = workdir / f"jobline-{cache}.db"
    db, customer = await prepare_database(db_path)
    task_queue = f"reminder-hour-{uuid.uuid4().hex[:8]}"
    (port,) = free_ports(1)
    figures: dict[str, Any] = {"cache": cache}
    try:
        async with time_skipping_env(port=port) as env:
            stack = Stack(env=env, db=db, task_queue=task_queue, customer=customer)
            await stack.save_settings(comms(appointment_reminder_hours=int(LEAD / HOUR)))
            log = workdir / f"worker-{cache}.log"
            worker = start_worker(f"127.0.0.1:{port}", db_path, task_queue, cache, log)
            process = psutil.Process(worker.pid)
            await asyncio.sleep(3)  # imported, connected and polling
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-2000:]}"
            figures["rss_started"] = rss(process)

            began = await stack.now()
            hour_start = began + timedelta(minutes=args.lead_in_minutes)
            print(f"cache {cache}: creating {args.jobs} jobs ...", file=sys.stderr, flush=True)
            created = await create_jobs(stack, args.jobs, args.concurrency, hour_start)
            due: dict[str, datetime] = created.pop("due")
            figures["created"] = created
            figures["rss_created"] = rss(process)
            figures["clock_after_create_min"] = round((await stack.now() - began) / HOUR * 60, 1)
            before = tally(await reminders(stack), due, await stack.now())
            figures["before_hour"] = before

            limit = timedelta(seconds=args.settle_s)
            await skip_to(stack, hour_start, limit)
            steps: list[dict[str, Any]] = []
            step = timedelta(minutes=args.step_minutes)
            at = hour_start
            try:
                while at < hour_start + HOUR:
                    at = min(at + step, hour_start + HOUR)
                    skipped = await skip_to(stack, at, limit)
                    counts = await settle(stack, due, args.settle_s)
                    steps.append(
                        {
                            "minute": round((at - hour_start) / HOUR * 60),
                            "skip_s": round(skipped, 1),
                            **counts,
                            **rss(process),
                        }
                    )
                    print(f"  {steps[-1]}", file=sys.stderr, flush=True)
            except Exception as error:  # the steps so far still get their report
                figures["failed"] = f"{type(error).__name__}: {error}"[:300]
            figures["steps"] = steps
            figures["hour"] = {**(steps[-1] if steps else {}), "scheduled": len(due)}
            figures["worker_exit"] = worker.poll()
            figures["worker_log"] = log_problems(log)
    finally:
        stop_workers()
        await db.dispose()
    return figures


def log_problems(log: Path) -> dict[str, int]:
    """Failed workflow tasks in the worker's log (a task that fails again and again holds the
    test server's clock: the step's skip never ends), and tracebacks."""
    text = log.read_text(errors="replace")
    return {
        "failed_workflow_tasks": text.count("Failing workflow task"),
        "nondeterminism": text.count("Nondeterminism error"),
        "tracebacks": text.count("Traceback"),
    }


def load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "jobs": args.jobs,
        "load_start": load(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="reminder-hour-") as workdir:
        for cache in args.cache_sizes:
            figures["runs"].append(await run_one(args, cache, Path(workdir)))
            figures["load_end"] = load()
            # Each run's figures as soon as it is over: a later run may fail.
            print(report({**figures, "runs": figures["runs"][-1:]}), flush=True)
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2, default=str))
    return figures


def report(f: dict[str, Any]) -> str:
    lines = [
        f"An hour of appointment reminders on the time-skipping server, {f['jobs']:,} open jobs "
        f"(load {f['load_start']['load_1m']} at the start, {f['load_end']['load_1m']} at the end)"
    ]
    for run in f["runs"]:
        c, h = run["created"], run["hour"]
        lines += [
            "",
            f"JOBLINE_WORKER_WORKFLOW_CACHE={run['cache']}: {c['jobs']:,} jobs created in "
            f"{c['wall_s']} s ({c['stopped_after']}; p50 {c['per_job_ms']['p50_ms']} ms a job)",
            f"  worker RSS started {run['rss_started']['alone_mib']} MiB; after creation "
            f"{run['rss_created']['alone_mib']} MiB alone, {run['rss_created']['with_pdf_mib']} "
            f"with {run['rss_created']['pdf_processes']} PDF processes",
            f"  reminders: {h['scheduled']} scheduled, {h.get('due')} due in the hour, "
            f"{h.get('queued')} queued ({h.get('rows')} outbox rows), {h.get('duplicates')} "
            f"duplicates, {h.get('early')} early, latest {h.get('late_max_s')} s after due "
            f"(server time); before the hour: {run['before_hour']['queued']}",
            f"  worker log: {run['worker_log']}",
            f"  {'minute':>6} {'skip s':>7} {'due':>5} {'queued':>6} {'settle s':>8} "
            f"{'RSS MiB':>8} {'+PDF':>7} {'PDF':>4}",
        ]
        for s in run["steps"]:
            lines.append(
                f"  {s['minute']:>6} {s['skip_s']:>7} {s['due']:>5} {s['queued']:>6} "
                f"{s['settle_s']:>8} {s['alone_mib']:>8} {s['with_pdf_mib']:>7} "
                f"{s['pdf_processes']:>4}"
            )
        if "failed" in run:
            lines.append(f"  STOPPED after minute {h.get('minute', 0)}: {run['failed']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="open jobs")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--cache-sizes", type=int, nargs="+", default=[100, 1000], help="worker caches to try"
    )
    parser.add_argument("--step-minutes", type=float, default=5.0)
    parser.add_argument(
        "--lead-in-minutes",
        type=float,
        default=60.0,
        help="server minutes from the start of creation to the reminder hour (more than "
        "creation takes)",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=240.0,
        help="wall seconds a step may take (the skip, then the outbox to catch up)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1 or not 0 < args.step_minutes <= 60:
        parser.error("--jobs and --concurrency must be positive, --step-minutes in (0, 60]")
    if any(size < 0 for size in args.cache_sizes):
        parser.error("--cache-sizes must not be negative")
    return args


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop everything


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        figures = asyncio.run(measure(args))
    finally:
        stop_workers()
    return 1 if any("failed" in run for run in figures["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
