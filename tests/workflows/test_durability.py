"""Durability of the job workflow against real servers.

(a) continue-as-new carries the whole job into the next run (a dev server that suggests it after
    40 history events, instead of thousands);
(b) a worker restart in the middle of a job loses nothing: an event sent while no worker runs is
    taken by the next worker, and the job reaches closed;
(c) the projection only moves forward: an older state written after a newer one is ignored and
    repeating a write changes nothing (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import delete
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.projection import ProjectionActivities
from core.db import Database
from core.migrate import upgrade
from core.temporal import workflow_id
from models import events as ev
from models import lifecycle
from models.lifecycle import Accepted, Actor, ClientSnapshot, JobState, Role, Stage
from models.messages import EventRequest, JobInput, JobSummary, ProjectionInput, TimelineRecord
from models.tables import Client as ClientRow
from models.tables import Job as JobRow
from models.tables import JobEvent, OutboxMessage
from models.timeline import describe
from tests.fakes.providers import wait_until
from worker import build_worker
from workflows.job import JobWorkflow
from workflows.runner import workflow_runner

OLGA = Actor(username="olga", role=Role.office)
MIA = Actor(username="mia", role=Role.manager)
SAM = Actor(username="sam", role=Role.sales)
TESS = Actor(username="tess", role=Role.technician)

QUOTE = [
    {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"},
    {"description": "Labour", "quantity": "2.5", "unit_price": "95.00", "sku": "LAB"},
]
QUOTE_TOTAL = Decimal("657.50")
EST = timezone(timedelta(hours=-5))
EVIDENCE = {
    name: True for name in ("documents", "notes", "parts_usage", "photos", "customer_communication")
}

_EVENT = TypeAdapter(ev.Event)


def event(type_: str, **fields: Any) -> ev._Event:
    return _EVENT.validate_python({"type": type_, **fields})


# --- fixtures ----------------------------------------------------------------------------------


async def _fresh_sqlite(path: Path) -> tuple[Database, ClientSnapshot]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    snapshot = await _new_client(db)
    return db, snapshot


async def _new_client(db: Database) -> ClientSnapshot:
    """A client row (the jobs table refers to it) and the snapshot a job carries. Invented data."""
    async with db.session() as session:
        row = ClientRow(
            name=f"Example Client {uuid.uuid4().hex[:6]}",
            email="office@example.com",
            phone="555-0101",
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
    assert row.id is not None
    return ClientSnapshot(id=row.id, name=row.name, email=row.email, phone=row.phone)


# --- driving a job like the API does -------------------------------------------------------


class Job:
    def __init__(self, client: Client, task_queue: str, customer: ClientSnapshot) -> None:
        self.client = client
        self.task_queue = task_queue
        self.customer = customer
        self.slug = f"dur-{uuid.uuid4().hex[:10]}"
        self.id = workflow_id(self.slug)
        self.handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(self.id)
        # seq -> the event the workflow accepted with it (as the caller was told).
        self.accepted: dict[int, ev._Event] = {}

    async def create(self) -> None:
        body = event(
            "job_created", client_id=self.customer.id, title="No cooling", source="incoming_call"
        )
        start = WithStartWorkflowOperation(
            JobWorkflow.run,
            JobInput(slug=self.slug, client=self.customer),
            id=self.id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        outcome = await self.client.execute_update_with_start_workflow(
            JobWorkflow.apply_event,
            EventRequest(event=body, actor=OLGA),
            start_workflow_operation=start,
        )
        assert outcome.seq == 1 and outcome.stage == Stage.lead
        self.accepted[outcome.seq] = body

    async def send(self, actor: Actor, type_: str, **fields: Any) -> Any:
        body = event(type_, **fields)
        outcome = await self.handle.execute_update(
            JobWorkflow.apply_event, EventRequest(event=body, actor=actor)
        )
        assert outcome.seq not in self.accepted, f"seq {outcome.seq} handed out twice"
        self.accepted[outcome.seq] = body
        return outcome

    async def state(self) -> JobState:
        return await self.handle.query(JobWorkflow.job)

    async def result(self) -> JobSummary:
        summary = await asyncio.wait_for(self.handle.result(), timeout=20)
        return JobSummary.model_validate(summary) if isinstance(summary, dict) else summary


async def quote_email_queued(db: Database, slug: str) -> None:
    """Wait for the quote's email, queued once its PDF is made (after `quote_sent` answered)."""

    async def queued() -> bool:
        async with db.session() as session:
            rows = await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.job_slug == slug, OutboxMessage.purpose == "quote"
                )
            )
            return rows.first() is not None

    await wait_until(queued, within=180, what="the quote email with its PDF")


