"""The closeout portal's links and snapshots in the database (DESIGN.md §6 "Closeout").

A portal link's token is made, stored and checked as core/links.py says (purpose "portal"); the
API can show the office the link it sent (`portal_url` in the job view).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import links

# Re-exported: callers and tests know them as core.portal's.
from core.links import TOKEN_SHAPE as TOKEN_SHAPE
from core.links import token_for as token_for
from core.links import token_hash as token_hash
from models.portal import CompletionSnapshot
from models.tables import PortalLink, PortalSnapshot, utcnow

PURPOSE = "portal"


@dataclass(frozen=True)
class Link:
    job_slug: str
    token: str
    expires_at: datetime

    def url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/portal/{self.token}"


def _link(row: PortalLink, secret_key: str) -> Link:
    return Link(
        job_slug=row.job_slug,
        token=token_for(secret_key, row.nonce, PURPOSE),
        expires_at=row.expires_at,
    )


async def ensure_link(
    session: AsyncSession, secret_key: str, job_slug: str, lifetime: timedelta
) -> Link:
    """The job's portal link, made on first use (a retried or concurrent call finds the first
    one's). A link that has expired is replaced by a new one, so a job completed again after a
    long while gets a link that opens."""
    keys = {"job_slug": job_slug}
    row = await links.ensure_row(session, PortalLink, keys, secret_key, PURPOSE, lifetime)
    return _link(row, secret_key)


async def link_for_job(session: AsyncSession, secret_key: str, job_slug: str) -> Link | None:
    """The job's link while it is open; None before completion and once it has expired."""
    row = (await session.exec(select(PortalLink).where(PortalLink.job_slug == job_slug))).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return _link(row, secret_key)


async def open_link(session: AsyncSession, secret_key: str, token: str) -> Link | None:
    """The open link a token belongs to; None for anything else (malformed, unknown, expired,
    or made with another secret key), which callers answer all alike."""
    row = await links.open_row(session, PortalLink, secret_key, PURPOSE, token)
    return None if row is None else _link(row, secret_key)


async def save_snapshot(
    session: AsyncSession, snapshot: CompletionSnapshot, source_key: str, webhook: bool
) -> PortalSnapshot:
    """Store the next version of the job's snapshot, once per `source_key` (a retried sync gets
    the version it wrote the first time)."""
    existing = (
        await session.exec(select(PortalSnapshot).where(PortalSnapshot.source_key == source_key))
    ).first()
    if existing is not None:
        return existing
    latest = (
        await session.exec(
            select(func.max(PortalSnapshot.version)).where(
                PortalSnapshot.job_slug == snapshot.job_slug
            )
        )
    ).one()
    row = PortalSnapshot(
        job_slug=snapshot.job_slug,
        version=(latest or 0) + 1,
        source_key=source_key,
        data=snapshot.model_dump(mode="json"),
        webhook_status="pending" if webhook else None,
    )
    session.add(row)
    await session.flush()
    return row


async def latest_snapshot(session: AsyncSession, job_slug: str) -> PortalSnapshot | None:
    rows = await session.exec(
        select(PortalSnapshot)
        .where(PortalSnapshot.job_slug == job_slug)
        .order_by(col(PortalSnapshot.version).desc())
        .limit(1)
    )
    return rows.first()
