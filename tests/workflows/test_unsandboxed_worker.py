"""A worker configured without Temporal's sandbox (`JOBLINE_WORKER_SANDBOX=false`, for its CPU:
issue 12) runs a job from first call to payment as the sandboxed worker does: the history it
makes replays under the sandbox, command for command."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.config import Settings
from models.lifecycle import Stage
from tests.workflows.test_durability import (
    TESS,
    Job,
    _assert_timeline,
    _finish,
    _fresh_sqlite,
    _schedule_and_dispatch,
    _to_approved,
    quote_email_queued,
)
from worker import build_worker
from workflows.job import JobWorkflow
from workflows.runner import workflow_runner


async def test_an_unsandboxed_worker_makes_the_history_the_sandbox_replays(
    temporal_client: Client, tmp_path: Path
) -> None:
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    queue = f"unsandboxed-{uuid.uuid4().hex[:8]}"
    job = Job(temporal_client, queue, customer)
    unsandboxed = Settings(_env_file=None, worker_sandbox=False)  # type: ignore[call-arg]
    try:
        worker = build_worker(temporal_client, db, queue, unsandboxed)
        assert isinstance(worker.config()["workflow_runner"], UnsandboxedWorkflowRunner)
        async with worker:
            await _to_approved(job)
            await quote_email_queued(db, job.slug)
            await _schedule_and_dispatch(job)
            await job.send(TESS, "tech_checked_in")
            await _finish(job)
            summary = await job.result()
        assert summary.stage == Stage.closed
        await _assert_timeline(db, job)
        history = await job.handle.fetch_history()
    finally:
        await db.dispose()

    # The default is the sandbox, and so is every replay.
    assert isinstance(workflow_runner(), SandboxedWorkflowRunner)
    replayer = Replayer(
        workflows=[JobWorkflow],
        data_converter=temporal_client.data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, repr(result.replay_failure)
