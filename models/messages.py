"""What the API, the job workflow and its activities pass to each other.

Each workflow, update, signal and activity takes one of these models, so a field can be added later
without breaking running workflows or stored histories.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from models.events import Event
from models.lifecycle import Actor, ClientSnapshot, JobState, Stage


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


class EventRequest(BaseModel):
    """One event for the job, from the API (as an Update) or an integration (as a Signal)."""

    event: Event
    actor: Actor


class EventOutcome(BaseModel):
    seq: int
    stage: Stage
    number: int | None


class TimelineRecord(BaseModel):
    seq: int
    type: str
    actor: Actor
    at: datetime
    summary: str
    payload: dict[str, Any]


class ProjectionInput(BaseModel):
    state: JobState
    records: list[TimelineRecord]
    # Where in the workflow's history (over all runs) this write was made. A write from a later
    # workflow task always wins, even at the same seq: that is how a write made in a workflow task
    # that the server then discarded gets replaced.
    position: int = 0
    at: datetime | None = None


class JobSummary(BaseModel):
    """The result of a finished job workflow."""

    slug: str
    stage: Stage
    number: int | None


JobInput.model_rebuild()

# Activity names, so the workflow can call them without importing the activities' I/O modules.
PROJECT_JOB = "project_job"
ALLOCATE_JOB_NUMBER = "allocate_job_number"
