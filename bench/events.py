"""Event latency: Jobline's HTTP API against raw Temporal updates on the same dev server.

    .venv/bin/python bench/events.py [--jobs 200] [--concurrency 8] [--json out.json] [--quick]

1. Starts the embedded stack (`jobline dev --no-demo`) on free ports in a fresh temporary data
   dir and adds an office, a sales, a manager and a technician user (`jobline user add`).
2. API phase: drives --jobs jobs from lead to closed through the HTTP API, --concurrency jobs at
   a time: `POST /api/v1/jobs`, then 13 `POST /api/v1/jobs/{slug}/events` (owner_assigned ...
   payment_recorded), each timed on one keep-alive httpx.AsyncClient.
3. Raw phase: as many minimal `RawBaseline` workflows on the same Temporal server, run by an
   in-process worker on a task queue of their own, with the same concurrency: one
   update-with-start (the `job_created` of the API), then the same 13 payloads through
   `handle.execute_update`, each timed; the last one tells the workflow to complete.
4. Samples the RSS and CPU time of the worker, the API and the Temporal server (each with its
   children) every 100 ms during each phase.
5. Prints a table, writes the figures as JSON with --json, and stops everything it started (also
   on an error or Ctrl-C).

The worker's sandbox re-imports this file (as `bench.events`) for every new workflow, so nothing
may run at import time and the heavy imports happen inside the functions that use them. Bytecode
is cached under the temporary dir even when PYTHONDONTWRITEBYTECODE is set (--no-pycache keeps
it off): without .pyc files every new workflow's sandbox compiles its module from source again,
which no deployment does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import workflow

if TYPE_CHECKING:
    import psutil

USERS = {"office": "olga", "sales": "sam", "manager": "mia", "technician": "tess"}
QUICK_JOBS = 20
HEALTHY_WITHIN_S = 120
GOAL_RATIO = 1.5
# Each event type's p90 against the raw update's p90 (at concurrency 1), and lifecycles per
# second against raw workflows per second: issue 12's goals.
GOAL_TYPE_P90_RATIO = 2.0
GOAL_THROUGHPUT_RATIO = 0.5
# The PDFs each lifecycle renders: the quote, the work receipt and the invoice.
DOCUMENT_KINDS = ("quote", "work_receipt", "invoice")
DOCUMENTS_WITHIN_S = 600


# --- the raw baseline: the least a workflow can do per update --------------------------------


@workflow.defn(name="RawBaseline")
class RawBaseline:
    """Keeps the events it is sent and completes when one of them says `close`."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed and workflow.all_handlers_finished())
        return len(self.events)

    @workflow.update
    def record(self, event: dict[str, Any]) -> int:
        self.events.append(event)
        if event.get("close"):
            self.closed = True
        return len(self.events)

    @record.validator
    def _validate_record(self, event: dict[str, Any]) -> None:
        if self.closed:
            raise ValueError("the workflow is closed")
        if not isinstance(event.get("type"), str):
            raise ValueError("an event needs a type")


# --- the workload -------------------------------------------------------------------------------


def lifecycle_events(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(role, event body) from a fresh lead to closed: the 13 events of `jobline dev`'s closed
    demo job."""
    from cli.demo import demo_events

    role_of = {username: role for role, username in USERS.items()}
    return [(role_of[username], body) for username, body in demo_events("closed", now)]


def job_body(client_id: int, index: int) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "title": f"Bench job {index}: rooftop unit not cooling",
        "source": "incoming_call",
        "priority": "standard",
        "site_address": f"{index} Bench St",
    }


# --- figures ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p90_ms": percentile(ms, 0.90),
        "p99_ms": percentile(ms, 0.99),
        "mean_ms": sum(ms) / len(ms) if ms else 0.0,
        "max_ms": max(ms, default=0.0),
    }


class Phase:
    """What one phase measured. (A plain class: the sandbox re-runs this file per workflow.)"""

    def __init__(self, lifecycles: int = 0) -> None:
        self.lifecycles = lifecycles
        self.event_s: list[float] = []
        self.by_type: dict[str, list[float]] = {}  # event type -> its latencies
        self.slugs: list[str] = []
        self.create_s: list[float] = []
        self.wall_s = 0.0
        self.resources: dict[str, dict[str, float]] = {}
        self.extra: dict[str, Any] = {}

    def record(self, event_type: str, seconds: float) -> None:
        self.event_s.append(seconds)
        self.by_type.setdefault(event_type, []).append(seconds)


async def run_pool(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Runs one(0) ... one(count - 1), `concurrency` at a time; returns the wall time."""
    indexes = iter(range(count))

    async def runner() -> None:
        for index in indexes:
            await one(index)

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, count)):
                group.create_task(runner())
    except ExceptionGroup as failed:  # the first failure is the story; the rest were cancelled
        raise failed.exceptions[0] from None
    return time.perf_counter() - started


