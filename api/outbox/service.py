"""The outbox: every message Jobline has queued or sent, newest first."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import OutboxMessage


async def for_job(session: AsyncSession, slug: str) -> list[OutboxMessage]:
    rows = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.job_slug == slug)
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    )
    return list(rows.all())


async def by_ids(session: AsyncSession, ids: list[int]) -> list[OutboxMessage]:
    if not ids:
        return []
    rows = await session.exec(
        select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).order_by(col(OutboxMessage.id))
    )
    return list(rows.all())


async def search(
    session: AsyncSession,
    *,
    job_slug: str | None,
    channel: str | None,
    purpose: str | None,
    status: str | None,
    page: int,
    page_size: int,
) -> tuple[list[OutboxMessage], int]:
    query = select(OutboxMessage)
    if job_slug:
        query = query.where(OutboxMessage.job_slug == job_slug)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if purpose:
        query = query.where(OutboxMessage.purpose == purpose)
    if status:
        query = query.where(OutboxMessage.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.exec(
        query.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows.all()), total
