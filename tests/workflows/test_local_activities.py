"""Local activities one at a time (workflows/local_activities.py), against a real dev server.

Two local activities side by side that outlast their workflow task replay in another order than
they ran. Live, each result comes in an activation of its own as it finishes, and the code after
it runs there; replayed, the SDK hands both back in one activation. When the code after the
first result starts its work from a task of its own (as the job workflow writes its job view)
and the code after the second starts it at once (as it schedules a message's delivery), the
replay issues them the other way round and fails as nondeterministic: in the job workflow, a job
stuck until a fix is deployed (found by bench/reminder_hour.py). A small workflow with that
pattern shows the hazard, and that it replays through `LocalActivities(one_at_a_time=True)`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from workflows.local_activities import LocalActivities

TIMEOUT = timedelta(seconds=10)
# The SDK completes a workflow task that waits on local activities at 80 % of this, and goes on
# in the next one, where both results are recorded (a loaded worker's local activities do so).
TASK_TIMEOUT = timedelta(seconds=1)


@activity.defn(name="test_lookup")
async def lookup(delay: float) -> float:
    await asyncio.sleep(delay)
    return delay


@activity.defn(name="test_write_view")
async def write_view() -> str:
    return "view"


@activity.defn(name="test_deliver")
async def deliver() -> str:
    return "delivered"


@workflow.defn(name="TwoLookups", sandboxed=False)
class TwoLookups:
    @workflow.run
    async def run(self, one_at_a_time: bool) -> list[str]:
        local = LocalActivities(one_at_a_time)

        async def number_then_view() -> str:
            await local.execute(lookup, 1.0, start_to_close_timeout=TIMEOUT)
            view = asyncio.create_task(
                workflow.execute_activity(write_view, start_to_close_timeout=TIMEOUT)
            )
            return await view

        async def queue_then_deliver() -> str:
            await local.execute(lookup, 1.5, start_to_close_timeout=TIMEOUT)
            return await workflow.execute_activity(deliver, start_to_close_timeout=TIMEOUT)

        first = asyncio.create_task(number_then_view())
        second = asyncio.create_task(queue_then_deliver())
        return [await first, await second]


async def _run_and_replay(client: Client, one_at_a_time: bool) -> BaseException | None:
    task_queue = f"local-activities-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[TwoLookups],
        activities=[lookup, write_view, deliver],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            TwoLookups.run,
            one_at_a_time,
            id=task_queue,
            task_queue=task_queue,
            task_timeout=TASK_TIMEOUT,
        )
        assert await handle.result() == ["view", "delivered"]
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[TwoLookups], workflow_runner=UnsandboxedWorkflowRunner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


# The hazard needs the two results to arrive in separate activations live (1.0 s and 1.5 s, the
# task heartbeat at 0.8 s): with other tests on the cores the worker can take both in one and the
# run replays (CI, three xdist workers), so it runs in the serial pass.
@pytest.mark.serial
async def test_local_activities_side_by_side_do_not_replay_as_they_ran(
    temporal_client: Client,
) -> None:
    """The hazard the gate is for: without it, the workflow's own history fails to replay."""
    failure = await _run_and_replay(temporal_client, one_at_a_time=False)
    assert failure is not None and "Nondeterminism" in str(failure), failure


@pytest.mark.parametrize("run", range(2))
async def test_local_activities_one_at_a_time_replay_as_they_ran(
    temporal_client: Client, run: int
) -> None:
    assert await _run_and_replay(temporal_client, one_at_a_time=True) is None