# --- process sampling ---------------------------------------------------------------------------


def _tree(process: psutil.Process, children: bool) -> list[psutil.Process]:
    import psutil

    if not children:
        return [process]
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def _rss(processes: list[psutil.Process]) -> int:
    import psutil

    total = 0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _cpu_s(processes: list[psutil.Process]) -> float:
    import psutil

    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, ours or not)."""
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle


class Sampler:
    """Peak RSS every `interval` s, and CPU time used, of each process with its children.

    Processes named in `alone` are measured without their children (this script's own process,
    whose children are the whole stack).
    """

    def __init__(
        self,
        processes: dict[str, psutil.Process],
        alone: frozenset[str] = frozenset(),
        interval: float = 0.1,
    ) -> None:
        self.processes = processes
        self.children = {name: name not in alone for name in processes}
        self.interval = interval
        self.trees: dict[str, list[psutil.Process]] = {}
        self._find_trees()
        self.peak = dict.fromkeys(processes, 0)
        self.start_rss = {name: _rss(tree) for name, tree in self.trees.items()}
        self.cpu_start = {name: _cpu_s(tree) for name, tree in self.trees.items()}
        self.cpu_used: dict[str, float] = {}
        self.samples = 0
        self.started = time.perf_counter()
        self.machine_start = _machine_busy_s()
        self.machine: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _find_trees(self) -> None:
        # Finding children scans all of /proc: done now and then, not on every sample.
        self.trees = {
            name: _tree(process, self.children[name]) for name, process in self.processes.items()
        }

    def _sample(self) -> None:
        for name, tree in self.trees.items():
            self.peak[name] = max(self.peak[name], _rss(tree))
        self.samples += 1
        if self.samples % 50 == 0:
            self._find_trees()

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._find_trees()
        self.cpu_used = {
            name: _cpu_s(tree) - self.cpu_start[name] for name, tree in self.trees.items()
        }
        busy = _machine_busy_s() - self.machine_start
        ours = sum(self.cpu_used.values())
        self.machine = {
            "capacity_cpu_s": (time.perf_counter() - self.started) * (os.cpu_count() or 1),
            "busy_cpu_s": busy,
            "ours_cpu_s": ours,
            "others_cpu_s": max(busy - ours, 0.0),
        }

    def figures(self) -> dict[str, dict[str, float]]:
        mib = 1024 * 1024
        return {
            name: {
                "peak_rss_mib": self.peak[name] / mib,
                "start_rss_mib": self.start_rss[name] / mib,
                "cpu_s": self.cpu_used.get(name, 0.0),
            }
            for name in self.processes
        }


# --- the embedded stack -------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class StackFailed(Exception):
    pass


class Stack:
    """`jobline dev --no-demo` in its own session, on free ports, in a fresh data dir."""

    def __init__(
        self,
        root: Path,
        pycache: Path | None = None,
        users: dict[str, str] | None = None,
        database_url: str = "",
        worker_sandbox: bool = True,
    ) -> None:
        self.root = root
        self.pycache = pycache
        # Empty: the embedded SQLite file in the data dir.
        self.database_url = database_url
        self.worker_sandbox = worker_sandbox
        # {role: username}, each added with `jobline user add`; `tokens` holds theirs by role.
        self.users = USERS if users is None else users
        self.data_dir = root / "data"
        self.port, self.temporal_port, self.ui_port = free_ports(3)
        self.dev: subprocess.Popen[bytes] | None = None
        self.known: list[psutil.Process] = []
        self.processes: dict[str, psutil.Process] = {}
        self.tokens: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    def _env(self) -> dict[str, str]:
        # Only this data dir: no JOBLINE_* of the caller (a database URL, a Temporal address).
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")}
        env["JOBLINE_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["JOBLINE_DATABASE_URL"] = self.database_url
        if not self.worker_sandbox:
            env["JOBLINE_WORKER_SANDBOX"] = "false"
        env["PYTHONUNBUFFERED"] = "1"
        if self.pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        return env

    def start(self) -> None:
        import httpx
        import psutil

        self.data_dir.mkdir(parents=True)
        command = [
            sys.executable,
            "-m",
            "cli.main",  # the `jobline` entry point
            "dev",
            "--no-demo",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
        ]
        with open(self.root / "dev.log", "wb") as log:
            # A session of its own: a Ctrl-C in the terminal reaches only this script, which then
            # stops the stack the way `jobline dev` expects (SIGINT to it, it stops its children).
            self.dev = subprocess.Popen(
                command,
                cwd=self.root,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.known.append(psutil.Process(self.dev.pid))
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while True:
            if self.dev.poll() is not None:
                raise StackFailed(f"jobline dev exited with code {self.dev.returncode}")
            self._remember_children()
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise StackFailed(f"the API was not healthy within {HEALTHY_WITHIN_S} s")
            time.sleep(0.25)
        self._remember_children()
        for process in self.known[1:]:
            try:
                cmdline = process.cmdline()
            except psutil.Error:
                continue
            if Path(cmdline[0]).name == "temporal" and "server" in cmdline:
                self.processes["temporal"] = process
            elif "cli.main" in cmdline and "worker" in cmdline:
                self.processes["worker"] = process
            elif "cli.main" in cmdline and "api" in cmdline:
                self.processes["api"] = process
        missing = {"worker", "api", "temporal"} - set(self.processes)
        if missing:
            raise StackFailed(f"did not find the {', '.join(sorted(missing))} process(es)")
        self._add_users()

    def _add_users(self) -> None:
        """Side by side: each `jobline user add` is a process of its own that spends most of its
        time importing."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, len(self.users))) as pool:
            added = {
                role: pool.submit(self._add_user, username, role)
                for role, username in self.users.items()
            }
        self.tokens = {role: future.result() for role, future in added.items()}

    def _remember_children(self) -> None:
        import psutil

        if self.dev is None:
            return
        try:
            children = psutil.Process(self.dev.pid).children(recursive=True)
        except psutil.Error:
            return
        pids = {p.pid for p in self.known}
        self.known += [c for c in children if c.pid not in pids]

    def _jobline(self, *args: str) -> str:
        """`jobline ARGS` with this stack's environment; returns what it printed."""
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise StackFailed(f"jobline {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def _add_user(self, username: str, role: str) -> str:
        # An API-only user: no password to ask for (there is no terminal here).
        added = self._jobline("user", "add", username, "--role", role, "--no-password")
        return added.strip().splitlines()[-1]

    def stop(self) -> None:
        """SIGINT to `jobline dev` (it stops API, worker, server in turn); then kill leftovers."""
        import psutil

        self._remember_children()
        if self.dev is not None and self.dev.poll() is None:
            self.dev.send_signal(signal.SIGINT)
            try:
                self.dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.dev.kill()
                self.dev.wait()
        leftovers = [p for p in self.known if p.is_running()]
        for process in leftovers:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=10)

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for path in [self.root / "dev.log", *sorted(self.data_dir.glob("*.log"))]:
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)


