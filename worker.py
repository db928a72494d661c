"""The Jobline worker: runs the job workflows and their activities on the task queue.

`python worker.py` or `jobline worker`. Workers hold no state of their own; run as many as the
load needs on the same task queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.closeout import CloseoutActivities
from activities.documents import DocumentActivities, default_renderer
from activities.messages import MessageActivities
from activities.projection import ProjectionActivities
from activities.resulting import ResultingActivities
from core.config import Settings
from core.db import Database
from core.temporal import connect
from workflows.job import JobWorkflow
from workflows.message_resend import MessageResendWorkflow
from workflows.resulting import JobResultWorkflow
from workflows.runner import workflow_runner

log = logging.getLogger("jobline.worker")
# How long a stopping worker lets running activities finish before cancelling them, and the
# little more it allows itself to hand them back before it exits regardless.
DRAIN_LIMIT = timedelta(seconds=10)
MARGIN = timedelta(seconds=3)


def activities_for(db: Database, settings: Settings) -> Sequence[Any]:
    projection = ProjectionActivities(db)
    messages = MessageActivities(db, settings)
    documents = DocumentActivities(db)
    closeout = CloseoutActivities(db, settings)
    resulting = ResultingActivities(db, settings)
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
        resulting.load_resulting_settings,
        resulting.record_result,
        resulting.render_result_document,
        resulting.attach_result_document,
        resulting.queue_result_email,
        resulting.mark_resulting_due,
        resulting.flag_unresulted,
        resulting.start_resulting_clock,
    ]


def build_worker(
    client: Client, db: Database, task_queue: str, settings: Settings | None = None
) -> Worker:
    settings = settings or Settings()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[JobWorkflow, MessageResendWorkflow, JobResultWorkflow],
        activities=activities_for(db, settings),
        workflow_runner=workflow_runner(settings.worker_sandbox),
        # Nearly every activity holds a database connection for a moment. Running more at once
        # than the pool has connections only queues them inside the worker, where their
        # timeouts run out (issue 13): the rest wait in Temporal's task queue instead.
        max_concurrent_local_activities=db.connections,
        max_concurrent_activities=2 * db.connections,
        max_cached_workflows=settings.worker_workflow_cache,
        graceful_shutdown_timeout=DRAIN_LIMIT,
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
    # SIGTERM (Kubernetes, compose) and Ctrl-C both drain: running activities get DRAIN_LIMIT to
    # finish, then are cancelled (Temporal retries them elsewhere). A worker that has not stopped
    # by then, or a second signal, stops at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    # The PDF processes start (and load their fonts) while the worker polls, so the first
    # technician to tap "complete" does not wait for them.
    renderer = default_renderer()
    renderer.idle_seconds = settings.worker_pdf_idle_seconds or None
    warming = asyncio.ensure_future(renderer.warm())
    running = asyncio.ensure_future(worker.run())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            log.info("worker draining (at most %s s)", DRAIN_LIMIT.total_seconds())
            shutdown = asyncio.ensure_future(worker.shutdown())
            done, _ = await asyncio.wait({running}, timeout=(DRAIN_LIMIT + MARGIN).total_seconds())
            if not done:
                _stop_now("the worker did not drain in time; stopping without it")
            shutdown.cancel()
        running.result()
    finally:
        stopping.cancel()
        warming.cancel()
        default_renderer().close()
        await db.dispose()
    log.info("worker stopped")


def _on_signal(stop: asyncio.Event) -> None:
    if stop.is_set():
        _stop_now("second signal: stopping without draining")
    stop.set()


def _stop_now(why: str) -> NoReturn:
    """Exit without waiting for anything: what was running is retried by the next worker, as
    after a crash, and the PDF processes end with this one (they watch their parent)."""
    log.warning(why)
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(run_worker(settings))
