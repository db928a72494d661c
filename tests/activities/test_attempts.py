"""An activity knows its last attempt from the retry policy it was scheduled with (issue 8, item
13): the limit is written once, in the workflow, and the real server hands it to the activity."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.attempts import is_last_attempt


def _last(attempt: int, policy: RetryPolicy | None) -> bool:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, retry_policy=policy)
    return bool(env.run(is_last_attempt))


def test_the_last_attempt_is_the_policys_maximum() -> None:
    three = RetryPolicy(maximum_attempts=3)
    assert [_last(n, three) for n in (1, 2, 3)] == [False, False, True]
    assert not _last(50, RetryPolicy(maximum_attempts=0))  # no limit: never the last
    assert not _last(50, None)  # a server that does not say
    assert not is_last_attempt()  # outside an activity


@activity.defn(name="attempts_seen")
async def attempts_seen() -> list[bool]:
    if not is_last_attempt():
        raise RuntimeError("not the last attempt yet: fail, to be retried")
    return [True, activity.info().attempt == 2]


@workflow.defn(name="AttemptsSeen", sandboxed=False)
class AttemptsSeen:
    @workflow.run
    async def run(self) -> list[bool]:
        return await workflow.execute_activity(
            attempts_seen,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=10), maximum_attempts=2
            ),
        )


async def test_the_server_hands_the_activity_its_retry_policy(temporal_client: Client) -> None:
    queue = f"attempts-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[AttemptsSeen],
        activities=[attempts_seen],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        seen = await temporal_client.execute_workflow(AttemptsSeen.run, id=queue, task_queue=queue)
    assert seen == [True, True]
