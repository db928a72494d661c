"""Writes each job's projection and timeline, and hands out job numbers.

Both activities are idempotent: the projection only ever moves a job forward (its row is updated
only by a higher event sequence number), timeline rows are keyed by (job, seq), and a job keeps
the number it was first given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from temporalio import activity

from core.db import Database
from models.lifecycle import JobState
from models.messages import ALLOCATE_JOB_NUMBER, PROJECT_JOB, ProjectionInput
from models.tables import Job, JobEvent, JobNumber


def job_row(state: JobState) -> dict[str, Any]:
    assert state.stage is not None and state.created_at is not None
    return {
        "slug": state.slug,
        "seq": state.seq,
        "number": state.number,
        "title": state.title,
        "client_id": state.client.id,
        "client_name": state.client.name,
        "stage": state.stage.value,
        "milestone": state.milestone.value if state.milestone else "",
        "owner": state.owner,
        "assigned_tech": state.schedule.technician if state.schedule else None,
        "priority": state.priority,
        "waiting_on": state.waiting_on,
        "stuck": False,
        "contract_amount": state.contract_amount,
        "created_at": state.created_at,
        "updated_at": datetime.now(UTC),
        "stage_entered_at": state.stage_entered_at or state.created_at,
        "next_reminder_at": None,
        "state": state.model_dump(mode="json"),
    }


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(table)

    @activity.defn(name=PROJECT_JOB)
    async def project_job(self, input: ProjectionInput) -> None:
        row = job_row(input.state)
        upsert = self._insert(Job).values(**row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["slug"],
            set_={k: upsert.excluded[k] for k in row if k != "slug"},
            # A retried or late write carries an older seq and must never move the job back.
            where=Job.seq < upsert.excluded.seq,
        )
        async with self.db.session() as session:
            await session.execute(upsert)
            for record in input.records:
                timeline = self._insert(JobEvent).values(
                    job_slug=input.state.slug,
                    seq=record.seq,
                    type=record.type,
                    actor=record.actor.username,
                    actor_role=record.actor.role.value,
                    at=record.at,
                    summary=record.summary[:500],
                    payload=record.payload,
                )
                await session.execute(timeline.on_conflict_do_nothing())

    @activity.defn(name=ALLOCATE_JOB_NUMBER)
    async def allocate_job_number(self, job_slug: str) -> int:
        async with self.db.session() as session:
            claim = self._insert(JobNumber).values(job_slug=job_slug, assigned_at=datetime.now(UTC))
            await session.execute(claim.on_conflict_do_nothing(index_elements=["job_slug"]))
            number = await session.scalar(
                select(JobNumber.number).where(JobNumber.job_slug == job_slug)
            )
        assert number is not None
        return number
