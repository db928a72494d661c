"""Writes each job's projection and timeline, and hands out job numbers.

Both activities are idempotent: the projection only ever moves a job forward, timeline rows are
keyed by (job, seq), and a job keeps the number it was first given.

"Forward" is ordered by (position, seq): position is where in the workflow's history the write was
made. The projection runs as a local activity, so its write can outlive a workflow task that the
server discards (a signal racing continue-as-new, too many updates at once); the replayed task
writes again from a later position and replaces it, and timeline rows past the job's seq are
removed as leftovers of such a task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from temporalio import activity

from core.db import Database
from models.lifecycle import JobState
from models.messages import ALLOCATE_JOB_NUMBER, PROJECT_JOB, ProjectionInput
from models.tables import Job, JobEvent, JobNumber


def job_row(state: JobState, position: int, at: datetime) -> dict[str, Any]:
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
        "updated_at": at,
        "stage_entered_at": state.stage_entered_at or state.created_at,
        "next_reminder_at": None,
        "state": state.model_dump(mode="json"),
        "position": position,
    }


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(table)

    @activity.defn(name=PROJECT_JOB)
    async def project_job(self, input: ProjectionInput) -> None:
        state = input.state
        at = input.at or (input.records[-1].at if input.records else datetime.now(UTC))
        row = job_row(state, input.position, at)
        upsert = self._insert(Job).values(**row)
        excluded = upsert.excluded
        upsert = upsert.on_conflict_do_update(
            index_elements=["slug"],
            set_={k: excluded[k] for k in row if k != "slug"},
            # A retried or late write is older and must never move the job back.
            where=or_(
                Job.position < excluded.position,
                and_(Job.position == excluded.position, Job.seq <= excluded.seq),
            ),
        ).returning(Job.slug)
        async with self.db.session() as session:
            if (await session.execute(upsert)).first() is None:
                return  # a newer write is already there, with every record of this one
            for record in input.records:
                values = {
                    "type": record.type,
                    "actor": record.actor.username,
                    "actor_role": record.actor.role.value,
                    "at": record.at,
                    "summary": record.summary[:500],
                    "payload": record.payload,
                }
                timeline = self._insert(JobEvent).values(
                    job_slug=state.slug, seq=record.seq, **values
                )
                await session.execute(
                    timeline.on_conflict_do_update(index_elements=["job_slug", "seq"], set_=values)
                )
            await session.execute(
                delete(JobEvent).where(JobEvent.job_slug == state.slug, JobEvent.seq > state.seq)
            )

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
