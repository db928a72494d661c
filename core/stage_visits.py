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

import functools
import math
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlmodel import Session

from core.db import insert
from models.messages import TimelineRecord
from models.tables import JobEvent, JobStageVisit

_EVENTS = JobEvent.__table__  # type: ignore[attr-defined]
_VISITS = JobStageVisit.__table__  # type: ignore[attr-defined]

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
    while True:  # SQLite may have no ln(): the lengths are measured here, a batch at a time
        ended = connection.execute(
            select(_VISITS.c.id, _VISITS.c.entered_at, _VISITS.c.left_at)
            .where(_VISITS.c.left_at.is_not(None), _VISITS.c.seconds.is_(None))
            .limit(BACKFILL_BATCH)
        ).all()
        if not ended:
            return made
        for visit_id, entered_at, left_at in ended:
            seconds = (left_at - entered_at).total_seconds()
            connection.execute(
                _VISITS.update()
                .where(_VISITS.c.id == visit_id)
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
    previous = session.execute(_STAGE_BEFORE, {"slug": slug, "seq": staged[0].seq}).scalar()
    for entry in staged:
        stage = stage_of[entry.seq]
        if stage == previous:
            continue
        _move(session, dialect, slug, stage, entry.at)
        previous = stage


# The statements of every write, built once with their parameters left open (issue 12). Built
# afresh on each write, against the ORM classes, making them (and their cache keys, and the ORM's
# bulk-insert path) took more of the API's CPU than anything else in its write of the job view,
# and on SQLite the write lock is held the while.
_STAGE_BEFORE = (
    select(_EVENTS.c.stage)
    .where(
        _EVENTS.c.job_slug == bindparam("slug"),
        _EVENTS.c.seq < bindparam("seq"),
        _EVENTS.c.stage.is_not(None),
    )
    .order_by(_EVENTS.c.seq.desc())
    .limit(1)
)
_OPEN_VISITS = select(_VISITS.c.id, _VISITS.c.entered_at).where(
    _VISITS.c.job_slug == bindparam("slug"),
    _VISITS.c.left_at.is_(None),
    _VISITS.c.entered_at <= bindparam("at"),
    _VISITS.c.stage != bindparam("stage"),
)
# (A SET's parameters may not share its columns' names.)
_END_VISIT = (
    _VISITS.update()
    .where(_VISITS.c.id == bindparam("visit_id"))
    .values(
        left_at=bindparam("ended_at"),
        seconds=bindparam("length"),
        bucket=bindparam("length_bucket"),
    )
)


@functools.cache
def _begin_visit(dialect: str) -> Any:
    return (
        insert(dialect, _VISITS)
        .values(job_slug=bindparam("slug"), stage=bindparam("stage"), entered_at=bindparam("at"))
        .on_conflict_do_nothing(index_elements=["job_slug", "entered_at", "stage"])
    )


def _move(session: Session, dialect: str, slug: str, stage: str, at: datetime) -> None:
    """End the job's open visit (of another stage, begun by now) and begin one of `stage`."""
    where = {"slug": slug, "stage": stage, "at": at}
    for visit_id, entered_at in session.execute(_OPEN_VISITS, where).all():
        seconds = (at - entered_at).total_seconds()
        ended = {"ended_at": at, "length": seconds, "length_bucket": bucket_of(seconds)}
        session.execute(_END_VISIT, {"visit_id": visit_id, **ended})
    session.execute(_begin_visit(dialect), where)