async def _to_approved(job: Job) -> int:
    await job.create()
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent")
    outcome = await job.send(OLGA, "quote_approved")
    assert outcome.stage == Stage.approved and outcome.number is not None
    return outcome.number


async def _schedule_and_dispatch(job: Job) -> None:
    await job.send(
        OLGA,
        "job_scheduled",
        technician="tess",
        window_start=datetime(2030, 1, 14, 9, tzinfo=EST),
        window_end=datetime(2030, 1, 14, 12, tzinfo=EST),
    )
    await job.send(
        OLGA,
        "checklist_completed",
        parts_verified=True,
        check_in_phone="555-0199",
        pricing_discussion="not_allowed",
    )
    await job.send(TESS, "tech_dispatched")


async def _finish(job: Job) -> Any:
    await job.send(TESS, "job_completed", work_performed="Replaced the condenser fan motor")
    await job.send(OLGA, "invoice_sent")
    await job.send(MIA, "evidence_verified", **EVIDENCE)
    outcome = await job.send(OLGA, "payment_recorded", amount=str(QUOTE_TOTAL), method="check")
    assert outcome.stage == Stage.closed
    return outcome


async def _assert_timeline(db: Database, job: Job) -> None:
    """The timeline holds every accepted event exactly once, under the seq it was given."""
    async with db.session() as session:
        rows = await session.exec(
            select(JobEvent).where(JobEvent.job_slug == job.slug).order_by(col(JobEvent.seq))
        )
        timeline = {row.seq: (row.type, row.payload) for row in rows.all()}
    expected = {
        seq: (body.type, body.model_dump(mode="json")) for seq, body in job.accepted.items()
    }
    assert sorted(timeline) == list(range(1, len(expected) + 1))
    assert timeline == expected


async def _job_row(db: Database, slug: str) -> JobRow:
    async with db.session() as session:
        row = await session.get(JobRow, slug, populate_existing=True)
    assert row is not None, slug
    return row


# --- (a) continue-as-new ---------------------------------------------------------------------


async def _runs(client: Client, wid: str, first_run_id: str) -> list[tuple[str, Any]]:
    """Every run of the workflow, in order, by following the continue-as-new chain."""
    runs: list[tuple[str, Any]] = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        runs.append((run_id, history))
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            break
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


