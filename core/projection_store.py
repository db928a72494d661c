"""Writing a job's projection (its row and timeline) — one function for every writer.

The API writes the result of each Update it sent, for read-your-writes without a second round trip
to the worker; the projection activity writes after signals, reminders and when a job settles.
Both go through `write_projection`, which only ever moves a job forward.

"Forward" is ordered by (position, at, seq): position is where in the workflow's history the
state was made, `at` the time of the workflow task that made it. From the job workflow's
`answer-first` patch on, two writers write the same views: the API, from the answer of the
Update it sent (which the server hands back only once the task that took the event is in
history), and the workflow when the job settles a few seconds later, with a regular activity
(which runs only for tasks the server kept) that reads first and writes only what is missing.
Each write carries every timeline record the workflow has not yet seen written, so whichever
lands last, a write turned away as older has its records in the newer one or already in the
database. Between one-writer and answer-first only the workflow wrote.
Runs from before one-writer also wrote from local activities, so a write could come from a
workflow task the server later discarded; the next task's write (a later position, or the same
one later) replaces it, and timeline rows past the job's seq are removed as its leftovers.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from core import stage_visits
from core.db import insert
from models import board
from models.lifecycle import JobState
from models.messages import ProjectionInput, TimelineRecord
from models.reminders import is_stuck
from models.tables import Job, JobEvent


def job_row(
    state: JobState, position: int, at: datetime, next_reminder_at: datetime | None = None
) -> dict[str, Any]:
    assert state.stage is not None and state.created_at is not None
    return {
        "slug": state.slug,
        "seq": state.seq,
        "number": state.number,
        "title": state.title,
        "client_id": state.client.id,
        "client_name": state.client.name,
        "stage": state.stage.value,
        "milestone": state.milestone.value if state.milestone else "",
        "owner": state.owner,
        "assigned_tech": state.schedule.technician if state.schedule else None,
        "priority": state.priority,
        "waiting_on": state.waiting_on,
        "stuck": is_stuck(state),
        "contract_amount": state.contract_amount,
        "created_at": state.created_at,
        "updated_at": at,
        "stage_entered_at": state.stage_entered_at or state.created_at,
        "next_reminder_at": next_reminder_at,
        "state": state.model_dump(mode="json"),
        "position": position,
        **board.columns(state),
    }


def timeline_row(slug: str, record: TimelineRecord, stage: str | None = None) -> dict[str, Any]:
    """The job_events row of one timeline record (`stage`: the job's, when the record names none
    and is the state's latest)."""
    return {
        "stage": record.stage or stage,
        "job_slug": slug,
        "seq": record.seq,
        "type": record.type,
        "actor": record.actor.username,
        "actor_role": record.actor.role.value,
        "at": record.at,
        "summary": record.summary[:500],
        "payload": record.payload,
        "request_id": record.request_id,
    }


async def already_written(session: AsyncSession, input: ProjectionInput) -> bool:
    """Whether the job's row holds exactly this state and its timeline every one of these
    records, or a later write is there, which carried them (a read: it takes no turn for
    SQLite's write lock)."""
    state = input.state
    row = (
        await session.execute(
            select(Job.seq, Job.state, Job.position).where(Job.slug == state.slug)
        )
    ).first()
    if row is None:
        return False
    if row.position > input.position:
        return True  # the write would be turned away as older: the newer one has its records
    if row.seq != state.seq or row.state != state.model_dump(mode="json"):
        return False
    wanted = {(record.seq, record.type) for record in input.records}
    if not wanted:
        return True
    found = await session.execute(
        select(JobEvent.seq, JobEvent.type).where(
            JobEvent.job_slug == state.slug, JobEvent.seq.in_([seq for seq, _ in wanted])
        )
    )
    return wanted <= {(seq, type_) for seq, type_ in found.all()}


# The write's statements are built once (the upserts once per dialect) and run with each write's
# values as parameters: building them afresh (the column proxies of `excluded` above all, and the
# ORM's bulk-delete path) cost more than running them.
_TIMELINE_REPLACED = (
    "type",
    "actor",
    "actor_role",
    "at",
    "summary",
    "payload",
    "request_id",
    "stage",
)


@functools.cache
def _job_upsert(dialect: str, columns: tuple[str, ...]) -> Any:
    jobs = Job.__table__  # the table, not the entity: a plain Core statement, no ORM bulk path
    upsert = insert(dialect, jobs)
    excluded = upsert.excluded
    c = jobs.c
    return upsert.on_conflict_do_update(
        index_elements=["slug"],
        set_={k: excluded[k] for k in columns if k != "slug"},
        # A retried or late write is older and must never move the job back.
        where=or_(
            c.position < excluded.position,
            and_(c.position == excluded.position, c.updated_at < excluded.updated_at),
            and_(
                c.position == excluded.position,
                c.updated_at == excluded.updated_at,
                c.seq <= excluded.seq,
            ),
        ),
    ).returning(c.slug)


_EVENTS = JobEvent.__table__
_EVENTS_AFTER = _EVENTS.delete().where(
    _EVENTS.c.job_slug == bindparam("slug"), _EVENTS.c.seq > bindparam("seq")
)


@functools.cache
def _timeline_upsert(dialect: str) -> Any:
    upsert = insert(dialect, JobEvent.__table__)
    return upsert.on_conflict_do_update(
        index_elements=["job_slug", "seq"],
        set_={name: upsert.excluded[name] for name in _TIMELINE_REPLACED},
    )


def write_projection(session: Session, dialect: str, input: ProjectionInput) -> bool:
    """Upsert the job row and its timeline; False if a newer write was already there.

    Plain blocking code, for `Database.run_in_one_go`: on SQLite the whole write runs in one
    thread, holding the write lock only as long as its statements take."""
    state = input.state
    assert state.stage is not None
    at = input.at or (input.records[-1].at if input.records else datetime.now(UTC))
    row = job_row(state, input.position, at, input.next_reminder_at)
    upsert = _job_upsert(dialect, tuple(row))
    if session.execute(upsert, row).first() is None:
        return False  # a newer write is already there, with every record of this one
    if input.records:
        session.execute(
            _timeline_upsert(dialect),
            [
                timeline_row(
                    state.slug, record, state.stage.value if record.seq == state.seq else None
                )
                for record in input.records
            ],
        )
    # Rows past this seq were written by a workflow task the server discarded.
    session.execute(_EVENTS_AFTER, {"slug": state.slug, "seq": state.seq})
    stages = {
        record.seq: stage
        for record in input.records
        if (stage := record.stage or (state.stage.value if record.seq == state.seq else None))
    }
    stage_visits.record(session, dialect, state.slug, input.records, stages)
    return True
