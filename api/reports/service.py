"""The manager's reports (DESIGN.md §6 "Reports and exports", issue 10 §5), one query function each.

Every function is `await <report>(session, filters, viewer)` and returns its model of
api/reports/schemas.py. The work is done by the database (counts, sums, window functions); Python
only shapes the answer, except where a step needs what SQLite lacks (percentiles) or reads JSON
documents (result forms).

Who reads what: managers and admins every report; a sales user only their own jobs (the owner
filter is forced to them, and asking for someone else's is a 403); office and technicians none.

Filters: `from` and `to` are days in the company's time zone (communication settings'
`timezone`): from the start of `from` (inclusive) to the end of `to` (exclusive of the next
day's midnight). `owner` is the job's owner (jobs.owner) now. Which moment a report's period
applies to is said per report below. Months are calendar months in the company's zone.

Definitions:

- **pipeline**: open jobs (every stage but closed and canceled) created in the period, counted and
  summed (the board's worth, jobs.amount) per stage and per milestone.
- **sales**: per month and owner, (a) the jobs approved that month — the event that gave the job
  its number (`quote_approved`, `approval_granted` or `emergency_dispatch`) was that month — with
  their contract amount; a job approved and later canceled still counts in its approval month
  (the cancellation shows in loss-reasons); (b) the jobs whose *current* result is a Sale
  submitted that month, with the result's amount. The period applies to those two moments.
- **conversion**: the jobs created in the period (leads); how many reached approved or beyond (they
  have a job number, so emergencies count), how many are closed and canceled now; the rates
  approved/created, closed/created and closed/approved, per owner and for everyone.
- **loss-reasons**: (a) each dropdown field of the *current* No Sale results submitted in the
  period, value by value, as that revision's form (`job_results.form`) configured it; (b) the
  `reason` of each `job_canceled` event in the period (trimmed text, counted as written).
- **time-in-stage**: a *visit* of stage S begins at the event that moved the job into S (the first
  event whose `job_events.stage` is S after one whose stage was not) and ends at the next event
  that moved it elsewhere. A visit still going on (the job's current stage) counts up to now and
  is also counted as open. Closed and canceled are final and have no time in them. Events written
  before migration 0010 carry no stage and are skipped, so an older job's visits start at its
  first event with a stage. The period applies to when the visit began. Median and p90 are
  continuous percentiles (linear interpolation, PostgreSQL's `percentile_cont`), in hours. The
  visits are the projection's (`job_stage_visits`, core/stage_visits.py), not recomputed from
  the timelines on every request.
- **stuck**: the jobs flagged now: `stuck` (a stage held past its limit), `quote_stale`,
  `parts_overdue`, `unpaid`, `unresulted`; with their stage, what they wait on and how long they
  have been in their stage; longest in their stage first. The period applies to created_at.
- **follow-ups**: the `quote_follow_up` messages of the outbox created in the period (each
  message counts, whatever its channel and delivery status), per month and owner. For every job
  followed up in the period, what its quote did next after its *last* follow-up of the period —
  the first of `quote_approved`/`approval_granted` (approved), `quote_declined` (declined),
  `job_canceled` (canceled) after it, or nothing yet (waiting) — counted in the month of that
  last follow-up.
- **resulting**: sale and no-sale counts and amounts of the *current* results submitted in the
  period; the jobs flagged unresulted now (created in the period), most overdue first; the jobs
  whose current result (submitted in the period) is a resubmission, with revisions and
  resubmissions (revisions - 1); per user, the revisions they submitted in the period and how many
  were resubmissions (revision > 1); and for every *optional* field, the share of the current
  results of its type (submitted in the period) whose revision's form had the field and that kept
  a value for it (empty optional values are not kept at submission; a checkbox's false is kept).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Invalid, NotPermitted
from api.reports import schemas as s
from core import settings_store
from core.stage_visits import BUCKETS_PER_E
from models.communications import CommunicationSettings
from models.lifecycle import FINAL_STAGES, MILESTONE_OF, Milestone, Role, Stage
from models.tables import (
    Job,
    JobEvent,
    JobResult,
    JobStageVisit,
    OutboxMessage,
    User,
    UTCDateTime,
)

# The events that give a job its number: it is approved (or dispatched as an emergency) then.
APPROVAL_EVENTS = ("quote_approved", "approval_granted", "emergency_dispatch")
# What a followed-up quote can do next, and how the report names it.
FOLLOW_UP_OUTCOMES = {
    "quote_approved": "approved",
    "approval_granted": "approved",
    "quote_declined": "declined",
    "job_canceled": "canceled",
}
OPEN_STAGES_IN_ORDER = [stage for stage in Stage if stage not in FINAL_STAGES]
FLAGS: tuple[s.StuckReason, ...] = ("stuck", "quote_stale", "parts_overdue", "unpaid", "unresulted")
READERS = (Role.admin, Role.manager, Role.sales)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Scope:
    """The filters after the viewer's role, and the period as UTC instants."""

    filters: s.ReportFilters
    zone: ZoneInfo
    start: datetime | None
    end: datetime | None
    now: datetime

    def period(self, column: Any) -> list[ColumnElement[bool]]:
        """`column` within the period: from the start (inclusive) to the end (exclusive)."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions

    def owned(self) -> list[ColumnElement[bool]]:
        owner = self.filters.owner
        return [col(Job.owner) == owner] if owner is not None else []

    def head(self) -> dict[str, Any]:
        """The fields every report starts with."""
        return {
            "filters": self.filters,
            "timezone": self.zone.key,
            "generated_at": self.now.astimezone(self.zone),
        }


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight at the start of `day` in the company's zone, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def effective_filters(filters: s.ReportFilters, viewer: User) -> s.ReportFilters:
    """The filters the viewer's role allows: a 403 for office and technicians, and for a sales
    user asking about someone else; a sales user's reports are their own jobs."""
    if viewer.role not in {r.value for r in READERS}:
        raise NotPermitted(
            f"reports are for: admin, manager, sales (their own jobs); you are {viewer.role}"
        )
    if viewer.role == Role.sales:
        if filters.owner not in (None, viewer.username):
            raise NotPermitted(
                "a sales user reads reports on their own jobs only: leave owner out or give "
                f"your own username ({viewer.username})"
            )
        return filters.model_copy(update={"owner": viewer.username})
    return filters


