"""What the API, the job workflow and its activities pass to each other.

Each workflow, update, signal and activity takes one of these models, so a field can be added later
without breaking running workflows or stored histories.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from models.closeout import JobCloseout
from models.events import Event
from models.lifecycle import Actor, ClientSnapshot, JobState, Stage
from models.notifications import Notification


class JobInput(BaseModel):
    """Start (and continue-as-new) input of the job workflow."""

    slug: str
    client: ClientSnapshot
    # Carried across continue-as-new; None / empty on the first run.
    state: JobState | None = None
    unprojected: list[TimelineRecord] = []
    # History events of earlier runs, so projection positions keep growing across runs.
    history_base: int = 0
    # Outcomes of the latest updates by update id: a retried update is answered, not re-applied.
    recent_updates: dict[str, EventOutcome] = {}
    # Messages whose delivery the earlier run handed over (cancelled there, resumed here).
    pending_deliveries: list[int] = []
    # The job's page, linked from the Temporal Web UI's current details.
    job_url: str | None = None


class EventRequest(BaseModel):
    """One event for the job, from the API (as an Update) or an integration (as a Signal)."""

    event: Event
    actor: Actor
    # The receipt fields configured when the API took a `job_completed`: the Update's validator
    # checks them, so a job_completed missing one is refused before it enters history.
    closeout: JobCloseout | None = None
    # A digest of what the client sent with its Idempotency-Key: a key reused for a different
    # request is told so instead of being answered with the first request's outcome.
    request_digest: str | None = None


class EventOutcome(BaseModel):
    seq: int
    stage: Stage
    number: int | None
    # Outbox messages the event queued (quote email, appointment SMS, customer update, ...).
    message_ids: list[int] = []
    # Runs from before the one-writer patch: the projection for the API to write.
    projection: ProjectionInput | None = None
    # The workflow could not write the projection yet (it retries until the database takes it):
    # the job as the event left it, for the API's answer only; the API never writes it.
    unwritten: ProjectionInput | None = None
    request_digest: str | None = None


class TimelineRecord(BaseModel):
    seq: int
    type: str
    actor: Actor
    at: datetime
    summary: str
    payload: dict[str, Any]
    # The Update that applied the event (its Idempotency-Key's id, when the client sent one).
    request_id: str | None = None
    # The stage the event left the job in (reports' time in stage). Records made before it was
    # added have none; the projection then knows it only for the latest one.
    stage: str | None = None


class ProjectionInput(BaseModel):
    state: JobState
    records: list[TimelineRecord]
    # Where in the workflow's history (over all runs) this write was made. A write from a later
    # workflow task always wins, even at the same seq: that is how a write made in a workflow task
    # that the server then discarded gets replaced.
    position: int = 0
    at: datetime | None = None
    next_reminder_at: datetime | None = None
    # A settling job's write, in case the API that sent its last Update did not write it: when
    # the database already holds this state and these records (the usual case), it writes
    # nothing, so a burst of jobs settling together costs reads, not turns for the write lock.
    only_if_missing: bool = False


class QueueMessages(BaseModel):
    """Messages to create for one event or reminder. Recipients and text are resolved, and the
    rows written, by the activity. The job's state travels along (it is small) because the
    projection may not show this event yet: the message must say what the event made true."""

    state: JobState
    notification: Notification
    actor: Actor | None = None
    # Stored documents (ids) the email carries: the quote, the work receipt, the invoice.
    document_ids: list[str] = []


class JobSummary(BaseModel):
    """The result of a finished job workflow."""

    slug: str
    stage: Stage
    number: int | None


JobInput.model_rebuild()
EventOutcome.model_rebuild()

# Activity names, so the workflow can call them without importing the activities' I/O modules.
PROJECT_JOB = "project_job"
ALLOCATE_JOB_NUMBER = "allocate_job_number"
LOAD_COMMUNICATION_SETTINGS = "load_communication_settings"
QUEUE_MESSAGES = "queue_messages"
DELIVER_MESSAGE = "deliver_message"
