"""Messages the job workflow sends: queued as outbox rows, then delivered in the background.

Queueing is awaited (a regular activity, so the rows exist before the event's Update returns and
only for events the server has committed; a local activity once an earlier activity has shown the
event committed); delivery runs alongside the job, retried with backoff, and never fails it: a
provider that refuses a message for good marks that message failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.local_activities import LocalActivities

with workflow.unsafe.imports_passed_through():
    from models.messages import DELIVER_MESSAGE, QUEUE_MESSAGES, QueueMessages

QUEUE_TIMEOUT = timedelta(seconds=30)
QUEUE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# From the one-writer patch on, messages are queued alongside the job, never holding its events: a
# failure that will fail again (a template or a date it cannot render) is not retried at all, and
# a database away for an hour ends the tries. The job records that the message was not sent.
QUEUE_RETRY_BOUNDED = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[
        "ValueError",
        "OverflowError",
        "TypeError",
        "KeyError",
        "ValidationError",
        "UndefinedError",
        "TemplateSyntaxError",
    ],
)
QUEUE_DEADLINE = timedelta(hours=1)
NotQueued = Callable[[QueueMessages, ActivityError | ApplicationError], Awaitable[None]]
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


# How a message is delivered, wherever it is (a job's deliveries, a resend).
DELIVERY_OPTIONS: dict[str, Any] = {
    "result_type": str,
    "start_to_close_timeout": DELIVERY_TIMEOUT,
    "heartbeat_timeout": DELIVERY_HEARTBEAT,
    "retry_policy": DELIVERY_RETRY,
}


class Deliveries:
    def __init__(self, local: LocalActivities | None = None) -> None:
        # The workflow's local activities (one at a time from the job's patch on).
        self.local = local or LocalActivities(one_at_a_time=False)
        self._running: set[Any] = set()
        self._delivering: dict[int, Any] = {}  # message id -> its delivery's activity handle

    @property
    def idle(self) -> bool:
        return not self._running

    @property
    def delivering(self) -> bool:
        return bool(self._delivering)

    @property
    def only_deliveries_left(self) -> bool:
        """Nothing runs but deliveries (which continue-as-new can hand over)."""
        return all(work in self._delivering.values() for work in self._running)

    async def send(
        self, request: QueueMessages, committed: bool = False, bounded: bool = False
    ) -> list[int]:
        """Queue the messages and start their delivery. `committed`: the event is already in
        history (this runs after an activity it started), so the queueing can be a local
        activity, which saves a round trip to the server. `bounded` (from the one-writer patch
        on): give up after QUEUE_DEADLINE, raising ActivityError."""
        purpose = request.notification.purpose
        queue = self.local.execute if committed else workflow.execute_activity
        options: dict[str, Any] = {"start_to_close_timeout": QUEUE_TIMEOUT}
        if bounded:
            options.update(
                schedule_to_close_timeout=QUEUE_DEADLINE,
                retry_policy=QUEUE_RETRY_BOUNDED,
                summary=f"queue {purpose}",
            )
        else:
            options.update(retry_policy=QUEUE_RETRY)
        ids: list[int] = await queue(QUEUE_MESSAGES, request, result_type=list[int], **options)
        for message_id in ids:
            self.deliver(message_id, summary=f"deliver {purpose}" if bounded else None)
        return ids

    async def queue(
        self, request: QueueMessages, not_queued: NotQueued, committed: bool = False
    ) -> list[int]:
        """Queue and deliver (one-writer runs): a message that cannot be queued is reported
        through `not_queued`, never raised."""
        try:
            return await self.send(request, committed=committed, bounded=True)
        # A local activity that gives up raises its last failure itself, not an ActivityError.
        except (ActivityError, ApplicationError) as failed:
            await not_queued(request, failed)
            return []

    def queue_in_background(
        self, request: QueueMessages, not_queued: NotQueued
    ) -> asyncio.Task[list[int]]:
        task = asyncio.create_task(self.queue(request, not_queued))
        self.track(task)
        return task

    def deliver(self, message_id: int, summary: str | None = None) -> None:
        handle = workflow.start_activity(
            DELIVER_MESSAGE,
            message_id,
            **DELIVERY_OPTIONS,
            # Continue-as-new waits for a running attempt to finish before it hands over.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )
        self._delivering[message_id] = handle
        handle.add_done_callback(lambda _: self._delivering.pop(message_id, None))
        self.track(handle)

    async def hand_over(self) -> list[int]:
        """Cancel the deliveries still running (most wait between retries) and return their
        message ids, for the next run to resume: continue-as-new need not wait hours for them."""
        handed = dict(self._delivering)
        for handle in handed.values():
            handle.cancel()
        for handle in handed.values():
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await handle
        return sorted(handed)

    def track(self, work: Any) -> None:
        """Something running alongside the job (an activity handle or a task) that the job
        waits for before it continues as new or completes."""
        self._running.add(work)
        work.add_done_callback(self._running.discard)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        self.track(asyncio.create_task(work))
