"""A Jobline worker in a process of its own, for tests that kill it.

`python -m tests.fakes.worker_process`, run from the project's root.

Configured like the real worker, by `JOBLINE_*` environment variables (database URL, Temporal
address, task queue, email/SMS backends and the fake providers' base URLs). Prints `ready` once it
polls the task queue, then runs until it is killed.
"""

from __future__ import annotations

import asyncio
import logging

from core.config import Settings
from core.db import Database
from core.temporal import connect
from worker import build_worker


async def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    db = Database(settings.resolved_database_url)
    client = await connect(settings)
    async with build_worker(client, db, settings.task_queue, settings):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
