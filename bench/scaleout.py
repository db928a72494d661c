"""Scale-out: one worker and one API against two of each, on one PostgreSQL and one Temporal server.

    .venv/bin/python bench/scaleout.py [--jobs 120] [--concurrency 16] [--warmup 2]
        [--json out.json] [--quick] [--keep-data]

Issue 12, item 5: "two workers and two API processes against one PostgreSQL and one Temporal dev
server give the same results with more throughput; measure it and say how close it gets to 2x".

1. A fresh PostgreSQL database (at JOBLINE_BENCH_POSTGRES_ADMIN, as bench/scale.py makes one;
   dropped at the end), one Temporal dev server on a free port (headless, its SQLite file in a
   temporary dir, the dynamic config and search attributes of `jobline dev`), `jobline migrate`
   once, and bench/events.py's four users (`jobline user add ... --no-password`).
2. Configuration A: `jobline worker` and `jobline api` on a task queue of their own. Warm-up
   lifecycles (unmeasured, --warmup per API), then --jobs lifecycles from lead to closed through
   the HTTP API, --concurrency at a time, exactly as bench/events.py's API phase drives them:
   `POST /api/v1/jobs`, then the 13 events, each timed.
3. Once the last answer is in, waits until the database is still (every job's stage, timeline
   and outbox unchanged for a few seconds: the projection and the messages are written by
   activities after the answers), records each job's stage, timeline length and outbox messages
   (purpose x channel), and stops A's processes.
4. Configuration B: two workers and two APIs on a fresh task queue, on the same server and
   database, the jobs spread round-robin over the two APIs; the same workload and checks.
5. Same results: PASS when every job of A and B ended `closed` with the same number of timeline
   events and the same outbox messages as A's jobs (none missing, no duplicate).
6. Prints lifecycles/s, events/s, event p50/p90/p99, the throughput ratio B/A, CPU seconds by
   process kind (each measured with its children: the workers' PDF processes, PostgreSQL's
   backends) and how busy the whole machine was: on a machine with few cores a saturated A
   leaves B no room to double. Stops every process it started, also on an error or Ctrl-C.

Exit code 1 when the same-results check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, only bench/ is on the path
    sys.path.insert(0, str(ROOT))

# bench/events.py imports nothing heavy at import time; neither does this file.
from bench.events import (  # noqa: E402
    HEALTHY_WITHIN_S,
    USERS,
    Phase,
    Sampler,
    Stack,
    StackFailed,
    bench_clients,
    drive_lifecycle,
    free_ports,
    lifecycle_events,
    run_pool,
    summary_ms,
)

if TYPE_CHECKING:
    import psutil

QUICK_JOBS = 8
CONFIGURATIONS = (("A", 1, 1), ("B", 2, 2))  # label, workers, APIs
BENCH = "bench (HTTP client)"
POSTGRES = "postgresql (all databases)"
# The database is still when nothing of the jobs' has changed for this long.
QUIET_S = 3.0
SETTLE_WITHIN_S = 180.0
STOP_WITHIN_S = 20.0
# Other work above this share of the machine during a configuration makes its figures suspect.
OTHERS_WARN = 0.10
WORKER_READY = b"worker polling task queue"
_STARTED = time.monotonic()


def progress(text: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {text}", flush=True)


class Configuration:
    """The processes of one configuration and what they did."""

    def __init__(self, label: str, workers: int, apis: int) -> None:
        self.label = label
        self.workers = workers
        self.apis = apis
        self.task_queue = f"scaleout-{label.lower()}-{secrets.token_hex(3)}"
        self.processes: dict[str, psutil.Process] = {}  # "worker 1", "api 2", ...
        self.children: list[str] = []  # their names in Cluster.children
        self.api_urls: list[str] = []
        self.slugs: list[str] = []

    @property
    def title(self) -> str:
        def many(n: int, what: str) -> str:
            return f"{n} {what}{'s' if n > 1 else ''}"

        return f"{self.label}: {many(self.workers, 'worker')} + {many(self.apis, 'API')}"


class Cluster(Stack):
    """One Temporal dev server, then workers and APIs started and stopped per configuration, each
    in a session of its own. bench/events.py's Stack gives the environment (this data dir and
    database only, the bytecode cache), the users and the log tails."""

    def __init__(self, root: Path, pycache: Path | None, database_url: str) -> None:
        super().__init__(root, pycache, USERS, database_url)
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def _env(self, task_queue: str = "jobline") -> dict[str, str]:
        env = super()._env()
        env["JOBLINE_TEMPORAL_ADDRESS"] = self.temporal_address
        env["JOBLINE_TASK_QUEUE"] = task_queue
        env["JOBLINE_ENVIRONMENT"] = "development"
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> psutil.Process:
        import psutil

        with open(self.data_dir / f"{name}.log", "ab") as log:
            # A session of its own: a Ctrl-C in the terminal reaches only this script, which
            # then stops each process in turn.
            child = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.children[name] = child
        process = psutil.Process(child.pid)
        self.known.append(process)
        return process

    def start(self) -> None:
        from core.binaries import venv_binary
        from core.dev_server import dynamic_config_flags
        from workflows.search_attributes import dev_server_flags

        self.data_dir.mkdir(parents=True)
        command = [
            venv_binary("temporal"),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--db-filename",
            str(self.root / "temporal.db"),
            # As `jobline dev` runs it.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--namespace",
            "default",
            "--log-level",
            "warn",
            *dev_server_flags(),
            *dynamic_config_flags(),
        ]
        self.processes["temporal"] = self._spawn("temporal", command, self._env())
        # While the server starts: the schema, then the users.
        self._jobline("migrate")
        self._add_users()
        asyncio.run(self._wait_for_temporal())

    async def _wait_for_temporal(self) -> None:
        from temporalio.client import Client

        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while True:
            if self.children["temporal"].poll() is not None:
                raise StackFailed("the Temporal dev server exited")
            try:
                client = await Client.connect(self.temporal_address)
                await client.service_client.check_health()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def start_configuration(self, config: Configuration) -> None:
        import httpx

        env = self._env(config.task_queue)
        python = [sys.executable, "-m", "cli.main"]
        for n in range(1, config.workers + 1):
            name = f"{config.label}-worker-{n}"
            config.processes[f"worker {n}"] = self._spawn(name, [*python, "worker"], env)
            config.children.append(name)
        for n, port in enumerate(free_ports(config.apis), start=1):
            name = f"{config.label}-api-{n}"
            command = [*python, "api", "--host", "127.0.0.1", "--port", str(port)]
            config.processes[f"api {n}"] = self._spawn(name, command, env)
            config.children.append(name)
            config.api_urls.append(f"http://127.0.0.1:{port}")
        waiting = set(config.children)
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while waiting:
            for name in sorted(waiting):
                if self.children[name].poll() is not None:
                    raise StackFailed(f"{name} exited with code {self.children[name].returncode}")
                if "worker" in name:
                    ready = WORKER_READY in (self.data_dir / f"{name}.log").read_bytes()
                else:
                    url = config.api_urls[int(name.rsplit("-", 1)[1]) - 1]
                    try:
                        ready = httpx.get(f"{url}/healthz", timeout=3).status_code == 200
                    except httpx.HTTPError:
                        ready = False
                if ready:
                    waiting.discard(name)
            if waiting and time.monotonic() > deadline:
                raise StackFailed(f"not ready within {HEALTHY_WITHIN_S} s: {sorted(waiting)}")
            time.sleep(0.25)

    def stop_children(self, names: list[str]) -> None:
        """SIGINT to each (the worker drains, uvicorn stops), then SIGKILL to what is left of
        their process groups."""
        live = [n for n in names if self.children[n].poll() is None]
        for name in live:
            self.children[name].send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_WITHIN_S
        for name in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.children[name].wait(timeout=max(deadline - time.monotonic(), 0.1))
        for name in names:
            child = self.children[name]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)  # its group: the PDF processes too
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)

    def stop(self) -> None:
        """Workers and APIs first (they talk to Temporal), the server last; then leftovers."""
        import psutil

        self.stop_children([name for name in self.children if name != "temporal"])
        if "temporal" in self.children:
            self.stop_children(["temporal"])
        leftovers = [p for p in self.known if p.is_running()]
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
        psutil.wait_procs(leftovers, timeout=10)


def postgres_cpu_s(server: psutil.Process) -> float:
    """CPU seconds of the PostgreSQL server and its backends, those that have exited too (their
    time moves to the server's `children_*`): Sampler's tree sum would lose them."""
    import psutil

    total = 0.0
    with contextlib.suppress(psutil.Error):
        times = server.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
        for backend in server.children():
            with contextlib.suppress(psutil.Error):
                times = backend.cpu_times()
                total += times.user + times.system
    return total


def postgres_server() -> psutil.Process | None:
    """The PostgreSQL server's main process (its children are the backends), if it is here."""
    import psutil

    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] in ("postgres", "postmaster"):
                parent = process.parent()
                if parent is None or parent.name() not in ("postgres", "postmaster"):
                    return process
    return None


