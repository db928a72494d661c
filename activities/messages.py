"""Customer messages and office alerts: queued as outbox rows, then delivered by a backend.

Idempotent by construction. `queue_messages` keys each row by (workflow id, event seq, purpose,
channel), so a retried or replayed queueing finds the rows it made. `deliver_message` moves a row
queued → sending → sent | failed, committing `sending` before it calls the provider: if the worker
dies after that, the retry cannot know whether the provider took the message, so it marks it
`unknown` for a person to check instead of risking a second copy. No retry, replay or restart
sends a message twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import is_last_attempt
from activities.delivery.base import (
    Attachment,
    Email,
    EmailBackend,
    Outbox,
    PermanentFailure,
    Sms,
    SmsBackend,
    TransientFailure,
    UncertainFailure,
)
from core import documents, portal, settings_store
from core.config import Settings
from core.db import Database
from core.projection_store import insert
from core.settings_store import COMMUNICATIONS
from models.communications import (
    CommunicationSettings,
    customer_recipients,
    message_context,
    render,
)
from models.messages import (
    DELIVER_MESSAGE,
    LOAD_COMMUNICATION_SETTINGS,
    QUEUE_MESSAGES,
    QueueMessages,
)
from models.tables import Document, OutboxMessage, User

log = logging.getLogger("jobline.messages")
FINISHED = frozenset({"sent", "failed", "captured", "unknown"})
HEARTBEAT_EVERY = 2.0  # seconds; the workflow's heartbeat timeout is 10 s
# A rendered subject longer than the outbox keeps (a long company name and job title) is cut to
# fit: refused by the database, the queueing would be retried forever and hold the event.
SUBJECT_MAX: int = OutboxMessage.__table__.c.subject.type.length  # type: ignore[attr-defined]
T = TypeVar("T")


def email_backend(settings: Settings) -> EmailBackend:
    if settings.email_backend == "smtp":
        from activities.delivery.smtp import SmtpBackend

        return SmtpBackend(settings)
    if settings.email_backend == "sendgrid":
        from activities.delivery.sendgrid import SendGridBackend

        return SendGridBackend(settings)
    return Outbox()


def sms_backend(settings: Settings) -> SmsBackend:
    if settings.sms_backend == "twilio":
        from activities.delivery.twilio import TwilioBackend

        return TwilioBackend(settings)
    return Outbox()


async def _attachments(session: AsyncSession, document_ids: list[str]) -> list[dict[str, str]]:
    """The outbox's references to the documents an email carries, with their file names."""
    if not document_ids:
        return []
    rows = await session.exec(
        select(Document.id, Document.filename).where(col(Document.id).in_(document_ids))
    )
    names = dict(rows.all())
    return [
        {"document_id": document_id, "filename": names[document_id]}
        for document_id in document_ids
        if document_id in names
    ]


class MissingAttachment(Exception):
    pass


async def _attached(session: AsyncSession, refs: list[dict[str, str]]) -> list[Attachment]:
    files = []
    for ref in refs:
        document = await documents.load(session, ref["document_id"])
        if document is None:
            raise MissingAttachment(
                f"attachment {ref['document_id']} ({ref['filename']}) is not stored"
            )
        files.append(
            Attachment(
                filename=ref["filename"], content=document.content, mime_type=document.content_type
            )
        )
    return files


async def _heartbeating(call: Awaitable[T]) -> T:
    """Heartbeat while a provider call runs, so a worker that dies mid-call is noticed in
    seconds (the heartbeat timeout) rather than at the end of the activity's timeout."""
    task = asyncio.ensure_future(call)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
        if done:
            return task.result()
        if activity.in_activity():
            activity.heartbeat()


class MessageActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        email: EmailBackend | None = None,
        sms: SmsBackend | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.email = email or email_backend(settings)
        self.sms = sms or sms_backend(settings)

    @activity.defn(name=LOAD_COMMUNICATION_SETTINGS)
    async def load_communication_settings(self) -> CommunicationSettings:
        return await self.db.run(
            lambda session: settings_store.load(session, COMMUNICATIONS, CommunicationSettings),
            write=False,
        )

    @activity.defn(name=QUEUE_MESSAGES)
    async def queue_messages(self, request: QueueMessages) -> list[int]:
        note = request.notification
        state = request.state
        slug = state.slug

        async def queue(session: AsyncSession) -> list[int]:
            comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
            link = await portal.link_for_job(session, self.settings.secret_key, slug)
            text = render(
                comms.template(note.purpose),
                message_context(
                    state,
                    comms,
                    message=note.message,
                    at=datetime.now(UTC),
                    portal_link=link.url(self.settings.public_url) if link else "",
                ),
            )
            attachments = await _attachments(session, request.document_ids)
            actor = None
            if request.actor is not None:
                actor = (
                    await session.exec(select(User).where(User.username == request.actor.username))
                ).first()
            key = f"job-{slug}:{state.seq}:{note.purpose}"
            rows: list[OutboxMessage] = []

            if note.email:
                if note.to_office:
                    office = await session.exec(select(User.email).where(User.role == "office"))
                    to = sorted(set(office.all()))
                    bcc: list[str] = []
                else:
                    to, bcc = customer_recipients(
                        state,
                        comms,
                        to_email=note.to_email,
                        bcc_email=actor.email if note.bcc_actor and actor else None,
                    )
                if to:
                    rows.append(
                        OutboxMessage(
                            idempotency_key=f"{key}:email",
                            job_slug=slug,
                            channel="email",
                            purpose=note.purpose,
                            to=", ".join(to),
                            bcc=bcc,
                            subject=text.subject[:SUBJECT_MAX],
                            body=text.body,
                            attachments=attachments,
                            created_by=request.actor.username if request.actor else "jobline",
                        )
                    )

            phone = note.sms_phone or state.client.phone
            wants_sms = note.sms == "yes" or (note.sms == "if_enabled" and comms.sms_enabled)
            if wants_sms and phone and text.sms and not note.to_office:
                rows.append(
                    OutboxMessage(
                        idempotency_key=f"{key}:sms",
                        job_slug=slug,
                        channel="sms",
                        purpose=note.purpose,
                        to=phone,
                        body=text.sms,
                        created_by=request.actor.username if request.actor else "jobline",
                    )
                )

            ids = []
            for row in rows:
                values = row.model_dump(exclude={"id"})
                queued = insert(self.db.dialect, OutboxMessage).values(**values)
                await session.execute(
                    queued.on_conflict_do_nothing(index_elements=["idempotency_key"])
                )
                existing = await session.exec(
                    select(OutboxMessage.id).where(
                        OutboxMessage.idempotency_key == row.idempotency_key
                    )
                )
                ids.append(existing.one())
            return [i for i in ids if i is not None]

        return await self.db.run(queue)

    async def _mark(self, message_id: int, **changes: object) -> None:
        await self.db.update(OutboxMessage, message_id, **changes)

    @activity.defn(name=DELIVER_MESSAGE)
    async def deliver_message(self, message_id: int) -> str:
        async def claim(session: AsyncSession) -> tuple[OutboxMessage, list[Attachment] | None]:
            """The message, and its files when it is to be handed to a provider now (None when
            it is finished, or was finished here)."""
            row = await session.get(OutboxMessage, message_id)
            if row is None:
                raise ApplicationError(f"no message {message_id}", non_retryable=True)
            if row.status in FINISHED:
                return row, None
            if row.status == "sending":
                # A worker died between handing the message over and recording the answer.
                row.status = "unknown"
                row.error = (
                    "the worker stopped while the provider was being called; not resent, "
                    "to avoid a duplicate: check with the provider"
                )
                session.add(row)
                log.warning("message %s left unknown after an interrupted send", message_id)
                return row, None
            try:
                files = await _attached(session, list(row.attachments))
            except MissingAttachment as missing:
                # Documents are never deleted while a message names them: this is a bug to see,
                # not a reason to send the email without what it says is attached.
                row.status = "failed"
                row.error = str(missing)
                session.add(row)
                log.error("message %s not sent: %s", message_id, missing)
                return row, None
            backend = self.email if row.channel == "email" else self.sms
            row.backend = backend.name
            row.attempts += 1
            if isinstance(backend, Outbox):
                # Nothing leaves the building, so nothing can be half sent: captured at once, in
                # this one transaction.
                row.status = "captured"
                row.error = None
                row.sent_at = datetime.now(UTC)
                session.add(row)
                return row, None
            row.status = "sending"
            session.add(row)
            return row, files

        # `sending` is committed before the provider is called (see the module docstring).
        row, files = await self.db.run(claim)
        if files is None:
            return row.status
        try:
            if row.channel == "email":
                email = Email(
                    idempotency_key=row.idempotency_key,
                    sender=self.settings.email_from,
                    to=[a.strip() for a in row.to.split(",") if a.strip()],
                    cc=list(row.cc),
                    bcc=list(row.bcc),
                    subject=row.subject,
                    body=row.body,
                    attachments=files,
                )
                provider_id = await _heartbeating(self.email.send_email(email))
            else:
                sms = Sms(idempotency_key=row.idempotency_key, to=row.to, body=row.body)
                provider_id = await _heartbeating(self.sms.send_sms(sms))
        except PermanentFailure as refused:
            await self._mark(message_id, status="failed", error=str(refused)[:1000])
            return "failed"
        except UncertainFailure as unanswered:
            await self._mark(message_id, status="unknown", error=str(unanswered)[:1000])
            return "unknown"
        except TransientFailure as failed:
            if is_last_attempt():  # the workflow's retry policy says how many there are
                await self._mark(message_id, status="failed", error=f"gave up: {failed}"[:1000])
                return "failed"
            # Back to queued, so Temporal's retry (with backoff) sends it again.
            await self._mark(message_id, status="queued", error=str(failed)[:1000])
            raise
        await self._mark(
            message_id,
            status="sent",
            provider_id=provider_id,
            error=None,
            sent_at=datetime.now(UTC),
        )
        return "sent"
