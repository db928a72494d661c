"""Heartbeats while an activity waits on work that takes as long as the machine lets it.

A PDF renders in a process at lower priority (activities/pdf.py): on a busy machine a long quote
can take minutes where it takes seconds on an idle one. A fixed start-to-close timeout would cut
such an attempt off and start the render again from nothing, behind the one still running in the
pool. Heartbeating instead lets an attempt run as long as its worker is alive, and a dead
worker's attempt is still retried within the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

# Well inside the workflows' heartbeat timeout (workflows/documents.py); the SDK throttles
# heartbeats to the server anyway.
HEARTBEAT_EVERY = 5.0


async def heartbeating(work: Awaitable[T], every: float = HEARTBEAT_EVERY) -> T:
    """`work`'s result, heartbeating every `every` s while it runs (when in an activity)."""
    if not activity.in_activity():
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # no-op once done; on cancellation, the render is not waited for
