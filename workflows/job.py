"""The job workflow: one per job (`job-<slug>`), owning its live state from first call to payment.

Events arrive as the `apply_event` Update (from the API: refused events are rejected by the
validator and never enter history) or the `event` Signal (from integrations and
`temporal workflow signal`). Both go through the same pure rules in `models.lifecycle`. After every
accepted event the Update answers as soon as the workflow has taken it, with the job view for
the API to write before its 2xx, and the job settles a few seconds after its last event: an
activity writes whatever of the view the database misses (the `answer-first` patch; runs from
before it replay their own ways: the workflow writing before it answered, or the API writing
and the job settling 15-30 s later). The workflow upserts the search
attributes and refreshes the Web UI's current details. Messages an event sends go out through
`workflows/deliveries.py`, with the quote or invoice PDF attached (`workflows/documents.py`).
A completed job's closeout (receipt, portal, webhook, notification: `workflows/closeout.py`)
runs alongside the job. The workflow completes when the job is closed or canceled, once all of
that has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import events as ev
    from models import lifecycle, notifications, reminders
    from models.closeout import JobCloseout, validate_receipt_fields
    from models.communications import CommunicationSettings
    from models.lifecycle import FINAL_STAGES, Actor, JobState, Refusal, Role
    from models.messages import (
        ALLOCATE_JOB_NUMBER,
        LOAD_COMMUNICATION_SETTINGS,
        PROJECT_JOB,
        EventOutcome,
        EventRequest,
        JobInput,
        JobSummary,
        ProjectionInput,
        QueueMessages,
        TimelineRecord,
    )
    from models.portal import LOAD_JOB_CLOSEOUT
    from models.resulting import START_RESULTING_CLOCK, ResultingClock
    from models.timeline import describe
    from workflows import documents
    from workflows import search_attributes as sa
    from workflows.closeout import close_out
    from workflows.deliveries import Deliveries
    from workflows.local_activities import LocalActivities

# Workflows started before this patch keep their first behaviour on replay: no reminders or
# messages, and a projection write inside every Update. From it on, the API writes the result of
# each Update it sent and the workflow writes after signals and reminders, and once a job settles.
REMINDERS_PATCH = "reminders-and-api-projection"
# A job settles this long after its last Update; its projection is then written from the worker
# too, in case the API that sent the Update did not live to write it.
SETTLE_AFTER = timedelta(seconds=30)
# From this patch on, a run settles SETTLE_QUIET and a share of SETTLE_SPREAD (drawn once per run)
# after its last Update, so the jobs of a burst do not all settle in the same second, and all of
# them within half a minute of it; a settle writes only what the database misses (usually
# nothing: the API wrote it), so it costs a read.
SPREAD_SETTLE_PATCH = "spread-settle"
SETTLE_QUIET = timedelta(seconds=15)
SETTLE_SPREAD = timedelta(seconds=15)
# From this patch on: required receipt fields on `job_completed`, closeout (receipt, portal,
# notification), the quote PDF on the quote email and the invoice PDF to the billing email.
CLOSEOUT_PATCH = "closeout-and-documents"
# From this patch on the workflow is the projection's one writer (see `_project`): each event's
# Update writes it before it answers, so there is no settle. Also from it on: receipt fields are
# checked in the validator, no activity holds a job's later events (messages are queued with a
# bounded retry, documents render in the background and their message waits for them), a job
# number that cannot be allocated never fails the run, continue-as-new hands pending deliveries
# over, and timers and activities carry summaries for the Web UI.
ONE_WRITER_PATCH = "one-writer"
# From this patch on, a quote sent or a job canceled starts the job's unresulted clock in its
# resulting workflow (workflows/resulting.py), which outlives this one: a canceled job is the
# usual No Sale, and its result comes after the job has finished.
RESULTING_CLOCK_PATCH = "resulting-clock"
# From this patch on, an event's messages are queued and its projection written at the same
# time (two activities in flight, one round trip to the server), not one after the other: the
# Update answers a round trip sooner (issue 12).
PARALLEL_WRITES_PATCH = "parallel-writes"
# From this patch on, the job's local activities run one at a time (workflows/local_activities.py):
# two side by side replayed in another order than they ran, and the job stopped as
# nondeterministic once evicted from the worker's cache.
ONE_LOCAL_ACTIVITY_PATCH = "one-local-activity"
# From this patch on, an Update answers as soon as the workflow has taken the event and queued its
# messages (issue 12): the answer carries the job view with every record not yet confirmed
# written, and the API writes it before its 2xx (read-your-writes). The job then settles:
# ANSWER_FIRST_QUIET and a share of ANSWER_FIRST_SPREAD after its last Update, an activity reads
# whether the view is there and writes whatever is missing (the API died, or the database was
# busy). Two writers are safe because each write carries every record the workflow has not seen
# written, and a write never moves the job back (core/projection_store.py).
ANSWER_FIRST_PATCH = "answer-first"
ANSWER_FIRST_QUIET = timedelta(seconds=2)
ANSWER_FIRST_SPREAD = timedelta(seconds=2)
SETTINGS_FRESH = timedelta(minutes=1)
_UNSET = object()
JOBLINE = Actor(username="jobline", role=Role.system)

# Quick DB writes: retried inside the workflow task, never long enough to stall the job.
LOCAL_WRITE_TIMEOUT = timedelta(seconds=10)
LOCAL_WRITE_DEADLINE = timedelta(seconds=30)
LOCAL_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=50), maximum_interval=timedelta(seconds=2)
)
# From the one-writer patch on, an Update must answer well within the API's own wait (15 s): its
# writes give up sooner (two attempts of at most 5 s), and the run loop's catch-up (or a waiting
# activity) takes over.
ONE_WRITER_WRITE_DEADLINE = timedelta(seconds=10)
ONE_WRITER_WRITE_TIMEOUT = timedelta(seconds=5)
ONE_WRITER_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=50),
    maximum_interval=timedelta(seconds=1),
    maximum_attempts=2,
)
# An event's messages are queued in the background; the Update waits this long for their ids.
QUEUE_WAIT = timedelta(seconds=5)
# When the database was down, the run loop catches up with a regular activity retried forever.
CATCH_UP_TIMEOUT = timedelta(seconds=30)
CATCH_UP_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# A workflow started for a job whose `job_created` was refused closes instead of waiting forever.
CREATION_GRACE = timedelta(minutes=10)


def refusal_error(refusal: Refusal) -> ApplicationError:
    return ApplicationError(
        refusal.message, refusal.model_dump(mode="json"), type=refusal.code, non_retryable=True
    )


@workflow.defn(name="JobWorkflow")
class JobWorkflow:
    @workflow.init
    def __init__(self, input: JobInput) -> None:
        self.state: JobState = input.state or lifecycle.new_job(input.slug, input.client)
        self._unprojected: list[TimelineRecord] = list(input.unprojected)
        self._projection_behind = bool(self._unprojected)
        self._history_base = input.history_base
        self._recent_updates: dict[str, EventOutcome] = {
            update_id: outcome.model_copy(update={"projection": None, "unwritten": None})
            for update_id, outcome in input.recent_updates.items()
        }
        # Handlers await activities; one event at a time keeps seq and state consistent.
        self._lock = asyncio.Lock()
        self._reminders_on = workflow.patched(REMINDERS_PATCH)
        self._closeout_on = workflow.patched(CLOSEOUT_PATCH)
        self._one_writer = workflow.patched(ONE_WRITER_PATCH)
        self._parallel_writes = self._one_writer and workflow.patched(PARALLEL_WRITES_PATCH)
        self._answer_first = self._parallel_writes and workflow.patched(ANSWER_FIRST_PATCH)
        self._settle_after = SETTLE_AFTER
        self._settle_reads_first = workflow.patched(SPREAD_SETTLE_PATCH)
        if self._answer_first:
            spread = workflow.random().uniform(0, ANSWER_FIRST_SPREAD.total_seconds())
            self._settle_after = ANSWER_FIRST_QUIET + timedelta(seconds=spread)
        elif self._settle_reads_first:
            spread = workflow.random().uniform(0, SETTLE_SPREAD.total_seconds())
            self._settle_after = SETTLE_QUIET + timedelta(seconds=spread)
        # Until the run loop has loaded them, the defaults give a first next-reminder estimate.
        self._settings = CommunicationSettings()
        self._next_reminder_at: datetime | None = None
        self._local = LocalActivities(one_at_a_time=workflow.patched(ONE_LOCAL_ACTIVITY_PATCH))
        self._deliveries = Deliveries(self._local)
        self._settle_at: datetime | None = None
        self._last_update_at: datetime | None = None
        self._settings_read_at: datetime | None = None
        self._alarm: asyncio.Task[None] | None = None
        self._alarm_at: datetime | None = None
        self._alarm_rang = False
        self._published: dict[str, object] = {}
        self._job_url = input.job_url

    @workflow.run
    async def run(self, input: JobInput) -> JobSummary:
        try:
            await workflow.wait_condition(
                lambda: self.state.stage is not None, timeout=CREATION_GRACE
            )
        except TimeoutError:
            raise ApplicationError("job_created never arrived", non_retryable=True) from None

        for message_id in input.pending_deliveries:
            self._deliveries.deliver(message_id, summary="delivery handed over")

        while True:
            seen = self.state.seq
            due: reminders.Due | None = None
            if self._reminders_on:
                # Each wait reads the settings as it begins, so a change applies to the next wait;
                # within a burst of events, a read less than a minute old is as good.
                now = workflow.now()
                if self._settings_read_at is None or now - self._settings_read_at >= SETTINGS_FRESH:
                    self._settings = await self._load_settings()
                    self._settings_read_at = now
                dues = reminders.pending(self.state, self._settings)
                await self._show_next_reminder(dues[0].at if dues else None)
                due = dues[0] if dues else None
            self._arm(self._wake_at(due), self._alarm_label(due))
            await workflow.wait_condition(
                lambda seen=seen: (  # type: ignore[misc]
                    self._finished
                    or self._projection_behind
                    or self.state.seq != seen
                    or self._alarm_rang
                    or self._may_continue_as_new()
                )
            )
            if self._alarm_rang:
                self._alarm_rang = False
                settled = await self._on_alarm(due)
                if not (settled and self._settle_reads_first):
                    self._settings_read_at = None  # a reminder's timer: the next wait reads afresh
                continue
            if self._projection_behind:
                await self._catch_up_projection()
            if self._finished:
                # The last events' projection, written here since the job does not settle now.
                if self._reminders_on and self._unprojected:
                    async with self._lock:
                        if self._unprojected:
                            await self._project()
                    if self._projection_behind:
                        continue
                break
            if self._may_continue_as_new():
                await self._continue_as_new()

        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and self._deliveries.idle
        )
        assert self.state.stage is not None
        return JobSummary(slug=self.state.slug, stage=self.state.stage, number=self.state.number)

    @property
    def _finished(self) -> bool:
        return self.state.stage in FINAL_STAGES

    def _may_continue_as_new(self) -> bool:
        if not workflow.info().is_continue_as_new_suggested():
            return False
        if not self._one_writer:
            return True  # the run then waits for every delivery, however long its retries last
        # Deliveries are handed over; anything else (a closeout, a document) is waited for here
        # in the loop, so reminders keep firing meanwhile.
        return workflow.all_handlers_finished() and self._deliveries.only_deliveries_left

    async def _continue_as_new(self) -> NoReturn:
        handed_over: list[int] = []
        if self._one_writer:
            # Updates may arrive while deliveries are handed over (and start deliveries of their
            # own): continue only once none is running and every delivery has been handed over.
            while True:
                handed_over += await self._deliveries.hand_over()
                await workflow.wait_condition(
                    lambda: (
                        workflow.all_handlers_finished() and self._deliveries.only_deliveries_left
                    )
                )
                if not self._deliveries.delivering:
                    break
        else:
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() and self._deliveries.idle
            )
        workflow.continue_as_new(
            JobInput(
                slug=self.state.slug,
                client=self.state.client,
                state=self.state,
                unprojected=self._unprojected,
                history_base=self._position(),
                recent_updates=self._recent_updates,
                pending_deliveries=handed_over,
                job_url=self._job_url,
            )
        )

    # --- messages ---------------------------------------------------------------------------

    @workflow.update
    async def apply_event(self, request: EventRequest) -> EventOutcome:
        async with self._lock:
            if (earlier := self._earlier_outcome()) is not None:
                return earlier
            outcome = await self._accept(request, from_update=True)
            self._remember(outcome)
            return outcome

    @apply_event.validator
    def _validate_event(self, request: EventRequest) -> None:
        if self._earlier_outcome() is not None:
            return  # already applied: the handler answers with the earlier outcome
        decision = lifecycle.apply(self.state, request.event, request.actor, workflow.now())
        if isinstance(decision, Refusal):
            raise refusal_error(decision)
        if not self._one_writer:
            return
        # What the handler will compute must not fail there: a failure after acceptance would
        # leave an accepted event that cannot be applied.
        problems: list[str] = []
        if self._closeout_on and isinstance(request.event, ev.JobCompleted) and request.closeout:
            problems = validate_receipt_fields(request.closeout, request.event.fields)
        try:
            reminders.pending(decision.state, self._settings)
        except (ValueError, OverflowError) as out_of_range:
            problems.append(f"a date is out of range: {out_of_range}")
        if problems:
            message = "fields: " + "; ".join(problems)
            raise refusal_error(
                lifecycle.refusal(self.state, request.actor, "invalid_event", message)
            )

    @workflow.signal(name="event")
    async def event_signal(self, request: EventRequest) -> None:
        async with self._lock:
            try:
                await self._accept(request)
            except (ApplicationError, ActivityError) as refused:  # a signal never fails the job
                # A signal has no caller to answer; the refusal is kept in the worker's log.
                workflow.logger.warning(
                    "signal refused",
                    extra={
                        "job_slug": self.state.slug,
                        "event": request.event.type,
                        "reason": str(refused),
                    },
                )

    @workflow.signal(name="refresh_projection")
    def refresh_projection(self) -> None:
        """Rewrite the projection from a new workflow task (the API sends this after an update
        failed for a reason other than the rules, in case that task's write was discarded)."""
        self._projection_behind = True

    @workflow.query
    def job(self) -> JobState:
        return self.state

    # An update completed in the same task as continue-as-new can be delivered again to the new
    # run (temporalio/temporal#6375); the ids of recent updates travel with the state so a
    # payment, say, is never recorded twice.
    RECENT_UPDATES_KEPT = 100

    def _earlier_outcome(self) -> EventOutcome | None:
        info = workflow.current_update_info()
        return self._recent_updates.get(info.id) if info else None

    def _remember(self, outcome: EventOutcome) -> None:
        info = workflow.current_update_info()
        if info is None:
            return
        # Without the job as it was: a hundred whole states would overflow continue-as-new's
        # input, and an update answered again reads the job from the projection.
        self._recent_updates[info.id] = outcome.model_copy(
            update={"projection": None, "unwritten": None}
        )
        while len(self._recent_updates) > self.RECENT_UPDATES_KEPT:
            del self._recent_updates[next(iter(self._recent_updates))]

    def _position(self) -> int:
        return self._history_base + workflow.info().get_current_history_length()

    # --- accepting an event -----------------------------------------------------------------

    async def _accept(self, request: EventRequest, from_update: bool = False) -> EventOutcome:
        now = workflow.now()
        # Checked again under the lock: an earlier event may have changed the job since validation.
        decision = lifecycle.apply(self.state, request.event, request.actor, now)
        if isinstance(decision, Refusal):
            raise refusal_error(decision)
        closeout: JobCloseout | None = None
        if self._closeout_on and isinstance(request.event, ev.JobCompleted):
            if self._one_writer and request.closeout is not None:
                closeout = request.closeout  # as the validator checked it
            else:
                # Read now, not from a cache: the fields required are the ones configured today.
                closeout = await self._load_closeout()
            problems = validate_receipt_fields(closeout, request.event.fields)
            if problems:
                message = "fields: " + "; ".join(problems)
                raise refusal_error(
                    lifecycle.refusal(self.state, request.actor, "invalid_event", message)
                )
        decision_before = self.state
        state = decision.state
        if decision.assign_number and state.number is None:
            number = await self._allocate_number(state.slug, from_update)
            state = state.model_copy(update={"number": number})
        state = state.model_copy(update={"seq": self.state.seq + 1})
        self.state = state
        self._unprojected.append(
            TimelineRecord(
                seq=state.seq,
                type=request.event.type,
                actor=request.actor,
                at=now,
                summary=describe(request.event),
                payload=request.event.model_dump(mode="json"),
                request_id=self._update_id(),
                stage=state.stage.value if state.stage else None,
            )
        )
        if self._one_writer:
            if self._answer_first:
                return await self._accept_answering_first(
                    request, decision_before, closeout, from_update
                )
            return await self._accept_as_one_writer(request, decision_before, closeout)
        projection: ProjectionInput | None = None
        if not self._reminders_on:
            await self._project()
        else:
            dues = reminders.pending(state, self._settings)
            self._next_reminder_at = dues[0].at if dues else None
            if from_update:
                # The API writes this event; the worker writes them all once the job settles.
                projection = self._projection_input(self._unprojected[-1:])
                self._last_update_at = workflow.now()
                if self._settle_at is None:
                    self._settle_at = self._last_update_at + self._settle_after
            else:
                await self._project()
        self._publish()
        message_ids: list[int] = []
        if self._reminders_on:
            for note in notifications.for_event(request.event, decision_before, state):
                if not self._closeout_on and note.purpose in notifications.DOCUMENT_PURPOSES:
                    continue
                attached: list[str] = []
                if self._closeout_on and note.attach is not None:
                    document_id = await documents.render(state, note.attach)
                    attached = [document_id] if document_id else []
                message_ids += await self._deliveries.send(
                    QueueMessages(
                        state=state,
                        notification=note,
                        actor=request.actor,
                        document_ids=attached,
                    )
                )
        if closeout is not None:
            self._deliveries.in_background(close_out(state, closeout, self._deliveries))
        assert state.stage is not None
        return EventOutcome(
            seq=state.seq,
            stage=state.stage,
            number=state.number,
            message_ids=message_ids,
            projection=projection,
        )

    async def _accept_as_one_writer(
        self, request: EventRequest, before: JobState, closeout: JobCloseout | None
    ) -> EventOutcome:
        """The rest of `_accept` from the one-writer patch on: messages are queued (those with a
        document follow once it is rendered), then the projection is written, all before the
        Update answers, and nothing here waits longer than a bounded retry."""
        state = self.state
        queueing = self._start_messages(request, before)
        projecting: asyncio.Task[None] | None = None
        if self._parallel_writes:
            self._plan_next_reminder()
            # The job view does not depend on the messages: write it while they are queued.
            projecting = asyncio.create_task(self._project())
        message_ids = await self._queued_ids(queueing)
        if projecting is not None:
            await projecting
        else:
            self._plan_next_reminder()
            await self._project()
        return self._outcome(
            request,
            state,
            closeout,
            message_ids,
            # Only when the write failed (the run loop retries it): the answer shows the job
            # as the event left it all the same.
            unwritten=self._projection_input(list(self._unprojected))
            if self._unprojected
            else None,
        )

    async def _accept_answering_first(
        self,
        request: EventRequest,
        before: JobState,
        closeout: JobCloseout | None,
        from_update: bool,
    ) -> EventOutcome:
        """The rest of `_accept` from the answer-first patch on: the answer leaves as soon as
        the job has taken the event and queued its messages, carrying the view for the API to
        write; the documents follow it, and the job settles a moment later."""
        state = self.state
        queueing = self._start_messages(request, before)
        self._plan_next_reminder()
        if from_update:
            # The API writes this view; the job settles once its events have stopped.
            self._last_update_at = workflow.now()
            if self._settle_at is None:
                self._settle_at = self._last_update_at + self._settle_after
        else:
            await self._project()  # a signal: no one else writes it
        # The answer names the messages the event queued (the job's communications show them).
        message_ids = await self._queued_ids(queueing)
        return self._outcome(
            request,
            state,
            closeout,
            message_ids,
            projection=self._projection_input(list(self._unprojected)) if from_update else None,
        )

    def _outcome(
        self,
        request: EventRequest,
        state: JobState,
        closeout: JobCloseout | None,
        message_ids: list[int],
        **view: ProjectionInput | None,
    ) -> EventOutcome:
        """Publish the job, start what the event starts alongside it, and answer (one-writer
        and answer-first runs; `view`: the job view the answer carries, if any)."""
        self._publish()
        self._start_follow_ons(request, state, closeout)
        assert state.stage is not None
        return EventOutcome(
            seq=state.seq,
            stage=state.stage,
            number=state.number,
            message_ids=message_ids,
            request_digest=request.request_digest,
            **view,
        )

    def _start_messages(
        self, request: EventRequest, before: JobState
    ) -> list[asyncio.Task[list[int]]]:
        """Queue the event's messages in the background (one with a document waits for it)."""
        state = self.state
        queueing: list[asyncio.Task[list[int]]] = []
        for note in notifications.for_event(request.event, before, state):
            if note.attach is not None:
                self._deliveries.in_background(self._send_with_document(state, note, request))
                continue
            message = QueueMessages(state=state, notification=note, actor=request.actor)
            queueing.append(self._deliveries.queue_in_background(message, self._not_queued))
        return queueing

    async def _queued_ids(self, queueing: list[asyncio.Task[list[int]]]) -> list[int]:
        """The ids of the messages queued in time (usually at once); if the database is slow
        they are queued all the same, just after the answer."""
        if not queueing:
            return []
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: all(task.done() for task in queueing),
                timeout=QUEUE_WAIT,
                timeout_summary="wait for the event's messages to be queued",
            )
        return [i for task in queueing if task.done() for i in task.result()]

    def _plan_next_reminder(self) -> None:
        dues = reminders.pending(self.state, self._settings)
        self._next_reminder_at = dues[0].at if dues else None

    def _start_follow_ons(
        self, request: EventRequest, state: JobState, closeout: JobCloseout | None
    ) -> None:
        """What an event starts alongside the job: its closeout, its unresulted clock."""
        if closeout is not None:
            self._deliveries.in_background(
                close_out(state, closeout, self._deliveries, patient=True)
            )
        if isinstance(request.event, ev.QuoteSent | ev.JobCanceled) and workflow.patched(
            RESULTING_CLOCK_PATCH
        ):
            # From the event's own time (the stage it entered), not this later task's.
            assert state.stage_entered_at is not None
            self._deliveries.in_background(self._start_resulting_clock(state.stage_entered_at))

    async def _send_with_document(
        self, state: JobState, note: notifications.Notification, request: EventRequest
    ) -> None:
        """A message that carries a document waits for it (rendering is retried for hours, not
        given up after a few tries), outside the event's Update and lock."""
        assert note.attach is not None
        document_id = await documents.render(state, note.attach, patient=True)
        if document_id is None:
            async with self._lock:
                self._record_trouble(
                    "document_not_rendered",
                    f"The {note.attach} PDF could not be made; its message went without it",
                )
                await self._project()
        message = QueueMessages(
            state=state,
            notification=note,
            actor=request.actor,
            document_ids=[document_id] if document_id else [],
        )
        # The render ran as an activity, so the event is in history: a local activity will do.
        await self._deliveries.queue(message, self._not_queued, committed=True)

    async def _start_resulting_clock(self, at: datetime) -> None:
        await workflow.execute_activity(
            START_RESULTING_CLOCK,
            ResultingClock(slug=self.state.slug, at=at, task_queue=workflow.info().task_queue),
            start_to_close_timeout=CATCH_UP_TIMEOUT,
            retry_policy=CATCH_UP_RETRY,
            summary="start the unresulted clock",
        )

    async def _not_queued(
        self, message: QueueMessages, failed: ActivityError | ApplicationError
    ) -> None:
        """A message that could not be queued (a template or date it cannot render, or a
        database away for an hour): the job's timeline says so, for the office to act on."""
        async with self._lock:
            self._record_trouble(
                "message_not_queued",
                f"The {message.notification.purpose} message was not sent: {failed.cause}",
            )
            await self._project()

    def _record_trouble(self, kind: str, summary: str) -> None:
        """Something the office must hear of, on the job's timeline (it never fails the event)."""
        workflow.logger.warning(summary, extra={"job_slug": self.state.slug, "kind": kind})
        self.state = self.state.model_copy(update={"seq": self.state.seq + 1})
        self._unprojected.append(
            TimelineRecord(
                seq=self.state.seq,
                type=kind,
                actor=JOBLINE,
                at=workflow.now(),
                summary=summary[:500],
                payload={},
                stage=self.state.stage.value if self.state.stage else None,
            )
        )

    async def _allocate_number(self, slug: str, from_update: bool) -> int:
        number: int
        try:
            number = await self._local.execute(
                ALLOCATE_JOB_NUMBER,
                slug,
                result_type=int,
                **self._write_options(),
                summary="allocate job number" if self._one_writer else None,
            )
        except (ActivityError, ApplicationError):
            if not self._one_writer:
                raise
            if from_update:
                # Nothing has changed yet: the caller is told to send the event again.
                raise ApplicationError(
                    "no job number could be allocated (the database did not answer); "
                    "send the event again",
                    type="unavailable",
                    non_retryable=True,
                ) from None
            # A signal has no caller to send it again: wait for the database instead.
            number = await workflow.execute_activity(
                ALLOCATE_JOB_NUMBER,
                slug,
                result_type=int,
                start_to_close_timeout=CATCH_UP_TIMEOUT,
                retry_policy=CATCH_UP_RETRY,
                summary="allocate job number (waiting for the database)",
            )
        return number

    @staticmethod
    def _update_id() -> str | None:
        info = workflow.current_update_info()
        return info.id if info else None

    def _write_options(self) -> dict[str, Any]:
        """Timeouts and retries of the workflow's own quick database writes (the projection, a
        job number)."""
        if self._one_writer:
            return {
                "start_to_close_timeout": ONE_WRITER_WRITE_TIMEOUT,
                "schedule_to_close_timeout": ONE_WRITER_WRITE_DEADLINE,
                "retry_policy": ONE_WRITER_WRITE_RETRY,
            }
        return {
            "start_to_close_timeout": LOCAL_WRITE_TIMEOUT,
            "schedule_to_close_timeout": LOCAL_WRITE_DEADLINE,
            "retry_policy": LOCAL_WRITE_RETRY,
        }

    def _projection_input(
        self, records: list[TimelineRecord], only_if_missing: bool = False
    ) -> ProjectionInput:
        return ProjectionInput(
            state=self.state,
            records=records,
            position=self._position(),
            at=workflow.now(),
            next_reminder_at=self._next_reminder_at,
            only_if_missing=only_if_missing,
        )

    async def _project(self, only_if_missing: bool = False) -> None:
        records = list(self._unprojected)
        try:
            if self._one_writer:
                # A regular activity, not a local one: it only runs once the task that applied
                # the event is in history, so a task the server discards (one that carried
                # Updates) never leaves its state in the database.
                await workflow.execute_activity(
                    PROJECT_JOB,
                    self._projection_input(records, only_if_missing),
                    **self._write_options(),
                    summary=f"write job view (event {self.state.seq})",
                )
            else:
                await self._local.execute(
                    PROJECT_JOB,
                    self._projection_input(records, only_if_missing),
                    **self._write_options(),
                )
        # A local activity out of attempts raises its last failure (ApplicationError), not an
        # ActivityError.
        except (ActivityError, ApplicationError):
            workflow.logger.warning("projection write failed; the run loop will catch up")
            self._projection_behind = True
            return
        self._unprojected = self._unprojected[len(records) :]
        if not self._unprojected:
            self._settle_at = None

    async def _catch_up_projection(self) -> None:
        async with self._lock:
            records = list(self._unprojected)
            await workflow.execute_activity(
                PROJECT_JOB,
                self._projection_input(records),
                start_to_close_timeout=CATCH_UP_TIMEOUT,
                retry_policy=CATCH_UP_RETRY,
                summary="write job view (waiting for the database)" if self._one_writer else None,
            )
            self._unprojected = self._unprojected[len(records) :]
            self._projection_behind = False
            if not self._unprojected:
                self._settle_at = None

    def _publish(self) -> None:
        """Search attributes for ops, and the Web UI's current details."""
        s = self.state
        assert s.stage is not None and s.milestone is not None and s.stage_entered_at is not None
        tech = s.schedule.technician if s.schedule else None
        updates: list[SearchAttributeUpdate] = [
            sa.JOB_STAGE.value_set(s.stage.value),
            sa.JOB_MILESTONE.value_set(s.milestone.value),
            sa.CLIENT_ID.value_set(s.client.id),
            sa.WAITING_ON.value_set(s.waiting_on),
            sa.STAGE_ENTERED_AT.value_set(s.stage_entered_at),
            sa.STUCK.value_set(reminders.is_stuck(s)),
            sa.JOB_NUMBER.value_set(s.number) if s.number else sa.JOB_NUMBER.value_unset(),
            sa.JOB_OWNER.value_set(s.owner) if s.owner else sa.JOB_OWNER.value_unset(),
            sa.ASSIGNED_TECH.value_set(tech) if tech else sa.ASSIGNED_TECH.value_unset(),
            sa.CONTRACT_AMOUNT.value_set(float(s.contract_amount))
            if s.contract_amount is not None
            else sa.CONTRACT_AMOUNT.value_unset(),
        ]
        if self._reminders_on:
            at = self._next_reminder_at
            updates.append(
                sa.NEXT_REMINDER_AT.value_set(at) if at else sa.NEXT_REMINDER_AT.value_unset()
            )
            # Only what changed: every upsert is a history event and a visibility write.
            updates = [u for u in updates if self._published.get(u.key.name, _UNSET) != u.value]
            self._published.update({u.key.name: u.value for u in updates})
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        """The Web UI's current details: what an operator needs to see why a job sits where it
        is, with times in the company's zone."""
        s = self.state
        assert s.stage is not None and s.milestone is not None and s.stage_entered_at is not None
        zone = self._settings.zone

        def when(at: datetime | None) -> str:
            return at.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z") if at else "—"

        stuck = "no"
        if reminders.is_stuck(s):
            limit = self._settings.stage_limits_hours.get(s.stage)
            held = (workflow.now() - s.stage_entered_at).total_seconds() / 3600
            stuck = (
                f"yes: quote unanswered after {s.reminders.follow_ups_sent} follow-up(s)"
                if s.reminders.quote_stale and s.stage.value == "quote_sent"
                else f"yes: {s.stage.value} for {held:.0f} h (limit {limit} h)"
            )
        due = reminders.pending(s, self._settings) if self._reminders_on else []
        next_reminder = when(self._next_reminder_at)
        if due and (label := self._alarm_label(due[0])):
            next_reminder += f" ({label})"
        lines = [
            f"**Stage:** {s.stage.value} ({s.milestone.value})",
            f"**Waiting on:** {s.waiting_on}",
            f"**In stage since:** {when(s.stage_entered_at)}",
            f"**Job number:** {s.number or '—'}",
            f"**Next reminder:** {next_reminder}",
            f"**Stuck:** {stuck}",
            f"**Events:** {s.seq}",
        ]
        if self._job_url:
            lines.append(f"**Job:** [{s.slug}]({self._job_url})")
        return "\n".join(lines)

    # --- reminders ----------------------------------------------------------------------------

    async def _load_settings(self) -> CommunicationSettings:
        return await self._local.execute(
            LOAD_COMMUNICATION_SETTINGS,
            result_type=CommunicationSettings,
            start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
            retry_policy=LOCAL_WRITE_RETRY,
        )

    async def _load_closeout(self) -> JobCloseout:
        return await self._local.execute(
            LOAD_JOB_CLOSEOUT,
            result_type=JobCloseout,
            start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
            retry_policy=LOCAL_WRITE_RETRY,
        )

    def _wake_at(self, due: reminders.Due | None) -> datetime | None:
        wake = [t for t in (due.at if due else None, self._settle_at) if t is not None]
        return min(wake) if wake else None

    def _alarm_label(self, due: reminders.Due | None) -> str | None:
        """What the next timer is for, as the Web UI shows it ("quote follow-up 2 of 3")."""
        settling = self._settle_at is not None and (due is None or self._settle_at <= due.at)
        if self._answer_first and settling:
            return "settle: check the job view is written"
        if not self._one_writer or due is None:
            return None
        r = self.state.reminders
        match due.kind:
            case "quote_follow_up":
                return f"quote follow-up {r.follow_ups_sent + 1} of {self._settings.max_follow_ups}"
            case "payment_reminder":
                return f"payment reminder {r.payment_reminders_sent + 1}"
            case "stuck":
                return "stuck check"
            case _:
                return due.kind.replace("_", " ")

    def _arm(self, at: datetime | None, label: str | None = None) -> None:
        """One durable timer for the next wake-up, replaced only when that time changes, so a
        burst of events that leaves the next reminder where it was starts no new timers."""
        if at == self._alarm_at:
            return
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        self._alarm_at = at
        if at is not None:
            self._alarm = asyncio.create_task(self._ring(at, label))

    async def _ring(self, at: datetime, label: str | None) -> None:
        # Already due rings at once (a timer needs a positive duration).
        await workflow.sleep(max(at - workflow.now(), timedelta(milliseconds=1)), summary=label)
        self._alarm = None
        self._alarm_at = None
        self._alarm_rang = True

    async def _on_alarm(self, due: reminders.Due | None) -> bool:
        """Settle the job or fire its reminder, whichever is due; True for a settle."""
        now = workflow.now()
        if self._settle_at is not None and self._settle_at <= now:
            quiet_since = self._last_update_at or now
            if now - quiet_since < self._settle_after:
                self._settle_at = quiet_since + self._settle_after  # still busy: settle later
                return True
            async with self._lock:
                if self._unprojected:
                    await self._project(only_if_missing=self._settle_reads_first)
                self._settle_at = None
            return True
        if due is not None and due.at <= now:
            await self._fire(due)
        return False

    async def _show_next_reminder(self, at: datetime | None) -> None:
        """Settings may have moved the next reminder: keep the job view and NextReminderAt true."""
        if at == self._next_reminder_at:
            return
        async with self._lock:
            self._next_reminder_at = at
            await self._project()
            self._publish()

    async def _fire(self, due: reminders.Due) -> None:
        async with self._lock:
            now = workflow.now()
            # An event may have arrived while this waited for the lock.
            current = reminders.pending(self.state, self._settings)
            if not current or current[0].kind != due.kind or current[0].at > now:
                return
            state = reminders.fired(self.state, due, now, self._settings)
            self.state = state.model_copy(update={"seq": self.state.seq + 1})
            self._unprojected.append(
                TimelineRecord(
                    seq=self.state.seq,
                    type=due.kind,
                    actor=JOBLINE,
                    at=now,
                    summary=reminders.describe(due, self.state, self._settings),
                    payload={"due_at": due.at.isoformat()},
                    stage=self.state.stage.value if self.state.stage else None,
                )
            )
            dues = reminders.pending(self.state, self._settings)
            self._next_reminder_at = dues[0].at if dues else None
            await self._project()
            self._publish()
            for note in notifications.for_reminder(due.kind, self.state):
                message = QueueMessages(state=self.state, notification=note)
                if self._one_writer:
                    self._deliveries.queue_in_background(message, self._not_queued)
                else:
                    await self._deliveries.send(message)
