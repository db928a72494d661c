"""The reports page, `/reports` (issue 10 §5-6): every report a manager reads, on one page, with
a chart where a manager would rather look than read (sales by month, the conversion funnel,
time in stage, loss reasons), each chart beside its table and its CSV.

The numbers are api/reports/service.py's, with its rule on who reads what: managers and admins
every report, sales their own jobs only, everyone else refused (a refusal page). This module
reads the filter form, asks the service, and turns the answers into words, money and charts
(api/web/charts.py) in the company's zone and currency.

`/reports/{name}.csv` serves a report's CSV to the signed-in person: the API's
`/api/v1/reports/{name}.csv` wants a bearer token, a browser has a session cookie. The CSV is
the reports module's own, not a second writer of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from api.deps import SessionDep
from api.errors import NotFound, NotPermitted
from api.jobs.service import board_people
from api.reports import service as reports
from api.reports import tables
from api.reports.routes import csv_response
from api.reports.schemas import LIST_LIMIT, REPORT_NAMES, ReportFilters
from api.web import charts
from api.web.pages import SignedIn, Viewer, page_router, render
from core.company import Company
from models.bounds import date_problem
from models.lifecycle import Role

router = page_router()

# The people who read reports: the service's rule, checked before anything is read.
READERS = reports.READERS
SEES_EVERYONE = (Role.admin, Role.manager)
OWNER_ROLES = (Role.sales, Role.manager, Role.office, Role.admin)
DEFAULT_MONTHS = 12
# Jobs listed on the page per list (stuck, unresulted, resubmitted); the CSV has more.
SHOWN = 50
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STUCK_WORDS = {
    "stuck": ("Stuck", "stuck"),
    "quote_stale": ("Stale quote", "stale"),
    "parts_overdue": ("Parts overdue", "overdue"),
    "unpaid": ("Unpaid", "quiet"),
    "unresulted": ("Not resulted", "info"),
}
RESULT_WORDS = {"sale": "Sale", "no_sale": "No Sale"}
SOURCE_WORDS = {"no_sale": "No Sale result", "canceled": "Cancellation"}
# A report's tables (api/reports/tables.py) as its CSV links name them.
TABLE_WORDS = {
    "stages": "by stage",
    "milestones": "by milestone",
    "owners": "by owner",
    "months": "by month",
    "totals": "results",
    "unresulted": "not resulted",
    "resubmitted-jobs": "resubmissions per job",
    "users": "per person",
    "field-completion": "optional fields",
}


def stage_label(stage: str) -> str:
    return stage.replace("_", " ").capitalize()


def month_label(month: str) -> str:
    """`2026-01` → `Jan 2026`."""
    year, _, number = month.partition("-")
    return (
        f"{MONTHS[int(number) - 1]} {year}" if number.isdigit() and 0 < int(number) <= 12 else month
    )


def hours(value: float | None) -> str:
    """A duration for people: `25 min` under an hour, `5.5 h` under two days, else `3.2 d`;
    none: `n/a`."""
    if value is None:
        return "n/a"
    if value < 1:
        return f"{round(value * 60)} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{round(100 * value)}%"


# --- The filter form ----------------------------------------------------------------------------


@dataclass
class Query:
    """The form as typed (`values`), what it means (`filters`), and what was wrong with it."""

    values: dict[str, str]
    filters: ReportFilters
    errors: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """The filters as a URL's query, for each CSV link. The dates always go, empty ones
        too: an empty date is no bound, a missing one the default period."""
        kept = {"from": self.values["from"], "to": self.values["to"]}
        if self.values["owner"]:
            kept["owner"] = self.values["owner"]
        return kept

    def csv_url(self, name: str, table: str | None = None) -> str:
        chosen = {"table": table} if table else {}
        return f"/reports/{name}.csv?{urlencode({**self.params(), **chosen})}"


def _months_back(today: date, months: int) -> date:
    """The first day of the month `months - 1` months before `today`'s (12 → the last 12 months
    including this one)."""
    index = today.year * 12 + (today.month - 1) - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def read_query(request: Request, viewer: SignedIn, owners: Sequence[str]) -> Query:
    """`?from=&to=&owner=`. No dates at all: the last 12 months; dates left empty on the form:
    no bound. A sales person's reports are their own whatever the URL says."""
    params = request.query_params
    values = {name: (params.get(name) or "").replace("\x00", "").strip()[:100]
              for name in ("from", "to", "owner")}  # fmt: skip
    if "from" not in params and "to" not in params:
        today = datetime.now(viewer.company.zone).date()
        values["from"] = _months_back(today, DEFAULT_MONTHS).isoformat()
        values["to"] = today.isoformat()
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name, words in (("from", "From"), ("to", "To")):
        text = values[name]
        days[name] = None
        if text:
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                errors[name] = f"{words}: enter a date like 2026-01-31, not {text!r}"
            else:
                if problem := date_problem(days[name]):  # type: ignore[arg-type]
                    errors[name] = f"{words}: the date {problem}"
    start, end = days["from"], days["to"]
    if start and end and start > end and "from" not in errors and "to" not in errors:
        errors["to"] = "To: the end of the period must be on or after its start"
    if viewer.role in SEES_EVERYONE:
        if values["owner"] and values["owner"] not in owners:
            errors["owner"] = f"Owner: there is no one called {values['owner']!r}"
        owner = values["owner"] or None
    else:
        values["owner"] = ""
        owner = viewer.user.username
    filters = ReportFilters(
        start=None if errors else start, end=None if errors else end, owner=owner
    )
    return Query(values, filters, errors)


