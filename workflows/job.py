"""The job workflow: one per job (`job-<slug>`), owning its live state from first call to payment.

Events arrive as the `apply_event` Update (from the API: refused events are rejected by the
validator and never enter history) or the `event` Signal (from integrations and
`temporal workflow signal`). Both go through the same pure rules in `models.lifecycle`. After every
accepted event the workflow writes the projection (a local activity, so the Update returns only
once the database shows the change), upserts the search attributes and refreshes the Web UI's
current details. The workflow completes when the job is closed or canceled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import lifecycle
    from models.lifecycle import FINAL_STAGES, JobState, Refusal
    from models.messages import (
        ALLOCATE_JOB_NUMBER,
        PROJECT_JOB,
        EventOutcome,
        EventRequest,
        JobInput,
        JobSummary,
        ProjectionInput,
        TimelineRecord,
    )
    from models.timeline import describe
    from workflows import search_attributes as sa

# Quick DB writes: retried inside the workflow task, never long enough to stall the job.
LOCAL_WRITE_TIMEOUT = timedelta(seconds=10)
LOCAL_WRITE_DEADLINE = timedelta(seconds=30)
LOCAL_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=50), maximum_interval=timedelta(seconds=2)
)
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
        self._recent_updates: dict[str, EventOutcome] = dict(input.recent_updates)
        # Handlers await activities; one event at a time keeps seq and state consistent.
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: JobInput) -> JobSummary:
        try:
            await workflow.wait_condition(
                lambda: self.state.stage is not None, timeout=CREATION_GRACE
            )
        except TimeoutError:
            raise ApplicationError("job_created never arrived", non_retryable=True) from None

        while True:
            await workflow.wait_condition(
                lambda: (
                    self._finished
                    or self._projection_behind
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            if self._projection_behind:
                await self._catch_up_projection()
            if self._finished:
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    JobInput(
                        slug=self.state.slug,
                        client=self.state.client,
                        state=self.state,
                        unprojected=self._unprojected,
                        history_base=self._position(),
                        recent_updates=self._recent_updates,
                    )
                )

        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.state.stage is not None
        return JobSummary(slug=self.state.slug, stage=self.state.stage, number=self.state.number)

    @property
    def _finished(self) -> bool:
        return self.state.stage in FINAL_STAGES and not self._projection_behind

    # --- messages ---------------------------------------------------------------------------

    @workflow.update
    async def apply_event(self, request: EventRequest) -> EventOutcome:
        async with self._lock:
            if (earlier := self._earlier_outcome()) is not None:
                return earlier
            outcome = await self._accept(request)
            self._remember(outcome)
            return outcome

    @apply_event.validator
    def _validate_event(self, request: EventRequest) -> None:
        if self._earlier_outcome() is not None:
            return  # already applied: the handler answers with the earlier outcome
        decision = lifecycle.apply(self.state, request.event, request.actor, workflow.now())
        if isinstance(decision, Refusal):
            raise refusal_error(decision)

    @workflow.signal(name="event")
    async def event_signal(self, request: EventRequest) -> None:
        async with self._lock:
            try:
                await self._accept(request)
            except ApplicationError as refused:
                # A signal has no caller to answer; the refusal is kept in the worker's log.
                workflow.logger.warning(
                    "signal refused",
                    extra={
                        "job_slug": self.state.slug,
                        "event": request.event.type,
                        "reason": refused.message,
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
        self._recent_updates[info.id] = outcome
        while len(self._recent_updates) > self.RECENT_UPDATES_KEPT:
            del self._recent_updates[next(iter(self._recent_updates))]

    def _position(self) -> int:
        return self._history_base + workflow.info().get_current_history_length()

    # --- accepting an event -----------------------------------------------------------------

    async def _accept(self, request: EventRequest) -> EventOutcome:
        now = workflow.now()
        # Checked again under the lock: an earlier event may have changed the job since validation.
        decision = lifecycle.apply(self.state, request.event, request.actor, now)
        if isinstance(decision, Refusal):
            raise refusal_error(decision)
        state = decision.state
        if decision.assign_number and state.number is None:
            number = await workflow.execute_local_activity(
                ALLOCATE_JOB_NUMBER,
                state.slug,
                result_type=int,
                start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
                schedule_to_close_timeout=LOCAL_WRITE_DEADLINE,
                retry_policy=LOCAL_WRITE_RETRY,
            )
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
            )
        )
        await self._project()
        self._publish()
        assert state.stage is not None
        return EventOutcome(seq=state.seq, stage=state.stage, number=state.number)

    def _projection_input(self, records: list[TimelineRecord]) -> ProjectionInput:
        return ProjectionInput(
            state=self.state, records=records, position=self._position(), at=workflow.now()
        )

    async def _project(self) -> None:
        records = list(self._unprojected)
        try:
            await workflow.execute_local_activity(
                PROJECT_JOB,
                self._projection_input(records),
                start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
                schedule_to_close_timeout=LOCAL_WRITE_DEADLINE,
                retry_policy=LOCAL_WRITE_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("projection write failed; the run loop will catch up")
            self._projection_behind = True
            return
        self._unprojected = self._unprojected[len(records) :]

    async def _catch_up_projection(self) -> None:
        async with self._lock:
            records = list(self._unprojected)
            await workflow.execute_activity(
                PROJECT_JOB,
                self._projection_input(records),
                start_to_close_timeout=CATCH_UP_TIMEOUT,
                retry_policy=CATCH_UP_RETRY,
            )
            self._unprojected = self._unprojected[len(records) :]
            self._projection_behind = False

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
            sa.STUCK.value_set(False),
            sa.JOB_NUMBER.value_set(s.number) if s.number else sa.JOB_NUMBER.value_unset(),
            sa.JOB_OWNER.value_set(s.owner) if s.owner else sa.JOB_OWNER.value_unset(),
            sa.ASSIGNED_TECH.value_set(tech) if tech else sa.ASSIGNED_TECH.value_unset(),
            sa.CONTRACT_AMOUNT.value_set(float(s.contract_amount))
            if s.contract_amount is not None
            else sa.CONTRACT_AMOUNT.value_unset(),
        ]
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            "\n".join(
                [
                    f"**Stage:** {s.stage.value} ({s.milestone.value})",
                    f"**Waiting on:** {s.waiting_on}",
                    f"**In stage since:** {s.stage_entered_at.isoformat()}",
                    f"**Job number:** {s.number or '—'}",
                    f"**Events:** {s.seq}",
                ]
            )
        )
