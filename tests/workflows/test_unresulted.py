"""The unresulted clock (DESIGN.md §5 "Unresulted job", issue 10 §4) on the time-skipping server.

A job's resulting workflow (`result-<slug>`) is started by the job workflow when the quote is sent
or the job is canceled; N days later, with no result, the owner is reminded by email, the job row
is flagged `unresulted`, and the resulting workflow shows `WaitingOn='resulting'` to ops. Jobs are
driven by signals as in test_reminders.py (which says why); results are submitted with the Update
the API sends, which works on this server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from core import settings_store
from core.settings_store import RESULTING
from models.lifecycle import Stage
from models.resulting import ResultingSettings, resulting_workflow_id, submission
from models.tables import Job as JobRow
from models.tables import User
from tests.workflows.test_reminders import (
    new_job as new_job,  # noqa: PLC0414 - the fixture, for the tests here
)
from tests.workflows.test_reminders import (
    stack as stack,  # noqa: PLC0414
)
from tests.workflows.time_skipping import (
    MIA,
    OLGA,
    SLACK,
    Job,
    Stack,
    comms,
    eventually,
    published,
    search_attributes,
    terminate_when_idle,
)
from workflows.resulting import JobResultWorkflow

DAYS = 3
OWNER_EMAIL = "sam@jobline.test"


def resulting(enabled: bool = True) -> ResultingSettings:
    data: dict[str, Any] = ResultingSettings().model_dump()
    data.update(enabled=enabled, unresulted_after_days=DAYS)
    for name in ("sale", "no_sale"):
        data["types"][name]["recipients"] = ["sales@example.com"]
    return ResultingSettings.model_validate(data)


@pytest.fixture
async def resulting_on(stack: Stack) -> AsyncIterator[Callable[[bool], Any]]:
    """Resulting on (every N days), the communication settings quiet, and the owner a user."""
    await stack.save_settings(comms())

    async def save(enabled: bool = True) -> None:
        async with stack.db.session() as session:
            await settings_store.save(session, RESULTING, resulting(enabled), "ada")

    async with stack.db.session() as session:
        if (await session.exec(select(User).where(User.username == "sam"))).first() is None:
            session.add(User(username="sam", role="sales", email=OWNER_EMAIL))
    await save(True)
    yield save
    await save(False)


async def clock_started(stack: Stack, job: Job) -> str:
    """The id of the job's resulting workflow once its clock runs: the job's workflow starts it
    a moment after the quote went out (an activity), and it shows its due time as it begins."""
    result_id = resulting_workflow_id(job.slug)
    await published(
        stack.client, result_id, lambda found: "NextReminderAt" in found, "the unresulted clock"
    )
    return result_id


async def flagged(job: Job) -> JobRow | None:
    current = await job.row()
    return current if current.unresulted else None


async def test_a_quoted_job_without_a_result_is_flagged_and_its_owner_reminded(
    stack: Stack, new_job: Callable[[], Job], resulting_on: Any
) -> None:
    job = new_job()
    sent_at = await job.quote_sent()
    due = sent_at + timedelta(days=DAYS)

    async def due_noted() -> JobRow | None:
        current = await job.row()
        return current if current.resulting_due_at == due else None

    await eventually(due_noted, "the result's due time on the job row")
    result_id = await clock_started(stack, job)

    await stack.skip_to(due - timedelta(hours=1))
    assert not (await job.row()).unresulted
    assert await job.messages("unresulted_reminder") == []

    await stack.skip_to(due + SLACK)
    current = await eventually(lambda: flagged(job), "the unresulted flag")
    assert current.result_revision == 0
    (reminder,) = await eventually(
        lambda: job.messages("unresulted_reminder"), "the owner's reminder"
    )
    assert reminder.to == OWNER_EMAIL and "needs a result" in reminder.subject
    assert f"/jobs/{job.slug}" in reminder.body
    await published(
        stack.client, result_id, lambda found: found["WaitingOn"] == "resulting", "WaitingOn"
    )

    # A result clears the flag (and ops' WaitingOn), and the reminder is never sent again.
    settings = resulting()
    handle = stack.client.get_workflow_handle(result_id)
    outcome = await handle.execute_update(
        JobResultWorkflow.submit,
        submission(settings, "no_sale", {"loss_reason": "Price"}, "sam"),
    )
    assert outcome.revision.revision == 1
    assert not (await job.row()).unresulted
    assert (await job.row()).result_type == "no_sale"
    assert (await search_attributes(stack.client, result_id))["WaitingOn"] == "nobody"
    await stack.skip_to(due + timedelta(days=DAYS * 2))
    assert len(await job.messages("unresulted_reminder")) == 1
    await terminate_when_idle(stack.client, handle.id)


async def test_a_job_resulted_in_time_is_never_flagged(
    stack: Stack, new_job: Callable[[], Job], resulting_on: Any
) -> None:
    job = new_job()
    sent_at = await job.quote_sent()
    handle = stack.client.get_workflow_handle(resulting_workflow_id(job.slug))
    await clock_started(stack, job)
    await handle.execute_update(
        JobResultWorkflow.submit,
        submission(resulting(), "sale", {"sale_amount": "420"}, "sam"),
    )
    await stack.skip_to(sent_at + timedelta(days=DAYS, hours=1))
    assert not (await job.row()).unresulted
    assert await job.messages("unresulted_reminder") == []
    assert (await job.row()).result_revision == 1
    await terminate_when_idle(stack.client, handle.id)


async def test_a_job_canceled_before_any_quote_is_due_a_result_from_its_cancel(
    stack: Stack, new_job: Callable[[], Job], resulting_on: Any
) -> None:
    job = new_job()
    await job.create()
    await job.send(OLGA, "owner_assigned", owner="sam")
    state = await job.send(MIA, "job_canceled", reason="Customer went quiet")
    assert state.stage == Stage.canceled
    canceled_at = state.stage_entered_at
    assert canceled_at is not None
    await job.handle.result()  # the job's workflow has finished; its result's has not

    await stack.skip_to(canceled_at + timedelta(days=DAYS) + SLACK)
    await eventually(lambda: flagged(job), "the unresulted flag after the cancel")
    (reminder,) = await eventually(
        lambda: job.messages("unresulted_reminder"), "the owner's reminder"
    )
    assert reminder.to == OWNER_EMAIL
    await terminate_when_idle(stack.client, resulting_workflow_id(job.slug))


async def test_resulting_turned_off_before_the_due_time_flags_nothing(
    stack: Stack, new_job: Callable[[], Job], resulting_on: Any
) -> None:
    job = new_job()
    sent_at = await job.quote_sent()
    result_id = await clock_started(stack, job)
    await resulting_on(False)
    await stack.skip_to(sent_at + timedelta(days=DAYS) + SLACK)
    await eventually(
        lambda: _no_reminder_due(stack, result_id), "the clock to ring with resulting off"
    )
    assert not (await job.row()).unresulted
    assert await job.messages("unresulted_reminder") == []
    await terminate_when_idle(stack.client, result_id)


async def _no_reminder_due(stack: Stack, workflow_id: str) -> bool:
    return "NextReminderAt" not in await search_attributes(stack.client, workflow_id)
