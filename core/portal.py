"""The closeout portal's links and snapshots in the database (DESIGN.md §6 "Closeout").

A portal token is `HMAC-SHA256(secret key, nonce)`, base64url: 256 bits no one can compute
without the server's secret key, for a nonce of 128 random bits drawn when the link is made. Only
the nonce and the token's SHA-256 are stored, so a copy of the database opens no portal, while the
API can still show the office the link it sent (`portal_url` in the job view). Changing
`JOBLINE_SECRET_KEY` retires every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import insert
from models.portal import CompletionSnapshot
from models.tables import PortalLink, PortalSnapshot, utcnow

# 32 bytes of HMAC in unpadded base64url.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # use with fullmatch


@dataclass(frozen=True)
class Link:
    job_slug: str
    token: str
    expires_at: datetime

    def url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/portal/{self.token}"


def token_for(secret_key: str, nonce: str, purpose: str = "portal") -> str:
    """The token of a link; `purpose` keeps one kind of link's tokens from opening another's
    (core/quote_links.py uses "quote")."""
    digest = hmac.new(secret_key.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _link(row: PortalLink, secret_key: str) -> Link:
    return Link(
        job_slug=row.job_slug, token=token_for(secret_key, row.nonce), expires_at=row.expires_at
    )


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def ensure_link(
    session: AsyncSession, secret_key: str, job_slug: str, lifetime: timedelta
) -> Link:
    """The job's portal link, made on first use (a retried or concurrent call finds the first
    one's). A link that has expired is replaced by a new one, so a job completed again after a
    long while gets a link that opens."""
    now = utcnow()
    row = (await session.exec(select(PortalLink).where(PortalLink.job_slug == job_slug))).first()
    if row is not None and row.expires_at > now:
        return _link(row, secret_key)
    nonce = secrets.token_hex(16)
    values = {
        "job_slug": job_slug,
        "nonce": nonce,
        "token_hash": token_hash(token_for(secret_key, nonce)),
        "created_at": now,
        "expires_at": now + lifetime,
    }
    statement = insert(_dialect(session), PortalLink).values(**values)
    if row is None:
        await session.execute(statement.on_conflict_do_nothing(index_elements=["job_slug"]))
    else:
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_slug"],
                set_={k: v for k, v in values.items() if k != "job_slug"},
            )
        )
    row = (await session.exec(select(PortalLink).where(PortalLink.job_slug == job_slug))).one()
    await session.refresh(row)
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
    if not TOKEN_SHAPE.fullmatch(token):
        return None  # before any query
    row = (
        await session.exec(select(PortalLink).where(PortalLink.token_hash == token_hash(token)))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    link = _link(row, secret_key)
    # The stored hash alone is not enough: the token must be the one this server's secret key
    # derives, so a new JOBLINE_SECRET_KEY retires every link.
    return link if hmac.compare_digest(link.token, token) else None


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
