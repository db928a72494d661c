"""Each job's visits to its stages (`job_stage_visits`), for the reports' time in stage.

A visit of stage S begins at the event that moved the job into S and ends at the next event that
moved it elsewhere (NULL while the job is still there). The projection writes them with the
timeline (`record`), from the stage each event left the job in (`job_events.stage`), so the
report reads one row per visit instead of walking every job's timeline (1.3 million events for a
year of 100,000 jobs took 1.7 s; the visits, a fraction of that). `backfill` makes them from the
timelines already stored (migration 0012; the reports' tests and benchmark, whose rows are
inserted directly).

Idempotent: a visit is unique by (job, when it began, stage), and a retried write finds what the
first one wrote; the stage before a batch is read from the timeline before its first record, so
a retry decides exactly as the first attempt did.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import Connection, and_, select, text, update
from sqlmodel import Session, col

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
BACKFILL_BATCH = 5000

# A finished visit keeps its length in seconds and the length's bucket: buckets of equal ratio
# (e^(1/64), about 1.6% wide), so the reports' median and p90 count the visits per bucket and
# sort only the few buckets that hold the ranks they need (api/reports/service.py).
BUCKETS_PER_E = 64


def bucket_of(seconds: float) -> int:
    return math.floor(math.log(max(seconds, 0.0) + 1) * BUCKETS_PER_E)


def backfill(connection: Connection) -> int:
    """The visits of every stored timeline (migration 0012; tests and benchmarks that insert
    timelines directly), with the lengths of those that ended; how many."""
    made = connection.execute(
        text(
            "INSERT INTO job_stage_visits (job_slug, stage, entered_at, left_at) "
            + VISITS_OF_TIMELINES
            # Run again, it makes only the visits missing.
            + " ON CONFLICT (job_slug, entered_at, stage) DO NOTHING"
        )
    ).rowcount
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                "UPDATE job_stage_visits SET seconds = date_part('epoch', left_at - entered_at), "
                "bucket = floor(ln(greatest(date_part('epoch', left_at - entered_at), 0) + 1) "
                f"* {BUCKETS_PER_E}) WHERE left_at IS NOT NULL"
            )
        )
        return made
    visits = JobStageVisit.__table__  # type: ignore[attr-defined]
    while True:  # SQLite may have no ln(): the lengths are measured here, a batch at a time
        ended = connection.execute(
            select(visits.c.id, visits.c.entered_at, visits.c.left_at)
            .where(visits.c.left_at.is_not(None), visits.c.seconds.is_(None))
            .limit(BACKFILL_BATCH)
        ).all()
        if not ended:
            return made
        for visit_id, entered_at, left_at in ended:
            seconds = (left_at - entered_at).total_seconds()
            connection.execute(
                visits.update()
                .where(visits.c.id == visit_id)
                .values(seconds=seconds, bucket=bucket_of(seconds))
            )


def record(
    session: Session,
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
        session.execute(
            select(col(JobEvent.stage))
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
        _move(session, dialect, slug, stage, entry.at)
        previous = stage


def _move(session: Session, dialect: str, slug: str, stage: str, at: datetime) -> None:
    """End the job's open visit (of another stage, begun by now) and begin one of `stage`."""
    ending = session.execute(
        select(col(JobStageVisit.id), col(JobStageVisit.entered_at)).where(
            and_(
                col(JobStageVisit.job_slug) == slug,
                col(JobStageVisit.left_at).is_(None),
                col(JobStageVisit.entered_at) <= at,
                col(JobStageVisit.stage) != stage,
            )
        )
    )
    for visit_id, entered_at in ending.all():
        seconds = (at - entered_at).total_seconds()
        session.execute(
            update(JobStageVisit)
            .where(col(JobStageVisit.id) == visit_id)
            .values(left_at=at, seconds=seconds, bucket=bucket_of(seconds))
        )
    session.execute(
        insert(dialect, JobStageVisit)
        .values(job_slug=slug, stage=stage, entered_at=at)
        .on_conflict_do_nothing(index_elements=["job_slug", "entered_at", "stage"])
    )
