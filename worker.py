"""The Jobline worker: runs the job workflows and their activities on the task queue.

`python worker.py` or `jobline worker`. Workers hold no state of their own; run as many as the
load needs on the same task queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.projection import ProjectionActivities
from core.config import Settings
from core.db import Database
from core.temporal import connect
from workflows.job import JobWorkflow

log = logging.getLogger("jobline.worker")


def activities_for(db: Database) -> Sequence[Any]:
    projection = ProjectionActivities(db)
    return [projection.project_job, projection.allocate_job_number]


def build_worker(client: Client, db: Database, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[JobWorkflow],
        activities=activities_for(db),
    )


async def run_worker(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    client = await connect(settings)
    worker = build_worker(client, db, settings.task_queue)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    try:
        await worker.run()
    finally:
        await db.dispose()


if __name__ == "__main__":
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(run_worker(settings))