# --- the phases ---------------------------------------------------------------------------------

_METRIC = re.compile(
    r'^jobline_http_request_seconds_(sum|count)\{method="POST",'
    r'route="/api/v1/jobs/\{slug\}/events"\} (\S+)$',
    re.MULTILINE,
)


async def _server_side(http: Any) -> dict[str, float]:
    """The API's own latency histogram for the events route (sum and count so far)."""
    text = (await http.get("/metrics")).text
    return {kind: float(value) for kind, value in _METRIC.findall(text)}


def expect(response: Any, what: str) -> None:
    if not 200 <= response.status_code < 300:
        raise AssertionError(f"{what}: HTTP {response.status_code} {response.text[:500]}")


async def bench_clients(http: Any, office: dict[str, str], count: int = 4) -> list[int]:
    """A few clients for the benchmark's jobs; returns their ids."""
    ids = []
    for n in range(count):
        response = await http.post(
            "/api/v1/clients",
            json={"name": f"Bench client {n}", "email": f"bench{n}@example.com"},
            headers=office,
        )
        expect(response, "POST /api/v1/clients")
        ids.append(response.json()["id"])
    return ids


async def drive_lifecycle(
    http: Any,
    headers: dict[str, dict[str, str]],
    events: list[tuple[str, dict[str, Any]]],
    client_ids: list[int],
    index: int,
    into: Phase,
) -> str:
    """One job from lead to closed through the API, each answer timed into `into`; returns its
    slug."""
    started = time.perf_counter()
    response = await http.post(
        "/api/v1/jobs",
        json=job_body(client_ids[index % len(client_ids)], index),
        headers=headers["office"],
    )
    into.create_s.append(time.perf_counter() - started)
    expect(response, "POST /api/v1/jobs")
    slug: str = response.json()["slug"]
    into.slugs.append(slug)
    for role, event in events:
        started = time.perf_counter()
        response = await http.post(f"/api/v1/jobs/{slug}/events", json=event, headers=headers[role])
        into.record(event["type"], time.perf_counter() - started)
        expect(response, f"{event['type']} on {slug}")
    stage = response.json()["stage"]
    if stage != "closed":
        raise AssertionError(f"job {slug} ended in {stage!r}, not closed")
    return slug