# --- the workload -------------------------------------------------------------------------------


async def drive(
    cluster: Cluster, config: Configuration, jobs: int, concurrency: int, warmup: int
) -> Phase:
    """bench/events.py's API phase, with the jobs spread round-robin over the APIs."""
    import httpx
    import psutil

    headers = {role: {"Authorization": f"Bearer {t}"} for role, t in cluster.tokens.items()}
    events = lifecycle_events(datetime.now(UTC))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    phase = Phase(lifecycles=jobs)
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=120, limits=limits)
            )
            for url in config.api_urls
        ]
        client_ids = await bench_clients(https[0], headers["office"])

        async def lifecycle(index: int, into: Phase) -> None:
            http = https[index % len(https)]
            slug = await drive_lifecycle(http, headers, events, client_ids, index, into)
            config.slugs.append(slug)

        unmeasured = Phase()
        for index in range(warmup * len(https)):  # each API and worker warmed alike
            await lifecycle(-1 - index, unmeasured)
        processes = {"temporal": cluster.processes["temporal"], **config.processes}
        processes[BENCH] = psutil.Process()
        postgres = postgres_server()
        postgres_before = postgres_cpu_s(postgres) if postgres is not None else 0.0
        with Sampler(processes, alone=frozenset({BENCH})) as sampler:
            phase.wall_s = await run_pool(jobs, concurrency, lambda i: lifecycle(i, phase))
        postgres_used = postgres_cpu_s(postgres) - postgres_before if postgres is not None else 0.0
        phase.resources = sampler.figures()
        machine = dict(sampler.machine)
        machine["ours_cpu_s"] += postgres_used
        machine["others_cpu_s"] = max(machine["busy_cpu_s"] - machine["ours_cpu_s"], 0.0)
        phase.extra["machine"] = machine
        phase.extra["postgres_cpu_s"] = postgres_used
    return phase


