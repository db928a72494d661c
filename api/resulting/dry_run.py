"""The resulting settings' dry run (`POST /api/v1/settings/resulting/dry-run`): the SOP's Step 3
("result a test job as Sale and as No Sale, confirm required fields are enforced, resubmit once")
done by Jobline, on a sample job, with the same rules, document and email a real result gets.

The sample job lives only in memory (made by the real lifecycle rules: api/settings/service
`sample_job`), so it is in no list and no report. Its PDFs are stored and its emails written to
the outbox as captured — never delivered, whatever the delivery backend — so an admin can open
exactly what the recipients would get. The answer names every check, and for each that fails,
what would break.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import escape
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.documents import PDF, default_renderer, load_logo
from activities.messages import queue_rows
from activities.result_document import result_document_html, result_email
from api.settings.service import sample_job
from api.users.service import display_name_of
from core import documents, settings_store
from core.company import Company
from core.db import Database
from core.settings_store import BRANDING, COMMUNICATIONS
from models.branding import BrandingSettings
from models.communications import CommunicationSettings
from models.lifecycle import JobState
from models.resulting import (
    RESULT_TYPES,
    TYPE_LABELS,
    ResultField,
    ResultingSettings,
    ResultRevision,
    ResultType,
    field_problems,
    submission,
)
from models.tables import OutboxMessage, User

DRY_RUN_SUBJECT = "[Dry run] "


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class DryRun(BaseModel):
    ok: bool
    checks: list[Check]


def sample_value(field: ResultField) -> Any:
    """A value a person could have entered for the field."""
    match field.type:
        case "dropdown":
            return field.options[0]
        case "number":
            return "3"
        case "currency":
            return "1234.50"
        case "date":
            return date.today().isoformat()
        case "checkbox":
            return True
        case _:
            return f"Sample {field.label.lower()}"


def sample_fields(settings: ResultingSettings, result_type: ResultType) -> dict[str, Any]:
    return {f.key: sample_value(f) for f in settings.types.of(result_type).fields}


class _Trial:
    """One dry run: the sample job's revisions, PDFs and outbox messages, kept in order."""

    def __init__(
        self,
        session: AsyncSession,
        db: Database,
        user: User,
        settings: ResultingSettings,
    ) -> None:
        self.session = session
        self.db = db
        self.user = user
        self.settings = settings
        self.run = secrets.token_hex(6)
        self.revisions: list[ResultRevision] = []
        self.checks: list[Check] = []

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name=name, ok=ok, detail=detail))
        return ok

    async def result(
        self, job: JobState, result_type: ResultType, company: Company, label: str = ""
    ) -> None:
        """Submit the sample values as a real submission would be, render, and email."""
        label = label or TYPE_LABELS[result_type]
        fields = sample_fields(self.settings, result_type)
        problems = field_problems(self.settings, result_type, fields)
        if not self.check(
            f"{label}: a filled-in result is accepted",
            not problems,
            "every field took its sample value ("
            + ", ".join(f"{k}={v!r}" for k, v in fields.items())
            + ")"
            if not problems
            else "; ".join(problems),
        ):
            return
        checked = submission(self.settings, result_type, fields, self.user.username)
        revision = ResultRevision(
            revision=len(self.revisions) + 1,
            type=result_type,
            fields=checked.fields,
            submitted_by=self.user.username,
            submitted_at=datetime.now(UTC),
            form=checked.form,
            pattern=checked.pattern,
            amount=checked.amount,
        )
        self.revisions.append(revision)
        document_id = await self._document(revision, job, company, label)
        await self._email(revision, job, company, checked.recipients, document_id, label)

    async def _document(
        self, revision: ResultRevision, job: JobState, company: Company, label: str
    ) -> str | None:
        branding = await settings_store.load(self.session, BRANDING, BrandingSettings)
        logo = await load_logo(self.session, branding)
        try:
            rendered = result_document_html(
                revision,
                job,
                company,
                branding,
                has_logo=logo is not None,
                submitted_by_name=await display_name_of(self.session, self.user.username),
                owner_name="Sample owner",
            )
            pdf = await default_renderer().render(rendered.html, logo)
        except Exception as error:  # whatever a pattern does wrong is the finding
            self.check(f"{label}: the PDF renders", False, f"{type(error).__name__}: {error}")
            return None
        # Labels as the template printed them (autoescaped).
        missing = [
            f.label
            for f in revision.form
            if f.key in revision.fields and str(escape(f.label)) not in rendered.html
        ]
        document_id = await documents.save(
            self.session,
            pdf,
            kind="result",
            filename=f"dry-run-{rendered.filename}",
            content_type=PDF,
        )
        self.check(
            f"{label}: the PDF renders ({revision.pattern} pattern)",
            pdf.startswith(b"%PDF") and not missing,
            f"{rendered.filename}, {len(pdf) // 1024 + 1} KB, document {document_id}"
            if not missing
            else f"these labels are missing from it: {', '.join(missing)}",
        )
        return document_id

    async def _email(
        self,
        revision: ResultRevision,
        job: JobState,
        company: Company,
        recipients: list[str],
        document_id: str | None,
        label: str,
    ) -> None:
        if not self.check(
            f"{label}: has recipients",
            bool(recipients),
            ", ".join(recipients) if recipients else "nobody would be emailed: add an address",
        ):
            return
        subject, body = result_email(
            revision,
            job,
            company,
            submitted_by_name=await display_name_of(self.session, self.user.username),
            job_url=None,
        )
        attachments = []
        if document_id is not None:
            stored = await documents.load(self.session, document_id)
            assert stored is not None
            attachments = [{"document_id": document_id, "filename": stored.filename}]
        message = OutboxMessage(
            idempotency_key=f"dry-run-{self.run}:{revision.revision}:result:email",
            channel="email",
            purpose="result",
            to=", ".join(recipients),
            subject=(DRY_RUN_SUBJECT + subject)[:300],
            body=body,
            attachments=attachments,
            # Captured, never delivered: the outbox is where a dry run's email stops.
            status="captured",
            backend="outbox",
            created_by=self.user.username,
        )
        (message_id,) = await self.session.run_sync(queue_rows, self.db.dialect, [message])
        self.check(
            f"{label}: the email is written",
            True,
            f"to {message.to}, {subject!r} (outbox message {message_id}, not sent)",
        )