async def api_phase(stack: Stack, jobs: int, concurrency: int, warmup: int) -> Phase:
    import httpx
    import psutil

    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in stack.tokens.items()}
    events = lifecycle_events(datetime.now(UTC))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    phase = Phase(lifecycles=jobs)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as http:
        client_ids = await bench_clients(http, headers["office"])

        async def lifecycle(index: int, into: Phase) -> None:
            await drive_lifecycle(http, headers, events, client_ids, index, into)

        unmeasured = Phase()
        for index in range(warmup):
            await lifecycle(-1 - index, unmeasured)
        before = await _server_side(http)
        bench = "bench (HTTP client)"
        processes = {**stack.processes, bench: psutil.Process()}
        with Sampler(processes, alone=frozenset({bench})) as sampler:
            started = time.perf_counter()
            phase.wall_s = await run_pool(jobs, concurrency, lambda i: lifecycle(i, phase))
            # The PDFs follow the answers: counted apart, from the same start.
            phase.extra["documents"] = len(DOCUMENT_KINDS) * jobs
            phase.extra["with_documents_s"] = (
                await documents_rendered(stack, phase.slugs, phase.extra["documents"]) - started
            )
        after = await _server_side(http)
        phase.resources = sampler.figures()
        phase.extra["machine"] = sampler.machine
        count = after.get("count", 0) - before.get("count", 0)
        if count:
            phase.extra["server_side_mean_ms"] = (
                1000 * (after.get("sum", 0) - before.get("sum", 0)) / count
            )
    return phase


async def documents_rendered(stack: Stack, slugs: list[str], expected: int) -> float:
    """Waits until the jobs' quote, receipt and invoice PDFs are all stored; returns when."""
    from sqlalchemy import bindparam, text

    from core.db import Database

    url = stack.database_url or f"sqlite+aiosqlite:///{stack.data_dir / 'jobline.db'}"
    db = Database(url)
    count = text(
        "SELECT count(*) FROM documents WHERE kind IN :kinds AND job_slug IN :slugs"
    ).bindparams(bindparam("kinds", expanding=True), bindparam("slugs", expanding=True))
    deadline = time.monotonic() + DOCUMENTS_WITHIN_S
    try:
        while True:
            async with db.session() as session:
                found = (
                    await session.execute(count, {"kinds": DOCUMENT_KINDS, "slugs": slugs})
                ).scalar_one()
            if found >= expected:
                return time.perf_counter()
            if time.monotonic() > deadline:
                raise AssertionError(f"{found} of {expected} PDFs after {DOCUMENTS_WITHIN_S} s")
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


def raw_workflow() -> type[RawBaseline]:
    """RawBaseline as `bench.events`, not `__main__`, when run as a script.

    The sandbox re-imports a workflow's module for every new workflow; `__main__` it compiles
    from source each time, a module from the bytecode cache, like the real worker's
    `workflows.job`.
    """
    if __name__ != "__main__":
        return RawBaseline
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.events").RawBaseline


