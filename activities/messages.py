"""Customer messages and office alerts: queued as outbox rows, then delivered by a backend.

Idempotent by construction. `queue_messages` keys each row by (workflow id, event seq, purpose,
channel), so a retried or replayed queueing finds the rows it made. `deliver_message` moves a row
queued -> sending -> sent | failed | unknown (models/outbox.py), with the window in which a dead
worker leaves a message in doubt as narrow as the provider allows:

- everything that can fail without handing the message over happens first, with the row still
  `queued` (files loaded, the request built, a provider thread free, a turn from the worker's
  rate limit (activities/delivery/rate.py); SMTP's connection, login and recipients accepted);
- `sending` is committed in a transaction of its own (only from `queued`, so two attempts never
  both send), and the hand-over starts straight after;
- the provider's answer goes out at once with a heartbeat, then into the row. A retry that finds
  the row `sending` records the answer the dead attempt heartbeated; with none, the provider may
  have the message, and as none of them lets a request be recognised later, the row becomes
  `unknown` for a person to resend or mark sent, rather than risk a second copy.

No retry, replay or restart sends a message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import orm, update
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
from activities.delivery.rate import RateLimited, RetryLater
from api.users.service import display_name_of
from core import documents, portal, quote_links, settings_store
from core.company import Company
from core.config import Settings
from core.db import Database, insert
from core.settings_store import BRANDING, COMMUNICATIONS, QUOTES
from models.branding import BrandingSettings
from models.communications import (
    CommunicationSettings,
    RenderedMessage,
    customer_recipients,
    message_context,
    render,
)
from models.lifecycle import JobState
from models.messages import (
    DELIVER_MESSAGE,
    LOAD_COMMUNICATION_SETTINGS,
    QUEUE_MESSAGES,
    QueueMessages,
)
from models.outbox import FINISHED, IN_DOUBT
from models.quoting import QuoteSettings
from models.tables import Document, OutboxMessage, User

log = logging.getLogger("jobline.messages")
# The workflow's heartbeat timeout is 10 s. Temporal sends an attempt's first heartbeat at once
# and holds later ones for up to 8 s (80% of the timeout): the first is kept for the provider's
# answer when the attempt is done within HEARTBEAT_AFTER of its start, so the answer is out
# straight away.
HEARTBEAT_AFTER = 5.0
HEARTBEAT_EVERY = 2.0
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


# The messages that carry the customer's quote link (`/q/…`).
QUOTE_LINK_PURPOSES = frozenset({"quote", "quote_follow_up"})


def with_quote_link(text: RenderedMessage, link: str) -> RenderedMessage:
    """A quote message always carries its link, also from a template written before links
    (a company's own wording that does not name `{{ quote_link }}`)."""
    if not link:
        return text
    update: dict[str, str] = {}
    if link not in text.body:
        update["body"] = f"{text.body}\n\nSee, approve or decline the quote online: {link}"
    if text.sms and link not in text.sms:
        update["sms"] = f"{text.sms} {link}"
    return text.model_copy(update=update) if update else text


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


def queue_rows(session: orm.Session, dialect: str, rows: list[OutboxMessage]) -> list[int]:
    """Insert each message unless its idempotency key is already there; the ids of the rows
    (a retried or replayed queueing finds the first attempt's rows and makes none).

    Plain blocking code, for `Database.run_in_one_go` (or `AsyncSession.run_sync` inside a
    larger transaction): these inserts are all a queueing writes, and on SQLite a write holds
    the one write lock that every other writer waits for."""
    ids = []
    for row in rows:
        values = row.model_dump(exclude={"id"})
        queued = insert(dialect, OutboxMessage).values(**values)
        session.execute(queued.on_conflict_do_nothing(index_elements=["idempotency_key"]))
        existing = session.execute(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == row.idempotency_key)
        )
        ids.append(existing.scalar_one())
    return [i for i in ids if i is not None]


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
        # Read and rendered first, then only the inserts are written, in one go: on SQLite this
        # queueing, its reads inside its write, held the one write lock ~30 ms a message, the
        # longest of any worker write at concurrency 8 (issue 12).
        quote_link = await self._quote_link(request.state, request.notification.purpose)
        rows = await self.db.run(
            lambda session: self._messages(session, request, quote_link), write=False
        )
        if not rows:
            return []
        return await self.db.run_in_one_go(
            lambda session: queue_rows(session, self.db.dialect, rows)
        )

    async def _messages(
        self, session: AsyncSession, request: QueueMessages, quote_link: str
    ) -> list[OutboxMessage]:
        """The rows to queue for the notification (none stored yet)."""
        note = request.notification
        state = request.state
        slug = state.slug
        stored_settings = await settings_store.stored(session, COMMUNICATIONS, BRANDING)
        comms = settings_store.parsed(stored_settings, COMMUNICATIONS, CommunicationSettings)
        branding = settings_store.parsed(stored_settings, BRANDING, BrandingSettings)
        company = Company.of(comms, branding)
        # Reads only what the message can use: a portal link exists once the job is completed
        # (its closeout makes it), and the actor's address only goes in as a bcc.
        link = (
            await portal.link_for_job(session, self.settings.secret_key, slug)
            if state.completion is not None
            else None
        )
        technician = state.schedule.technician if state.schedule else None
        text = render(
            comms.template(note.purpose),
            message_context(
                state,
                comms,
                currency_symbol=company.currency_symbol,
                company_name=company.name,
                technician_name=await display_name_of(session, technician),
                message=note.message,
                at=datetime.now(UTC),
                portal_link=link.url(self.settings.public_url) if link else "",
                quote_link=quote_link,
                po_number=note.po_number,
            ),
        )
        text = with_quote_link(text, quote_link)
        attachments = await _attachments(session, request.document_ids)
        actor = None
        if request.actor is not None and note.bcc_actor:
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
                    bcc_email=actor.email if actor else None,
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

        return rows

    async def _quote_link(self, state: JobState, purpose: str) -> str:
        """The customer's link to the quote a quote email or follow-up is about (made once per
        job and version, in a transaction of its own: a retried queueing, and every follow-up,
        carry the same one)."""
        if purpose not in QUOTE_LINK_PURPOSES or state.quote is None:
            return ""
        version = state.quote.version

        async def ensure(session: AsyncSession) -> str:
            settings = await settings_store.load(session, QUOTES, QuoteSettings)
            link = await quote_links.ensure_link(
                session,
                self.settings.secret_key,
                state.slug,
                version,
                timedelta(days=settings.link_days),
            )
            return link.url(self.settings.public_url)

        return await self.db.run(ensure)

    @activity.defn(name=DELIVER_MESSAGE)
    async def deliver_message(self, message_id: int) -> str:
        attempt = _Attempt(message_id)
        row, files = await self.db.run(lambda session: self._claim(session, message_id))
        if files is None:
            return row.status
        # Finished even if the activity is cancelled once the hand-over has begun, so the
        # provider's answer is recorded (see _heartbeating).
        return await _heartbeating(self._hand_over(row, files, attempt), attempt)

    async def _claim(
        self, session: AsyncSession, message_id: int
    ) -> tuple[OutboxMessage, list[Attachment] | None]:
        """The message, and its files when it is to be handed to a provider now (None when it
        is finished, or was finished here)."""
        row = await session.get(OutboxMessage, message_id)
        if row is None:
            raise ApplicationError(f"no message {message_id}", non_retryable=True)
        if row.status == "sending":
            # An earlier attempt died after it marked the message, just before the hand-over.
            _settle_interrupted(row, _earlier_answer(message_id))
            session.add(row)
            if row.status != "queued":
                return row, None
        if row.status in FINISHED:
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
        if isinstance(backend, Outbox):
            # Nothing leaves the building, so nothing can be half sent: captured at once, in
            # this one transaction.
            row.backend = backend.name
            row.attempts += 1
            row.status = "captured"
            row.error = None
            row.sent_at = datetime.now(UTC)
            session.add(row)
            return row, None
        return row, files

    async def _take(self, message_id: int, backend: str) -> None:
        """Marks the message `sending`, in a transaction of its own, if it is still queued."""

        async def take(session: AsyncSession) -> int:
            taken = await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.status) == "queued")
                .values(status="sending", backend=backend, attempts=OutboxMessage.attempts + 1)
            )
            return int(taken.rowcount)  # type: ignore[attr-defined]

        if await self.db.run(take) != 1:
            raise NotTaken(f"message {message_id} is no longer queued")

    async def _record(
        self, message_id: int, backend: str, answer: dict[str, Any], counted: bool
    ) -> None:
        """The provider's answer, in a transaction of its own. `counted`: the attempt was
        counted when the message was taken (an SMTP refusal before DATA was not)."""

        async def record(session: AsyncSession) -> None:
            row = await session.get(OutboxMessage, message_id)
            if row is None:
                raise LookupError(f"no message {message_id}")
            _apply(row, answer)
            row.backend = backend
            if not counted:
                row.attempts += 1
            session.add(row)

        await self.db.run(record)

    async def _hand_over(
        self, row: OutboxMessage, files: list[Attachment], attempt: _Attempt
    ) -> str:
        message_id = attempt.message_id
        backend_name = (self.email if row.channel == "email" else self.sms).name
        retry: TransientFailure | None = None

        async def handing_over() -> None:
            attempt.taking = True  # from here the message may be `sending`: see _heartbeating
            await self._take(message_id, backend_name)
            attempt.handed_over = True

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
                provider_id = await self.email.send_email(email, handing_over)
            else:
                sms = Sms(idempotency_key=row.idempotency_key, to=row.to, body=row.body)
                provider_id = await self.sms.send_sms(sms, handing_over)
            answer: dict[str, Any] = {"status": "sent", "provider_id": provider_id}
        except NotTaken as taken:
            # Another attempt (one Temporal gave up on that is still running) has it.
            raise ApplicationError(str(taken)) from None
        except PermanentFailure as refused:
            answer = {"status": "failed", "error": str(refused)}
        except UncertainFailure as unanswered:
            answer = {"status": "unknown", "error": str(unanswered)}
        except TransientFailure as failed:
            if is_last_attempt():  # the workflow's retry policy says how many there are
                answer = {"status": "failed", "error": f"gave up: {failed}"}
            elif isinstance(failed, RateLimited):
                # No turn in time at this worker's rate limit: the message was not touched, and
                # Temporal tries again when its turn would have come (next_retry_delay).
                raise
            else:
                # Back to queued, so Temporal's retry (with backoff) sends it again; after a
                # provider's 429 no sooner than it asked (RetryLater's next_retry_delay).
                answer = {"status": "queued", "error": str(failed)}
                retry = failed
        except Exception as unexpected:
            if not attempt.handed_over:
                raise  # nothing left: the message is still queued, and Temporal retries
            answer = {
                "status": "unknown",
                "error": f"{type(unexpected).__name__} after the hand-over: {unexpected}",
            }
            log.exception("message %s: error after the hand-over", message_id)
        # First to Temporal (a heartbeat goes out at once, queueing for no database lock), then
        # to the outbox: a worker that dies between the two leaves the answer to the retry.
        attempt.answer = answer
        attempt.beat()
        await self._record(message_id, backend_name, answer, counted=attempt.handed_over)
        if answer["status"] == "queued":
            raise retry if isinstance(retry, RetryLater) else TransientFailure(answer["error"])
        return str(answer["status"])


