"""No activity holds a job's later events: with the outbox unable to take messages (its table gone
for a while), an event that sends one is answered in seconds, the events after it too, and the
message is queued and delivered once the database takes it again."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select
from temporalio.client import Client

from models.tables import OutboxMessage
from tests.fakes.providers import wait_until
from tests.workflows.test_durability import OLGA, Job, _fresh_sqlite
from worker import build_worker
from workflows.job import QUEUE_WAIT


async def test_a_message_that_cannot_be_queued_holds_no_event(
    temporal_client: Client, tmp_path: Path
) -> None:
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    queue = f"unblocked-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(temporal_client, db, queue):
            job = Job(temporal_client, queue, customer)
            await job.create()
            async with db.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE outbox_messages RENAME TO outbox_away"))

            started = time.monotonic()
            sent = await job.send(OLGA, "customer_update_sent", message="Parts arrive Friday.")
            answered_in = time.monotonic() - started
            assert sent.message_ids == []  # not queued in time: it will be, after the answer
            assert answered_in < QUEUE_WAIT.total_seconds() + 5, answered_in

            started = time.monotonic()
            note = await job.send(OLGA, "note_added", text="Customer asked for mornings")
            assert time.monotonic() - started < 3, "a later event waited for the message"
            assert note.seq == sent.seq + 1

            async with db.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE outbox_away RENAME TO outbox_messages"))

            async def delivered() -> bool:
                async with db.session() as session:
                    rows = (
                        await session.exec(
                            select(OutboxMessage).where(OutboxMessage.job_slug == job.slug)
                        )
                    ).all()
                return [(r.purpose, r.status) for r in rows] == [("customer_update", "captured")]

            await wait_until(delivered, within=60, what="the customer update queued and captured")
    finally:
        await db.dispose()
