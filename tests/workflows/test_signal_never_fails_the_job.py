"""A signal never fails a job: an event from an integration whose job number cannot be allocated
(the database refuses the write for longer than a local activity retries) waits for the database
and is applied once it is back, while the workflow keeps running."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from models.lifecycle import Stage
from models.messages import ALLOCATE_JOB_NUMBER, EventRequest
from tests.fakes.providers import wait_until
from tests.workflows.test_durability import OLGA, Job, _fresh_sqlite, event
from worker import build_worker
from workflows.job import ONE_WRITER_WRITE_DEADLINE, JobWorkflow


async def test_a_signal_whose_number_allocation_fails_waits_and_applies(
    temporal_client, tmp_path: Path
) -> None:
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    queue = f"signal-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(temporal_client, db, queue):
            job = Job(temporal_client, queue, customer)
            await job.create()
            async with db.engine.begin() as connection:  # job numbers cannot be allocated now
                await connection.execute(text("ALTER TABLE job_numbers RENAME TO numbers_away"))

            dispatch = EventRequest(
                event=event("emergency_dispatch", notes="Gas smell"), actor=OLGA
            )
            await job.handle.signal(JobWorkflow.event_signal, dispatch)

            # Past the local activity's own retries (the ActivityError used to fail the run): the
            # workflow has gone on to the activity that waits for the database, which has been
            # refused too. Watched for rather than slept through: its retries back off (1, 2,
            # 4, ... s), and a fixed wait put the next one up to 30 s after the database is back.
            async def refused_while_waiting() -> bool:
                pending = (await job.handle.describe()).raw_description.pending_activities
                return any(
                    a.activity_type.name == ALLOCATE_JOB_NUMBER and a.attempt >= 2 for a in pending
                )

            await wait_until(
                refused_while_waiting,
                within=ONE_WRITER_WRITE_DEADLINE.total_seconds() + 30,
                what="the number allocation waiting for the database, refused once",
            )
            described = await job.handle.describe()
            assert described.status == WorkflowExecutionStatus.RUNNING
            assert (await job.state()).stage == Stage.lead  # not applied yet: it waits

            async with db.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE numbers_away RENAME TO job_numbers"))

            async def applied() -> bool:
                return (await job.state()).number is not None

            await wait_until(applied, within=90, what="the dispatch applied with a number")
            state = await job.state()
            assert state.stage == Stage.ready_to_schedule and state.seq == 2
            assert (await job.handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await db.dispose()
