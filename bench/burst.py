"""A burst of new jobs, then recovery and the idle cost of the open jobs it left.

    .venv/bin/python bench/burst.py [--jobs 1000] [--concurrency 8] [--database-url URL]

As a new office loads a season's backlog on the embedded default (issue 13):

1. Starts the embedded stack (`jobline dev --no-demo`) in a fresh temporary data dir.
2. Burst: --jobs `POST /api/v1/jobs` under one client, all left in `lead`, from --concurrency
   clients at once; every answer's status and time is kept (nothing is retried).
3. Events: a `note_added` on --probe of the new jobs, each timed; they must answer 200.
4. Recovery: samples the worker's and Temporal's CPU every second for --observe-s from the end of
   the burst (every job's deferred settle falls in this window) and reports when the worker went
   under --idle-below % of a core for good. With --settled-by S, the watch ends sooner: once S s
   have passed (every settle due by then) and the worker has been quiet for --quiet-s.
5. Idle cost: the CPU (% of one core) and RSS of worker and Temporal over --idle-s, with every
   burst job open and idle; and the timers some of those jobs hold (from their histories).
6. Logs: counts the tracebacks and ERROR lines in each process's log.

Prints a table and, with --json, writes the figures; `--keep-data` keeps the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

    from bench.events import Stack

PROBES = 20


def _events_module() -> Any:
    """bench.events, with the repository on sys.path (run as a script, only bench/ is)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    import bench.events

    return bench.events


# --- process figures ----------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of a process and its children (the worker's PDF pool, say)."""
    events = _events_module()
    return float(events._cpu_s(events._tree(process, True)))


def rss_mib(process: psutil.Process) -> float:
    events = _events_module()
    return float(events._rss(events._tree(process, True))) / (1024 * 1024)


def cpu_percent_over(processes: dict[str, psutil.Process], seconds: float) -> dict[str, float]:
    """Each process's CPU over the next `seconds`, in % of one core."""
    before = {name: cpu_seconds(p) for name, p in processes.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: 100 * (cpu_seconds(p) - before[name]) / elapsed for name, p in processes.items()}


LOG_MARKERS = ("Traceback", " ERROR ", "database is locked", "QueuePool limit")


def log_problems(stack: Stack) -> dict[str, dict[str, int]]:
    """For each process's log (and `jobline dev`'s own), how many lines carry each marker of
    trouble."""
    found: dict[str, dict[str, int]] = {}
    for path in [stack.root / "dev.log", *sorted(stack.data_dir.glob("*.log"))]:
        counts = dict.fromkeys(LOG_MARKERS, 0)
        with path.open(errors="replace") as log:
            for line in log:
                for marker in LOG_MARKERS:
                    if marker in line:
                        counts[marker] += 1
        found[path.stem] = counts
    return found


# --- the phases ---------------------------------------------------------------------------------


async def burst(stack: Stack, jobs: int, concurrency: int) -> dict[str, Any]:
    import httpx

    events = _events_module()
    office = {"Authorization": f"Bearer {stack.tokens['office']}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: collections.Counter[int] = collections.Counter()
    retry_after: list[str] = []
    create_s: list[float] = []
    slugs: list[str] = []
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as http:
        (client_id,) = await events.bench_clients(http, office, count=1)

        async def create(index: int) -> None:
            started = time.perf_counter()
            try:
                response = await http.post(
                    "/api/v1/jobs", json=events.job_body(client_id, index), headers=office
                )
            except httpx.HTTPError as error:
                statuses[0] += 1
                failures.append(f"{type(error).__name__}: {error}")
                return
            create_s.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
            if response.status_code == 201:
                slugs.append(response.json()["slug"])
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")
                if "retry-after" in response.headers:
                    retry_after.append(response.headers["retry-after"])

        wall_s = await events.run_pool(jobs, concurrency, create)
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "retry_after": sorted(set(retry_after)),
        "first_failures": failures[:5],
        "create": events.summary_ms(create_s),
        "wall_s": wall_s,
        "creates_per_s": len(slugs) / wall_s if wall_s else 0.0,
        "slugs": slugs,
    }


