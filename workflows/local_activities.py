"""A workflow's local activities, one at a time (the job workflow's `one-local-activity` patch).

Two local activities side by side are not replayed as they ran. Live, each result comes back in
an activation of its own as it finishes, and the code after it runs there; on replay the SDK
hands back every result the workflow task recorded in one activation. Code that starts work
after each result (a task created, then an activity scheduled from it) then issues its commands
in another order, and the replay fails as nondeterministic: the job stops until a fix is
deployed. bench/reminder_hour.py found one on the time-skipping server with a cache of 100: a
quote's PDF finished just as `quote_approved` arrived, and the quote email's queueing and the
job number's allocation ran side by side; replayed, the email's delivery was scheduled before
the job view's write. One at a time, each result is alone in its activation, live and on replay.
A local activity takes milliseconds, so waiting for another costs little.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow


class LocalActivities:
    def __init__(self, one_at_a_time: bool) -> None:
        self._one_at_a_time = one_at_a_time
        self._lock = asyncio.Lock()

    async def execute(self, activity: Any, *args: Any, **options: Any) -> Any:
        """workflow.execute_local_activity, after any other of this workflow's has finished."""
        if not self._one_at_a_time:
            return await workflow.execute_local_activity(activity, *args, **options)
        async with self._lock:
            return await workflow.execute_local_activity(activity, *args, **options)