async def scope_of(
    session: AsyncSession, filters: s.ReportFilters, viewer: User, now: datetime | None = None
) -> Scope:
    filters = effective_filters(filters, viewer)
    if filters.start and filters.end and filters.end < filters.start:
        raise Invalid("`to` is before `from`: give a period that ends after it starts", field="to")
    comms = await settings_store.load(session, settings_store.COMMUNICATIONS, CommunicationSettings)
    zone = comms.zone
    return Scope(
        filters=filters,
        zone=zone,
        start=day_start(filters.start, zone) if filters.start else None,
        end=day_start(filters.end + timedelta(days=1), zone) if filters.end else None,
        now=now or datetime.now(UTC),
    )


# --- months in the company's zone, computed by the database ---------------------------------


@dataclass(frozen=True)
class Month:
    label: str  # "YYYY-MM"
    start: datetime  # UTC instants of the local month's first midnight ...
    end: datetime  # ... and the next month's


def months_between(first: datetime, last: datetime, zone: ZoneInfo) -> list[Month]:
    """Every local month from the one holding `first` to the one holding `last`."""
    local, final = first.astimezone(zone), last.astimezone(zone)
    year, month = local.year, local.month
    months: list[Month] = []
    while (year, month) <= (final.year, final.month):
        following = (year + (month == 12), month % 12 + 1)
        months.append(
            Month(
                f"{year:04d}-{month:02d}",
                day_start(date(year, month, 1), zone),
                day_start(date(following[0], following[1], 1), zone),
            )
        )
        year, month = following
    return months


def month_of(column: Any, months: Sequence[Month]) -> Any:
    """The label of the month `column` falls in: a CASE over the months' boundaries, which is
    exact in any zone (DST included) on both databases. Values outside the months give NULL."""
    if not months:
        return literal(None)
    return case(
        *[(and_(column >= m.start, column < m.end), literal(m.label)) for m in months],
        else_=literal(None),
    )