async def test_continue_as_new_carries_the_whole_job(
    short_history_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = short_history_env.client
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    task_queue = f"durability-can-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(client, db, task_queue):
            job = Job(client, task_queue, customer)
            await job.create()
            first_run_id = (await job.handle.describe()).run_id
            assert first_run_id is not None
            await job.send(OLGA, "owner_assigned", owner="sam")
            await job.send(SAM, "lead_qualified")
            await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
            await job.send(SAM, "quote_sent")
            # The job continues as new once the quote's PDF and email, made alongside it, are done.
            await quote_email_queued(db, job.slug)
            approved = await job.send(OLGA, "quote_approved")
            number = approved.number
            assert number is not None

            # Notes until the server has suggested continue-as-new and the workflow took it.
            seq = approved.seq
            current_run = first_run_id
            for i in range(30):
                current_run = (await job.handle.describe()).run_id or first_run_id
                if current_run != first_run_id:
                    break
                seq = (await job.send(OLGA, "note_added", text=f"Note {i}")).seq
            assert current_run != first_run_id, "the job never continued as new"

            # The new run holds the whole job: number, quote, sequence.
            state = await job.state()
            assert state.seq == seq and state.stage == Stage.approved
            assert state.number == number
            assert state.quote is not None and state.quote.total == QUOTE_TOTAL
            assert state.quote.version == 1 and len(state.quote.lines) == 2
            assert state.owner == "sam" and state.contract_amount == QUOTE_TOTAL

            # More notes (another continue-as-new or two), then on to closed.
            for i in range(8):
                await job.send(OLGA, "note_added", text=f"Later note {i}")
            await _schedule_and_dispatch(job)
            await job.send(TESS, "tech_checked_in")
            closed = await _finish(job)
            summary = await job.result()
            assert summary.stage == Stage.closed and summary.number == number
            final = await job.state()

        assert final.seq == closed.seq and final.number == number
        assert final.quote is not None and final.quote.total == QUOTE_TOTAL
        assert final.invoice is not None and final.invoice.total == QUOTE_TOTAL
        assert final.paid_in_full

        runs = await _runs(client, job.id, first_run_id)
        assert len(runs) >= 3, f"expected more than one continue-as-new, got {len(runs)} runs"
        # The run seen first after the suggestion (a short history may have continued twice).
        assert current_run in [run_id for run_id, _ in runs[1:]]
        final_event = runs[-1][1].events[-1]
        assert final_event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        # Every run's history replays against the code that made it.
        replayer = Replayer(
            workflows=[JobWorkflow],
            data_converter=pydantic_data_converter,
            workflow_runner=workflow_runner(),
        )
        for _, history in runs:
            await replayer.replay_workflow(history)

        # The projection has the final seq, and the timeline every seq exactly once.
        row = await _job_row(db, job.slug)
        assert row.seq == final.seq and row.stage == "closed" and row.number == number
        assert JobState.model_validate(row.state) == final
        assert len(job.accepted) == final.seq
        await _assert_timeline(db, job)
    finally:
        await db.dispose()


# --- (b) a worker restart ----------------------------------------------------------------


async def test_worker_restart_mid_lifecycle(temporal_client: Client, tmp_path: Path) -> None:
    path = tmp_path / "jobline.db"
    db, customer = await _fresh_sqlite(path)
    task_queue = f"durability-restart-{uuid.uuid4().hex[:8]}"
    job = Job(temporal_client, task_queue, customer)
    try:
        async with build_worker(temporal_client, db, task_queue):
            number = await _to_approved(job)
            await _schedule_and_dispatch(job)
    finally:
        await db.dispose()

    # No worker now: the technician's check-in waits for one instead of failing.
    checking_in = asyncio.create_task(job.send(TESS, "tech_checked_in"))
    await asyncio.sleep(1)
    assert not checking_in.done()

    # A new worker process: its own database engine, the same task queue.
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with build_worker(temporal_client, db, task_queue):
            checked_in = await asyncio.wait_for(checking_in, timeout=20)
            assert checked_in.stage == Stage.on_site and checked_in.number == number
            closed = await _finish(job)
            summary = await job.result()
        assert summary.stage == Stage.closed and summary.number == number
        row = await _job_row(db, job.slug)
        assert row.seq == closed.seq and row.stage == "closed"
        assert len(job.accepted) == closed.seq
        await _assert_timeline(db, job)
    finally:
        checking_in.cancel()
        await db.dispose()


# --- (c) the projection is sequence-guarded ----------------------------------------------


def _states(customer: ClientSnapshot, slug: str) -> list[tuple[JobState, TimelineRecord]]:
    """The job after each of its first events, with the timeline record of that event."""
    at = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    state = lifecycle.new_job(slug, customer)
    steps: list[tuple[Actor, ev._Event]] = [
        (OLGA, event("job_created", client_id=customer.id, title="Leak", source="incoming_call")),
        (OLGA, event("owner_assigned", owner="sam")),
        (SAM, event("lead_qualified")),
        (SAM, event("quote_drafted", lines=QUOTE)),
    ]
    out: list[tuple[JobState, TimelineRecord]] = []
    for seq, (actor, body) in enumerate(steps, start=1):
        at += timedelta(minutes=5)
        decision = lifecycle.apply(state, body, actor, at)
        assert isinstance(decision, Accepted), decision
        state = decision.state.model_copy(update={"seq": seq})
        record = TimelineRecord(
            seq=seq,
            type=body.type,
            actor=actor,
            at=at,
            summary=describe(body),
            payload=body.model_dump(mode="json"),
        )
        out.append((state, record))
    return out


async def _timeline(db: Database, slug: str) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        rows = await session.exec(
            select(JobEvent).where(JobEvent.job_slug == slug).order_by(col(JobEvent.seq))
        )
        return [
            (e.id, e.seq, e.type, e.actor, e.actor_role, e.at, e.summary, e.payload)
            for e in rows.all()
        ]


async def test_projection_is_sequence_guarded_and_idempotent(database: Database) -> None:
    customer = await _new_client(database)
    slug = f"proj-{uuid.uuid4().hex[:10]}"
    (s1, r1), (s2, r2), (s3, r3), (s4, r4) = _states(customer, slug)
    projection = ProjectionActivities(database)

    await projection.project_job(ProjectionInput(state=s1, records=[r1]))
    await projection.project_job(ProjectionInput(state=s3, records=[r2, r3]))
    newer = await _job_row(database, slug)
    assert newer.seq == 3 and newer.stage == "prospect" and newer.owner == "sam"
    timeline = await _timeline(database, slug)
    assert [t[1] for t in timeline] == [1, 2, 3]

    # A late (retried) write of an older state never moves the job back.
    await projection.project_job(ProjectionInput(state=s2, records=[r2]))
    await projection.project_job(ProjectionInput(state=s1, records=[r1]))
    row = await _job_row(database, slug)
    assert row.seq == 3 and row.stage == "prospect"
    assert JobState.model_validate(row.state) == s3
    assert row.updated_at == newer.updated_at
    assert await _timeline(database, slug) == timeline

    # Repeating the newest write is idempotent: same row, same timeline rows.
    await projection.project_job(ProjectionInput(state=s3, records=[r2, r3]))
    row = await _job_row(database, slug)
    assert row.seq == 3 and JobState.model_validate(row.state) == s3
    assert row.updated_at == newer.updated_at
    assert await _timeline(database, slug) == timeline

    # And the next event still moves it forward.
    await projection.project_job(ProjectionInput(state=s4, records=[r4]))
    row = await _job_row(database, slug)
    assert row.seq == 4 and row.stage == "quoting"
    assert JobState.model_validate(row.state) == s4
    assert [t[1] for t in await _timeline(database, slug)] == [1, 2, 3, 4]
    assert (await _timeline(database, slug))[:3] == timeline


async def test_a_replayed_write_removes_the_rows_of_a_discarded_task(database: Database) -> None:
    """A workflow task the server discarded may have written an event the replayed task never
    takes: the next write, from a later position at a lower seq, removes that job's rows past
    its seq, and only that job's."""
    customer = await _new_client(database)
    slug, neighbour = (f"proj-{uuid.uuid4().hex[:10]}" for _ in range(2))
    (s1, r1), (s2, r2), (s3, r3), (s4, r4) = _states(customer, slug)
    projection = ProjectionActivities(database)
    others = _states(customer, neighbour)
    await projection.project_job(
        ProjectionInput(state=others[-1][0], records=[record for _, record in others])
    )
    await projection.project_job(ProjectionInput(state=s4, records=[r1, r2, r3, r4], position=10))
    assert [t[1] for t in await _timeline(database, slug)] == [1, 2, 3, 4]

    await projection.project_job(ProjectionInput(state=s3, records=[r3], position=20))
    row = await _job_row(database, slug)
    assert row.seq == 3 and JobState.model_validate(row.state) == s3
    assert [t[1] for t in await _timeline(database, slug)] == [1, 2, 3]
    assert [t[1] for t in await _timeline(database, neighbour)] == [1, 2, 3, 4]


async def test_a_settle_writes_only_what_the_database_misses(database: Database) -> None:
    """A settle (`only_if_missing`) is a read when the API wrote everything, and a write when it
    did not: a record missing, or a state that is not the one stored."""
    customer = await _new_client(database)
    slug = f"settle-{uuid.uuid4().hex[:10]}"
    (s1, r1), (s2, r2), (s3, r3), _ = _states(customer, slug)
    projection = ProjectionActivities(database)
    await projection.project_job(ProjectionInput(state=s2, records=[r1, r2], position=10))

    # Everything there already: nothing is written (the position stays the API's).
    await projection.project_job(
        ProjectionInput(state=s2, records=[r1, r2], position=20, only_if_missing=True)
    )
    assert (await _job_row(database, slug)).position == 10

    # The API wrote only the last of two events (the one before was lost with its API).
    await projection.project_job(ProjectionInput(state=s3, records=[r3], position=30))
    await projection.project_job(
        ProjectionInput(state=s3, records=[r3], position=31, only_if_missing=True)
    )
    assert (await _job_row(database, slug)).position == 30
    async with database.session() as session:
        await session.execute(delete(JobEvent).where(JobEvent.job_slug == slug, JobEvent.seq == 2))
    await projection.project_job(
        ProjectionInput(state=s3, records=[r2, r3], position=40, only_if_missing=True)
    )
    assert [t[1] for t in await _timeline(database, slug)] == [1, 2, 3]
    assert (await _job_row(database, slug)).position == 40

    # A stored state that is not this one (written from a task the server discarded) is
    # replaced, even at the same seq.
    other = s3.model_copy(update={"title": "Written by a discarded task"})
    await projection.project_job(ProjectionInput(state=other, records=[r3], position=50))
    await projection.project_job(
        ProjectionInput(state=s3, records=[r3], position=60, only_if_missing=True)
    )
    row = await _job_row(database, slug)
    assert row.position == 60 and JobState.model_validate(row.state) == s3

    # Behind a newer write (a later position) a settle writes nothing, records missing or not:
    # that write carried them, and an older one would be turned away all the same.
    async with database.session() as session:
        await session.execute(delete(JobEvent).where(JobEvent.job_slug == slug, JobEvent.seq == 2))
    await projection.project_job(
        ProjectionInput(state=s2, records=[r2], position=55, only_if_missing=True)
    )
    assert [t[1] for t in await _timeline(database, slug)] == [1, 3]
    assert (await _job_row(database, slug)).position == 60


async def test_an_answered_event_the_api_never_wrote_is_written_when_the_job_settles(
    temporal_client: Client, tmp_path: Path
) -> None:
    """Answer-first: the Update's answer carries the view for the API to write. Here no API
    writes it (as if it died before its write): a few seconds after the job's last event the
    settle writes every event, while the job stays open."""
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    task_queue = f"durability-settle-{uuid.uuid4().hex[:8]}"
    job = Job(temporal_client, task_queue, customer)
    try:
        async with build_worker(temporal_client, db, task_queue):
            await job.create()
            await job.send(OLGA, "owner_assigned", owner="sam")
            outcome = await job.send(SAM, "lead_qualified")
            assert outcome.projection is not None  # the view handed to the API

            async def written() -> bool:
                async with db.session() as session:
                    row = await session.get(JobRow, job.slug, populate_existing=True)
                return row is not None and row.seq == outcome.seq

            await wait_until(written, within=30, what="the settle's write of the job view")
            assert (await job.state()).stage not in lifecycle.FINAL_STAGES
            await _assert_timeline(db, job)
    finally:
        await db.dispose()


async def test_concurrent_events_leave_a_true_timeline(
    temporal_client: Client, tmp_path: Path
) -> None:
    """Bursts of updates and signals at one job — more updates than the server keeps in flight, so
    some workflow tasks are discarded after their local projection write ran — still leave a
    timeline holding exactly the accepted events, each at the seq its caller was told."""
    db, customer = await _fresh_sqlite(tmp_path / "burst.db")
    queue = f"burst-{uuid.uuid4().hex[:8]}"
    told: dict[str, int] = {}
    async with build_worker(temporal_client, db, queue):
        job = Job(temporal_client, queue, customer)
        await job.create()
        for burst in range(3):

            async def update(i: int, burst: int = burst) -> None:
                text = f"b{burst}-u{i}"
                # An update the server fails must simply not show up in the timeline.
                with contextlib.suppress(Exception):
                    told[text] = (await job.send(OLGA, "note_added", text=text)).seq

            signal = EventRequest(event=event("note_added", text=f"b{burst}-sig"), actor=OLGA)
            await asyncio.gather(
                *(update(i) for i in range(14)), job.handle.signal(JobWorkflow.event_signal, signal)
            )
        await job.handle.signal(JobWorkflow.refresh_projection)
        live = await job.state()
        for _ in range(50):
            row = await _job_row(db, job.slug)
            if row.seq == live.seq and row.position > 0:
                break
            await asyncio.sleep(0.1)
    timeline = {t[1]: t[7].get("text") for t in await _timeline(db, job.slug)}
    assert sorted(timeline) == list(range(1, live.seq + 1))
    wrong = {
        seq: (text, timeline.get(seq)) for text, seq in told.items() if timeline.get(seq) != text
    }
    assert not wrong, f"seq: (told, stored) {wrong}; timeline {timeline}"
    assert JobState.model_validate((await _job_row(db, job.slug)).state) == live
    await db.dispose()
