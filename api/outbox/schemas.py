from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel

from models.outbox import Status
from models.tables import OutboxMessage


class AttachmentRef(BaseModel):
    document_id: str
    filename: str


class OutboxPublic(BaseModel):
    id: int
    channel: str
    to: str
    cc: list[str]
    bcc: list[str]
    subject: str
    body: str
    attachments: list[AttachmentRef]
    job_slug: str | None
    purpose: str
    status: Status
    # Why it failed or is in doubt, or who resent it or marked it sent, and when.
    error: str | None
    backend: str
    provider_id: str | None
    created_by: str
    created_at: datetime
    sent_at: datetime | None


class Resent(BaseModel):
    """The message as it is now (`resent`, with who and when) and the copy queued for delivery."""

    original: OutboxPublic
    resend: OutboxPublic


class OutboxPage(BaseModel):
    items: list[OutboxPublic]
    total: int
    page: int
    page_size: int


def public(row: OutboxMessage) -> OutboxPublic:
    assert row.id is not None
    attachments: list[dict[str, Any]] = list(row.attachments or [])
    return OutboxPublic(
        id=row.id,
        channel=row.channel,
        to=row.to,
        cc=list(row.cc),
        bcc=list(row.bcc),
        subject=row.subject,
        body=row.body,
        attachments=[AttachmentRef.model_validate(a) for a in attachments],
        job_slug=row.job_slug,
        purpose=row.purpose,
        status=cast(Status, row.status),
        error=row.error,
        backend=row.backend,
        provider_id=row.provider_id,
        created_by=row.created_by,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )
