"""Messages the job workflow sends: queued as outbox rows, then delivered in the background.

Queueing is awaited (a regular activity, so the rows exist before the event's Update returns and
only for events the server has committed; a local activity once an earlier activity has shown the
event committed); delivery runs alongside the job, retried with backoff, and never fails it: a
provider that refuses a message for good marks that message failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.messages import DELIVER_MESSAGE, QUEUE_MESSAGES, QueueMessages

QUEUE_TIMEOUT = timedelta(seconds=30)
QUEUE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
DELIVERY_TIMEOUT = timedelta(seconds=60)
# The activity heartbeats during the provider call: a dead worker is noticed within this.
DELIVERY_HEARTBEAT = timedelta(seconds=10)
# Transient provider trouble (timeouts, 5xx, 429) is retried for a few hours; the activity turns
# the last attempt's failure into a failed message rather than an error.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    maximum_attempts=12,
)


class Deliveries:
    def __init__(self) -> None:
        self._running: set[Any] = set()

    @property
    def idle(self) -> bool:
        return not self._running

    async def send(self, request: QueueMessages, committed: bool = False) -> list[int]:
        """Queue the messages and start their delivery. `committed`: the event is already in
        history (this runs after an activity it started), so the queueing can be a local
        activity, which saves a round trip to the server."""
        queue = workflow.execute_local_activity if committed else workflow.execute_activity
        ids: list[int] = await queue(
            QUEUE_MESSAGES,
            request,
            result_type=list[int],
            start_to_close_timeout=QUEUE_TIMEOUT,
            retry_policy=QUEUE_RETRY,
        )
        for message_id in ids:
            handle = workflow.start_activity(
                DELIVER_MESSAGE,
                message_id,
                result_type=str,
                start_to_close_timeout=DELIVERY_TIMEOUT,
                heartbeat_timeout=DELIVERY_HEARTBEAT,
                retry_policy=DELIVERY_RETRY,
            )
            self.track(handle)
        return ids

    def track(self, work: Any) -> None:
        """Something running alongside the job (an activity handle or a task) that the job
        waits for before it continues as new or completes."""
        self._running.add(work)
        work.add_done_callback(self._running.discard)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        self.track(asyncio.create_task(work))
