"""Back-pressure for the routes that wait on a job's workflow.

When the worker falls behind, every request that sends an event waits for it, and without a
bound an API process piles up requests until clients give up and retry into the pile. Instead
at most `limit` such requests wait on the workflows at once; one more waits up to `wait_s` for a
turn, then is answered 503 with Retry-After. Nothing has been sent to the job by then, so the
retry is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from api.errors import Unavailable


class Admission:
    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._turns = asyncio.Semaphore(limit)

    async def enter(self) -> None:
        try:
            await asyncio.wait_for(self._turns.acquire(), self.wait_s)
        except TimeoutError:
            raise Unavailable(
                f"Jobline is busy: {self.limit} requests are already waiting on jobs; "
                "nothing was done, send it again shortly"
            ) from None

    def leave(self) -> None:
        self._turns.release()


async def _admitted(request: Request) -> AsyncIterator[None]:
    admission: Admission = request.app.state.admission
    await admission.enter()
    try:
        yield
    finally:
        admission.leave()


# For routes that send events: a turn from before the route runs until it returns.
Admitted = Annotated[None, Depends(_admitted, scope="function")]
