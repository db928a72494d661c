"""Which jobs a tracking sheet holds, read from the projection in one snapshot.

The filters and the visibility rule are those of `GET /api/v1/jobs` (api/jobs/service.py), so a
sheet holds exactly the jobs the list shows for the same query — every page of it, oldest first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from api.jobs.service import JobFilters, filtered
from core import settings_store
from core.db import Database
from core.settings_store import COMMUNICATIONS
from models.communications import CommunicationSettings
from models.lifecycle import Milestone
from models.tables import Job, User

_BATCH = 200  # rows fetched at a time while a sheet streams out

# Parts are ordered once a job is approved: leads and prospects never have any.
_NO_PARTS_YET = (Milestone.lead.value, Milestone.prospect.value)


def jobs_query(user: User, f: JobFilters) -> SelectOfScalar[Job]:
    """The list's query (same filters, same visibility), in the order jobs came in."""
    return filtered(user, f).order_by(col(Job.created_at), col(Job.slug))


def parts_query(user: User, f: JobFilters) -> SelectOfScalar[Job]:
    """The jobs whose part lines the logistics sheet lists (the same filters, applied per job)."""
    return jobs_query(user, f).where(col(Job.milestone).not_in(_NO_PARTS_YET))


async def company_zone(session: AsyncSession) -> ZoneInfo:
    return (await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)).zone


def today_in(zone: ZoneInfo) -> date:
    return datetime.now(zone).date()


async def stream(db: Database, query: SelectOfScalar[Job]) -> AsyncIterator[Job]:
    """The rows, a batch at a time, from a session of their own: a sheet streams out after the
    request's own session is done, and is one consistent read however long the download."""
    async with db.session() as session:
        result = await session.stream_scalars(query.execution_options(yield_per=_BATCH))
        async for row in result:
            yield row
