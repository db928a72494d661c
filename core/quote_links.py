"""The customer's quote links (`/q/<token>`, issue 11), made, stored and checked like the
closeout portal's (core/links.py, purpose "quote"). One link per job and quote version, so a
link always shows the version it was sent with, and an old version's link can say that a newer
quote exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import links
from core.links import token_for
from models.tables import QuoteLink, utcnow

PURPOSE = "quote"


@dataclass(frozen=True)
class Link:
    job_slug: str
    version: int
    token: str
    expires_at: datetime

    def url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/q/{self.token}"


def _link(row: QuoteLink, secret_key: str) -> Link:
    return Link(
        job_slug=row.job_slug,
        version=row.version,
        token=token_for(secret_key, row.nonce, PURPOSE),
        expires_at=row.expires_at,
    )


async def ensure_link(
    session: AsyncSession, secret_key: str, job_slug: str, version: int, lifetime: timedelta
) -> Link:
    """The link to this version of the job's quote, made on first use (a retried or concurrent
    call finds the first one's). A follow-up sent after the link expired renews it."""
    keys = {"job_slug": job_slug, "version": version}
    row = await links.ensure_row(session, QuoteLink, keys, secret_key, PURPOSE, lifetime)
    return _link(row, secret_key)


async def latest_link(session: AsyncSession, secret_key: str, job_slug: str) -> Link | None:
    """The newest version's link while it opens (for the office's view of the job)."""
    row = (
        await session.exec(
            select(QuoteLink)
            .where(QuoteLink.job_slug == job_slug)
            .order_by(col(QuoteLink.version).desc())
            .limit(1)
        )
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return _link(row, secret_key)


async def open_link(session: AsyncSession, secret_key: str, token: str) -> Link | None:
    """The open link a token belongs to; None for anything else (malformed, unknown, expired,
    another kind of link's, or made with another secret key), which callers answer alike."""
    row = await links.open_row(session, QuoteLink, secret_key, PURPOSE, token)
    return None if row is None else _link(row, secret_key)
