"""Delivery from a real job workflow on a real Temporal server, to the fake providers.

(a) A worker killed (SIGKILL) after SendGrid and Twilio accepted a job's messages but before the
    delivery activities completed: after a new worker takes over, each provider holds exactly one
    copy, the rows end in a terminal state, and the job goes on accepting events. On SQLite and
    PostgreSQL, the worker a real process (`tests/fakes/worker_process.py`).
(b) A provider that refuses a message for good (Twilio 21211) marks that message failed and never
    fails the job; a transient refusal (SendGrid 503) is retried by Temporal, with backoff, and
    the message is then sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.client import WorkflowExecutionStatus as Status
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.messages import FINISHED
from core.config import Settings
from core.db import Database
from core.temporal import workflow_id
from models import events as ev
from models.lifecycle import Actor, ClientSnapshot, Role, Stage
from models.messages import EventOutcome, EventRequest, JobInput
from models.tables import Client as ClientRow
from models.tables import OutboxMessage
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FROM_NUMBER,
    FakeSendGrid,
    FakeTwilio,
    provider_settings,
    sendgrid_server_fixture,
    twilio_server_fixture,
)
from worker import build_worker
from workflows.job import JobWorkflow

ROOT = Path(__file__).resolve().parents[2]
OLGA = Actor(username="olga", role=Role.office)
HELD = 120.0  # seconds a fake provider holds its answer: longer than the test
_EVENT: TypeAdapter[Any] = TypeAdapter(ev.Event)


async def new_customer(db: Database, phone: str) -> ClientSnapshot:
    async with db.session() as session:
        row = ClientRow(
            name=f"Example Client {uuid.uuid4().hex[:6]}", email="zoe@example.com", phone=phone
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
    assert row.id is not None
    return ClientSnapshot(id=row.id, name=row.name, email=row.email, phone=row.phone)


def request(type_: str, **fields: Any) -> EventRequest:
    return EventRequest(event=_EVENT.validate_python({"type": type_, **fields}), actor=OLGA)


class Job:
    """One job workflow, driven the way the API drives it (Updates, update-with-start)."""

    def __init__(self, client: Client, task_queue: str, customer: ClientSnapshot) -> None:
        self.client = client
        self.task_queue = task_queue
        self.customer = customer
        self.slug = f"once-{uuid.uuid4().hex[:10]}"
        self.handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(self.slug))

    async def create(self) -> EventOutcome:
        start = WithStartWorkflowOperation(
            JobWorkflow.run,
            JobInput(slug=self.slug, client=self.customer),
            id=workflow_id(self.slug),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        created = request(
            "job_created", client_id=self.customer.id, title="No cooling", source="incoming_call"
        )
        return await asyncio.wait_for(
            self.client.execute_update_with_start_workflow(
                JobWorkflow.apply_event, created, start_workflow_operation=start
            ),
            timeout=30,
        )

    async def send(self, type_: str, **fields: Any) -> EventOutcome:
        return await asyncio.wait_for(
            self.handle.execute_update(JobWorkflow.apply_event, request(type_, **fields)),
            timeout=30,
        )

    async def no_pending_activities(self) -> bool:
        return not (await self.handle.describe()).raw_description.pending_activities


async def rows(db: Database, ids: list[int]) -> list[OutboxMessage]:
    async with db.session() as session:
        found = [await session.get(OutboxMessage, i, populate_existing=True) for i in ids]
    assert all(row is not None for row in found)
    return found  # type: ignore[return-value]


async def wait_for_rows(
    db: Database, ids: list[int], statuses: AbstractSet[str], within: float
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await rows(db, ids)
        if all(row.status in statuses for row in found):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"messages not {sorted(statuses)} after {within:g} s: "
                + ", ".join(f"{row.id} {row.status} ({row.error})" for row in found)
            )
        await asyncio.sleep(0.2)


# --- (a) a worker killed while the provider holds the message -------------------------------


class WorkerProcess:
    """`python -m tests.fakes.worker_process` with the given settings; its log goes to a file."""

    def __init__(self, settings: dict[str, str], log: IO[bytes]) -> None:
        self.env = {
            **os.environ,
            **{f"JOBLINE_{name.upper()}": value for name, value in settings.items()},
        }
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.worker_process",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        assert line.strip() == b"ready", f"worker process did not start: {line!r}"

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()  # SIGKILL: no shutdown, no activity completion, nothing
            await self.process.wait()


@contextlib.asynccontextmanager
async def worker_processes(settings: dict[str, str], log_path: Path) -> AsyncIterator[Any]:
    started: list[WorkerProcess] = []
    with log_path.open("ab") as log:

        async def start() -> WorkerProcess:
            worker = WorkerProcess(settings, log)
            started.append(worker)
            await worker.start()
            return worker

        try:
            yield start
        finally:
            for worker in started:
                await worker.kill()


async def test_a_worker_killed_mid_send_never_sends_twice(
    database: Database,
    temporal_client: Client,
    tmp_path: Path,
    sendgrid_server: FakeSendGrid,
    twilio_server: FakeTwilio,
) -> None:
    db = database
    customer = await new_customer(db, "+15551230199")
    task_queue = f"exactly-once-{uuid.uuid4().hex[:8]}"
    settings = {
        "environment": "test",
        "database_url": db.url,
        "temporal_address": temporal_client.service_client.config.target_host,
        "task_queue": task_queue,
        "provider_timeout": str(HELD),
        "log_level": "WARNING",
        **provider_settings(sendgrid_server, twilio_server),
    }
    # The providers take the messages (and record them) but hold their answers back.
    sendgrid_server.delay = twilio_server.delay = HELD
    job = Job(temporal_client, task_queue, customer)
    text = f"The part arrives Tuesday ({uuid.uuid4().hex[:6]})."
    async with worker_processes(settings, tmp_path / "workers.log") as start_worker:
        first = await start_worker()
        await job.create()
        sent = await job.send("customer_update_sent", message=text, sms=True)
        assert sent.seq == 2 and len(sent.message_ids) == 2

        [held_mail] = await sendgrid_server.wait_for_requests(1)
        [held_sms] = await twilio_server.wait_for_requests(1)
        assert [row.status for row in await rows(db, sent.message_ids)] == ["sending"] * 2
        await first.kill()
        sendgrid_server.delay = twilio_server.delay = 0  # a resend would now go straight in

        await start_worker()
        # The heartbeat timeout (10 s) notices the dead worker; the retry (5 s backoff) runs
        # on the new one and finds the rows still `sending`.
        await wait_for_rows(db, sent.message_ids, FINISHED, within=45)
        for _ in range(50):  # the activities' completions reach the workflow
            if await job.no_pending_activities():
                break
            await asyncio.sleep(0.2)
        assert await job.no_pending_activities(), "the delivery activities never finished"

        # Exactly one copy of each message reached its provider.
        email_row, sms_row = await rows(db, sent.message_ids)
        assert len(sendgrid_server.requests) == 1 and len(twilio_server.requests) == 1
        assert len(sendgrid_server.mails_for(email_row.idempotency_key)) == 1
        assert held_mail.json()["custom_args"] == {"idempotency_key": email_row.idempotency_key}
        assert email_row.idempotency_key == f"{workflow_id(job.slug)}:2:customer_update:email"
        assert held_sms.form() == {
            "To": "+15551230199",
            "From": FROM_NUMBER,
            "Body": f"Jobline: {text}",
        }
        assert sms_row.idempotency_key == f"{workflow_id(job.slug)}:2:customer_update:sms"
        # The retry cannot know the provider took them: left for a person to check.
        for row in (email_row, sms_row):
            assert row.status in {"unknown", "sent"}, (row.status, row.error)
            assert row.attempts == 1
            if row.status == "unknown":
                assert row.error and "check with the provider" in row.error

        # The job is fine: running, and the next event is accepted.
        assert (await job.handle.describe()).status == Status.RUNNING
        noted = await job.send("note_added", text="Customer confirmed Tuesday")
        assert noted.seq == 3 and noted.stage == Stage.lead and noted.message_ids == []
        assert len(sendgrid_server.requests) == 1 and len(twilio_server.requests) == 1
        await job.handle.terminate("test over")


# --- (b) permanent and transient refusals, through the workflow --------------------------------


async def test_refusals_never_fail_the_job(
    database: Database,
    temporal_client: Client,
    sendgrid_server: FakeSendGrid,
    twilio_server: FakeTwilio,
) -> None:
    phone = "+15550000"
    customer = await new_customer(database, phone)
    twilio_server.invalid_numbers.add(phone)
    sendgrid_server.fail_next(503, "Service Unavailable")
    task_queue = f"refusals-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        task_queue=task_queue,
        provider_timeout=5,
        **provider_settings(sendgrid_server, twilio_server),  # type: ignore[arg-type]
    )
    job = Job(temporal_client, task_queue, customer)
    async with build_worker(temporal_client, database, task_queue, settings):
        await job.create()
        sent = await job.send("customer_update_sent", message="See you Tuesday.", sms=True)
        email_id, sms_id = sent.message_ids
        # Twilio refuses the number for good at once; SendGrid's 503 is retried after 5 s.
        await wait_for_rows(database, [sms_id], {"failed"}, within=10)
        await wait_for_rows(database, [email_id], {"sent"}, within=20)
        email_row, sms_row = await rows(database, sent.message_ids)
        assert sms_row.error is not None and "21211" in sms_row.error
        assert f"The 'To' number {phone} is not a valid phone number." in sms_row.error
        assert email_row.attempts == 2 and email_row.error is None
        assert [r.status for r in sendgrid_server.requests] == [503, 202]
        assert len(sendgrid_server.mails_for(email_row.idempotency_key)) == 1
        assert len(twilio_server.requests) == 1 and twilio_server.messages == []

        assert (await job.handle.describe()).status == Status.RUNNING
        noted = await job.send("note_added", text="Called the customer instead")
        assert noted.seq == 3
        assert (await job.handle.describe()).status == Status.RUNNING
        await job.handle.terminate("test over")
