"""Chaos: job lifecycles run to closed while the worker and the API are SIGKILLed and restarted.

A real stack of processes: the API (`python -m cli.main api`, uvicorn) and the worker
(`python -m tests.fakes.worker_process`), one Temporal dev server, a fresh migrated database, and
SendGrid and Twilio as the fake providers of tests/fakes/providers.py. About 20 lifecycles
(bench/events.py's: lead to closed, 13 events) run 4 at a time; meanwhile the worker is killed
3-4 times and the API 1-2 times, at random points of the run, and restarted.

The clients keep the retry contract of the README: every POST carries an `Idempotency-Key` (a
fresh uuid per logical request), and on a 503, a timeout or a broken connection the same request
goes again with the same key until it gets a 2xx or a 4xx. Once the system settles:

- every event a client got a 2xx for is in its job's timeline exactly once (the row of its
  Update id), and the timeline holds nothing the clients were not told about;
- every result a client got a 2xx for (each job is resulted once it has closed, every other
  one resubmitted: its job's workflow has finished by then) is one revision, in order, with one
  result email;
- every job is closed, its workflow completed, its projection's seq the number of its timeline
  rows, numbered 1..n;
- no message reached a provider twice; one in `unknown` says so on the job and in the outbox;
- no message is left `queued` or `sending`;
- no process of a killed worker (its PDF pool) lives on.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from pydantic import TypeAdapter
from sqlmodel import col, select
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.idempotency import HEADER, Idempotency
from api.users.service import add_token, create_user
from bench.events import USERS, job_body, lifecycle_events, run_pool
from core import settings_store
from core.db import Database
from core.settings_store import RESULTING as RESULTING_NAME
from core.temporal import workflow_id
from models import events as ev
from models.outbox import IN_DOUBT
from models.resulting import ResultingSettings, resulting_workflow_id
from models.tables import Client, Job, JobEvent, JobResult, OutboxMessage
from tests.activities.test_exactly_once import WorkerProcess, worker_processes
from tests.conftest import migrated_database
from tests.fakes.api_process import ApiProcess, free_port, start_api
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FakeSendGrid,
    FakeTwilio,
    provider_settings,
    sendgrid_server_fixture,
    twilio_server_fixture,
    wait_until,
)

# Kills and restarts a stack of processes at timed points: run alone (`make test`'s serial pass).
pytestmark = pytest.mark.serial

LIFECYCLES = 20
CONCURRENCY = 4
WORKER_KILLS = (3, 4)  # how many times, at random
API_KILLS = (1, 2)
# Kills fall at random points between these fractions of the run's requests: the last ones
# leave the stack time to recover while lifecycles are still running.
KILL_SPAN = (0.08, 0.8)
# The API's own wait for a job's workflow; the clients' timeouts straddle it, so they see both
# the API's 503 and their own timeouts.
API_EVENT_TIMEOUT_S = 8
CLIENT_TIMEOUT_S = (4.0, 12.0)
GIVE_UP_AFTER_S = 120  # one logical request, all its retries
SETTLE_WITHIN_S = 150
CREATE = "/api/v1/jobs"
EVENT_TYPES: TypeAdapter[Any] = TypeAdapter(ev.Event)
# Each job is resulted after it closes (a Sale), every other one resubmitted (a No Sale).
RESULTING = ResultingSettings.model_validate(
    {
        "enabled": True,
        "types": {
            "sale": {"recipients": ["sales@example.com"], "fields": [
                {"key": "sale_amount", "label": "Sale amount", "type": "currency"}]},
            "no_sale": {"recipients": ["sales@example.com"], "fields": [
                {"key": "loss_reason", "label": "Why", "type": "dropdown",
                 "options": ["Price", "Timing"]}]},
        },
    }
)  # fmt: skip
RESULTS = [
    {"type": "sale", "fields": {"sale_amount": "657.50"}},
    {"type": "no_sale", "fields": {"loss_reason": "Price"}},
]
# SQLite in CI, as one run takes 2-2.5 minutes on two cores;
# JOBLINE_CHAOS_BACKENDS=sqlite,postgresql runs it on PostgreSQL too.
BACKENDS = os.environ.get("JOBLINE_CHAOS_BACKENDS", "sqlite").split(",")
# The kill plan (who, after which request) and the clients' timeouts follow from the seed; set
# JOBLINE_CHAOS_SEED to replay a plan.
SEED = os.environ.get("JOBLINE_CHAOS_SEED")


@dataclass
class Accepted:
    """A logical request that got a 2xx, and what it took to get it."""

    username: str
    key: str
    path: str
    body: dict[str, Any]
    status: int
    answer: dict[str, Any]
    attempts: int

    @property
    def update_id(self) -> str:
        update_id = Idempotency(key=self.key, username=self.username, digest="").update_id
        assert update_id is not None
        return update_id


@dataclass
class Tally:
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # a 4xx or 5xx no retry may mend
    retries: Counter[str] = field(default_factory=Counter)
    done: int = 0  # logical requests answered (the clock the kills are placed on)
    kills: list[str] = field(default_factory=list)
    orphans: list[psutil.Process] = field(default_factory=list)  # killed workers' children

    @property
    def events(self) -> list[Accepted]:
        """The accepted requests that are job events (a job's creation included)."""
        return [a for a in self.accepted if a.path == CREATE or a.path.endswith("/events")]

    @property
    def results(self) -> list[Accepted]:
        """The accepted result submissions (POST …/result)."""
        return [a for a in self.accepted if a.path.endswith("/result")]


class RetryingClient:
    """A client that keeps the retry contract: one key per logical request, the same request with
    the same key again after a 503, a timeout or a broken connection."""

    def __init__(
        self, base_url: str, tokens: dict[str, str], tally: Tally, rng: random.Random
    ) -> None:
        self.http = httpx.AsyncClient(base_url=base_url)
        self.tokens = tokens
        self.tally = tally
        self.rng = rng

    async def post(self, username: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {self.tokens[username]}", HEADER: key}
        what = f"POST {path} {body.get('type', '')} as {username} (key {key})"
        give_up = time.monotonic() + GIVE_UP_AFTER_S
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.http.post(
                    path, json=body, headers=headers, timeout=self.rng.uniform(*CLIENT_TIMEOUT_S)
                )
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError:
                reason = "connection"
            else:
                if response.status_code < 300:
                    self.tally.done += 1
                    answer = response.json()
                    self.tally.accepted.append(
                        Accepted(username, key, path, body, response.status_code, answer, attempt)
                    )
                    return answer
                if response.status_code != 503:
                    self.tally.done += 1
                    self.tally.refused.append(
                        f"{what}: {response.status_code} after {attempt} attempt(s): "
                        f"{response.text[:500]}"
                    )
                    raise AssertionError(self.tally.refused[-1])
                reason = "503"
            self.tally.retries[reason] += 1
            if time.monotonic() > give_up:
                raise AssertionError(f"{what}: no answer in {GIVE_UP_AFTER_S} s ({reason})")
            await asyncio.sleep(min(0.2 * 2 ** min(attempt, 4), 2.0) * self.rng.uniform(0.5, 1))


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class ChaosStack:
    db: Database
    env: dict[str, str]  # the JOBLINE_* settings both processes read
    api_log: Path
    port: int
    api: ApiProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start_api(self) -> None:
        command = [sys.executable, "-m", "cli.main", "api"]
        self.api = await asyncio.to_thread(
            start_api, self.env, self.api_log, command=command, port=self.port
        )

    async def kill_api(self) -> None:
        if self.api is not None:
            self.api.process.kill()  # SIGKILL: requests in flight get no answer
            await asyncio.to_thread(self.api.process.wait)


async def add_users(db: Database) -> dict[str, str]:
    """bench/events.py's people, by username, with their tokens."""
    tokens = {}
    async with db.session() as session:
        for role, username in USERS.items():
            user = await create_user(session, username, role, f"{username}@jobline.test")
            tokens[username] = await add_token(session, user)
    return tokens


@pytest.fixture(params=BACKENDS)
async def chaos_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A new, migrated database of its own."""
    async with migrated_database(request.param, tmp_path / "chaos.db") as db:
        yield db


# --- the workload and the chaos ------------------------------------------------------------------


async def lifecycle(client: RetryingClient, index: int, run: str) -> str:
    """One job from a new client to closed, as bench/events.py drives it; returns its slug."""
    customer = await client.post(
        "olga",
        "/api/v1/clients",
        {
            "name": f"Chaos client {run}-{index}",
            "email": f"chaos{index}@example.com",
            "phone": f"+1555{index:07d}",  # one phone per job: its SMS are told apart by number
        },
    )
    job = await client.post("olga", CREATE, job_body(customer["id"], index))
    slug = job["slug"]
    for role, event in lifecycle_events(datetime.now(UTC)):
        answer = await client.post(USERS[role], f"/api/v1/jobs/{slug}/events", event)
    assert answer["stage"] == "closed", (slug, answer["stage"])
    # Resulted once its workflow has finished (its result's workflow lives on); every other job
    # is resubmitted.
    for result in RESULTS[: 1 + index % 2]:
        await client.post(USERS["sales"], f"/api/v1/jobs/{slug}/result", result)
    return slug


async def chaos(
    stack: ChaosStack,
    start_worker: Callable[[], Awaitable[WorkerProcess]],
    worker: WorkerProcess,
    tally: Tally,
    total: int,
    rng: random.Random,
) -> None:
    """Kills the worker and the API at random points of the run, restarting each."""
    plan = ["worker"] * rng.randint(*WORKER_KILLS) + ["api"] * rng.randint(*API_KILLS)
    rng.shuffle(plan)
    points = sorted(int(total * rng.uniform(*KILL_SPAN)) for _ in plan)
    for victim, point in zip(plan, points, strict=True):

        def reached(point: int = point) -> bool:
            return tally.done >= point

        await wait_until(reached, within=600, what=f"request {point}")
        if victim == "worker":
            assert worker.process is not None
            tally.orphans += psutil.Process(worker.process.pid).children(recursive=True)
            await worker.kill()
            await asyncio.sleep(rng.uniform(0, 2))  # nobody polls for a moment
            worker = await start_worker()
        else:
            await stack.kill_api()
            await stack.start_api()
        tally.kills.append(f"{victim}@{tally.done}")


# --- what the system holds afterwards ------------------------------------------------------------


@dataclass
class Held:
    """What the database, Temporal and the API hold once the system settled."""

    jobs: dict[str, Job]
    timeline: dict[str, list[JobEvent]]
    messages: list[OutboxMessage]
    clients: int
    views: dict[str, dict[str, Any]]  # GET /api/v1/jobs/{slug}
    workflows: dict[str, str]  # slug -> its workflow's status, and pending work
    results: dict[str, list[JobResult]]  # slug -> its result's revisions, in order

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.timeline.values())


async def result_work_pending(temporal: TemporalClient, slug: str) -> bool:
    """Whether the job's resulting workflow still has an activity to run: a result PDF or email
    whose worker was killed waits out its heartbeat timeout (30 s) before it is tried again, and
    the workflow itself runs on, so only its pending activities say it is done."""
    handle = temporal.get_workflow_handle(resulting_workflow_id(slug))
    try:
        described = await handle.describe()
    except RPCError as missing:
        if missing.status == RPCStatusCode.NOT_FOUND:
            return False  # never resulted
        raise
    return bool(described.raw_description.pending_activities)


async def settle(db: Database, temporal: TemporalClient, slugs: list[str]) -> float:
    """Waits (bounded) until no message of these jobs is queued or sending, every job's
    workflow has completed and its result's workflow has nothing left to do; returns how long
    that took."""
    started = time.monotonic()
    while True:
        async with db.session() as session:
            busy = (
                await session.exec(
                    select(OutboxMessage.id).where(
                        col(OutboxMessage.job_slug).in_(slugs),
                        col(OutboxMessage.status).in_(["queued", "sending"]),
                    )
                )
            ).all()
        running = [
            slug
            for slug in slugs
            if (await temporal.get_workflow_handle(workflow_id(slug)).describe()).status
            == WorkflowExecutionStatus.RUNNING
        ]
        resulting = [slug for slug in slugs if await result_work_pending(temporal, slug)]
        done = not busy and not running and not resulting
        if done or time.monotonic() - started > SETTLE_WITHIN_S:
            return time.monotonic() - started  # what is left, the checks say
        await asyncio.sleep(1)


async def workflow_status(temporal: TemporalClient, slug: str) -> str:
    """COMPLETED, or the status and what the workflow still waits for."""
    described = await temporal.get_workflow_handle(workflow_id(slug)).describe()
    assert described.status is not None
    return described.status.name + "".join(
        f"; pending {a.activity_type.name} attempt {a.attempt}: {a.last_failure.message[:200]}"
        for a in described.raw_description.pending_activities
    )


async def what_is_held(
    db: Database, temporal: TemporalClient, client: RetryingClient, token: str
) -> Held:
    async with db.session() as session:
        jobs = {j.slug: j for j in (await session.exec(select(Job))).all()}
        rows = (await session.exec(select(JobEvent).order_by(col(JobEvent.seq)))).all()
        messages = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        clients = len((await session.exec(select(Client.id))).all())
        revisions = (await session.exec(select(JobResult).order_by(col(JobResult.revision)))).all()
    results: dict[str, list[JobResult]] = {}
    for revision in revisions:
        results.setdefault(revision.job_slug, []).append(revision)
    timeline: dict[str, list[JobEvent]] = {slug: [] for slug in jobs}
    for row in rows:
        timeline[row.job_slug].append(row)
    views = {}
    for slug in jobs:
        response = await client.http.get(
            f"/api/v1/jobs/{slug}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        views[slug] = response.json()
    workflows = {slug: await workflow_status(temporal, slug) for slug in jobs}
    return Held(jobs, timeline, list(messages), clients, views, workflows, results)


# Set by Jobline on the way in (the quote settings' tax rate, the price book's price basis, the
# customer's address), whatever the client sent: not part of what is compared.
SET_BY_JOBLINE = frozenset({"tax_rate", "price_basis", "ip_address"})


def _as_sent(payload: Any) -> Any:
    if isinstance(payload, dict):
        return {k: _as_sent(v) for k, v in payload.items() if k not in SET_BY_JOBLINE}
    if isinstance(payload, list):
        return [_as_sent(v) for v in payload]
    return payload


def canonical(payload: Any) -> str:
    return json.dumps(_as_sent(payload), sort_keys=True)


def as_stored(accepted: Accepted) -> tuple[str, str]:
    """(type, payload) of the timeline row this request's event should have written."""
    body = accepted.body if accepted.path != CREATE else {"type": "job_created", **accepted.body}
    event = EVENT_TYPES.validate_python(body)
    return event.type, canonical(event.model_dump(mode="json"))


def events_once(held: Held, tally: Tally, slugs: list[str]) -> list[str]:
    """Each 2xx event is its Update's one timeline row, shown in its answer; the timelines hold
    nothing the clients were not told about; one job and one client per lifecycle."""
    problems = []
    if sorted(held.jobs) != sorted(slugs):
        problems.append(f"jobs {sorted(set(held.jobs) - set(slugs))} beyond the lifecycles'")
    if held.clients != LIFECYCLES:
        problems.append(f"{held.clients} clients for {LIFECYCLES} lifecycles")
    told: dict[str, Counter[tuple[str, str]]] = {slug: Counter() for slug in held.jobs}
    for accepted in tally.events:
        slug = accepted.answer["slug"]
        expected = as_stored(accepted)
        told.setdefault(slug, Counter())[expected] += 1
        mine = [r for r in held.timeline.get(slug, []) if r.request_id == accepted.update_id]
        found = [(r.type, canonical(r.payload)) for r in mine]
        what = f"job {slug}: {expected[0]} (key {accepted.key}, {accepted.attempts} attempt(s))"
        if found != [expected]:
            problems.append(f"{what} is in the timeline {len(found)} time(s): {found or 'missing'}")
        elif (mine[0].seq, mine[0].type) not in {
            (entry["seq"], entry["type"]) for entry in accepted.answer["timeline"]
        }:
            problems.append(f"{what}: its answer does not show it (seq {mine[0].seq})")
    for slug, rows in held.timeline.items():
        stored = Counter((r.type, canonical(r.payload)) for r in rows if r.actor_role != "system")
        if stored != told[slug]:
            problems.append(
                f"job {slug}: in the timeline but not told: "
                f"{sorted((stored - told[slug]).elements())}; "
                f"told but not in it: {sorted((told[slug] - stored).elements())}"
            )
    return problems


def results_once(held: Held, tally: Tally) -> list[str]:
    """Each 2xx result is one revision, in the order they were answered; each revision one
    result email (whether it reached the provider once, messages_once says)."""
    problems = []
    told: dict[str, list[str]] = {}
    for accepted in tally.results:
        slug = accepted.path.split("/")[4]
        told.setdefault(slug, []).append(accepted.body["type"])
    for slug in held.jobs:
        kept = [r.type for r in held.results.get(slug, [])]
        if kept != told.get(slug, []):
            problems.append(f"job {slug}: revisions {kept}, told {told.get(slug, [])}")
        emails = [m for m in held.messages if m.job_slug == slug and m.purpose == "result"]
        if len(emails) != len(kept):
            problems.append(f"job {slug}: {len(emails)} result emails for {len(kept)} revisions")
    return problems


def stages_consistent(held: Held) -> list[str]:
    """Closed, the workflow completed, the projection's seq the timeline's length, seqs 1..n."""
    problems = []
    for slug, job in held.jobs.items():
        seqs = [r.seq for r in held.timeline[slug]]
        if job.stage != "closed" or held.workflows[slug] != "COMPLETED":
            problems.append(f"job {slug}: stage {job.stage}, workflow {held.workflows[slug]}")
        if job.seq != len(seqs) or seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"job {slug}: projection seq {job.seq}, timeline seqs {seqs}")
    return problems


def provider_copies(
    messages: list[OutboxMessage], sendgrid: FakeSendGrid, twilio: FakeTwilio
) -> dict[int, int]:
    """How many copies of each message the providers accepted. An email carries its outbox key
    (as test_exactly_once counts); an SMS does not (Twilio takes none), so it is told apart by
    its number and text (one phone per job). -n: n SMS of one job with the same text."""
    sms_sent = Counter((m["To"], m["Body"]) for m in twilio.messages)
    sms_rows = Counter((m.to, m.body) for m in messages if m.channel == "sms")
    copies = {}
    for message in messages:
        assert message.id is not None
        if message.channel == "email":
            copies[message.id] = len(sendgrid.mails_for(message.idempotency_key))
        else:
            same = sms_rows[(message.to, message.body)]
            copies[message.id] = sms_sent[(message.to, message.body)] if same == 1 else -same
    return copies


def messages_once(held: Held, sendgrid: FakeSendGrid, twilio: FakeTwilio) -> list[str]:
    """No message stuck, none sent twice, nothing sent the outbox does not know; one in doubt
    says so, in the outbox and on its job."""
    problems = []
    copies = provider_copies(held.messages, sendgrid, twilio)
    for message in held.messages:
        assert message.id is not None
        what = f"message {message.id} ({message.idempotency_key}, {message.status})"
        n = copies[message.id]
        if message.status in {"queued", "sending"}:
            problems.append(f"{what} is stuck")
        elif n < 0:
            problems.append(f"{what}: {-n} SMS of one job with the same text")
        elif message.status == "sent" and n != 1:
            problems.append(f"{what} reached its provider {n} time(s)")
        elif message.status == IN_DOUBT and (
            n > 1 or not message.error or "check with the provider" not in message.error
        ):
            problems.append(f"{what}: {n} copies, error {message.error!r}")
        elif message.status not in {"sent", IN_DOUBT}:
            problems.append(f"{what}: {message.error}")
    accepted = len(sendgrid.accepted) + len(twilio.accepted)
    if accepted != sum(copies.values()):
        problems.append(
            f"the providers accepted {accepted} messages, {sum(copies.values())} of them known"
        )
    for slug, view in held.views.items():
        in_doubt = sum(1 for m in held.messages if m.job_slug == slug and m.status == IN_DOUBT)
        if view["messages_in_doubt"] != in_doubt:
            problems.append(
                f"job {slug} shows {view['messages_in_doubt']} in doubt, not {in_doubt}"
            )
    return problems


async def test_lifecycles_survive_killed_workers_and_apis(
    chaos_db: Database,
    temporal_env: WorkflowEnvironment,
    sendgrid_server: FakeSendGrid,
    twilio_server: FakeTwilio,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    seed = int(SEED) if SEED else random.randrange(2**32)
    rng = random.Random(seed)
    db = chaos_db
    temporal = temporal_env.client
    run = uuid.uuid4().hex[:6]
    tokens = await add_users(db)
    async with db.session() as session:
        await settings_store.save(session, RESULTING_NAME, RESULTING, "chaos")
    settings = {
        "environment": "test",
        "data_dir": str(tmp_path / "data"),
        "database_url": db.url,
        "temporal_address": temporal.service_client.config.target_host,
        "task_queue": f"chaos-{run}",
        "log_level": "WARNING",
        "provider_timeout": "10",
        "api_event_timeout_s": str(API_EVENT_TIMEOUT_S),
        **provider_settings(sendgrid_server, twilio_server),
    }
    env = {f"JOBLINE_{name.upper()}": value for name, value in settings.items()}
    stack = ChaosStack(db, env, tmp_path / "api.log", free_port())
    tally = Tally()
    total = LIFECYCLES * (2 + len(lifecycle_events(datetime.now(UTC)))) + LIFECYCLES * 3 // 2
    slugs: list[str] = []

    async def one(index: int) -> None:
        slugs.append(await lifecycle(client, index, run))

    async with worker_processes(settings, tmp_path / "worker.log") as start_worker:
        worker = await start_worker()
        await stack.start_api()
        client = RetryingClient(stack.url, tokens, tally, rng)
        try:
            async with asyncio.TaskGroup() as group:
                lifecycles = group.create_task(run_pool(LIFECYCLES, CONCURRENCY, one))
                group.create_task(chaos(stack, start_worker, worker, tally, total, rng))
            ran_s = lifecycles.result()
            settled_s = await settle(db, temporal, slugs)
            held = await what_is_held(db, temporal, client, tokens["olga"])
        finally:
            await client.http.aclose()
            await stack.kill_api()

    # The PDF pool's processes die with their worker, even a killed one.
    _, alive = psutil.wait_procs(tally.orphans, timeout=10)
    problems = [
        *tally.refused,
        *(f"process {p.pid} of a killed worker still runs: {p.cmdline()}" for p in alive),
        *events_once(held, tally, slugs),
        *stages_consistent(held),
        *results_once(held, tally),
        *messages_once(held, sendgrid_server, twilio_server),
    ]
    copies = provider_copies(held.messages, sendgrid_server, twilio_server)
    in_doubt = [
        f"{m.idempotency_key} (the provider has {copies[m.id or 0]})"
        for m in held.messages
        if m.status == IN_DOUBT
    ]
    print(
        f"\nchaos (seed {seed}): {len(slugs)} lifecycles, {len(tally.events)} events "
        f"and {len(tally.results)} results "
        f"({held.rows} timeline rows); kills {', '.join(tally.kills)}; "
        f"retries {dict(tally.retries)}; messages {dict(Counter(m.status for m in held.messages))}"
        f" ({len(sendgrid_server.accepted)} emails and {len(twilio_server.accepted)} SMS taken "
        f"by the providers); ran {ran_s:.0f} s, settled in {settled_s:.0f} s, "
        f"{time.monotonic() - began:.0f} s in all; {len(tally.orphans)} children of killed "
        f"workers, {len(alive)} left; in doubt: {', '.join(in_doubt) or 'none'}"
    )
    assert not problems, "\n".join(problems) + f"\nlogs: {tmp_path}"