async def months_for(session: AsyncSession, scope: Scope, spans: Sequence[Any]) -> list[Month]:
    """The months of the period; where it is open-ended, up to the earliest and latest of the
    moments the report counts (`spans`: statements selecting min and max of them, over every
    owner's jobs: an owner's report may show a few months with nothing in them)."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for statement in spans:
        low, high = (await session.execute(statement)).one()
        if low is not None:
            lows.append(_aware(low))
            highs.append(_aware(high))
    if not lows and (scope.start is None or scope.end is None):
        return []
    first = scope.start or min(lows)
    last = (scope.end - timedelta(microseconds=1)) if scope.end else max(highs)
    return months_between(first, last, scope.zone)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- pipeline --------------------------------------------------------------------------------


async def pipeline(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.PipelineReport:
    scope = await scope_of(session, filters, viewer)
    statement = (
        select(col(Job.stage), func.count(), func.sum(col(Job.amount)))
        .where(
            col(Job.stage).in_([stage.value for stage in OPEN_STAGES_IN_ORDER]),
            *scope.period(col(Job.created_at)),
            *scope.owned(),
        )
        .group_by(col(Job.stage))
    )
    found = {
        stage: (count, _money(amount)) for stage, count, amount in await session.execute(statement)
    }
    rows = [
        s.PipelineRow(
            stage=stage.value,
            milestone=MILESTONE_OF[stage].value,
            count=found.get(stage.value, (0, ZERO))[0],
            amount=found.get(stage.value, (0, ZERO))[1],
        )
        for stage in OPEN_STAGES_IN_ORDER
    ]
    milestones: dict[str, list[Any]] = {}
    for row in rows:
        total = milestones.setdefault(row.milestone, [0, ZERO])
        total[0] += row.count
        total[1] += row.amount
    return s.PipelineReport(
        **scope.head(),
        rows=rows,
        milestones=[
            s.MilestoneTotal(
                milestone=m.value, count=milestones[m.value][0], amount=milestones[m.value][1]
            )
            for m in Milestone
            if m.value in milestones
        ],
        count=sum(r.count for r in rows),
        amount=sum((r.amount for r in rows), ZERO),
    )


# --- sales -----------------------------------------------------------------------------------


async def sales(session: AsyncSession, filters: s.ReportFilters, viewer: User) -> s.SalesReport:
    scope = await scope_of(session, filters, viewer)
    approvals = [
        col(JobEvent.type).in_(APPROVAL_EVENTS),
        *scope.period(col(JobEvent.at)),
        *scope.owned(),
    ]
    sales_results = [
        col(Job.result_type) == "sale",
        *scope.period(col(Job.resulted_at)),
        *scope.owned(),
    ]
    months = await months_for(
        session,
        scope,
        [
            # Everyone's span (no join for the owner): a few empty months at worst.
            select(func.min(JobEvent.at), func.max(JobEvent.at)).where(
                col(JobEvent.type).in_(APPROVAL_EVENTS), *scope.period(col(JobEvent.at))
            ),
            select(func.min(Job.resulted_at), func.max(Job.resulted_at)).where(*sales_results),
        ],
    )
    approved = (
        select(
            month_of(col(JobEvent.at), months).label("month"),
            col(Job.owner).label("owner"),
            col(Job.contract_amount).label("amount"),
        )
        .select_from(JobEvent)
        .join(Job, col(Job.slug) == col(JobEvent.job_slug))
        .where(*approvals)
        .subquery()
    )
    sold = (
        select(
            month_of(col(Job.resulted_at), months).label("month"),
            col(Job.owner).label("owner"),
            col(Job.result_amount).label("amount"),
        )
        .where(*sales_results)
        .subquery()
    )
    cells: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [0, ZERO, 0, ZERO])
    for which, sub in ((0, approved), (2, sold)):
        grouped = select(sub.c.month, sub.c.owner, func.count(), func.sum(sub.c.amount)).group_by(
            sub.c.month, sub.c.owner
        )
        for month, owner, count, amount in await session.execute(grouped):
            cell = cells[(month, owner)]
            cell[which] += count
            cell[which + 1] += _money(amount)
    rows = [
        s.SalesRow(
            month=month,
            owner=owner,
            approved_count=c[0],
            contract_amount=c[1],
            sale_count=c[2],
            sale_amount=c[3],
        )
        for (month, owner), c in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    by_month = [
        s.SalesMonth(
            month=m.label,
            approved_count=sum(r.approved_count for r in rows if r.month == m.label),
            contract_amount=sum((r.contract_amount for r in rows if r.month == m.label), ZERO),
            sale_count=sum(r.sale_count for r in rows if r.month == m.label),
            sale_amount=sum((r.sale_amount for r in rows if r.month == m.label), ZERO),
        )
        for m in months
    ]
    return s.SalesReport(
        **scope.head(),
        rows=rows,
        months=by_month,
        approved_count=sum(r.approved_count for r in rows),
        contract_amount=sum((r.contract_amount for r in rows), ZERO),
        sale_count=sum(r.sale_count for r in rows),
        sale_amount=sum((r.sale_amount for r in rows), ZERO),
    )


# --- conversion ------------------------------------------------------------------------------


def _conversion_row(
    owner: str | None, created: int, approved: int, closed: int, canceled: int
) -> s.ConversionRow:
    return s.ConversionRow(
        owner=owner,
        created=created,
        approved=approved,
        closed=closed,
        canceled=canceled,
        approval_rate=_rate(approved, created),
        close_rate=_rate(closed, created),
        approved_close_rate=_rate(closed, approved),
    )


async def conversion(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.ConversionReport:
    scope = await scope_of(session, filters, viewer)
    statement = (
        select(
            col(Job.owner),
            func.count(),
            func.count(col(Job.number)),
            func.sum(case((col(Job.stage) == Stage.closed.value, 1), else_=0)),
            func.sum(case((col(Job.stage) == Stage.canceled.value, 1), else_=0)),
        )
        .where(*scope.period(col(Job.created_at)), *scope.owned())
        .group_by(col(Job.owner))
    )
    counted = [
        (owner, int(created), int(approved), int(closed or 0), int(canceled or 0))
        for owner, created, approved, closed, canceled in await session.execute(statement)
    ]
    counted.sort(key=lambda row: (row[0] is None, row[0] or ""))
    return s.ConversionReport(
        **scope.head(),
        rows=[_conversion_row(*row) for row in counted],
        total=_conversion_row(None, *(sum(row[i] for row in counted) for i in range(1, 5))),
    )


# --- loss reasons ----------------------------------------------------------------------------


def _current_results(scope: Scope, *conditions: Any) -> Any:
    """The current revision of each job's result, submitted in the period, of the owner's jobs."""
    return (
        select(JobResult)
        .select_from(JobResult)
        .join(
            Job,
            and_(
                col(Job.slug) == col(JobResult.job_slug),
                col(Job.result_revision) == col(JobResult.revision),
            ),
        )
        .where(*conditions, *scope.period(col(JobResult.submitted_at)), *scope.owned())
    )


async def loss_reasons(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.LossReasonsReport:
    scope = await scope_of(session, filters, viewer)
    no_sale = col(JobResult.type) == "no_sale"
    forms = await _forms(session, scope, no_sale)
    labels: dict[str, tuple[datetime, str]] = {}  # key -> the latest label it was shown with
    having: dict[str, list[str]] = defaultdict(list)  # key -> the forms with it as a dropdown
    for form in forms:
        for field in form.fields:
            key = field.get("key")
            if field.get("type") != "dropdown" or key is None:
                continue
            having[key].append(form.text)
            if key not in labels or form.latest > labels[key][0]:
                labels[key] = (form.latest, field.get("label") or key)
    rows = []
    for key, texts in having.items():
        # One pass per dropdown, counted by the database; the key is a bound parameter, so the
        # value is grouped on from a subquery (PostgreSQL would not match it in GROUP BY).
        values = (
            _current_results(scope, no_sale, _form_text().in_(texts))
            .with_only_columns(col(JobResult.fields)[key].as_string().label("value"))
            .subquery()
        )
        counted = await session.execute(
            select(values.c.value, func.count())
            .where(values.c.value.is_not(None))
            .group_by(values.c.value)
        )
        rows += [
            s.LossReasonRow(
                source="no_sale", field=key, label=labels[key][1], reason=value, count=n
            )
            for value, n in counted
            if value.strip()
        ]
    reason = col(JobEvent.payload)["reason"].as_string()
    cancels = (
        select(reason.label("reason"))
        .select_from(JobEvent)
        .join(Job, col(Job.slug) == col(JobEvent.job_slug))
        .where(
            col(JobEvent.type) == "job_canceled", *scope.period(col(JobEvent.at)), *scope.owned()
        )
        .subquery()
    )
    cancel_counts: Counter[str] = Counter()
    for text_, n in await session.execute(
        select(cancels.c.reason, func.count()).group_by(cancels.c.reason)
    ):
        cancel_counts[(text_ or "").strip() or "(none given)"] += n
    rows += [
        s.LossReasonRow(source="canceled", field="reason", label="Cancel reason", reason=r, count=n)
        for r, n in cancel_counts.items()
    ]
    rows.sort(key=lambda r: (r.source != "no_sale", r.field, -r.count, r.reason))
    return s.LossReasonsReport(
        **scope.head(),
        rows=rows,
        no_sale_count=sum(form.results for form in forms),
        canceled_count=sum(cancel_counts.values()),
    )


# --- time in stage ---------------------------------------------------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The continuous percentile of sorted values (linear interpolation, as percentile_cont)."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _visits(scope: Scope) -> Any:
    """One row per visit of a stage (stage, began, ended or NULL while it goes on), as the
    projection keeps them (core/stage_visits.py), of the jobs in scope."""
    visits: Any = select(
        col(JobStageVisit.stage).label("stage"),
        col(JobStageVisit.entered_at).label("began"),
        col(JobStageVisit.left_at).label("ended"),
        col(JobStageVisit.seconds).label("seconds"),
        col(JobStageVisit.bucket).label("bucket"),
    )
    if scope.filters.owner is not None:
        visits = visits.join(Job, col(Job.slug) == col(JobStageVisit.job_slug)).where(
            *scope.owned()
        )
    return visits.subquery("entries")


async def time_in_stage(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.TimeInStageReport:
    scope = await scope_of(session, filters, viewer)
    entries = _visits(scope)
    in_period = [
        entries.c.stage.not_in([stage.value for stage in FINAL_STAGES]),
        *scope.period(entries.c.began),
    ]
    found: dict[str, tuple[int, int, float | None, float | None]] = {}
    if (await session.connection()).dialect.name == "postgresql":
        found = await _stage_percentiles(session, entries, in_period, scope.now)
    else:  # SQLite has no percentiles: the visits' lengths are sorted here
        lengths: dict[str, list[float]] = defaultdict(list)
        still_open: Counter[str] = Counter()
        statement = select(entries.c.stage, entries.c.began, entries.c.ended).where(*in_period)
        for stage, began, ended in await session.execute(statement):
            if ended is None:
                still_open[stage] += 1
            ended_at = _aware(ended) if ended is not None else scope.now
            lengths[stage].append((ended_at - _aware(began)).total_seconds() / 3600)
        for stage, values in lengths.items():
            values.sort()
            found[stage] = (
                len(values),
                still_open[stage],
                _hours(percentile(values, 0.5)),
                _hours(percentile(values, 0.9)),
            )
    return s.TimeInStageReport(
        **scope.head(),
        rows=[
            s.StageTimeRow(
                stage=stage.value,
                visits=found.get(stage.value, (0, 0, None, None))[0],
                open_visits=found.get(stage.value, (0, 0, None, None))[1],
                median_hours=found.get(stage.value, (0, 0, None, None))[2],
                p90_hours=found.get(stage.value, (0, 0, None, None))[3],
            )
            for stage in OPEN_STAGES_IN_ORDER
        ],
    )


# Time in stage on PostgreSQL: the visits' lengths fall into buckets of equal ratio
# (core/stage_visits.py: a finished visit keeps its length and bucket), which are counted in one
# pass; the ranks the median and p90 need are then found in their buckets, and only those
# buckets' lengths are read and sorted. Exact (the same interpolation as percentile_cont), and
# several times faster than percentile_cont's sort of every visit (960,000 visits: 780 ms).
FRACTIONS = (0.5, 0.9)


async def _stage_percentiles(
    session: AsyncSession, entries: Any, in_period: list[Any], now: datetime
) -> dict[str, tuple[int, int, float | None, float | None]]:
    """Per stage: visits, open visits, median and p90 hours (see FRACTIONS). Finished visits
    are read by their stored bucket and length (an index); those still going on (one a job at
    most, a partial index) are measured up to now, their bucket as bucket_of would make it."""
    so_far = func.date_part("epoch", literal(now, type_=UTCDateTime()) - entries.c.began)
    open_bucket = func.floor(func.ln(func.greatest(so_far, 0) + 1) * BUCKETS_PER_E)
    finished = [*in_period, entries.c.ended.is_not(None)]
    going_on = [*in_period, entries.c.ended.is_(None)]
    histogram: dict[str, Counter[int]] = defaultdict(Counter)
    still_open: Counter[str] = Counter()
    for where, bucket, ongoing in (
        (finished, entries.c.bucket, False),
        (going_on, open_bucket, True),
    ):
        counted = select(entries.c.stage, bucket, func.count()).where(*where)
        for stage, at, visits in await session.execute(counted.group_by(entries.c.stage, bucket)):
            histogram[stage][int(at)] += visits
            if ongoing:
                still_open[stage] += visits
    # The (bucket, rank within it) of every rank the percentiles interpolate between.
    wanted: dict[str, dict[int, tuple[int, int]]] = {}
    for stage, buckets in histogram.items():
        total = buckets.total()
        ranks = sorted({r for f in FRACTIONS for r in _neighbours(f * (total - 1), total)})
        placed: dict[int, tuple[int, int]] = {}
        seen = 0
        for at, n in sorted(buckets.items()):
            for rank in ranks:
                if seen <= rank < seen + n:
                    placed[rank] = (at, rank - seen)
            seen += n
        wanted[stage] = placed
    pairs = sorted({(stage, at) for stage, placed in wanted.items() for at, _ in placed.values()})
    lengths: dict[tuple[str, int], list[float]] = defaultdict(list)
    if pairs:
        for where, bucket, length in (
            (finished, entries.c.bucket, entries.c.seconds),
            (going_on, open_bucket, so_far),
        ):
            read = select(entries.c.stage, bucket, length).where(
                *where, tuple_(entries.c.stage, bucket).in_(pairs)
            )
            for stage, at, seconds in await session.execute(read):
                lengths[(stage, int(at))].append(float(seconds))
        for values in lengths.values():
            values.sort()
    result: dict[str, tuple[int, int, float | None, float | None]] = {}
    for stage, buckets in histogram.items():
        total = buckets.total()

        def at_rank(rank: int, stage: str = stage) -> float:
            at, within = wanted[stage][rank]
            return lengths[(stage, at)][within] / 3600

        median, p90 = (_interpolated(f * (total - 1), total, at_rank) for f in FRACTIONS)
        result[stage] = (total, still_open[stage], _hours(median), _hours(p90))
    return result


def _neighbours(position: float, total: int) -> tuple[int, int]:
    below = math.floor(position)
    return below, min(below + 1, total - 1)


def _interpolated(position: float, total: int, at_rank: Callable[[int], float]) -> float:
    below, above = _neighbours(position, total)
    low = at_rank(below)
    return low + (at_rank(above) - low) * (position - below)


def _hours(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


# --- stuck -----------------------------------------------------------------------------------


def _flag_column(flag: str) -> Any:
    return getattr(Job, flag)


async def stuck(session: AsyncSession, filters: s.ReportFilters, viewer: User) -> s.StuckReport:
    scope = await scope_of(session, filters, viewer)
    flagged = [
        or_(*[_flag_column(flag).is_(True) for flag in FLAGS]),
        *scope.period(col(Job.created_at)),
        *scope.owned(),
    ]
    tally = (
        await session.execute(
            select(
                func.count(),
                *[func.sum(case((_flag_column(flag).is_(True), 1), else_=0)) for flag in FLAGS],
            ).where(*flagged)
        )
    ).one()
    jobs = await session.execute(
        select(
            col(Job.slug),
            col(Job.number),
            col(Job.title),
            col(Job.client_name),
            col(Job.owner),
            col(Job.stage),
            col(Job.waiting_on),
            col(Job.stage_entered_at),
            *[_flag_column(flag) for flag in FLAGS],
        )
        .where(*flagged)
        .order_by(col(Job.stage_entered_at), col(Job.slug))
        .limit(s.LIST_LIMIT)
    )
    rows = []
    for slug, number, title, client_name, owner, stage, waiting_on, entered, *flags in jobs:
        entered = _aware(entered)
        rows.append(
            s.StuckJob(
                slug=slug,
                number=number,
                title=title,
                client_name=client_name,
                owner=owner,
                stage=stage,
                waiting_on=waiting_on,
                reasons=[flag for flag, on in zip(FLAGS, flags, strict=True) if on],
                stage_entered_at=entered.astimezone(scope.zone),
                hours_in_stage=round((scope.now - entered).total_seconds() / 3600, 2),
            )
        )
    return s.StuckReport(
        **scope.head(),
        rows=rows,
        total=tally[0],
        by_reason=[
            s.ReasonCount(reason=flag, count=int(n or 0))
            for flag, n in zip(FLAGS, tally[1:], strict=True)
        ],
    )


# --- follow-ups ------------------------------------------------------------------------------


async def follow_ups(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.FollowUpsReport:
    scope = await scope_of(session, filters, viewer)
    messages = [
        col(OutboxMessage.purpose) == "quote_follow_up",
        *scope.period(col(OutboxMessage.created_at)),
        *scope.owned(),
    ]
    months = await months_for(
        session,
        scope,
        [
            select(func.min(OutboxMessage.created_at), func.max(OutboxMessage.created_at)).where(
                col(OutboxMessage.purpose) == "quote_follow_up",
                *scope.period(col(OutboxMessage.created_at)),
            )
        ],
    )
    cells: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    sent = (
        select(
            month_of(col(OutboxMessage.created_at), months).label("month"),
            col(Job.owner).label("owner"),
        )
        .select_from(OutboxMessage)
        .join(Job, col(Job.slug) == col(OutboxMessage.job_slug))
        .where(*messages)
        .subquery()
    )
    for month, owner, n in await session.execute(
        select(sent.c.month, sent.c.owner, func.count()).group_by(sent.c.month, sent.c.owner)
    ):
        cells[(month, owner)]["sent"] += n
    last = (
        select(
            col(OutboxMessage.job_slug).label("job_slug"),
            col(Job.owner).label("owner"),
            func.max(col(OutboxMessage.created_at)).label("last"),
        )
        .select_from(OutboxMessage)
        .join(Job, col(Job.slug) == col(OutboxMessage.job_slug))
        .where(*messages)
        .group_by(col(OutboxMessage.job_slug), col(Job.owner))
        .subquery("last_follow_up")
    )
    # What came next: the first decisive event after the last follow-up. One aggregate finds it:
    # the smallest seq * 10 + the event's code, whose last digit is the code of the first one.
    code = case(
        {kind: number for number, kind in enumerate(FOLLOW_UP_OUTCOMES, start=1)},
        value=col(JobEvent.type),
    )
    first_after = (
        select(
            last.c.owner,
            last.c.last,
            func.min(col(JobEvent.seq) * 10 + code).label("first"),
        )
        .select_from(last)
        .outerjoin(
            JobEvent,
            and_(
                col(JobEvent.job_slug) == last.c.job_slug,
                col(JobEvent.at) > last.c.last,
                col(JobEvent.type).in_(list(FOLLOW_UP_OUTCOMES)),
            ),
        )
        .group_by(last.c.job_slug, last.c.owner, last.c.last)
        .subquery("first_after")
    )
    outcomes = select(
        month_of(first_after.c.last, months).label("month"),
        first_after.c.owner,
        (first_after.c.first % 10).label("next"),
    ).subquery()
    kinds = dict(enumerate(FOLLOW_UP_OUTCOMES, start=1))
    for month, owner, happened, n in await session.execute(
        select(outcomes.c.month, outcomes.c.owner, outcomes.c.next, func.count()).group_by(
            outcomes.c.month, outcomes.c.owner, outcomes.c.next
        )
    ):
        cell = cells[(month, owner)]
        cell["quotes"] += n
        cell[FOLLOW_UP_OUTCOMES[kinds[happened]] if happened else "waiting"] += n
    rows = [
        s.FollowUpRow(
            month=month,
            owner=owner,
            **{k: c[k] for k in ("sent", "quotes", "approved", "declined", "canceled", "waiting")},
        )
        for (month, owner), c in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    totals = {
        k: sum(getattr(r, k) for r in rows)
        for k in ("sent", "quotes", "approved", "declined", "canceled", "waiting")
    }
    return s.FollowUpsReport(**scope.head(), rows=rows, **totals)


# --- resulting -------------------------------------------------------------------------------


async def resulting(
    session: AsyncSession, filters: s.ReportFilters, viewer: User
) -> s.ResultingReport:
    scope = await scope_of(session, filters, viewer)
    current = [*scope.period(col(Job.resulted_at)), *scope.owned()]
    totals = {
        kind: (n, _money(amount))
        for kind, n, amount in await session.execute(
            select(col(Job.result_type), func.count(), func.sum(col(Job.result_amount)))
            .where(col(Job.result_type).is_not(None), *current)
            .group_by(col(Job.result_type))
        )
    }
    unresulted_where = [
        col(Job.unresulted).is_(True),
        *scope.period(col(Job.created_at)),
        *scope.owned(),
    ]
    unresulted_count = await session.scalar(select(func.count()).where(*unresulted_where))
    unresulted = await session.execute(
        select(
            col(Job.slug),
            col(Job.number),
            col(Job.title),
            col(Job.client_name),
            col(Job.owner),
            col(Job.stage),
            col(Job.resulting_due_at),
        )
        .where(*unresulted_where)
        .order_by(col(Job.resulting_due_at).asc().nulls_last(), col(Job.slug))
        .limit(s.LIST_LIMIT)
    )
    resubmitted_where = [col(Job.result_revision) > 1, *current]
    resubmitted_count = await session.scalar(select(func.count()).where(*resubmitted_where))
    resubmitted = await session.execute(
        select(col(Job.slug), col(Job.number), col(Job.owner), col(Job.result_revision))
        .where(*resubmitted_where)
        .order_by(col(Job.result_revision).desc(), col(Job.slug))
        .limit(s.LIST_LIMIT)
    )
    by_user_query = (
        select(
            col(JobResult.submitted_by),
            func.count(),
            func.sum(case((col(JobResult.revision) > 1, 1), else_=0)),
        )
        .where(*scope.period(col(JobResult.submitted_at)))
        .group_by(col(JobResult.submitted_by))
    )
    if scope.filters.owner is not None:  # the job is read for its owner only
        by_user_query = by_user_query.join(Job, col(Job.slug) == col(JobResult.job_slug)).where(
            *scope.owned()
        )
    by_user = await session.execute(by_user_query)
    users = sorted(
        (
            s.UserResubmissions(user=user, submissions=n, resubmissions=int(again or 0))
            for user, n, again in by_user
        ),
        key=lambda u: (-u.resubmissions, -u.submissions, u.user),
    )
    return s.ResultingReport(
        **scope.head(),
        totals=[
            s.ResultTotals(
                type=kind,
                count=totals.get(kind, (0, ZERO))[0],
                amount=totals.get(kind, (0, ZERO))[1],
            )
            for kind in ("sale", "no_sale")
        ],
        unresulted=[
            s.UnresultedJob(
                slug=slug,
                number=number,
                title=title,
                client_name=client_name,
                owner=owner,
                stage=stage,
                resulting_due_at=_aware(due).astimezone(scope.zone) if due else None,
            )
            for slug, number, title, client_name, owner, stage, due in unresulted
        ],
        unresulted_count=unresulted_count or 0,
        resubmitted_jobs=[
            s.ResubmittedJob(
                slug=slug,
                number=number,
                owner=owner,
                revisions=revision,
                resubmissions=revision - 1,
            )
            for slug, number, owner, revision in resubmitted
        ],
        resubmitted_job_count=resubmitted_count or 0,
        by_user=users,
        field_completion=await _field_completion(session, scope),
    )


async def _field_completion(session: AsyncSession, scope: Scope) -> list[s.FieldCompletion]:
    """Per type and optional field: of the current results whose form had it, how many kept a
    value (counted by the database, form by form). The label and order are those of the latest
    form that had the field."""
    forms = await _forms(session, scope)
    keys = sorted(
        {f["key"] for form in forms for f in form.fields if not f.get("required") and "key" in f}
    )
    filled_per_form: dict[tuple[str, str], dict[str, int]] = {}
    if keys:
        statement = (
            _current_results(scope)
            .with_only_columns(
                col(JobResult.type),
                _form_text().label("form"),
                *[
                    func.sum(
                        case((col(JobResult.fields)[key].as_string().is_not(None), 1), else_=0)
                    )
                    for key in keys
                ],
            )
            .group_by(col(JobResult.type), _form_text())
        )
        for kind, text_, *filled in await session.execute(statement):
            filled_per_form[(kind, text_)] = {
                key: int(n or 0) for key, n in zip(keys, filled, strict=True)
            }
    seen: dict[tuple[str, str], list[Any]] = {}  # (type, key) -> [results, filled, label, when, i]
    for form in forms:
        for index, field in enumerate(form.fields):
            if field.get("required") or "key" not in field:
                continue
            entry = seen.setdefault((form.type, field["key"]), [0, 0, "", None, index])
            entry[0] += form.results
            entry[1] += filled_per_form.get((form.type, form.text), {}).get(field["key"], 0)
            if entry[3] is None or form.latest > entry[3]:
                entry[2] = field.get("label") or field["key"]
                entry[3], entry[4] = form.latest, index
    order = {"sale": 0, "no_sale": 1}
    return [
        s.FieldCompletion(
            type=kind,
            key=key,
            label=label,
            results=results,
            filled=filled,
            rate=_rate(filled, results),
        )
        for (kind, key), (results, filled, label, _, _) in sorted(
            seen.items(), key=lambda kv: (order.get(kv[0][0], 2), kv[1][4], kv[0][1])
        )
    ]


@dataclass(frozen=True)
class Form:
    """One form (a result type's fields as configured at submission) the current results used."""

    type: str
    text: str  # as stored: what results are matched on
    fields: list[dict[str, Any]]
    results: int
    latest: datetime  # the latest submission with it


def _form_text() -> Any:
    return cast(col(JobResult.form), Text)


async def _forms(session: AsyncSession, scope: Scope, *conditions: Any) -> list[Form]:
    """The distinct forms of the current results (few: one per settings change), with how many
    results used each: the JSON is read once per form, not once per result."""
    statement = (
        _current_results(scope, *conditions)
        .with_only_columns(
            col(JobResult.type),
            _form_text(),
            func.count(),
            func.max(col(JobResult.submitted_at)),
        )
        .group_by(col(JobResult.type), _form_text())
    )
    return [
        Form(kind, text_, json.loads(text_) or [], n, _aware(latest))
        for kind, text_, n, latest in await session.execute(statement)
    ]


ReportFunction = Callable[[AsyncSession, s.ReportFilters, User], Awaitable[s.Report]]
REPORTS: dict[str, ReportFunction] = {
    "pipeline": pipeline,
    "sales": sales,
    "conversion": conversion,
    "loss-reasons": loss_reasons,
    "time-in-stage": time_in_stage,
    "stuck": stuck,
    "follow-ups": follow_ups,
    "resulting": resulting,
}
