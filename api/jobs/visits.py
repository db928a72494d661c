"""A technician's visits, for their day on the phone (`/my`): the jobs assigned to them that are
still to do, in the order of their windows, and the ones they have done. Read from the jobs
projection under the API's visibility rules, like every other list of jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import visibility
from models.lifecycle import Stage
from models.tables import Job, User

TO_DO = (Stage.scheduled, Stage.dispatched, Stage.on_site)
DONE = (Stage.completed, Stage.invoiced, Stage.verified, Stage.closed)
_NO_WINDOW = datetime.max.replace(tzinfo=UTC)


def window_start(job: Job) -> datetime:
    start = (job.state.get("schedule") or {}).get("window_start")
    return datetime.fromisoformat(start) if start else _NO_WINDOW


async def technician_visits(
    session: AsyncSession, user: User, *, done: bool = False, limit: int = 50
) -> list[Job]:
    """The visits assigned to `user`: still to do, earliest window first; or (`done`) done,
    latest window first. Only jobs this user may see."""
    query = visibility.jobs(select(Job), user).where(
        Job.assigned_tech == user.username, col(Job.stage).in_(DONE if done else TO_DO)
    )
    rows = await session.exec(query.order_by(col(Job.updated_at).desc()).limit(limit))
    return sorted(rows.all(), key=window_start, reverse=done)