# --- same results -------------------------------------------------------------------------------

Outcome = tuple[str, int, tuple[tuple[str, str, int], ...]]  # stage, events, outbox messages


async def outcomes(url: str, slugs: list[str]) -> dict[str, Outcome]:
    """Each job's stage, timeline length and outbox messages (purpose, channel, count)."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        stages = await connection.fetch("SELECT slug, stage FROM jobs WHERE slug = ANY($1)", slugs)
        timeline = await connection.fetch(
            "SELECT job_slug, count(*) AS n FROM job_events WHERE job_slug = ANY($1) "
            "GROUP BY job_slug",
            slugs,
        )
        outbox = await connection.fetch(
            "SELECT job_slug, purpose, channel, count(*) AS n FROM outbox_messages "
            "WHERE job_slug = ANY($1) GROUP BY job_slug, purpose, channel",
            slugs,
        )
    finally:
        await connection.close()
    stage_of = {r["slug"]: r["stage"] for r in stages}
    events_of = {r["job_slug"]: r["n"] for r in timeline}
    messages_of: dict[str, list[tuple[str, str, int]]] = {}
    for r in outbox:
        messages_of.setdefault(r["job_slug"], []).append((r["purpose"], r["channel"], r["n"]))
    return {
        slug: (
            stage_of.get(slug, "missing"),
            events_of.get(slug, 0),
            tuple(sorted(messages_of.get(slug, []))),
        )
        for slug in slugs
    }


async def settled(url: str, slugs: list[str]) -> tuple[dict[str, Outcome], float]:
    """The jobs' outcomes once nothing has changed for QUIET_S (or SETTLE_WITHIN_S passed)."""
    started = time.monotonic()
    last = await outcomes(url, slugs)
    still_since = time.monotonic()
    while time.monotonic() - still_since < QUIET_S:
        if time.monotonic() - started > SETTLE_WITHIN_S:
            break
        await asyncio.sleep(0.5)
        now = await outcomes(url, slugs)
        if now != last:
            last, still_since = now, time.monotonic()
    return last, time.monotonic() - started


