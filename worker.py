"""The Jobline worker: runs the job workflows and their activities on the task queue.

`python worker.py` or `jobline worker`. Workers hold no state of their own; run as many as the
load needs on the same task queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.closeout import CloseoutActivities
from activities.documents import DocumentActivities, default_renderer
from activities.messages import MessageActivities
from activities.projection import ProjectionActivities
from core.config import Settings
from core.db import Database
from core.temporal import connect
from workflows.job import JobWorkflow
from workflows.runner import workflow_runner

log = logging.getLogger("jobline.worker")


def activities_for(db: Database, settings: Settings) -> Sequence[Any]:
    projection = ProjectionActivities(db)
    messages = MessageActivities(db, settings)
    documents = DocumentActivities(db)
    closeout = CloseoutActivities(db, settings)
    return [
        projection.project_job,
        projection.allocate_job_number,
        messages.load_communication_settings,
        messages.queue_messages,
        messages.deliver_message,
        documents.render_document,
        closeout.load_job_closeout,
        closeout.sync_portal,
        closeout.post_portal_webhook,
    ]


def build_worker(
    client: Client, db: Database, task_queue: str, settings: Settings | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[JobWorkflow],
        activities=activities_for(db, settings or Settings()),
        workflow_runner=workflow_runner(),
    )


def _runtime(settings: Settings) -> Runtime | None:
    if not settings.worker_metrics_address:
        return None
    metrics = PrometheusConfig(bind_address=settings.worker_metrics_address)
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


async def run_worker(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    client = await connect(settings, runtime=_runtime(settings))
    worker = build_worker(client, db, settings.task_queue, settings)
    # SIGTERM (Kubernetes, compose) and Ctrl-C both drain: running tasks finish, then exit.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.shutdown()))
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    # The PDF processes start (and load their fonts) while the worker polls, so the first
    # technician to tap "complete" does not wait for them.
    warming = asyncio.ensure_future(default_renderer().warm())
    try:
        await worker.run()
    finally:
        warming.cancel()
        default_renderer().close()
        await db.dispose()
    log.info("worker stopped")


if __name__ == "__main__":
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(run_worker(settings))
