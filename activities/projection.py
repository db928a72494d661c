"""Writes each job's projection and timeline, and hands out job numbers.

Both activities are idempotent: the projection only ever moves a job forward (see
core/projection_store.py), and a job keeps the number it was first given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from core.db import Database, insert
from core.projection_store import already_written, write_projection
from models.messages import ALLOCATE_JOB_NUMBER, PROJECT_JOB, ProjectionInput
from models.tables import JobNumber


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=PROJECT_JOB)
    async def project_job(self, input: ProjectionInput) -> None:
        if input.only_if_missing and await self.db.run(
            lambda session: already_written(session, input), write=False
        ):
            return

        await self.db.run_in_one_go(
            lambda session: write_projection(session, self.db.dialect, input)
        )

    @activity.defn(name=ALLOCATE_JOB_NUMBER)
    async def allocate_job_number(self, job_slug: str) -> int:
        async def allocate(session: AsyncSession) -> int | None:
            claim = insert(self.db.dialect, JobNumber).values(
                job_slug=job_slug, assigned_at=datetime.now(UTC)
            )
            await session.execute(claim.on_conflict_do_nothing(index_elements=["job_slug"]))
            return await session.scalar(
                select(JobNumber.number).where(JobNumber.job_slug == job_slug)
            )

        number = await self.db.run(allocate)
        assert number is not None
        return number
