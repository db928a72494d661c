"""What each report answers (`GET /api/v1/reports/{name}`): one pydantic model per report.

Money is a Decimal (JSON: a string with two places, as everywhere in the API); durations are
hours as floats; months are "YYYY-MM" in the company's time zone. Each report echoes the filters
it was computed with (`filters`), after the viewer's role was applied (a sales user's `owner` is
always themselves). The definitions are in api/reports/service.py's docstring.

Callers (the API routes, the `/reports` page) use `api.reports.service`:
`await service.<report>(session, filters, viewer)` with `<report>` one of `pipeline`, `sales`,
`conversion`, `loss_reasons`, `time_in_stage`, `stuck`, `follow_ups`, `resulting` (or
`service.REPORTS[name]` by the URL's name), `filters` a `ReportFilters` and `viewer` the signed-in
`User`. It raises `api.errors.NotPermitted` for office and technicians and for a sales user asking
about another owner, and narrows a sales user's reports to their own jobs.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

ReportName = Literal[
    "pipeline",
    "sales",
    "conversion",
    "loss-reasons",
    "time-in-stage",
    "stuck",
    "follow-ups",
    "resulting",
]
REPORT_NAMES: tuple[str, ...] = ReportName.__args__  # type: ignore[attr-defined]

# Lists of jobs (stuck jobs, unresulted jobs, resubmitted jobs) give at most this many rows, the
# ones that most need someone first; `total` always counts them all.
LIST_LIMIT = 1000


class ReportFilters(BaseModel):
    """`?from=&to=&owner=`. Days are the company's: from the start of `start` (inclusive) to the
    end of `end` (inclusive: up to the next day's midnight, exclusive). None: unbounded / anyone."""

    start: date | None = None
    end: date | None = None
    owner: str | None = None


class Report(BaseModel):
    name: ReportName
    filters: ReportFilters
    timezone: str  # the company's zone the months and days are read in
    generated_at: datetime


# --- pipeline ---------------------------------------------------------------------------------


class PipelineRow(BaseModel):
    stage: str
    milestone: str
    count: int
    amount: Decimal  # the board's worth of those jobs (jobs.amount), 0 when none


class MilestoneTotal(BaseModel):
    milestone: str
    count: int
    amount: Decimal


class PipelineReport(Report):
    name: Literal["pipeline"] = "pipeline"
    rows: list[PipelineRow]  # every open stage in lifecycle order, zeros included
    milestones: list[MilestoneTotal]  # the same jobs by milestone, in lifecycle order
    count: int
    amount: Decimal


# --- sales ------------------------------------------------------------------------------------


class SalesRow(BaseModel):
    month: str  # "YYYY-MM"
    owner: str | None  # None: jobs without an owner
    approved_count: int
    contract_amount: Decimal
    sale_count: int  # current Sale results submitted that month
    sale_amount: Decimal


class SalesMonth(BaseModel):
    month: str
    approved_count: int
    contract_amount: Decimal
    sale_count: int
    sale_amount: Decimal


class SalesReport(Report):
    name: Literal["sales"] = "sales"
    rows: list[SalesRow]  # by month then owner; only months/owners with something in them
    months: list[SalesMonth]  # every month of the period (zeros included), all owners
    approved_count: int
    contract_amount: Decimal
    sale_count: int
    sale_amount: Decimal


# --- conversion -------------------------------------------------------------------------------


class ConversionRow(BaseModel):
    owner: str | None
    created: int  # leads: jobs created in the period
    approved: int  # of them: reached approved or beyond (a job number; emergencies count)
    closed: int  # of them: closed now
    canceled: int  # of them: canceled now
    approval_rate: float | None  # approved / created (None when created is 0)
    close_rate: float | None  # closed / created
    approved_close_rate: float | None  # closed / approved


class ConversionReport(Report):
    name: Literal["conversion"] = "conversion"
    rows: list[ConversionRow]  # per owner
    total: ConversionRow  # everyone (owner None)


# --- loss reasons -----------------------------------------------------------------------------


class LossReasonRow(BaseModel):
    source: Literal["no_sale", "canceled"]
    field: str  # the No Sale dropdown's key, or "reason" for cancellations
    label: str  # the dropdown's label as configured at submission, or "Cancel reason"
    reason: str
    count: int


class LossReasonsReport(Report):
    name: Literal["loss-reasons"] = "loss-reasons"
    rows: list[LossReasonRow]  # most frequent first within each source and field
    no_sale_count: int  # current No Sale results in the period
    canceled_count: int  # cancellations in the period


# --- time in stage ----------------------------------------------------------------------------


class StageTimeRow(BaseModel):
    stage: str
    visits: int  # visits that began in the period
    open_visits: int  # of them: still going on now
    median_hours: float | None
    p90_hours: float | None


class TimeInStageReport(Report):
    name: Literal["time-in-stage"] = "time-in-stage"
    rows: list[StageTimeRow]  # every open stage in lifecycle order, zeros included


# --- stuck ------------------------------------------------------------------------------------

StuckReason = Literal["stuck", "quote_stale", "parts_overdue", "unpaid", "unresulted"]


class StuckJob(BaseModel):
    slug: str
    number: int | None
    title: str
    client_name: str
    owner: str | None
    stage: str
    waiting_on: str
    reasons: list[StuckReason]
    stage_entered_at: datetime
    hours_in_stage: float


class ReasonCount(BaseModel):
    reason: StuckReason
    count: int


class StuckReport(Report):
    name: Literal["stuck"] = "stuck"
    rows: list[StuckJob]  # longest in their stage first, at most LIST_LIMIT
    total: int
    by_reason: list[ReasonCount]


# --- follow-ups -------------------------------------------------------------------------------

FollowUpOutcome = Literal["approved", "declined", "canceled", "waiting"]


class FollowUpRow(BaseModel):
    month: str
    owner: str | None
    sent: int  # quote follow-ups sent that month
    quotes: int  # jobs whose last follow-up of the period was that month
    approved: int  # of those quotes, what happened next after that last follow-up
    declined: int
    canceled: int
    waiting: int


class FollowUpsReport(Report):
    name: Literal["follow-ups"] = "follow-ups"
    rows: list[FollowUpRow]  # by month then owner
    sent: int
    quotes: int
    approved: int
    declined: int
    canceled: int
    waiting: int


# --- resulting --------------------------------------------------------------------------------


class ResultTotals(BaseModel):
    type: Literal["sale", "no_sale"]
    count: int
    amount: Decimal


class UnresultedJob(BaseModel):
    slug: str
    number: int | None
    title: str
    client_name: str
    owner: str | None
    stage: str
    resulting_due_at: datetime | None


class ResubmittedJob(BaseModel):
    slug: str
    number: int | None
    owner: str | None
    revisions: int
    resubmissions: int  # revisions - 1


class UserResubmissions(BaseModel):
    user: str
    submissions: int  # revisions they submitted
    resubmissions: int  # of them: revision > 1


class FieldCompletion(BaseModel):
    type: Literal["sale", "no_sale"]
    key: str
    label: str
    results: int  # current results of that type whose form had this optional field
    filled: int
    rate: float | None  # filled / results


class ResultingReport(Report):
    name: Literal["resulting"] = "resulting"
    totals: list[ResultTotals]  # sale, then no_sale
    unresulted: list[UnresultedJob]  # longest overdue first, at most LIST_LIMIT
    unresulted_count: int
    resubmitted_jobs: list[ResubmittedJob]  # most revisions first, at most LIST_LIMIT
    resubmitted_job_count: int
    by_user: list[UserResubmissions]  # most resubmissions first
    field_completion: list[FieldCompletion]  # by type, then the form's order


AnyReport = (
    PipelineReport
    | SalesReport
    | ConversionReport
    | LossReasonsReport
    | TimeInStageReport
    | StuckReport
    | FollowUpsReport
    | ResultingReport
)