async def probe_events(stack: Stack, slugs: list[str], count: int) -> dict[str, Any]:
    """A note on some of the new jobs, spread over the burst: each must answer 200."""
    import httpx

    events = _events_module()
    office = {"Authorization": f"Bearer {stack.tokens['office']}"}
    step = max(len(slugs) // max(count, 1), 1)
    chosen = slugs[::step][:count]
    statuses: collections.Counter[int] = collections.Counter()
    took: list[float] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
        for slug in chosen:
            started = time.perf_counter()
            response = await http.post(
                f"/api/v1/jobs/{slug}/events",
                json={"type": "note_added", "text": "called back after the burst"},
                headers=office,
            )
            took.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
    return {
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "event": events.summary_ms(took),
    }


async def open_timers(stack: Stack, slugs: list[str], count: int) -> dict[str, Any]:
    """The timers each of `count` jobs holds now (started, neither fired nor canceled), from
    their histories: an idle job should hold only the ones it needs."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    client = await Client.connect(stack.temporal_address)
    per_job: list[list[float]] = []
    for slug in slugs[:: max(len(slugs) // max(count, 1), 1)][:count]:
        started: dict[int, float] = {}
        async for event in client.get_workflow_handle(f"job-{slug}").fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                timeout = event.timer_started_event_attributes.start_to_fire_timeout
                started[event.event_id] = timeout.ToTimedelta().total_seconds()
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                started.pop(event.timer_fired_event_attributes.started_event_id, None)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                started.pop(event.timer_canceled_event_attributes.started_event_id, None)
        per_job.append(sorted(started.values()))
    return {
        "jobs": len(per_job),
        "timers_per_job": sorted({len(timers) for timers in per_job}),
        "hours": sorted({round(s / 3600, 1) for timers in per_job for s in timers}),
    }


def recovery(
    processes: dict[str, psutil.Process],
    below_percent: float,
    quiet_s: float,
    observe_s: float,
    settled_by_s: float | None = None,
) -> dict[str, Any]:
    """Samples the CPU every second for `observe_s` (long enough to see the jobs' deferred
    settles): the worker recovered when it went under `below_percent` for good, that is at the
    end of its last busy second, provided the quiet that followed lasted `quiet_s` or more.
    Given `settled_by_s` (when every settle is due), stops once past it and quiet that long."""
    started = time.monotonic()
    trace: list[dict[str, float]] = []
    last_busy = 0.0
    at = 0.0
    while at < observe_s:
        sample = cpu_percent_over(processes, 1.0)
        at = time.monotonic() - started
        trace.append({"at_s": round(at, 1), **{k: round(v, 1) for k, v in sample.items()}})
        if sample["worker"] >= below_percent:
            last_busy = at
        if settled_by_s is not None and at >= settled_by_s and at - last_busy >= quiet_s:
            break
    return {
        "idle_after_s": round(last_busy, 1),
        "recovered": at - last_busy >= quiet_s,
        "trace": trace,
    }


def idle_cost(processes: dict[str, psutil.Process], seconds: float) -> dict[str, Any]:
    cpu = cpu_percent_over(processes, seconds)
    return {
        "seconds": seconds,
        "cpu_percent": {k: round(v, 2) for k, v in cpu.items()},
        "rss_mib": {name: round(rss_mib(p), 1) for name, p in processes.items()},
    }


# --- report -------------------------------------------------------------------------------------


def report(f: dict[str, Any]) -> str:
    b, e, r, i = f["burst"], f["events"], f["recovery"], f["idle"]
    c = b["create"]
    lines = [
        f"Burst on {f['database']}: {b['jobs']} creates from {b['concurrency']} clients "
        f"in {b['wall_s']:.1f} s ({b['creates_per_s']:.1f} jobs/s)",
        f"  statuses        {b['statuses']}" + (f"  Retry-After {b['retry_after']}"),
        f"  create          p50 {c['p50_ms']:.0f}  p90 {c['p90_ms']:.0f}  p99 {c['p99_ms']:.0f}"
        f"  max {c['max_ms']:.0f} ms",
        f"Events after the burst: {e['statuses']}  p50 {e['event']['p50_ms']:.0f}  "
        f"max {e['event']['max_ms']:.0f} ms",
    ]
    if r["recovered"]:
        lines.append(
            f"Recovery: worker under {f['idle_below']:g}% of a core for good from "
            f"{r['idle_after_s']:.0f} s after the burst (watched {r['trace'][-1]['at_s']:g} s)"
        )
    else:
        lines.append(
            f"Recovery: NOT back under {f['idle_below']:g}% for {f['quiet_s']} s "
            f"within {f['observe_s']:g} s"
        )
    peak = {
        name: max(s[name] for s in r["trace"]) if r["trace"] else 0.0
        for name in ("worker", "temporal", "api")
    }
    lines.append(
        "  peak CPU after the burst (% of a core): "
        + "  ".join(f"{k} {v:.0f}" for k, v in peak.items())
    )
    lines.append(
        f"Idle cost with {f['open_jobs']} open jobs over {i['seconds']:g} s: "
        + "  ".join(
            f"{name} {i['cpu_percent'][name]:.2f}% CPU, {i['rss_mib'][name]:.0f} MiB"
            for name in ("worker", "temporal", "api")
        )
    )
    t = f["open_timers"]
    lines.append(
        f"Open timers of {t['jobs']} idle jobs: {t['timers_per_job']} each, due in {t['hours']} h"
    )
    lines.append("Log lines of trouble (Traceback / ERROR / database is locked / QueuePool):")
    for name, counts in f["logs"].items():
        lines.append(f"  {name:<10} " + "  ".join(str(counts[m]) for m in LOG_MARKERS))
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Jobline: a burst of new jobs, then recovery")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs to create (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--probe", type=int, default=PROBES, help="events after the burst")
    parser.add_argument(
        "--idle-below", type=float, default=5.0, help="worker %% of a core that counts as idle"
    )
    parser.add_argument("--quiet-s", type=int, default=10, help="idle this long to count")
    parser.add_argument(
        "--observe-s", type=float, default=90, help="CPU watched this long after the burst"
    )
    parser.add_argument(
        "--settled-by",
        type=float,
        help="every deferred settle is due this long after the burst: stop watching once past it "
        "and quiet for --quiet-s (default: watch all of --observe-s)",
    )
    parser.add_argument("--idle-s", type=float, default=60, help="idle-cost window (default 60)")
    _events_module().add_stack_options(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1 or args.probe < 0:
        parser.error("--jobs and --concurrency must be positive")
    return args


def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    processes = {name: stack.processes[name] for name in ("worker", "temporal", "api")}
    print(f"Burst: {args.jobs} jobs from {args.concurrency} clients ...", flush=True)
    created = asyncio.run(burst(stack, args.jobs, args.concurrency))
    slugs = created.pop("slugs")
    print(f"  {created['statuses']} in {created['wall_s']:.1f} s; probing events ...", flush=True)
    probed = asyncio.run(probe_events(stack, slugs, args.probe))
    print("Waiting for the worker to go idle ...", flush=True)
    recovered = recovery(processes, args.idle_below, args.quiet_s, args.observe_s, args.settled_by)
    print(f"Idle cost over {args.idle_s:g} s ...", flush=True)
    idle = idle_cost(processes, args.idle_s)
    timers = asyncio.run(open_timers(stack, slugs, args.probe))
    return {
        "database": "PostgreSQL" if args.database_url else "SQLite (embedded)",
        "burst": created,
        "events": probed,
        "recovery": recovered,
        "idle": idle,
        "open_timers": timers,
        "open_jobs": len(slugs),
        "idle_below": args.idle_below,
        "quiet_s": args.quiet_s,
        "observe_s": args.observe_s,
        "logs": log_problems(stack),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    events = _events_module()
    return int(
        events.run_on_stack(
            args,
            lambda stack: measure(args, stack),
            report,
            prefix="jobline-bench-burst-",
            users={"office": "olga"},
        )
    )


if __name__ == "__main__":
    sys.exit(main())