def check_reader(viewer: SignedIn) -> None:
    """Refused before anything is read, in words that say who may (the service says it too)."""
    if viewer.role not in READERS:
        allowed = ", ".join(role.value for role in READERS)
        raise NotPermitted(
            f"Reports are for: {allowed} (sales see their own jobs); you are {viewer.role}."
        )


# --- From the reports to what the page shows ----------------------------------------------------


@dataclass
class Section:
    """One report on the page: its anchor and heading, its chart (if it has one), the CSV link."""

    name: str  # the report's name in URLs
    title: str
    csv_urls: dict[str, str]  # each of its tables' CSV, by table name (the first the default)
    report: Any
    chart: Markup | None = None
    lead: str = ""  # one sentence under the heading: what the numbers mean


class Words:
    """Money, dates and names as people read them (the company's zone and currency)."""

    def __init__(self, company: Company, names: dict[str, str]) -> None:
        self.company = company
        self.names = names

    def money(self, amount: Decimal | None) -> str:
        return self.company.money(amount if amount is not None else Decimal("0"))

    def person(self, username: str | None) -> str:
        if not username:
            return "No owner"
        return self.names.get(username, username)

    def when(self, moment: datetime | None) -> str:
        return self.company.when(moment) if moment else ""


def _sales_chart(report: Any, words: Words) -> Markup:
    symbol = words.company.currency_symbol
    columns = [
        charts.Column(
            month_label(m.month),
            float(m.contract_amount),
            f"{words.money(m.contract_amount)} ({m.approved_count} approved)",
            charts.compact(float(m.contract_amount), symbol),
        )
        for m in report.months
    ]
    if not any(m.approved_count for m in report.months):
        columns = []
    return charts.month_columns("chart-sales", "Approved contract amount by month", columns)


def _funnel_chart(report: Any) -> Markup:
    total = report.total
    steps = [
        charts.FunnelStep("Leads", total.created),
        charts.FunnelStep("Approved", total.approved),
        charts.FunnelStep("Closed", total.closed),
    ]
    return charts.funnel("chart-conversion", "Conversion: leads to approved to closed", steps)


def _time_chart(report: Any) -> Markup:
    spans = [
        charts.Span(
            stage_label(row.stage),
            row.median_hours or 0.0,
            row.p90_hours or 0.0,
            hours(row.median_hours),
            hours(row.p90_hours),
        )
        for row in report.rows
        if row.visits and row.median_hours is not None
    ]
    return charts.stage_spans("chart-time", "Time in stage: median and 90th percentile", spans)


def _loss_chart(report: Any) -> Markup:
    bars = [
        charts.Bar(
            f"{row.reason} ({SOURCE_WORDS.get(row.source, row.source).lower()})",
            row.count,
            f"{row.count} job{'s' if row.count != 1 else ''}",
        )
        for row in report.rows
    ]
    return charts.horizontal_bars(
        "chart-loss", "Loss reasons", bars[:15], colour="warn",
        summary="; ".join(f"{bar.label}: {bar.text}" for bar in bars),
    )  # fmt: skip


def _pipeline_chart(report: Any, words: Words) -> Markup:
    bars = [
        charts.Bar(
            stage_label(m.milestone),
            m.count,
            f"{m.count} job{'s' if m.count != 1 else ''}, {words.money(m.amount)}",
        )
        for m in report.milestones
    ]
    if not report.count:
        bars = []
    return charts.horizontal_bars("chart-pipeline", "Open jobs by milestone", bars)


