"""The outbox: every message Jobline has queued or sent, newest first, and what a person does
about a message in doubt or failed: resend it, or mark it sent."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client as TemporalClient

from api.errors import Conflict, NotFound
from api.outbox import delivery
from models.lifecycle import Role
from models.outbox import ACTIONABLE
from models.tables import OutboxMessage, User

log = logging.getLogger("jobline.outbox")
# Who reads the outbox, and resends or confirms a message in doubt: the API and the pages.
KEEPERS: tuple[Role, ...] = (Role.office, Role.manager, Role.admin)


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
    q: str | None = None,
) -> tuple[list[OutboxMessage], int]:
    """`q`: text in the recipient, the subject or the body (case-insensitive)."""
    query = select(OutboxMessage)
    if job_slug:
        query = query.where(OutboxMessage.job_slug == job_slug)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if purpose:
        query = query.where(OutboxMessage.purpose == purpose)
    if status:
        query = query.where(OutboxMessage.status == status)
    if q:
        # autoescape: a % or _ typed into the search box means itself, not "anything".
        text = q.lower()
        query = query.where(
            or_(
                func.lower(OutboxMessage.to).contains(text, autoescape=True),
                func.lower(OutboxMessage.subject).contains(text, autoescape=True),
                func.lower(OutboxMessage.body).contains(text, autoescape=True),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.exec(
        query.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows.all()), total


# --- a person's answer to a message in doubt or failed ----------------------------------------


_RESENT = re.compile(r"(?P<base>.*):resend(?P<n>\d+)")


def _resend_key(original: OutboxMessage) -> str:
    """`<the first message's key>:resend<n>`: unique, so a message is resent at most once (a
    second, racing resend fails on the key), and no longer however often a copy is resent."""
    base, n = original.idempotency_key, 0
    found = _RESENT.fullmatch(base)
    if found:
        base, n = found["base"], int(found["n"])
    return f"{base}:resend{n + 1}"


def _was(row: OutboxMessage) -> str:
    return f"was {row.status}" + (f": {row.error}" if row.error else "")


async def get(session: AsyncSession, message_id: int) -> OutboxMessage:
    row = await session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"no message {message_id} in the outbox")
    return row


async def resend_of(session: AsyncSession, original: OutboxMessage) -> OutboxMessage | None:
    rows = await session.exec(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == _resend_key(original))
    )
    return rows.first()


def _not_actionable(row: OutboxMessage, action: str) -> Conflict:
    return Conflict(
        f"message {row.id} is {row.status}: only a message that is unknown or failed can be "
        f"{action}",
        status=row.status,
    )


async def resend(
    session: AsyncSession, temporal: TemporalClient, task_queue: str, message_id: int, user: User
) -> tuple[OutboxMessage, OutboxMessage]:
    """Queues a copy of an unknown or failed message, made by this user, marks the original
    `resent` with who did it and when, and starts the copy's delivery. A message already resent
    is a 409 (so resending twice sends once), which still starts a delivery that an earlier
    request committed but could not start."""
    original = await get(session, message_id)
    if original.status == "resent":
        copy = await resend_of(session, original)
        if copy is not None and copy.status == "queued":
            await delivery.start(temporal, task_queue, copy)
        raise Conflict(
            f"message {message_id} was already resent"
            + (f" as message {copy.id} ({copy.status})" if copy else ""),
            status=original.status,
            resend_id=copy.id if copy else None,
        )
    if original.status not in ACTIONABLE:
        raise _not_actionable(original, "resent")
    now = datetime.now(UTC)
    copy = OutboxMessage(
        idempotency_key=_resend_key(original),
        job_slug=original.job_slug,
        channel=original.channel,
        purpose=original.purpose,
        to=original.to,
        cc=list(original.cc),
        bcc=list(original.bcc),
        subject=original.subject,
        body=original.body,
        attachments=list(original.attachments),
        created_by=user.username,
        created_at=now,
    )
    session.add(copy)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"message {message_id} is being resent already") from None
    assert copy.id is not None
    note = f"resent as message {copy.id} by {user.username} at {now:%Y-%m-%d %H:%M} UTC"
    original.error = f"{note}; {_was(original)}"[:1000]
    original.status = "resent"
    session.add(original)
    await session.commit()  # the delivery reads the copy; hold no transaction while it starts
    log.info("message %s resent as %s by %s", message_id, copy.id, user.username)
    await delivery.start(temporal, task_queue, copy)
    return original, copy


async def mark_sent(session: AsyncSession, message_id: int, user: User) -> OutboxMessage:
    """The office confirms the customer got an unknown or failed message."""
    row = await get(session, message_id)
    if row.status not in ACTIONABLE:
        raise _not_actionable(row, "marked sent")
    now = datetime.now(UTC)
    note = f"marked sent by {user.username} at {now:%Y-%m-%d %H:%M} UTC"
    row.error = f"{note}; {_was(row)}"[:1000]
    row.status = "sent"
    session.add(row)
    log.info("message %s marked sent by %s", message_id, user.username)
    return row
