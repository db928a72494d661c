"""CSV and XLSX exports of the office's tracking sheets (DESIGN.md §6 "Reports and exports").

Who may export: office, managers and admins — the people who keep these sheets today and the ones
who see reports (DESIGN.md §1). Technicians may not (403). Sales may not either: their pipeline is
`GET /api/v1/jobs`, while these sheets carry every client's billing (invoiced, paid, balance) and
the purchasing, which are the office's, and a file leaves the system where a page does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from sqlmodel.sql.expression import SelectOfScalar

from api.deps import DatabaseDep, SessionDep, require
from api.errors import ERROR_RESPONSES, error_responses
from api.exports import service, sheets
from api.exports.sheets import Row, Sheet
from api.jobs.service import JobFilters
from api.text import NoNul
from core.company import load_company
from core.db import Database
from models.bounds import IdParam
from models.lifecycle import Milestone, Role, Stage
from models.tables import Job, User

router = APIRouter(prefix="/api/v1/exports", tags=["exports"], responses=ERROR_RESPONSES)
Exporter = Annotated[
    User,
    Depends(require(Role.office, Role.manager, Role.admin, what="exporting the tracking sheets")),
]


class CsvResponse(StreamingResponse):
    media_type = "text/csv"  # Starlette adds "; charset=utf-8"


class XlsxResponse(Response):
    media_type = sheets.XLSX_MEDIA_TYPE


def job_filters(
    stage: Stage | None = None,
    milestone: Milestone | None = None,
    client_id: Annotated[IdParam | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200), NoNul] = None,
    stuck: bool | None = None,
) -> JobFilters:
    """The filters of `GET /api/v1/jobs`, meaning the same."""
    return JobFilters(
        stage=stage.value if stage else None,
        milestone=milestone.value if milestone else None,
        client_id=client_id,
        q=q,
        stuck=stuck,
    )


Filters = Annotated[JobFilters, Depends(job_filters)]
Outstanding = Annotated[
    bool | None, Query(description="true: only lines not yet delivered; false: only delivered")
]
Overdue = Annotated[
    bool | None,
    Query(description="true: only lines past their expected day and not delivered; false: others"),
]


_ROWS_PER_CHUNK = 100


def _headers(sheet: Sheet, day: date, extension: str) -> dict[str, str]:
    filename = f"jobline-{sheet.name.lower().replace(' ', '-')}-{day.isoformat()}.{extension}"
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",  # client names and money: no copies in shared caches
        "X-Content-Type-Options": "nosniff",
    }


async def _csv(sheet: Sheet, batches: AsyncIterator[list[Row]]) -> AsyncIterator[bytes]:
    writer = sheets.CsvWriter(sheet)
    yield writer.start().encode()
    async for batch in batches:
        if batch:
            yield writer.rows(batch).encode()


async def _job_batches(
    db: Database, query: SelectOfScalar[Job], zone: ZoneInfo
) -> AsyncIterator[list[Row]]:
    batch: list[Row] = []
    async for job in service.stream(db, query):
        batch.append(sheets.job_row(job, zone))
        if len(batch) >= _ROWS_PER_CHUNK:
            yield batch
            batch = []
    yield batch


async def _part_batches(
    db: Database,
    query: SelectOfScalar[Job],
    zone: ZoneInfo,
    today: date,
    outstanding: bool | None,
    overdue: bool | None,
) -> AsyncIterator[list[Row]]:
    batch: list[Row] = []
    async for job in service.stream(db, query):
        for row, is_outstanding, is_overdue in sheets.part_rows(job, zone, today):
            if outstanding is not None and is_outstanding != outstanding:
                continue
            if overdue is not None and is_overdue != overdue:
                continue
            batch.append(row)
        if len(batch) >= _ROWS_PER_CHUNK:
            yield batch
            batch = []
    yield batch


async def _collect(batches: AsyncIterator[list[Row]]) -> list[Row]:
    return [row async for batch in batches for row in batch]


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "The sheet as CSV: UTF-8 with a BOM, a header row, CRLF lines"},
    **error_responses(422),
}
_XLSX: dict[int | str, dict[str, Any]] = {
    200: {"description": "The sheet as an Excel workbook (one worksheet)"},
    **error_responses(422),
}


@router.get("/jobs.csv", response_class=CsvResponse, responses=_CSV)
async def jobs_csv(
    session: SessionDep, db: DatabaseDep, user: Exporter, filters: Filters
) -> CsvResponse:
    """The job tracking sheet: one row per job, with the filters of `GET /api/v1/jobs`."""
    zone = await service.company_zone(session)
    await session.commit()  # the rows stream from a session of their own
    query = service.jobs_query(user, filters)
    return CsvResponse(
        _csv(sheets.JOBS, _job_batches(db, query, zone)),
        headers=_headers(sheets.JOBS, service.today_in(zone), "csv"),
    )


@router.get("/jobs.xlsx", response_class=XlsxResponse, responses=_XLSX)
async def jobs_xlsx(
    session: SessionDep, db: DatabaseDep, user: Exporter, filters: Filters
) -> XlsxResponse:
    """The job tracking sheet as a workbook: date cells, money formats, frozen header, filter."""
    company = await load_company(session)  # its zone and currency symbol
    zone = company.zone
    await session.commit()
    rows = await _collect(_job_batches(db, service.jobs_query(user, filters), zone))
    content = await asyncio.to_thread(sheets.workbook, sheets.JOBS, rows, company.currency_symbol)
    return XlsxResponse(content, headers=_headers(sheets.JOBS, service.today_in(zone), "xlsx"))


@router.get("/parts.csv", response_class=CsvResponse, responses=_CSV)
async def parts_csv(
    session: SessionDep,
    db: DatabaseDep,
    user: Exporter,
    filters: Filters,
    outstanding: Outstanding = None,
    overdue: Overdue = None,
) -> CsvResponse:
    """The logistics order tracking sheet: one row per part line ordered, across jobs (the job
    filters of `GET /api/v1/jobs` choose the jobs)."""
    zone = await service.company_zone(session)
    await session.commit()
    query, today = service.parts_query(user, filters), service.today_in(zone)
    return CsvResponse(
        _csv(sheets.PARTS, _part_batches(db, query, zone, today, outstanding, overdue)),
        headers=_headers(sheets.PARTS, today, "csv"),
    )


@router.get("/parts.xlsx", response_class=XlsxResponse, responses=_XLSX)
async def parts_xlsx(
    session: SessionDep,
    db: DatabaseDep,
    user: Exporter,
    filters: Filters,
    outstanding: Outstanding = None,
    overdue: Overdue = None,
) -> XlsxResponse:
    """The logistics order tracking sheet as a workbook."""
    company = await load_company(session)  # its zone and currency symbol
    zone = company.zone
    await session.commit()
    query, today = service.parts_query(user, filters), service.today_in(zone)
    rows = await _collect(_part_batches(db, query, zone, today, outstanding, overdue))
    content = await asyncio.to_thread(sheets.workbook, sheets.PARTS, rows, company.currency_symbol)
    return XlsxResponse(content, headers=_headers(sheets.PARTS, today, "xlsx"))
