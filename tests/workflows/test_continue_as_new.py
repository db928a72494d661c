"""Continue-as-new at its limits, on a dev server that suggests it after 40 history events.

- A job with the largest quote the rules allow continues as new with an input far below
  Temporal's 2 MB payload limit (the recent Updates it carries keep their outcomes, not whole
  states).
- A delivery that is retrying (its provider failing) does not hold continue-as-new back for the
  hours its retries may last: it is handed to the next run, which delivers it once.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from models.lifecycle import Stage
from models.messages import JobInput
from models.tables import OutboxMessage
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FakeSendGrid,
    sendgrid_server_fixture,
    wait_until,
)
from tests.workflows.test_durability import OLGA, SAM, Job, _fresh_sqlite, quote_email_queued
from worker import build_worker

PAYLOAD_LIMIT = 2 * 1024 * 1024


async def _notes_until_continued(job: Job, first_run: str, most: int = 60) -> str:
    for i in range(most):
        run = (await job.handle.describe()).run_id or first_run
        if run != first_run:
            return run
        await job.send(OLGA, "note_added", text=f"Customer called again ({i})")
    raise AssertionError("the job never continued as new")


async def _start_input(client: Client, job: Job, run_id: str) -> tuple[int, JobInput]:
    """The size in bytes of a run's start input, and the input."""
    handle = client.get_workflow_handle(job.id, run_id=run_id)
    async for event in handle.fetch_history_events():
        assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        [payload] = event.workflow_execution_started_event_attributes.input.payloads
        decoded = await pydantic_data_converter.decode([payload], [JobInput])
        return payload.ByteSize(), decoded[0]
    raise AssertionError("no history")


async def test_the_largest_quote_continues_as_new_within_the_payload_limit(
    short_history_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = short_history_env.client
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    queue = f"can-large-{uuid.uuid4().hex[:8]}"
    lines = [
        {
            "description": f"{i:03d} " + "Condenser coil cleaning and inspection " * 5,
            "quantity": "99999",
            "unit_price": "99.99",
            "sku": f"SKU-{i:03d}-" + "X" * 180,
        }
        for i in range(200)
    ]
    try:
        async with build_worker(client, db, queue):
            job = Job(client, queue, customer)
            await job.create()
            first_run = (await job.handle.describe()).run_id
            assert first_run is not None
            await job.send(OLGA, "owner_assigned", owner="sam")
            await job.send(SAM, "lead_qualified")
            await job.send(
                SAM, "quote_drafted", lines=lines, valid_until=date(2030, 2, 1), notes="N" * 4000
            )
            await job.send(SAM, "quote_sent")

            # The quote's PDF renders outside the event; its email is queued once it exists.
            await quote_email_queued(db, job.slug)
            approved = await job.send(OLGA, "quote_approved")
            next_run = await _notes_until_continued(job, first_run)

            size, carried = await _start_input(client, job, next_run)
            print(f"continue-as-new input with a 200-line quote: {size:,} bytes")
            assert size < PAYLOAD_LIMIT / 4, size
            assert carried.state is not None and carried.state.quote is not None
            assert len(carried.state.quote.lines) == 200
            assert carried.recent_updates, "recent Updates travel with the job"
            assert all(o.projection is None for o in carried.recent_updates.values())
            state = await job.state()
            assert state.number == approved.number and state.stage == Stage.approved
    finally:
        await db.dispose()


async def test_a_retrying_delivery_is_handed_to_the_next_run(
    short_history_env: WorkflowEnvironment, tmp_path: Path, sendgrid_server: FakeSendGrid
) -> None:
    client = short_history_env.client
    db, customer = await _fresh_sqlite(tmp_path / "jobline.db")
    queue = f"can-delivery-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        environment="test",
        task_queue=queue,
        email_backend="sendgrid",
        sendgrid_api_key=sendgrid_server.api_key,
        sendgrid_base_url=sendgrid_server.base_url,
    )
    sendgrid_server.fail_next(503, "try later", times=1000)
    try:
        async with build_worker(client, db, queue, settings):
            job = Job(client, queue, customer)
            await job.create()
            first_run = (await job.handle.describe()).run_id
            assert first_run is not None
            sent = await job.send(OLGA, "customer_update_sent", message="We ordered the part.")
            [message_id] = sent.message_ids
            await sendgrid_server.wait_for_requests(1)  # the first attempt failed: it retries

            next_run = await _notes_until_continued(job, first_run)
            _, carried = await _start_input(client, job, next_run)
            assert carried.pending_deliveries == [message_id]

            sendgrid_server.reset()  # the provider is back

            async def delivered() -> bool:
                async with db.session() as session:
                    row = await session.get(OutboxMessage, message_id)
                    return row is not None and row.status == "sent"

            await wait_until(delivered, within=30, what="the handed-over message is sent")
            accepted = [r for r in sendgrid_server.accepted if r.accepted]
            assert len(accepted) == 1
            async with db.session() as session:
                rows = (
                    await session.exec(
                        select(OutboxMessage).where(OutboxMessage.job_slug == job.slug)
                    )
                ).all()
            assert [r.status for r in rows] == ["sent"]
    finally:
        await db.dispose()