CHARTS: dict[str, Callable[[Any, Words], Markup]] = {
    "pipeline": _pipeline_chart,
    "sales": _sales_chart,
    "conversion": lambda report, _: _funnel_chart(report),
    "time-in-stage": lambda report, _: _time_chart(report),
    "loss-reasons": lambda report, _: _loss_chart(report),
}
# The page's order: the money first, then how jobs move, then what needs doing.
PAGE_ORDER = (
    "pipeline",
    "sales",
    "conversion",
    "time-in-stage",
    "loss-reasons",
    "stuck",
    "follow-ups",
    "resulting",
)
TITLES = {
    "pipeline": "Pipeline",
    "sales": "Sales by month",
    "conversion": "Conversion",
    "time-in-stage": "Time in stage",
    "loss-reasons": "Loss reasons",
    "stuck": "Stuck jobs",
    "follow-ups": "Follow-ups",
    "resulting": "Resulting",
}
LEADS = {
    "pipeline": "Open jobs created in the period, by the stage they are in now: how many and "
    "what they are worth.",
    "sales": "Jobs approved in each month and their contract amounts, with the Sale results "
    "submitted that month.",
    "conversion": "Of the leads created in the period: how many were approved, and how many "
    "are closed now.",
    "time-in-stage": "How long jobs stayed in each stage they entered in the period: half left "
    "within the median, nine in ten within the 90th percentile (p90).",
    "loss-reasons": "Why jobs were lost: the reasons given on No Sale results and on "
    "cancellations in the period.",
    "stuck": "Jobs created in the period that need someone now, and why.",
    "follow-ups": "Quote follow-ups sent to customers, and what each quote did after its last "
    "follow-up.",
    "resulting": "Sale and No Sale results submitted in the period, jobs nobody has resulted, "
    "resubmissions and how often each optional field is filled in.",
}


async def report_sections(session: SessionDep, query: Query, viewer: SignedIn,
                          words: Words) -> list[Section]:  # fmt: skip
    sections = []
    for name in PAGE_ORDER:
        report = await reports.REPORTS[name](session, query.filters, viewer.user)
        drawn = CHARTS.get(name)
        sections.append(
            Section(
                name=name,
                title=TITLES[name],
                csv_urls={
                    table: query.csv_url(name, None if index == 0 else table)
                    for index, table in enumerate(tables.table_names(name))
                },
                report=report,
                chart=drawn(report, words) if drawn else None,
                lead=LEADS[name],
            )
        )
    return sections


@router.get("/reports")
async def reports_page(request: Request, session: SessionDep, viewer: Viewer) -> Response:
    check_reader(viewer)
    people = await board_people(session)
    names = {p.username: p.display_name or p.username for p in people}
    owners = [p for p in people if p.role in OWNER_ROLES]
    query = read_query(request, viewer, [p.username for p in owners])
    words = Words(viewer.company, names)
    sections = [] if query.errors else await report_sections(session, query, viewer, words)
    return render(
        request,
        "reports.html",
        viewer,
        status=400 if query.errors else 200,
        query=query,
        sections=sections,
        by_name={section.name: section for section in sections},
        owners=owners,
        sees_everyone=viewer.role in SEES_EVERYONE,
        words=words,
        stage_label=stage_label,
        month_label=month_label,
        hours=hours,
        rate=rate,
        stuck_words=STUCK_WORDS,
        result_words=RESULT_WORDS,
        source_words=SOURCE_WORDS,
        table_words=TABLE_WORDS,
        shown=SHOWN,
        list_limit=LIST_LIMIT,
        titles=TITLES,
        generated_at=words.when(sections[0].report.generated_at) if sections else "",
    )


@router.get("/reports/{name}.csv")
async def report_csv(
    name: str, request: Request, session: SessionDep, viewer: Viewer, table: str = ""
) -> Response:
    """A report's CSV (one of its tables, `?table=`, default its first) for the signed-in
    person, with the page's filters: the same file as `/api/v1/reports/{name}.csv`."""
    check_reader(viewer)
    if name not in REPORT_NAMES:
        raise NotFound(f"there is no report {name!r}; the reports are: {', '.join(REPORT_NAMES)}")
    names = tables.table_names(name)
    chosen = table or names[0]
    if chosen not in names:
        raise NotFound(f"the {name} report has no table {table!r}; it has: {', '.join(names)}")
    people = await board_people(session)
    owners = [p.username for p in people if p.role in OWNER_ROLES]
    query = read_query(request, viewer, owners)
    if query.errors:
        return render(
            request, "error.html", viewer, status=400,
            title="These filters cannot be read", message="; ".join(query.errors.values()),
            back="/reports",
        )  # fmt: skip
    report = await reports.REPORTS[name](session, query.filters, viewer.user)
    return csv_response(report, chosen, names[0])
