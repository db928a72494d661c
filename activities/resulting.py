"""The resulting workflow's activities: record a revision, render and attach its PDF, email it,
and the unresulted clock's writes (due time, flag and the owner's reminder).

Each is idempotent: a revision row is unique by (job, revision), a document by its key (job,
revision), a message by its idempotency key (job, revision, purpose), so a retry, a replay or a
restarted worker finds what the first attempt wrote and makes nothing twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.documents import PDF, default_renderer, load_logo
from activities.heartbeats import heartbeating
from activities.messages import queue_rows
from activities.pdf import PdfRenderer
from activities.result_document import result_document_html, result_email
from api.users.service import display_name_of
from core import documents, settings_store
from core.company import Company
from core.config import Settings
from core.db import Database, insert
from core.settings_store import BRANDING, COMMUNICATIONS, RESULTING
from models.branding import BrandingSettings
from models.communications import CommunicationSettings
from models.lifecycle import JobState, Role
from models.resulting import (
    ATTACH_RESULT_DOCUMENT,
    FLAG_UNRESULTED,
    LOAD_RESULTING_SETTINGS,
    MARK_RESULTING_DUE,
    QUEUE_RESULT_EMAIL,
    RECORD_RESULT,
    RENDER_RESULT_DOCUMENT,
    START_RESULTING_CLOCK,
    TYPE_LABELS,
    RecordedResult,
    ResultDocument,
    ResultingClock,
    ResultingInput,
    ResultingSettings,
    UnresultedReminder,
    resulting_workflow_id,
)
from models.tables import Job, JobResult, OutboxMessage, User
from workflows.resulting import JobResultWorkflow

log = logging.getLogger("jobline.resulting")
SUBJECT_MAX = 300


def document_key(slug: str, revision: int) -> str:
    return f"result-{slug}:{revision}:document"


def message_key(slug: str, revision: int) -> str:
    return f"result-{slug}:{revision}:result:email"


def reminder_key(slug: str) -> str:
    return f"result-{slug}:unresulted:email"


async def _job_state(session: AsyncSession, slug: str) -> JobState:
    row = await session.get(Job, slug)
    if row is None:
        raise ApplicationError(f"no job {slug!r}", type="job_not_found", non_retryable=True)
    return JobState.model_validate(row.state)


class ResultingActivities:
    def __init__(self, db: Database, settings: Settings, renderer: PdfRenderer | None = None):
        self.db = db
        self.settings = settings
        self.renderer = renderer or default_renderer()

    def _job_url(self, slug: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/jobs/{slug}"

    @activity.defn(name=LOAD_RESULTING_SETTINGS)
    async def load_resulting_settings(self) -> ResultingSettings:
        return await self.db.run(
            lambda session: settings_store.load(session, RESULTING, ResultingSettings),
            write=False,
        )

    @activity.defn(name=RECORD_RESULT)
    async def record_result(self, recorded: RecordedResult) -> None:
        """The revision's row, and the job's current result on its projection row (clearing the
        unresulted flag)."""
        revision = recorded.revision

        async def record(session: AsyncSession) -> None:
            row = {
                "job_slug": recorded.slug,
                "revision": revision.revision,
                "type": revision.type,
                "fields": revision.fields,
                "form": [f.model_dump(mode="json") for f in revision.form],
                "pattern": revision.pattern,
                "amount": revision.amount,
                "submitted_by": revision.submitted_by,
                "submitted_at": revision.submitted_at,
                "document_id": revision.document_id,
            }
            await session.execute(
                insert(self.db.dialect, JobResult)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["job_slug", "revision"])
            )
            await session.execute(
                update(Job)
                .where(col(Job.slug) == recorded.slug, col(Job.result_revision) < revision.revision)
                .values(
                    result_type=revision.type,
                    result_revision=revision.revision,
                    result_amount=revision.amount,
                    resulted_at=revision.submitted_at,
                    unresulted=False,
                )
            )

        await self.db.run(record)

    @activity.defn(name=RENDER_RESULT_DOCUMENT)
    async def render_result_document(self, recorded: RecordedResult) -> str:
        """Render and store the revision's PDF; its id. A retry returns the stored one."""
        revision = recorded.revision
        key = document_key(recorded.slug, revision.revision)

        async def read(session: AsyncSession) -> str | tuple[object, ...]:
            existing = await documents.id_for_key(session, key)
            if existing is not None:
                return existing
            state = await _job_state(session, recorded.slug)
            stored_settings = await settings_store.stored(session, BRANDING, COMMUNICATIONS)
            branding = settings_store.parsed(stored_settings, BRANDING, BrandingSettings)
            comms = settings_store.parsed(stored_settings, COMMUNICATIONS, CommunicationSettings)
            return (
                state,
                branding,
                comms,
                await load_logo(session, branding),
                await display_name_of(session, revision.submitted_by),
                await display_name_of(session, state.owner) if state.owner else None,
            )

        found = await self.db.run(read, write=False)
        if isinstance(found, str):
            return found
        state, branding, comms, logo, submitted_by, owner = found
        assert isinstance(state, JobState) and isinstance(branding, BrandingSettings)
        assert isinstance(comms, CommunicationSettings)
        rendered = result_document_html(
            revision,
            state,
            Company.of(comms, branding),
            branding,
            has_logo=logo is not None,
            submitted_by_name=str(submitted_by),
            owner_name=str(owner) if owner else None,
        )
        pdf = await heartbeating(self.renderer.render(rendered.html, logo))  # type: ignore[arg-type]
        document_id = await self.db.run(
            lambda session: documents.save(
                session,
                pdf,
                kind="result",
                filename=rendered.filename,
                content_type=PDF,
                job_slug=recorded.slug,
                key=key,
            )
        )
        log.info("rendered result r%d for job %s", revision.revision, recorded.slug)
        return document_id

    @activity.defn(name=ATTACH_RESULT_DOCUMENT)
    async def attach_result_document(self, attached: ResultDocument) -> None:
        await self.db.run(
            lambda session: session.execute(
                update(JobResult)
                .where(
                    col(JobResult.job_slug) == attached.slug,
                    col(JobResult.revision) == attached.revision,
                )
                .values(document_id=attached.document_id)
            )
        )

    @activity.defn(name=QUEUE_RESULT_EMAIL)
    async def queue_result_email(self, recorded: RecordedResult) -> list[int]:
        """The revision's email to its recipients, with its PDF attached when there is one."""
        revision = recorded.revision

        async def queue(session: AsyncSession) -> list[int]:
            state = await _job_state(session, recorded.slug)
            stored_settings = await settings_store.stored(session, COMMUNICATIONS, BRANDING)
            comms = settings_store.parsed(stored_settings, COMMUNICATIONS, CommunicationSettings)
            branding = settings_store.parsed(stored_settings, BRANDING, BrandingSettings)
            subject, body = result_email(
                revision,
                state,
                Company.of(comms, branding),
                submitted_by_name=await display_name_of(session, revision.submitted_by),
                job_url=self._job_url(recorded.slug),
            )
            row = await session.exec(
                select(JobResult.document_id).where(
                    JobResult.job_slug == recorded.slug, JobResult.revision == revision.revision
                )
            )
            document_id = row.first()
            attachments = []
            if document_id:
                stored = await documents.load(session, document_id)
                if stored is not None:
                    attachments = [{"document_id": document_id, "filename": stored.filename}]
            message = OutboxMessage(
                idempotency_key=message_key(recorded.slug, revision.revision),
                job_slug=recorded.slug,
                channel="email",
                purpose="result",
                to=", ".join(recorded.recipients),
                subject=subject[:SUBJECT_MAX],
                body=body,
                attachments=attachments,
                created_by=revision.submitted_by,
            )
            return await session.run_sync(queue_rows, self.db.dialect, [message])

        return await self.db.run(queue)

    @activity.defn(name=MARK_RESULTING_DUE)
    async def mark_resulting_due(self, reminder: UnresultedReminder) -> None:
        """When the job is due a result, for lists and reports (only while it has none)."""
        await self.db.run(
            lambda session: session.execute(
                update(Job)
                .where(col(Job.slug) == reminder.slug, col(Job.result_revision) == 0)
                .values(resulting_due_at=reminder.due_at)
            )
        )

    @activity.defn(name=FLAG_UNRESULTED)
    async def flag_unresulted(self, reminder: UnresultedReminder) -> list[int]:
        """Flag the job unresulted and queue its owner's reminder (the managers', for a job
        without an owner); nothing if a result arrived meanwhile."""

        async def flag(session: AsyncSession) -> list[int]:
            flagged = await session.execute(
                update(Job)
                .where(col(Job.slug) == reminder.slug, col(Job.result_revision) == 0)
                .values(unresulted=True, resulting_due_at=reminder.due_at)
                .returning(col(Job.slug))
            )
            if flagged.first() is None:
                return []
            job = await session.get(Job, reminder.slug)
            assert job is not None
            people = select(User.email).where(col(User.active).is_(True))
            if job.owner:
                people = people.where(User.username == job.owner)
            else:
                people = people.where(User.role == Role.manager.value)
            to = sorted({e for e in (await session.exec(people)).all() if e})
            if not to:
                return []
            comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
            company = Company.of(comms, BrandingSettings())
            reference = f"Job {job.number}" if job.number else f"Job {job.slug}"
            owner = await display_name_of(session, job.owner) if job.owner else "team"
            body = (
                f"Hello {owner},\n\n"
                f"{reference} ({job.title}, {job.client_name}) has no result yet: it was due "
                f"{company.when(reminder.due_at)}. Result it as "
                f"{' or '.join(TYPE_LABELS.values())} so the sales reports count it:\n\n"
                f"{self._job_url(job.slug)}\n\n{company.name}"
            )
            message = OutboxMessage(
                idempotency_key=reminder_key(job.slug),
                job_slug=job.slug,
                channel="email",
                purpose="unresulted_reminder",
                to=", ".join(to),
                subject=f"{reference} needs a result: {job.title}"[:SUBJECT_MAX],
                body=body,
                created_by="jobline",
            )
            return await session.run_sync(queue_rows, self.db.dialect, [message])

        return await self.db.run(flag)

    @activity.defn(name=START_RESULTING_CLOCK)
    async def start_resulting_clock(self, clock: ResultingClock) -> None:
        """Start the job's unresulted clock, unless resulting is off (the default): a company
        that does not result jobs gets no resulting workflow per quoted job. A job quoted while
        it was off is not flagged later; one quoted while it was on and turned off before its
        due time is not flagged either (the workflow reads the settings again then)."""
        if not (await self.load_resulting_settings()).enabled:
            return
        await start_clock(activity.client(), clock)


async def start_clock(client: Client, clock: ResultingClock) -> None:
    """Signal-with-start: the job's resulting workflow (started now if it is not running) hears
    that its clock starts. Repeating it is harmless: the clock keeps its first start."""
    await client.start_workflow(
        JobResultWorkflow.run,
        ResultingInput(slug=clock.slug),
        id=resulting_workflow_id(clock.slug),
        task_queue=clock.task_queue,
        start_signal="start_clock",
        start_signal_args=[clock.at],
    )
