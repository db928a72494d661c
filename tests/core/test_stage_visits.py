"""The projection keeps each job's stage visits (core/stage_visits.py), on both databases: one
visit per stage change, ended by the next, the same whether the events come one at a time, in a
batch, or again (a retried write); and the migration's backfill makes the same visits from the
stored timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select

from core.db import Database
from core.projection_store import write_projection
from core.stage_visits import VISITS_OF_TIMELINES, backfill, bucket_of
from models import events as ev
from models import lifecycle
from models.lifecycle import Actor, ClientSnapshot, JobState, Role
from models.messages import ProjectionInput, TimelineRecord
from models.tables import Client, JobStageVisit

OFFICE = Actor(username="olga", role=Role.office)
START = datetime(2030, 1, 7, 9, tzinfo=UTC)
STEPS: list[ev._Event] = [
    ev.JobCreated(client_id=1, title="No cooling", source="incoming_call"),
    ev.OwnerAssigned(owner="sam"),  # stays a lead: no new visit
    ev.LeadQualified(),
    ev.QuoteDrafted(lines=[ev.QuoteLine(description="Fan", quantity=1, unit_price=420)]),
    ev.QuoteSent(),
    ev.NoteAdded(text="Customer will call back"),  # no stage change
    ev.QuoteApproved(),
]


async def _timeline(db: Database) -> tuple[ClientSnapshot, list[tuple[JobState, TimelineRecord]]]:
    """Each step's state and record, an hour apart, as the workflow makes them."""
    async with db.session() as session:
        client = Client(name="Visits Client")
        session.add(client)
        await session.flush()
        assert client.id is not None
        snapshot = ClientSnapshot(id=client.id, name=client.name, email="visits@example.com")
    state = lifecycle.new_job(f"v{uuid.uuid4().hex[:10]}", snapshot)
    made = []
    for n, step in enumerate(STEPS):
        at = START + timedelta(hours=n)
        if isinstance(step, ev.JobCreated):
            step = step.model_copy(update={"client_id": snapshot.id})
        decision = lifecycle.apply(state, step, OFFICE, at)
        assert isinstance(decision, lifecycle.Accepted), decision
        state = decision.state.model_copy(update={"seq": state.seq + 1})
        assert state.stage is not None
        record = TimelineRecord(
            seq=state.seq,
            type=step.type,
            actor=OFFICE,
            at=at,
            summary=step.type,
            payload={},
            stage=state.stage.value,
        )
        made.append((state, record))
    return snapshot, made


async def _write(db: Database, state: JobState, records: list[TimelineRecord], n: int) -> None:
    projection = ProjectionInput(state=state, records=records, position=n, at=records[-1].at)
    assert await db.run_in_one_go(lambda session: write_projection(session, db.dialect, projection))


async def _visits(db: Database, slug: str) -> list[tuple[str, datetime, datetime | None]]:
    async with db.session() as session:
        rows = await session.exec(
            select(JobStageVisit)
            .where(JobStageVisit.job_slug == slug)
            .order_by(col(JobStageVisit.entered_at))
        )
        return [(v.stage, v.entered_at, v.left_at) for v in rows.all()]


def _hour(n: int) -> datetime:
    return START + timedelta(hours=n)


EXPECTED = [
    ("lead", _hour(0), _hour(2)),
    ("prospect", _hour(2), _hour(3)),
    ("quoting", _hour(3), _hour(4)),
    ("quote_sent", _hour(4), _hour(6)),
    ("approved", _hour(6), None),
]


async def test_one_event_at_a_time_and_retried(database: Database) -> None:
    _, made = await _timeline(database)
    slug = made[0][0].slug
    for n, (state, record) in enumerate(made, start=1):
        await _write(database, state, [record], n)
        if n == 5:  # a retried write of the same event changes nothing
            await _write(database, state, [record], n)
    assert await _visits(database, slug) == EXPECTED


async def test_a_batch_of_events_and_its_retry(database: Database) -> None:
    _, made = await _timeline(database)
    slug = made[0][0].slug
    await _write(database, made[1][0], [r for _, r in made[:2]], 1)
    # The rest at once (a write that failed and caught up), then the same again.
    await _write(database, made[-1][0], [r for _, r in made[2:]], 2)
    await _write(database, made[-1][0], [r for _, r in made[2:]], 2)
    assert await _visits(database, slug) == EXPECTED


async def test_a_finished_visit_keeps_its_length_and_bucket(database: Database) -> None:
    _, made = await _timeline(database)
    slug = made[0][0].slug
    for n, (state, record) in enumerate(made, start=1):
        await _write(database, state, [record], n)
    async with database.session() as session:
        rows = (
            await session.exec(
                select(JobStageVisit)
                .where(JobStageVisit.job_slug == slug)
                .order_by(col(JobStageVisit.entered_at))
            )
        ).all()
        lengths = [(v.seconds, v.bucket) for v in rows]
        # Measured again by the backfill (as for timelines stored before the visits were kept),
        # the same lengths and buckets.
        await session.execute(text("DELETE FROM job_stage_visits WHERE job_slug = :s"), {"s": slug})
        await (await session.connection()).run_sync(backfill)
        again = (
            await session.exec(
                select(JobStageVisit.seconds, JobStageVisit.bucket)
                .where(JobStageVisit.job_slug == slug)
                .order_by(col(JobStageVisit.entered_at))
            )
        ).all()
    hours = [2, 1, 1, 2]
    assert lengths == [(h * 3600.0, bucket_of(h * 3600)) for h in hours] + [(None, None)]
    assert [tuple(row) for row in again] == lengths


async def test_the_backfill_makes_the_same_visits_from_the_timeline(database: Database) -> None:
    _, made = await _timeline(database)
    slug = made[0][0].slug
    # Records of a run from before event stages: only the latest gets the job's stage.
    unstaged = [r.model_copy(update={"stage": None}) for _, r in made]
    await _write(database, made[-1][0], unstaged, 1)
    assert await _visits(database, slug) == [("approved", _hour(6), None)]
    _, staged = await _timeline(database)
    staged_slug = staged[0][0].slug
    for n, (state, record) in enumerate(staged, start=1):
        await _write(database, state, [record], n)
    async with database.session() as session:
        backfilled: list[Any] = (
            await session.execute(
                text(f"SELECT stage, entered_at, left_at FROM ({VISITS_OF_TIMELINES}) AS v "
                     "WHERE job_slug = :slug ORDER BY entered_at"),
                {"slug": staged_slug},
            )
        ).all()  # fmt: skip

    def aware(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite hands raw SQL's timestamps back as text
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    assert [(s, aware(e), aware(left)) for s, e, left in backfilled] == EXPECTED