class NotTaken(Exception):
    """The message was no longer queued when an attempt came to hand it over."""


class _Attempt:
    """How far one delivery attempt got, for its heartbeats and its cancellation."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.started = time.monotonic()
        self.taking = False  # the `sending` commit has begun (and may have happened)
        self.handed_over = False
        self.answer: dict[str, Any] | None = None

    def beat(self) -> None:
        """A heartbeat, carrying the provider's answer once there is one (the details of the
        last heartbeat are what a retry sees)."""
        if activity.in_activity():
            activity.heartbeat(
                *([{"message_id": self.message_id, **self.answer}] if self.answer else [])
            )


async def _heartbeating(call: Awaitable[T], attempt: _Attempt) -> T:
    """Heartbeat while a delivery runs, so a worker that dies mid-call is noticed in seconds
    (the heartbeat timeout) rather than at the end of the activity's timeout.

    A cancellation (the worker shutting down, the workflow ending) stops an attempt that has not
    begun to hand the message over. One that has is finished first, so the provider's answer is
    recorded rather than the message left `sending` for the retry to call in doubt.
    """
    task = asyncio.ensure_future(call)
    wait = max(0.1, HEARTBEAT_AFTER - (time.monotonic() - attempt.started))
    while True:
        try:
            done, _ = await asyncio.wait({task}, timeout=wait)
        except asyncio.CancelledError:
            if not attempt.taking:
                task.cancel()
                raise
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            raise
        if done:
            return task.result()
        attempt.beat()
        wait = HEARTBEAT_EVERY


def _earlier_answer(message_id: int) -> dict[str, Any] | None:
    """The provider's answer an earlier attempt sent with its last heartbeat, if any."""
    if not activity.in_activity():
        return None
    for detail in activity.info().heartbeat_details:
        if isinstance(detail, dict) and detail.get("message_id") == message_id:
            return detail
    return None


def _settle_interrupted(row: OutboxMessage, answer: dict[str, Any] | None) -> None:
    """A message left `sending` by an attempt that died: its answer if it had one, else in
    doubt. Without an answer the provider may have the message, and none of them lets a request
    be recognised later (see activities/delivery), so it is not sent again."""
    if answer is not None:
        _apply(row, answer)
        log.warning("message %s: the answer of an interrupted attempt recorded", row.id)
        return
    row.status = IN_DOUBT
    row.error = (
        "the worker stopped after handing the message to the provider, before its answer "
        "came back; not resent, to avoid a duplicate: check with the provider, then resend "
        "it or mark it sent"
    )
    log.warning("message %s left unknown after an interrupted send", row.id)


def _apply(row: OutboxMessage, answer: dict[str, Any]) -> None:
    row.status = answer["status"]
    row.error = str(answer["error"])[:1000] if answer.get("error") else None
    if answer["status"] == "sent":
        row.provider_id = answer.get("provider_id")
        row.sent_at = datetime.now(UTC)