async def raw_phase(stack: Stack, jobs: int, concurrency: int, warmup: int) -> Phase:
    import psutil
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    # The same payloads as the API's events; the last one tells the workflow to complete.
    payloads = [event for _, event in lifecycle_events(datetime.now(UTC))]
    payloads[-1] = {**payloads[-1], "close": True}
    created = {"type": "job_created", **job_body(1, 0)}
    expected = len(payloads) + 1

    raw = raw_workflow()
    client = await Client.connect(stack.temporal_address, data_converter=pydantic_data_converter)
    run_id = uuid.uuid4().hex[:8]
    task_queue = f"bench-raw-{run_id}"
    phase = Phase(lifecycles=jobs)
    handles = []

    async def lifecycle(name: str, into: Phase) -> None:
        start = WithStartWorkflowOperation(
            raw.run,
            id=f"bench-raw-{run_id}-{name}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        started = time.perf_counter()
        await client.execute_update_with_start_workflow(
            raw.record, created, start_workflow_operation=start
        )
        into.create_s.append(time.perf_counter() - started)
        handle = await start.workflow_handle()
        handles.append(handle)
        for payload in payloads:
            started = time.perf_counter()
            await handle.execute_update(raw.record, payload)
            into.record(payload["type"], time.perf_counter() - started)

    async with Worker(client, task_queue=task_queue, workflows=[raw]):
        unmeasured = Phase()
        for index in range(warmup):
            await lifecycle(f"warmup-{index}", unmeasured)
        bench = "bench (client + raw worker)"
        processes = {**stack.processes, bench: psutil.Process()}
        with Sampler(processes, alone=frozenset({bench})) as sampler:
            phase.wall_s = await run_pool(jobs, concurrency, lambda i: lifecycle(str(i), phase))
        phase.resources = sampler.figures()
        phase.extra["machine"] = sampler.machine
        # Untimed: every workflow completed with all its updates.
        results = await asyncio.gather(*(h.result() for h in handles))
        if any(r != expected for r in results):
            raise AssertionError(f"raw workflows returned {set(results)}, expected {expected}")
    return phase


# --- report -------------------------------------------------------------------------------------


def figures(args: argparse.Namespace, stack: Stack, api: Phase, raw: Phase) -> dict[str, Any]:
    api_events, raw_events = summary_ms(api.event_s), summary_ms(raw.event_s)
    return {
        "config": {
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "database": args.database_url.split(":", 1)[0] if args.database_url else "sqlite",
            "warmup": args.warmup,
            "events_per_job": len(lifecycle_events(datetime.now(UTC))),
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": os.getloadavg()[0],
            "bytecode_cache": not args.no_pycache,
            "worker_sandbox": not args.unsandboxed,
            "python": sys.version.split()[0],
        },
        "api": {
            "events": api_events,
            "create": summary_ms(api.create_s),
            "wall_s": api.wall_s,
            "lifecycles_per_s": api.lifecycles / api.wall_s,
            "documents": api.extra["documents"],
            "with_documents_s": api.extra["with_documents_s"],
            "lifecycles_with_documents_per_s": api.lifecycles / api.extra["with_documents_s"],
            "events_per_s": len(api.event_s) / api.wall_s,
            "server_side_mean_ms": api.extra.get("server_side_mean_ms"),
            "resources": api.resources,
            "machine_cpu": api.extra["machine"],
        },
        "raw": {
            "events": raw_events,
            "create": summary_ms(raw.create_s),
            "wall_s": raw.wall_s,
            "workflows_per_s": raw.lifecycles / raw.wall_s,
            "updates_per_s": len(raw.event_s) / raw.wall_s,
            "resources": raw.resources,
            "machine_cpu": raw.extra["machine"],
        },
        "ratio_p50": api_events["p50_ms"] / raw_events["p50_ms"],
        "goal_ratio_p50": GOAL_RATIO,
        "by_type": {
            kind: {
                "api": summary_ms(seconds),
                "raw": summary_ms(raw.by_type.get(kind, [])),
                "ratio_p90": percentile(seconds, 0.9) / percentile(raw.by_type[kind], 0.9)
                if raw.by_type.get(kind)
                else None,
            }
            for kind, seconds in api.by_type.items()
        },
        "goal_type_p90_ratio": GOAL_TYPE_P90_RATIO,
        "throughput_ratio": (api.lifecycles / api.wall_s) / (raw.lifecycles / raw.wall_s),
        "goal_throughput_ratio": GOAL_THROUGHPUT_RATIO,
        "peak_rss_mib": {
            name: api.resources[name]["peak_rss_mib"] for name in ("worker", "api", "temporal")
        },
    }


def report(f: dict[str, Any]) -> str:
    c, api, raw = f["config"], f["api"], f["raw"]
    row = "{:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}"
    lines = [
        f"Jobline event benchmark: {c['jobs']} jobs x {c['events_per_job']} events, "
        f"concurrency {c['concurrency']}, warm-up {c['warmup']} lifecycle(s) per phase",
        f"machine: {c['cpus']} CPUs, load average {c['load_average_1m_at_end']:.2f} (1 min, at "
        f"the end), Python {c['python']}, bytecode cache {'on' if c['bytecode_cache'] else 'off'}, "
        f"worker sandbox {'on' if c.get('worker_sandbox', True) else 'off'}",
        "",
        row.format("latency", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"),
    ]
    for label, s in (
        ("API  POST /jobs/{slug}/events", api["events"]),
        ("raw  handle.execute_update", raw["events"]),
        ("API  POST /jobs (create)", api["create"]),
        ("raw  update-with-start (create)", raw["create"]),
    ):
        lines.append(
            row.format(
                label,
                s["n"],
                *(f"{s[k]:.2f}" for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")),
            )
        )
    verdict = "within the goal" if f["ratio_p50"] <= f["goal_ratio_p50"] else "OVER the goal"
    lines += [
        "",
        f"ratio API p50 / raw p50: {f['ratio_p50']:.2f}x  "
        f"(goal <= {f['goal_ratio_p50']}x: {verdict})",
    ]
    if api.get("server_side_mean_ms") is not None:
        lines.append(
            f"API events, mean inside the API (its own /metrics histogram): "
            f"{api['server_side_mean_ms']:.2f} ms; seen by the client: "
            f"{api['events']['mean_ms']:.2f} ms"
        )
    type_row = "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8}"
    lines += [
        "",
        type_row.format("event type", "API p50", "API p90", "raw p50", "raw p90", "p90 x"),
    ]
    over = []
    for kind, t in f["by_type"].items():
        ratio = t["ratio_p90"]
        if ratio is not None and ratio > f["goal_type_p90_ratio"]:
            over.append(kind)
        lines.append(
            type_row.format(
                kind,
                f"{t['api']['p50_ms']:.1f}",
                f"{t['api']['p90_ms']:.1f}",
                f"{t['raw']['p50_ms']:.1f}",
                f"{t['raw']['p90_ms']:.1f}",
                f"{ratio:.2f}" if ratio is not None else "-",
            )
        )
    lines.append(
        f"each type's p90 within {f['goal_type_p90_ratio']}x the raw p90 (the goal at "
        f"concurrency 1): " + ("yes" if not over else "NO: " + ", ".join(over))
    )
    throughput_verdict = (
        "within the goal"
        if f["throughput_ratio"] >= f["goal_throughput_ratio"]
        else "UNDER the goal"
    )
    lines += [
        "",
        f"throughput  API: {api['lifecycles_per_s']:.2f} lifecycles/s "
        f"({api['events_per_s']:.1f} events/s, {api['wall_s']:.2f} s wall)",
        f"            raw: {raw['workflows_per_s']:.2f} workflows/s "
        f"({raw['updates_per_s']:.1f} updates/s, {raw['wall_s']:.2f} s wall)",
        f"            API / raw: {f['throughput_ratio']:.2f}x "
        f"(goal >= {f['goal_throughput_ratio']}x: {throughput_verdict})",
        f"            with their {api['documents']} PDFs stored: "
        f"{api['lifecycles_with_documents_per_s']:.2f} lifecycles/s "
        f"({api['with_documents_s']:.2f} s from the first request)",
        "",
        "peak RSS MiB (API phase, each with its children): "
        + ", ".join(f"{name} {mib:.1f}" for name, mib in f["peak_rss_mib"].items()),
        "",
        "{:<40} {:>13} {:>14} {:>8} {:>11}".format(
            "process", "peak RSS MiB", "start RSS MiB", "CPU s", "CPU ms/job"
        ),
    ]
    for phase_name, phase in (("API", api), ("raw", raw)):
        for name, r in phase["resources"].items():
            lines.append(
                "{:<40} {:>13.1f} {:>14.1f} {:>8.2f} {:>11.1f}".format(
                    f"{phase_name} phase: {name}",
                    r["peak_rss_mib"],
                    r["start_rss_mib"],
                    r["cpu_s"],
                    1000 * r["cpu_s"] / c["jobs"],
                )
            )
    lines.append("")
    for phase_name, phase in (("API", api), ("raw", raw)):
        m = phase["machine_cpu"]
        lines.append(
            f"{phase_name} phase machine CPU: {m['busy_cpu_s']:.1f} of "
            f"{m['capacity_cpu_s']:.1f} CPU-s busy; these processes {m['ours_cpu_s']:.1f}, "
            f"others {m['others_cpu_s']:.1f}"
        )
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """The options of every benchmark that runs on the embedded stack (see `run_on_stack`)."""
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty database for the stack (e.g. postgresql+asyncpg://postgres@127.0.0.1/b1); "
        "default: the embedded SQLite file in the temp data dir",
    )
    parser.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run the stack's worker with JOBLINE_WORKER_SANDBOX=false (workflows outside "
        "Temporal's sandbox)",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the temporary data dir and logs"
    )
    parser.add_argument(
        "--no-pycache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as it is (by default bytecode is cached in the temp "
        "dir: the workflow sandbox re-imports the workflow module for every new workflow)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Jobline event latency: HTTP API vs raw Temporal updates"
    )
    parser.add_argument("--jobs", type=int, help="lifecycles per phase (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in flight (default 8)")
    parser.add_argument(
        "--warmup", type=int, help="unmeasured lifecycles before each phase (default 2)"
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS} jobs, 1 warm-up")
    add_stack_options(parser)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else 200
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.jobs < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--jobs and --concurrency must be positive, --warmup not negative")
    return args


async def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    print(f"API phase: {args.jobs} jobs, concurrency {args.concurrency} ...", flush=True)
    api = await api_phase(stack, args.jobs, args.concurrency, args.warmup)
    print(f"raw phase: {args.jobs} workflows, concurrency {args.concurrency} ...", flush=True)
    raw = await raw_phase(stack, args.jobs, args.concurrency, args.warmup)
    return figures(args, stack, api, raw)


def run_on_stack(
    args: argparse.Namespace,
    measure: Callable[[Stack], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    *,
    prefix: str = "jobline-bench-",
    users: dict[str, str] | None = None,
) -> int:
    """Start the stack, `measure` on it, print the `report` (and the JSON with --json), and
    stop everything, also on an error, Ctrl-C or SIGTERM (exit 130). `measure` may stop the
    stack early to measure something on a quiet machine; stopping again is harmless."""
    # Ctrl-C even when started with SIGINT ignored (`cmd &` in a script): the children inherit
    # the default, so `jobline dev` can stop them in order. SIGTERM is handled as a Ctrl-C (in
    # asyncio.run, that cancels the main task instead of raising inside some other task).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    root = Path(tempfile.mkdtemp(prefix=prefix))
    pycache = None
    if not args.no_pycache:
        # As deployed: with PYTHONDONTWRITEBYTECODE=1 and no .pyc files, every new workflow's
        # sandbox compiles the workflow module from source again. Cache under the temp dir only.
        pycache = root / "pycache"
        sys.pycache_prefix = str(pycache)
        sys.dont_write_bytecode = False
    stack = Stack(root, pycache, users, args.database_url, worker_sandbox=not args.unsandboxed)
    failed = False
    try:
        print(
            f"Starting jobline dev (API :{stack.port}, Temporal :{stack.temporal_port}) "
            f"in {root} ...",
            flush=True,
        )
        stack.start()
        result = measure(stack)
        print()
        print(report(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr, flush=True)
        return 130
    except BaseException:
        failed = True
        raise
    finally:
        # A second Ctrl-C must not leave the stack half stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("Stopping the stack ...", file=sys.stderr, flush=True)
        stack.stop()
        if failed:
            print(stack.log_tails(), file=sys.stderr, flush=True)
        if args.keep_data or failed:
            print(f"data and logs kept in {root}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_on_stack(args, lambda stack: asyncio.run(measure(args, stack)), report)


if __name__ == "__main__":
    sys.exit(main())
