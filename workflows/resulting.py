"""The resulting workflow: one per job (`result-<slug>`), keeping the job's result revisions and
its unresulted clock (DESIGN.md §6 "Job resulting", §5 "Unresulted job").

Why not the job workflow: a result is mostly given once the job has finished — a canceled job is
the usual No Sale — and a finished workflow takes no more events. So the result has a workflow of
its own that outlives the job's: the API starts it with its first submission (update-with-start),
and the job workflow starts its clock (signal-with-start) when the quote is sent or the job is
canceled. Each submission is an Update: the revision is recorded in the database before the
Update answers (read-your-writes), then its PDF is rendered and emailed to the type's recipients
in the background, keyed by job and revision so a retry, a replay or a restarted worker never
sends it twice. The workflow waits, without timers, for the next revision once it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.resulting import (
        ATTACH_RESULT_DOCUMENT,
        FLAG_UNRESULTED,
        LOAD_RESULTING_SETTINGS,
        MARK_RESULTING_DUE,
        QUEUE_RESULT_EMAIL,
        RECORD_RESULT,
        RENDER_RESULT_DOCUMENT,
        RecordedResult,
        ResultDocument,
        ResultingInput,
        ResultingSettings,
        ResultOutcome,
        ResultRevision,
        ResultSubmission,
        UnresultedReminder,
        unresulted_due,
    )
    from workflows import search_attributes as sa
    from workflows.deliveries import Deliveries
    from workflows.documents import PATIENT_RENDER_OPTIONS

# The database writes an Update waits for: quick, a few tries, well within the API's wait.
WRITE_TIMEOUT = timedelta(seconds=5)
WRITE_DEADLINE = timedelta(seconds=10)
WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    maximum_interval=timedelta(seconds=1),
    maximum_attempts=3,
)
# Background work (the document, the email, the reminder): retried until the database is back.
PATIENT_TIMEOUT = timedelta(seconds=30)
PATIENT_RETRY = RetryPolicy(
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ValueError", "TypeError", "KeyError", "UndefinedError"],
)
# The Update waits this long for the PDF, so its answer usually names the document.
DOCUMENT_WAIT = timedelta(seconds=5)
RECENT_UPDATES_KEPT = 100


@workflow.defn(name="JobResultWorkflow")
class JobResultWorkflow:
    @workflow.init
    def __init__(self, input: ResultingInput) -> None:
        self.slug = input.slug
        self.revisions: list[ResultRevision] = list(input.revisions)
        self.clock_started_at = input.clock_started_at
        self.flagged = input.flagged
        self.clock_done = input.clock_done
        self._recent = dict(input.recent_updates)
        self._deliveries = Deliveries()
        # One submission at a time: revision numbers follow the order they were accepted in.
        self._lock = asyncio.Lock()
        self._published: dict[str, Any] = {}

    @workflow.run
    async def run(self, input: ResultingInput) -> None:
        for message_id in input.pending_deliveries:
            self._deliveries.deliver(message_id, summary="deliver result (handed over)")
        while True:
            if self._waiting_for_first_result():
                await self._unresulted_clock()
                continue
            seen = (len(self.revisions), self.clock_started_at)
            await workflow.wait_condition(
                lambda seen=seen: (  # type: ignore[misc]
                    (len(self.revisions), self.clock_started_at) != seen
                    or self._may_continue_as_new()
                )
            )
            if self._may_continue_as_new():
                await self._continue_as_new()

    def _waiting_for_first_result(self) -> bool:
        return self.clock_started_at is not None and not self.revisions and not self.clock_done

    # --- the unresulted clock -----------------------------------------------------------------

    @workflow.signal
    def start_clock(self, at: datetime) -> None:
        """The quote was sent or the job canceled: the clock runs from the first of them."""
        if self.clock_started_at is None or at < self.clock_started_at:
            self.clock_started_at = at

    async def _unresulted_clock(self) -> None:
        """Wait until the job is due a result; if it has none then (and resulting is on), remind
        its owner and flag it. The settings are read as the wait begins and again when it ends,
        so a change applies to the next wait and resulting turned off in between flags nothing."""
        assert self.clock_started_at is not None
        started = self.clock_started_at
        settings = await self._settings()
        due = unresulted_due(started, settings)
        await workflow.execute_activity(
            MARK_RESULTING_DUE,
            UnresultedReminder(slug=self.slug, due_at=due),
            start_to_close_timeout=PATIENT_TIMEOUT,
            retry_policy=PATIENT_RETRY,
            summary="note when a result is due",
        )
        self._publish(next_reminder_at=due)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self.revisions) or self.clock_started_at != started,
                timeout=max(due - workflow.now(), timedelta(milliseconds=1)),
                timeout_summary="unresulted check",
            )
        if self.revisions or self.clock_started_at != started:
            return
        self.clock_done = True
        if not (await self._settings()).enabled:
            self._publish(next_reminder_at=None)
            return
        message_ids: list[int] = await workflow.execute_activity(
            FLAG_UNRESULTED,
            UnresultedReminder(slug=self.slug, due_at=due),
            result_type=list[int],
            start_to_close_timeout=PATIENT_TIMEOUT,
            retry_policy=PATIENT_RETRY,
            summary="flag unresulted and remind the owner",
        )
        self.flagged = True
        for message_id in message_ids:
            self._deliveries.deliver(message_id, summary="deliver unresulted reminder")
        self._publish(next_reminder_at=None)

    async def _settings(self) -> ResultingSettings:
        return await workflow.execute_local_activity(
            LOAD_RESULTING_SETTINGS,
            result_type=ResultingSettings,
            start_to_close_timeout=WRITE_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )

    # --- submissions --------------------------------------------------------------------------

    @workflow.update
    async def submit(self, submission: ResultSubmission) -> ResultOutcome:
        async with self._lock:
            if (earlier := self._earlier()) is not None:
                return earlier
            revision = ResultRevision(
                revision=len(self.revisions) + 1,
                type=submission.type,
                fields=submission.fields,
                submitted_by=submission.submitted_by,
                submitted_at=workflow.now(),
                form=submission.form,
                pattern=submission.pattern,
                amount=submission.amount,
            )
            try:
                # A regular activity: it runs only once this Update is in history, so a task the
                # server discards never leaves a revision in the database.
                await workflow.execute_activity(
                    RECORD_RESULT,
                    RecordedResult(slug=self.slug, revision=revision),
                    start_to_close_timeout=WRITE_TIMEOUT,
                    schedule_to_close_timeout=WRITE_DEADLINE,
                    retry_policy=WRITE_RETRY,
                    summary=f"record result revision {revision.revision}",
                )
            except ActivityError:
                # Nothing is kept: the API answers 503 and the person submits again.
                raise ApplicationError(
                    "the result could not be recorded (the database did not answer); "
                    "submit it again",
                    type="unavailable",
                    non_retryable=True,
                ) from None
            self.revisions.append(revision)
            self._remember(revision.revision, submission.request_digest)
            self._publish(next_reminder_at=None)
            sending = asyncio.create_task(self._document_and_email(revision, submission))
            self._deliveries.track(sending)
        # The answer names the document when it is ready in time (usually it is).
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: revision.document_id is not None or sending.done(),
                timeout=DOCUMENT_WAIT,
                timeout_summary="wait for the result PDF",
            )
        return ResultOutcome(revision=revision, request_digest=submission.request_digest)

    async def _document_and_email(
        self, revision: ResultRevision, submission: ResultSubmission
    ) -> None:
        """The revision's PDF, then its email to the type's recipients with the PDF attached."""
        document_id: str | None = None
        try:
            document_id = await workflow.execute_activity(
                RENDER_RESULT_DOCUMENT,
                RecordedResult(slug=self.slug, revision=revision),
                result_type=str,
                **PATIENT_RENDER_OPTIONS,
                summary=f"render result PDF (revision {revision.revision})",
            )
            await workflow.execute_activity(
                ATTACH_RESULT_DOCUMENT,
                ResultDocument(slug=self.slug, revision=revision.revision, document_id=document_id),
                start_to_close_timeout=PATIENT_TIMEOUT,
                retry_policy=PATIENT_RETRY,
                summary="keep the result PDF with its revision",
            )
            revision.document_id = document_id
        except ActivityError as failed:
            workflow.logger.warning(
                "result PDF not rendered; the email goes without it",
                extra={"job_slug": self.slug, "error": str(failed.cause or failed)},
            )
        if not submission.recipients:
            return
        try:
            message_ids: list[int] = await workflow.execute_activity(
                QUEUE_RESULT_EMAIL,
                RecordedResult(slug=self.slug, revision=revision, recipients=submission.recipients),
                result_type=list[int],
                start_to_close_timeout=PATIENT_TIMEOUT,
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=PATIENT_RETRY,
                summary=f"queue result email (revision {revision.revision})",
            )
        except ActivityError as failed:
            workflow.logger.warning(
                "result email not queued",
                extra={"job_slug": self.slug, "error": str(failed.cause or failed)},
            )
            return
        for message_id in message_ids:
            self._deliveries.deliver(message_id, summary="deliver result email")

    @workflow.query
    def current(self) -> list[ResultRevision]:
        return self.revisions

    def _earlier(self) -> ResultOutcome | None:
        info = workflow.current_update_info()
        if info is None or info.id not in self._recent:
            return None
        number, digest = self._recent[info.id]
        return ResultOutcome(revision=self.revisions[number - 1], request_digest=digest)

    def _remember(self, number: int, digest: str | None) -> None:
        info = workflow.current_update_info()
        if info is None:
            return
        self._recent[info.id] = (number, digest)
        while len(self._recent) > RECENT_UPDATES_KEPT:
            del self._recent[next(iter(self._recent))]

    # --- ops ------------------------------------------------------------------------------------

    def _publish(self, next_reminder_at: datetime | None) -> None:
        """`WaitingOn='resulting'` while the job is overdue for a result (ops find these with
        `temporal workflow list --query "WaitingOn='resulting'"`), and when one is due."""
        waiting = "resulting" if self.flagged and not self.revisions else "nobody"
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.WAITING_ON.value_set(waiting),
            sa.NEXT_REMINDER_AT.value_set(next_reminder_at)
            if next_reminder_at
            else sa.NEXT_REMINDER_AT.value_unset(),
        ]
        updates = [u for u in updates if self._published.get(u.key.name) != u.value]
        if updates:
            self._published.update({u.key.name: u.value for u in updates})
            workflow.upsert_search_attributes(updates)
        current = self.revisions[-1] if self.revisions else None
        workflow.set_current_details(
            "\n".join(
                [
                    f"**Job:** {self.slug}",
                    f"**Result:** {current.type} (revision {current.revision})"
                    if current
                    else "**Result:** none yet",
                    f"**Waiting on:** {waiting}",
                ]
            )
        )

    # --- continue-as-new ------------------------------------------------------------------------

    def _may_continue_as_new(self) -> bool:
        return (
            workflow.info().is_continue_as_new_suggested()
            and workflow.all_handlers_finished()
            and self._deliveries.only_deliveries_left
        )

    async def _continue_as_new(self) -> None:
        handed_over = await self._deliveries.hand_over()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            ResultingInput(
                slug=self.slug,
                revisions=self.revisions,
                clock_started_at=self.clock_started_at,
                flagged=self.flagged,
                clock_done=self.clock_done,
                recent_updates=self._recent,
                pending_deliveries=handed_over,
            )
        )
