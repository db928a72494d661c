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
- every job is closed, its workflow completed, its projection's seq the number of its timeline
  rows, numbered 1..n;
- no message reached a provider twice; one in `unknown` says so on the job and in the outbox;
- no message is left `queued` or `sending`.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlmodel import col, select
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.idempotency import HEADER, Idempotency
from api.users.service import add_token, create_user
from bench.events import USERS, job_body, lifecycle_events, run_pool
from core.db import Database
from core.migrate import upgrade
from core.temporal import workflow_id
from models import events as ev
from models.outbox import IN_DOUBT
from models.tables import Client, Job, JobEvent, OutboxMessage
from tests.activities.test_exactly_once import provider_settings, worker_processes
from tests.conftest import _drop_postgres_database, _new_postgres_database
from tests.fakes.api_process import ApiProcess, free_port, start_api
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FakeSendGrid,
    FakeTwilio,
    sendgrid_server_fixture,
    twilio_server_fixture,
    wait_until,
)

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

    async def start_api(self) -> None:
        command = [sys.executable, "-m", "cli.main", "api"]
        self.api = await asyncio.to_thread(
            start_api, self.env, self.api_log, command=command, port=self.port
        )

    async def kill_api(self) -> None:
        assert self.api is not None
        self.api.process.kill()
        await asyncio.to_thread(self.api.process.wait)


async def fresh_database(backend: str, tmp_path: Path) -> tuple[Database, Callable[[], Any]]:
    """A new, migrated database, and what removes it."""
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'chaos.db'}")

        async def dispose() -> None:
            await db.dispose()
    else:
        name, url = await _new_postgres_database()
        db = Database(url)

        async def dispose() -> None:
            await db.dispose()
            await _drop_postgres_database(name)

    await upgrade(db)
    return db, dispose


async def add_users(db: Database) -> dict[str, str]:
    """bench/events.py's people, by username, with their tokens."""
    tokens = {}
    async with db.session() as session:
        for role, username in USERS.items():
            user = await create_user(session, username, role, f"{username}@jobline.test")
            tokens[username] = await add_token(session, user)
    return tokens


@pytest.fixture(params=["sqlite"])
async def chaos_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    db, dispose = await fresh_database(request.param, tmp_path)
    try:
        yield db
    finally:
        await dispose()


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
    return slug


async def chaos(
    stack: ChaosStack,
    start_worker: Callable[[], Any],
    worker: Any,
    tally: Tally,
    total: int,
    rng: random.Random,
) -> None:
    """Kills the worker and the API at random points of the run, restarting each."""
    plan = ["worker"] * rng.randint(*WORKER_KILLS) + ["api"] * rng.randint(*API_KILLS)
    rng.shuffle(plan)
    points = sorted(int(total * rng.uniform(*KILL_SPAN)) for _ in plan)
    for victim, point in zip(plan, points, strict=True):
        await wait_until(
            lambda point=point: tally.done >= point, within=600, what=f"request {point}"
        )
        if victim == "worker":
            await worker.kill()
            await asyncio.sleep(rng.uniform(0, 2))  # nobody polls for a moment
            worker = await start_worker()
        else:
            await stack.kill_api()
            await stack.start_api()
        tally.kills.append(f"{victim}@{tally.done}")


# --- what the system holds afterwards ------------------------------------------------------------


def canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True)


def as_stored(accepted: Accepted) -> tuple[str, str]:
    """(type, payload) of the timeline row this request's event should have written."""
    body = accepted.body if accepted.path != CREATE else {"type": "job_created", **accepted.body}
    event = EVENT_TYPES.validate_python(body)
    return event.type, canonical(event.model_dump(mode="json"))


async def settle(db: Database, temporal: TemporalClient, slugs: list[str]) -> float:
    """Waits (bounded) until no message of these jobs is queued or sending and every job's
    workflow has completed; returns how long that took."""
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
        if not busy and not running:
            return time.monotonic() - started
        if time.monotonic() - started > SETTLE_WITHIN_S:
            return time.monotonic() - started  # the checks below say what is left
        await asyncio.sleep(1)


def provider_copies(
    rows: list[OutboxMessage], sendgrid: FakeSendGrid, twilio: FakeTwilio
) -> dict[int, int]:
    """How many copies of each message the providers accepted. An email carries its outbox key;
    an SMS does not (Twilio takes none), so it is told apart by its number and text (one phone
    per job)."""
    sms_sent = Counter((m["To"], m["Body"]) for m in twilio.messages)
    sms_rows = Counter((r.to, r.body) for r in rows if r.channel == "sms")
    copies = {}
    for row in rows:
        assert row.id is not None
        if row.channel == "email":
            copies[row.id] = len(sendgrid.mails_for(row.idempotency_key))
        else:
            # Two SMS of one job with the same text cannot be told apart: count them together.
            same = sms_rows[(row.to, row.body)]
            copies[row.id] = sms_sent[(row.to, row.body)] if same == 1 else -same
    return copies