def describe(outcome: Outcome) -> dict[str, Any]:
    stage, events, messages = outcome
    return {
        "stage": stage,
        "timeline_events": events,
        "outbox_messages": sum(n for _, _, n in messages),
        "outbox_by_purpose": {f"{purpose}/{channel}": n for purpose, channel, n in messages},
    }


def same_results(by_config: dict[str, dict[str, Outcome]]) -> dict[str, Any]:
    """PASS when every job of every configuration has the outcome most of A's jobs have, and
    that outcome is `closed`."""
    first = next(iter(by_config.values()))
    reference = Counter(first.values()).most_common(1)[0][0] if first else ("missing", 0, ())
    different = [
        {"configuration": label, "slug": slug, **describe(outcome)}
        for label, jobs in by_config.items()
        for slug, outcome in jobs.items()
        if outcome != reference
    ]
    return {
        "pass": reference[0] == "closed" and not different,
        "reference": describe(reference),
        "jobs_checked": {label: len(jobs) for label, jobs in by_config.items()},
        "different": len(different),
        "first_different": different[:5],
    }


# --- what a workflow cache miss costs ----------------------------------------------------------


async def replay_cost(address: str, slug: str, times: int = 5) -> dict[str, Any]:
    """A closed job's whole history and what replaying it takes in this process: what a worker
    does for a workflow's next task when the workflow is not in its cache (the first replay,
    which also loads the sandbox's modules, is left out)."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from core.temporal import workflow_id
    from workflows.job import JobWorkflow
    from workflows.runner import workflow_runner

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    started = time.perf_counter()
    history = await client.get_workflow_handle(workflow_id(slug)).fetch_history()
    fetch_s = time.perf_counter() - started
    replayer = Replayer(
        workflows=[JobWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)
    took = []
    for _ in range(times):
        started = time.perf_counter()
        await replayer.replay_workflow(history)
        took.append(time.perf_counter() - started)
    return {
        "history_events": len(history.events),
        "history_bytes": sum(event.ByteSize() for event in history.events),
        "fetch_ms": 1000 * fetch_s,
        "replay_ms": summary_ms(took),
    }


# --- figures and report -------------------------------------------------------------------------


def kind_of(name: str) -> str:
    return name.split(" ", 1)[0] if name.split(" ", 1)[0] in ("worker", "api") else name


def configuration_figures(config: Configuration, phase: Phase, settle_s: float) -> dict[str, Any]:
    cpu_by_kind: dict[str, float] = {}
    for name, r in phase.resources.items():
        kind = kind_of(name)
        cpu_by_kind[kind] = cpu_by_kind.get(kind, 0.0) + r["cpu_s"]
    cpu_by_kind[POSTGRES] = phase.extra["postgres_cpu_s"]
    machine = phase.extra["machine"]
    cpu_by_kind["all the above"] = machine["ours_cpu_s"]
    cpu_by_kind["others (not started here)"] = machine["others_cpu_s"]
    return {
        "workers": config.workers,
        "apis": config.apis,
        "task_queue": config.task_queue,
        "events": summary_ms(phase.event_s),
        "create": summary_ms(phase.create_s),
        "wall_s": phase.wall_s,
        "lifecycles_per_s": phase.lifecycles / phase.wall_s,
        "events_per_s": len(phase.event_s) / phase.wall_s,
        "cpu_s_by_kind": cpu_by_kind,
        "cpu_ms_per_lifecycle_by_kind": {
            kind: 1000 * s / phase.lifecycles for kind, s in cpu_by_kind.items()
        },
        "peak_rss_mib": {
            name: r["peak_rss_mib"] for name, r in phase.resources.items() if name != BENCH
        },
        "machine_cpu": machine,
        "machine_busy_fraction": machine["busy_cpu_s"] / machine["capacity_cpu_s"],
        "settle_s": settle_s,
    }


def report(f: dict[str, Any]) -> str:
    c, configs = f["config"], f["configurations"]
    a, b = configs["A"], configs["B"]
    lines = [
        f"Jobline scale-out: {c['jobs']} lifecycles x {c['events_per_job']} events per "
        f"configuration, concurrency {c['concurrency']} (the same offered load for both), "
        f"warm-up {c['warmup']} per API; one PostgreSQL database, one Temporal dev server",
        f"machine: {c['cpus']} CPUs, load average {c['load_average_1m_at_start']:.2f} at the "
        f"start and {c['load_average_1m_at_end']:.2f} at the end (1 min), Python {c['python']}",
        "",
        "{:<28} {:>12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>13}".format(
            "configuration",
            "lifecycles/s",
            "events/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "wall s",
            "machine busy",
        ),
    ]
    for g in configs.values():
        e = g["events"]
        lines.append(
            "{:<28} {:>12.2f} {:>9.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>12.0f}%".format(
                g["title"],
                g["lifecycles_per_s"],
                g["events_per_s"],
                e["p50_ms"],
                e["p90_ms"],
                e["p99_ms"],
                g["wall_s"],
                100 * g["machine_busy_fraction"],
            )
        )
    busy_a = a["machine_busy_fraction"]
    lines += [
        "",
        f"throughput B/A: {f['ratio']:.2f}x (2x would be perfect scaling)",
        f"A kept the machine {100 * busy_a:.0f}% busy ({a['machine_cpu']['busy_cpu_s']:.1f} of "
        f"{a['machine_cpu']['capacity_cpu_s']:.1f} CPU-s); at A's CPU cost per lifecycle, these "
        f"{c['cpus']} cores allow at most {f['cpu_ceiling_ratio']:.2f}x A's throughput. B used "
        f"{b['machine_cpu']['busy_cpu_s'] / b['wall_s']:.2f} of {c['cpus']} cores "
        f"({100 * b['machine_busy_fraction']:.0f}%).",
    ]
    for label, g in configs.items():
        m = g["machine_cpu"]
        if m["others_cpu_s"] > OTHERS_WARN * m["capacity_cpu_s"]:
            lines.append(
                f"WARNING: other work on this machine used {m['others_cpu_s']:.1f} of "
                f"{m['capacity_cpu_s']:.1f} CPU-s during {label}: its figures are not comparable."
            )
    lines += [
        "",
        "{:<28} {:>18} {:>18}".format("CPU s (ms per lifecycle)", a["title"], b["title"]),
    ]
    kinds = list(dict.fromkeys([*a["cpu_s_by_kind"], *b["cpu_s_by_kind"]]))
    for kind in kinds:
        cells = [
            f"{g['cpu_s_by_kind'].get(kind, 0.0):.1f} "
            f"({g['cpu_ms_per_lifecycle_by_kind'].get(kind, 0.0):.0f})"
            for g in (a, b)
        ]
        lines.append("{:<28} {:>18} {:>18}".format(kind, *cells))
    lines += [
        "",
        f"a workflow cache miss: the next task replays the whole history; a closed job's is "
        f"{f['cache_miss']['history_events']} events "
        f"({f['cache_miss']['history_bytes'] / 1024:.0f} KiB), fetched in "
        f"{f['cache_miss']['fetch_ms']:.0f} ms and replayed in "
        f"{f['cache_miss']['replay_ms']['p50_ms']:.0f} ms (median of "
        f"{f['cache_miss']['replay_ms']['n']}, in this process)",
        "",
        "peak RSS MiB (each with its children): "
        + "; ".join(
            f"{label} " + ", ".join(f"{name} {mib:.0f}" for name, mib in g["peak_rss_mib"].items())
            for label, g in configs.items()
        ),
        "",
    ]
    s = f["same_results"]
    ref = s["reference"]
    checked = ", ".join(f"{label} {n}" for label, n in s["jobs_checked"].items())
    if s["pass"]:
        lines.append(
            f"same results: PASS - every job ({checked}, warm-ups included) is {ref['stage']} "
            f"with {ref['timeline_events']} timeline events and {ref['outbox_messages']} outbox "
            f"messages ({', '.join(f'{k} {n}' for k, n in ref['outbox_by_purpose'].items())})"
        )
    else:
        lines.append(
            f"same results: FAIL - {s['different']} job(s) differ from the reference "
            f"({ref}) among {checked}:"
        )
        lines += [f"  {d}" for d in s["first_different"]]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]
    configs: dict[str, dict[str, Any]] = {}
    by_config: dict[str, dict[str, Outcome]] = {}
    for label, workers, apis in CONFIGURATIONS:
        config = Configuration(label, workers, apis)
        progress(f"{config.title}: starting on task queue {config.task_queue} ...")
        cluster.start_configuration(config)
        progress(f"{config.title}: {args.jobs} lifecycles, concurrency {args.concurrency} ...")
        phase = asyncio.run(drive(cluster, config, args.jobs, args.concurrency, args.warmup))
        progress(f"{config.title}: waiting for the database to be still ...")
        by_config[label], settle_s = asyncio.run(settled(cluster.database_url, config.slugs))
        # Stopped before the next configuration, which then has the machine to itself.
        progress(f"{config.title}: stopping its processes ...")
        cluster.stop_children(config.children)
        configs[label] = {"title": config.title, **configuration_figures(config, phase, settle_s)}
    progress("replaying one closed job's history (a workflow cache miss) ...")
    replay = asyncio.run(replay_cost(cluster.temporal_address, config.slugs[-1]))
    a, b = configs["A"], configs["B"]
    return {
        "config": {
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "events_per_job": len(lifecycle_events(datetime.now(UTC))),
            "database": "postgresql",
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": os.getloadavg()[0],
            "python": sys.version.split()[0],
        },
        "configurations": configs,
        "ratio": b["lifecycles_per_s"] / a["lifecycles_per_s"],
        # What the processes could reach with every core at A's CPU cost per lifecycle.
        "cpu_ceiling_ratio": a["machine_cpu"]["capacity_cpu_s"]
        / max(a["machine_cpu"]["ours_cpu_s"], 1e-9),
        "same_results": same_results(by_config),
        "cache_miss": replay,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Jobline scale-out: 1 worker + 1 API against 2 + 2 on one PostgreSQL and "
        "one Temporal dev server"
    )
    parser.add_argument("--jobs", type=int, help="lifecycles per configuration (default 120)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="lifecycles in flight (default 16)"
    )
    parser.add_argument(
        "--warmup", type=int, help="unmeasured lifecycles per API before each run (default 2)"
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS} jobs, 1 warm-up")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the temporary dir and the logs"
    )
    parser.add_argument(
        "--no-pycache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as it is (see bench/events.py)",
    )
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else 120
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.jobs < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--jobs and --concurrency must be positive, --warmup not negative")
    return args


async def _admin(statement: str) -> None:
    import asyncpg

    from bench.reports import POSTGRES_ADMIN_URL

    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # As bench/events.py's run_on_stack: Ctrl-C even when started with SIGINT ignored, and
    # SIGTERM handled as a Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    root = Path(tempfile.mkdtemp(prefix="scaleout-"))
    pycache = None
    if not args.no_pycache:
        pycache = root / "pycache"
        sys.pycache_prefix = str(pycache)
        sys.dont_write_bytecode = False
    name = f"jobline_bench_scaleout_{secrets.token_hex(4)}"
    made = False
    cluster: Cluster | None = None
    failed = False
    try:
        from bench.reports import POSTGRES_ADMIN_URL

        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        made = True
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        cluster = Cluster(root, pycache, f"{base}/{name}")
        progress(f"Starting Temporal (:{cluster.temporal_port}) on database {name}, in {root} ...")
        cluster.start()
        result = measure(args, cluster)
        print()
        print(report(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0 if result["same_results"]["pass"] else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr, flush=True)
        return 130
    except BaseException:
        failed = True
        raise
    finally:
        # A second Ctrl-C must not leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            print("Stopping every process started ...", file=sys.stderr, flush=True)
            cluster.stop()
            if failed:
                print(cluster.log_tails(), file=sys.stderr, flush=True)
        if made:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if args.keep_data or failed:
            print(f"data and logs kept in {root}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