async def dry_run(
    session: AsyncSession,
    db: Database,
    user: User,
    settings: ResultingSettings,
) -> DryRun:
    """Try `settings` (saved or not) on the sample job; the checks, in the SOP's order."""
    trial = _Trial(session, db, user, settings)
    trial.check(
        "Resulting is turned on",
        settings.enabled,
        "results can be submitted"
        if settings.enabled
        else "it is off: nobody can submit a result and no job is flagged unresulted",
    )
    for result_type in RESULT_TYPES:
        label = TYPE_LABELS[result_type]
        required = [f for f in settings.types.of(result_type).fields if f.required]
        problems = field_problems(settings, result_type, {})
        named = [f.key for f in required if any(f"({f.key})" in p for p in problems)]
        trial.check(
            f"{label}: required fields are enforced",
            len(named) == len(required),
            f"an empty result is refused, naming {', '.join(f.label for f in required)}"
            if required
            else "no field is required: an empty result would be accepted",
        )
    comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    branding = await settings_store.load(session, BRANDING, BrandingSettings)
    company = Company.of(comms, branding)
    job = sample_job(company.zone)
    for result_type in RESULT_TYPES:
        await trial.result(job, result_type, company)
    # Resubmit once: the first type again, as a third revision replacing the second.
    if trial.revisions:
        before = len(trial.revisions)
        await trial.result(
            job, RESULT_TYPES[0], company, f"Resubmitted as {TYPE_LABELS[RESULT_TYPES[0]]}"
        )
        current = trial.revisions[-1]
        trial.check(
            "A resubmission replaces the current result and keeps the earlier ones",
            len(trial.revisions) == before + 1 and current.revision == before + 1,
            f"revision {current.revision} is current; revisions "
            f"{', '.join(str(r.revision) for r in trial.revisions[:-1])} stay in its history",
        )
    await session.flush()
    return DryRun(ok=all(c.ok for c in trial.checks), checks=trial.checks)