async def test_lifecycles_survive_killed_workers_and_apis(
    chaos_db: Database,
    temporal_env: WorkflowEnvironment,
    sendgrid_server: FakeSendGrid,
    twilio_server: FakeTwilio,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = chaos_db
    temporal = temporal_env.client
    run = uuid.uuid4().hex[:6]
    tokens = await add_users(db)
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
    requests_per_lifecycle = 2 + len(lifecycle_events(datetime.now(UTC)))
    slugs: list[str] = []

    async with worker_processes(settings, tmp_path / "worker.log") as start_worker:
        worker = await start_worker()
        await stack.start_api()
        client = RetryingClient(stack.api.url if stack.api else "", tokens, tally, rng)
        try:

            async def one(index: int) -> None:
                slugs.append(await lifecycle(client, index, run))

            async with asyncio.TaskGroup() as group:
                lifecycles = group.create_task(run_pool(LIFECYCLES, CONCURRENCY, one))
                total = LIFECYCLES * requests_per_lifecycle
                group.create_task(chaos(stack, start_worker, worker, tally, total, rng))
            ran_s = lifecycles.result()
            settled_s = await settle(db, temporal, slugs)
            views = {}
            for slug in slugs:
                response = await client.http.get(
                    f"/api/v1/jobs/{slug}", headers={"Authorization": f"Bearer {tokens['olga']}"}
                )
                assert response.status_code == 200, response.text
                views[slug] = response.json()
        finally:
            await client.http.aclose()
            if stack.api is not None:
                stack.api.process.kill()
                stack.api.process.wait()

    async with db.session() as session:
        jobs = {j.slug: j for j in (await session.exec(select(Job))).all()}
        rows = (await session.exec(select(JobEvent).order_by(col(JobEvent.seq)))).all()
        messages = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        clients = (await session.exec(select(Client))).all()
    timeline: dict[str, list[JobEvent]] = {slug: [] for slug in jobs}
    for row in rows:
        timeline[row.job_slug].append(row)

    problems: list[str] = list(tally.refused)

    # One job and one client per lifecycle: no retried create made a second.
    if sorted(jobs) != sorted(slugs):
        problems.append(f"jobs {sorted(set(jobs) - set(slugs))} were made beyond the lifecycles'")
    if len(clients) != LIFECYCLES:
        problems.append(f"{len(clients)} clients for {LIFECYCLES} lifecycles")

    # Every 2xx event exactly once, and nothing in a timeline nobody was told about.
    told: dict[str, Counter[tuple[str, str]]] = {slug: Counter() for slug in jobs}
    events = [a for a in tally.accepted if a.path.startswith(CREATE)]
    for accepted in events:
        slug = accepted.answer["slug"]
        expected = as_stored(accepted)
        told.setdefault(slug, Counter())[expected] += 1
        mine = [r for r in timeline.get(slug, []) if r.request_id == accepted.update_id]
        found = [(r.type, canonical(r.payload)) for r in mine]
        if found != [expected]:
            problems.append(
                f"job {slug}: {expected[0]} (key {accepted.key}, {accepted.attempts} attempt(s)) "
                f"is in the timeline {len(found)} time(s): {found or 'missing'}"
            )
    for slug, job_rows in timeline.items():
        stored = Counter(
            (r.type, canonical(r.payload)) for r in job_rows if r.actor_role != "system"
        )
        if stored != told[slug]:
            problems.append(
                f"job {slug}: timeline beyond what clients were told: "
                f"{sorted((stored - told[slug]).elements())}; "
                f"missing: {sorted((told[slug] - stored).elements())}"
            )

    # Stages consistent: closed, workflow completed, projection seq = timeline rows = 1..n.
    for slug, job in jobs.items():
        seqs = [r.seq for r in timeline[slug]]
        status = (await temporal.get_workflow_handle(workflow_id(slug)).describe()).status
        if job.stage != "closed" or status != WorkflowExecutionStatus.COMPLETED:
            problems.append(f"job {slug}: stage {job.stage}, workflow {status}")
        if job.seq != len(seqs) or seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"job {slug}: projection seq {job.seq}, timeline seqs {seqs}")

    # No message twice; none stuck; one in doubt is flagged on its job and in the outbox.
    copies = provider_copies(list(messages), sendgrid_server, twilio_server)
    statuses = Counter(m.status for m in messages)
    for message in messages:
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
    accepted_total = len(sendgrid_server.accepted) + len(twilio_server.accepted)
    if accepted_total != sum(copies.values()):
        problems.append(
            f"the providers accepted {accepted_total} messages, of {sum(copies.values())} "
            "the outbox knows"
        )
    for slug, view in views.items():
        in_doubt = sum(1 for m in messages if m.job_slug == slug and m.status == IN_DOUBT)
        if view["messages_in_doubt"] != in_doubt:
            problems.append(
                f"job {slug}: shows {view['messages_in_doubt']} in doubt, not {in_doubt}"
            )

    print(
        f"\nchaos (seed {seed}): {len(slugs)} lifecycles, {len(events)} events, "
        f"{len(tally.accepted)} requests with a 2xx; kills {', '.join(tally.kills)}; "
        f"retries {dict(tally.retries)}; messages {dict(statuses)} "
        f"({accepted_total} accepted by the providers); "
        f"ran {ran_s:.0f} s, settled in {settled_s:.0f} s, {time.monotonic() - began:.0f} s in all"
    )
    assert not problems, "\n".join(problems) + f"\nlogs: {tmp_path}"
