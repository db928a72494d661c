"""The time-skipping helpers' own promise: a job terminated at a test's end leaves the test
server's clock free for the next test.

The server holds its clock while an activity runs. A workflow terminated under a running activity
never lets go of it (the activity's completion is refused), and every later sleep waits out its
deadline in real time: CI saw `test_stuck_after_the_stage_limit` fail that way ("Timeout
expired") after the test before it ended with a document still rendering.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.workflows.time_skipping import sleep, terminate_when_idle, time_skipping_env

RENDERING = timedelta(seconds=1.5)
# Set by the activity as it starts (it runs on the test's own event loop).
_rendering: asyncio.Event | None = None


@activity.defn
async def render_for_a_while() -> None:
    if _rendering is not None:
        _rendering.set()
    await asyncio.sleep(RENDERING.total_seconds())


@workflow.defn
class RendersThenWaits:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            render_for_a_while, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.sleep(timedelta(days=30))


async def _terminated_mid_activity(env: WorkflowEnvironment, *, wait_for_idle: bool) -> bool:
    """Whether the clock still moves after terminating a workflow whose activity had started."""
    global _rendering
    _rendering = asyncio.Event()
    task_queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[RendersThenWaits],
        activities=[render_for_a_while],
        workflow_runner=UnsandboxedWorkflowRunner(),  # a test's workflow, not Jobline's
    ):
        handle = await env.client.start_workflow(
            RendersThenWaits.run, id=f"ts-{uuid.uuid4().hex}", task_queue=task_queue
        )
        await _rendering.wait()
        if wait_for_idle:
            await terminate_when_idle(env.client, handle.id)
        else:
            await handle.terminate("test over")
        await asyncio.sleep(RENDERING.total_seconds() + 0.5)  # the activity has finished
        # A free clock skips the hour at once; a held one waits out the deadline. A loaded CI
        # machine once took longer than 5 s to answer a free one, so the free case waits longer.
        deadline = timedelta(seconds=60 if wait_for_idle else 5)
        try:
            await sleep(env, timedelta(hours=1), deadline=deadline)
        except RPCError:
            return False
        return True


async def test_a_job_terminated_when_idle_leaves_the_clock_free() -> None:
    async with time_skipping_env() as env:
        assert await _terminated_mid_activity(env, wait_for_idle=True)


async def test_a_job_terminated_under_a_running_activity_holds_the_clock() -> None:
    """The hazard itself, so that a test server that fixes it is noticed (this then fails)."""
    async with time_skipping_env() as env:
        assert not await _terminated_mid_activity(env, wait_for_idle=False)
