"""The customer's quote links (`/q/<token>`, issue 11), made like the closeout portal's
(core/portal.py): `HMAC-SHA256(secret key, "quote:" + nonce)`, of which only the nonce and the
token's SHA-256 are stored. One link per job and quote version, so a link always shows the
version it was sent with, and an old version's link can say that a newer quote exists.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import insert
from core.portal import TOKEN_SHAPE, token_for, token_hash
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


async def _row(session: AsyncSession, job_slug: str, version: int) -> QuoteLink | None:
    query = select(QuoteLink).where(QuoteLink.job_slug == job_slug, QuoteLink.version == version)
    return (await session.exec(query)).first()


async def ensure_link(
    session: AsyncSession, secret_key: str, job_slug: str, version: int, lifetime: timedelta
) -> Link:
    """The link to this version of the job's quote, made on first use (a retried or concurrent
    call finds the first one's). A follow-up sent after the link expired renews it."""
    now = utcnow()
    row = await _row(session, job_slug, version)
    if row is not None and row.expires_at > now:
        return _link(row, secret_key)
    nonce = secrets.token_hex(16)
    values = {
        "job_slug": job_slug,
        "version": version,
        "nonce": nonce,
        "token_hash": token_hash(token_for(secret_key, nonce, PURPOSE)),
        "created_at": now,
        "expires_at": now + lifetime,
    }
    statement = insert(session.get_bind().dialect.name, QuoteLink).values(**values)
    keys = ["job_slug", "version"]
    if row is None:
        await session.execute(statement.on_conflict_do_nothing(index_elements=keys))
    else:
        renewed = {k: v for k, v in values.items() if k not in keys}
        await session.execute(statement.on_conflict_do_update(index_elements=keys, set_=renewed))
    row = await _row(session, job_slug, version)
    assert row is not None
    await session.refresh(row)
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
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    row = (
        await session.exec(select(QuoteLink).where(QuoteLink.token_hash == token_hash(token)))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    link = _link(row, secret_key)
    return link if hmac.compare_digest(link.token, token) else None
