"""Each job's visits to its stages (`job_stage_visits`), for the reports' time in stage.

A visit of stage S begins at the event that moved the job into S and ends at the next event that
moved it elsewhere (NULL while the job is still there). The projection writes them with the
timeline (`record`), from the stage each event left the job in (`job_events.stage`), so the
report reads one row per visit instead of walking every job's timeline (1.3 million events for a
year of 100,000 jobs took 1.7 s; the visits, a fraction of that). `BACKFILL` makes them from the
timeline already stored (migration 0012; the reports' tests and benchmark, whose rows are
inserted directly).

Idempotent: a visit is unique by (job, when it began, stage), and a retried write finds what the
first one wrote; the stage before a batch is read from the timeline before its first record, so
a retry decides exactly as the first attempt did.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import insert
from models.messages import TimelineRecord
from models.tables import JobEvent, JobStageVisit

# Every stage change of every timeline, as visits (the inner LAG finds the changes, the outer
# LEAD ends each visit at the next change). Plain SQL: SQLite (3.25+) and PostgreSQL alike.
VISITS_OF_TIMELINES = """
SELECT job_slug, stage, at AS entered_at,
       LEAD(at) OVER (PARTITION BY job_slug ORDER BY seq) AS left_at
FROM (
    SELECT job_slug, seq, stage, at,
           LAG(stage) OVER (PARTITION BY job_slug ORDER BY seq) AS previous
    FROM job_events
    WHERE stage IS NOT NULL
) AS staged
WHERE previous IS NULL OR previous <> stage
"""
BACKFILL = (
    "INSERT INTO job_stage_visits (job_slug, stage, entered_at, left_at) " + VISITS_OF_TIMELINES
)


async def record(
    session: AsyncSession,
    dialect: str,
    slug: str,
    records: list[TimelineRecord],
    stage_of: dict[int, str],
) -> None:
    """The visits these timeline records begin and end. `stage_of`: each record's stage by seq
    (records without one are left out)."""
    staged = sorted((r for r in records if r.seq in stage_of), key=lambda r: r.seq)
    if not staged:
        return
    previous = (
        await session.execute(
            select(JobEvent.stage)
            .where(
                col(JobEvent.job_slug) == slug,
                col(JobEvent.seq) < staged[0].seq,
                col(JobEvent.stage).is_not(None),
            )
            .order_by(col(JobEvent.seq).desc())
            .limit(1)
        )
    ).scalar()
    for entry in staged:
        stage = stage_of[entry.seq]
        if stage == previous:
            continue
        await _move(session, dialect, slug, stage, entry.at)
        previous = stage


async def _move(session: AsyncSession, dialect: str, slug: str, stage: str, at: datetime) -> None:
    """End the job's open visit (of another stage, begun by now) and begin one of `stage`."""
    await session.execute(
        update(JobStageVisit)
        .where(
            and_(
                col(JobStageVisit.job_slug) == slug,
                col(JobStageVisit.left_at).is_(None),
                col(JobStageVisit.entered_at) <= at,
                col(JobStageVisit.stage) != stage,
            )
        )
        .values(left_at=at)
    )
    await session.execute(
        insert(dialect, JobStageVisit)
        .values(job_slug=slug, stage=stage, entered_at=at)
        .on_conflict_do_nothing(index_elements=["job_slug", "entered_at", "stage"])
    )
