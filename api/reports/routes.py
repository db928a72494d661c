"""`GET /api/v1/reports/{name}` and `GET /api/v1/reports/{name}.csv` (DESIGN.md §8).

One JSON route and one CSV route per report name, so the OpenAPI document shows each report's
shape. `?from=&to=` are days (YYYY-MM-DD) in the company's time zone, `?owner=` a username; what
they mean per report is in api/reports/service.py. Managers and admins read every report, sales
their own jobs' (see service.effective_filters); anyone else gets a 403.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, require
from api.errors import ERROR_RESPONSES, Invalid, error_responses
from api.reports import schemas as s
from api.reports import service, tables
from api.text import NoNul
from models.bounds import date_problem
from models.lifecycle import Role
from models.tables import User

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=ERROR_RESPONSES)
Reader = Annotated[
    User,
    Depends(
        require(Role.admin, Role.manager, Role.sales, what="reading reports (sales: their own)")
    ),
]

MODELS: dict[str, type[s.Report]] = {
    "pipeline": s.PipelineReport,
    "sales": s.SalesReport,
    "conversion": s.ConversionReport,
    "loss-reasons": s.LossReasonsReport,
    "time-in-stage": s.TimeInStageReport,
    "stuck": s.StuckReport,
    "follow-ups": s.FollowUpsReport,
    "resulting": s.ResultingReport,
}


def _day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"`{name}` must be a day written YYYY-MM-DD, like 2026-03-01", field=name
        ) from None
    if problem := date_problem(day):
        raise Invalid(f"`{name}` {problem}", field=name)
    return day


def report_filters(
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=10,
            description="first day (YYYY-MM-DD, company zone), inclusive",
        ),
        NoNul,
    ] = None,
    to: Annotated[
        str | None,
        Query(max_length=10, description="last day (YYYY-MM-DD, company zone), inclusive"),
        NoNul,
    ] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="the jobs' owner (username)"), NoNul
    ] = None,
) -> s.ReportFilters:
    return s.ReportFilters(start=_day(from_, "from"), end=_day(to, "to"), owner=owner or None)


Filters = Annotated[s.ReportFilters, Depends(report_filters)]
TableParam = Annotated[
    str | None,
    Query(
        max_length=40,
        description="which table of the report (the route says which); default its first",
    ),
]
_ERRORS = error_responses(422)


def _json_route(name: str, model: type[s.Report]) -> None:
    compute = service.REPORTS[name]

    async def read(session: SessionDep, user: Reader, filters: Filters) -> Any:
        return await compute(session, filters, user)

    read.__doc__ = f"The {name} report (definitions: api/reports/service.py)."
    router.add_api_route(
        f"/{name}",
        read,
        methods=["GET"],
        response_model=model,
        responses=_ERRORS,
        name=f"report_{name.replace('-', '_')}",
        summary=f"Report: {name}",
    )


def _csv_route(name: str) -> None:
    compute = service.REPORTS[name]
    names = tables.table_names(name)

    async def download(
        session: SessionDep,
        user: Reader,
        filters: Filters,
        table: TableParam = None,
    ) -> Response:
        chosen = table or names[0]
        if chosen not in names:
            raise Invalid(f"`table` must be one of: {', '.join(names)}", field="table")
        report = await compute(session, filters, user)
        return csv_response(report, chosen, names[0])

    download.__doc__ = f"The {name} report as CSV (`?table=`: {', '.join(names)})."
    router.add_api_route(
        f"/{name}.csv",
        download,
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "CSV"}, **_ERRORS},
        name=f"report_{name.replace('-', '_')}_csv",
        summary=f"Report: {name} (CSV)",
    )


def csv_response(report: s.Report, table: str, default_table: str) -> Response:
    """The table as a CSV download: UTF-8 with a BOM (so Excel reads it as UTF-8)."""
    stem = report.name if table == default_table else f"{report.name}-{table}"
    day = report.generated_at.date().isoformat()
    return Response(
        "\ufeff" + tables.csv_text(report, table),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="jobline-{stem}-{day}.csv"',
            "Cache-Control": "no-store",  # names and money: no copies in shared caches
            "X-Content-Type-Options": "nosniff",
        },
    )


# CSV routes first: "/pipeline.csv" must not be read as a report named "pipeline.csv" (it is not
# one, but explicit paths keep the order from mattering to the next engineer either way).
for _name, _model in MODELS.items():
    _csv_route(_name)
    _json_route(_name, _model)


async def run(session: AsyncSession, name: str, filters: s.ReportFilters, viewer: User) -> s.Report:
    """A report by its URL name (for pages that pick one)."""
    return await service.REPORTS[name](session, filters, viewer)
