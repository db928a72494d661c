"""Resulting a job (DESIGN.md §6 "Job resulting", §8 `…/result`): for the JSON API and the job
page alike.

A submission is checked here against the settings of this moment (so a refusal names the field
and changes nothing), then sent as an Update to the job's resulting workflow, started by that same
call if it is not running (update-with-start): it records the revision before it answers, so a
GET right after shows it, then renders the PDF and emails it. Results are read from the
database: every revision, newest last, with the job's unresulted flag.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client as TemporalClient,
)
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.errors import AppError, Invalid, NotFound, Unavailable
from api.idempotency import HEADER, Idempotency
from api.jobs.service import get_row
from api.resulting import settings as resulting_settings
from models.resulting import (
    TYPE_LABELS,
    ResultingInput,
    ResultRevision,
    ResultType,
    field_problems,
    resulting_workflow_id,
    submission,
)
from models.tables import Job, JobResult, User
from workflows.resulting import JobResultWorkflow

log = logging.getLogger("jobline.resulting")


class ResultingOff(AppError):
    status_code = 409
    code = "resulting_disabled"


class ResultBody(BaseModel):
    """`POST /api/v1/jobs/{slug}/result`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"type": "no_sale", "fields": {"loss_reason": "Price", "notes": ""}}]
        },
    )

    type: ResultType
    fields: dict[str, Any] = {}


class RevisionView(BaseModel):
    """One revision (DESIGN.md §4 "A result revision"), with its type's label and the label of
    each field as it was when submitted."""

    revision: int
    type: ResultType
    type_label: str
    fields: dict[str, Any]
    labels: dict[str, str]
    amount: Decimal | None
    submitted_by: str
    submitted_at: datetime
    document_id: str | None


class ResultView(BaseModel):
    """A job's result: the current revision (the latest), every revision in order, and whether
    the job is overdue for one."""

    current: RevisionView | None
    revisions: list[RevisionView]
    unresulted: bool
    due_at: datetime | None


def revision_view(row: JobResult) -> RevisionView:
    return RevisionView(
        revision=row.revision,
        type=row.type,  # type: ignore[arg-type]
        type_label=TYPE_LABELS.get(row.type, row.type),
        fields=row.fields,
        labels={f["key"]: f["label"] for f in row.form},
        amount=row.amount,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        document_id=row.document_id,
    )


async def revisions(session: AsyncSession, slug: str) -> list[JobResult]:
    rows = await session.exec(
        select(JobResult).where(JobResult.job_slug == slug).order_by(col(JobResult.revision))
    )
    return list(rows.all())


def view_of(job: Job, rows: list[JobResult]) -> ResultView:
    views = [revision_view(r) for r in rows]
    return ResultView(
        current=views[-1] if views else None,
        revisions=views,
        unresulted=job.unresulted,
        due_at=job.resulting_due_at if not views else None,
    )


async def current_result(session: AsyncSession, slug: str) -> dict[str, Any] | None:
    """The job view's `result`: the latest revision, or None before the first."""
    row = (
        await session.exec(
            select(JobResult)
            .where(JobResult.job_slug == slug)
            .order_by(col(JobResult.revision).desc())
            .limit(1)
        )
    ).first()
    return revision_view(row).model_dump(mode="json") if row else None


async def result_of(session: AsyncSession, user: User, slug: str) -> ResultView:
    """The job's result, if this user may see the job (404 otherwise)."""
    job = await get_row(session, user, slug)
    return view_of(job, await revisions(session, slug))


async def document_of(session: AsyncSession, user: User, slug: str, revision: int | None) -> str:
    """The stored PDF's id of the current revision (or of revision N)."""
    await get_row(session, user, slug)
    rows = await revisions(session, slug)
    if not rows:
        raise NotFound(f"job {slug!r} has no result yet")
    if revision is None:
        row = rows[-1]
    else:
        found = [r for r in rows if r.revision == revision]
        if not found:
            raise NotFound(f"job {slug!r} has no result revision {revision} (it has 1-{len(rows)})")
        row = found[0]
    if row.document_id is None:
        raise Unavailable(
            f"the PDF of revision {row.revision} is still being made; ask again in a moment"
        )
    return row.document_id


async def submit(
    session: AsyncSession,
    temporal: TemporalClient,
    task_queue: str,
    user: User,
    slug: str,
    body: ResultBody,
    idem: Idempotency,
    timeout_s: float,
) -> ResultRevision:
    """Check the submission against today's settings and record it as the job's next revision
    (its PDF and email follow). Refusals: 404 (no such job for this user), 409 (resulting is off),
    422 (a field missing, of the wrong type, not an option, or unknown — each named)."""
    await get_row(session, user, slug)
    settings = await resulting_settings.load(session)
    if not settings.enabled:
        raise ResultingOff(
            "job resulting is turned off; an admin turns it on in the resulting settings"
        )
    problems = field_problems(settings, body.type, body.fields)
    if problems:
        raise Invalid("fields: " + "; ".join(problems), problems=problems)
    checked = submission(settings, body.type, body.fields, user.username).model_copy(
        update={"request_digest": idem.digest}
    )
    await session.commit()  # hold no database transaction while the workflow records it
    start = WithStartWorkflowOperation(
        JobResultWorkflow.run,
        ResultingInput(slug=slug),
        id=resulting_workflow_id(slug),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        async with asyncio.timeout(timeout_s):
            outcome = await temporal.execute_update_with_start_workflow(
                JobResultWorkflow.submit,
                checked,
                start_workflow_operation=start,
                id=idem.update_id,
            )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        retry = (
            f"send it again with the same {HEADER} ({idem.key!r}), which is safe"
            if idem.key
            else "check the job's result before sending it again"
        )
        raise Unavailable(
            f"job {slug!r}'s result was not recorded within {timeout_s:g} s; it may still be: "
            + retry
        ) from None
    except WorkflowUpdateFailedError as failed:
        log.warning("job %s: the result update failed: %r", slug, failed.cause)
        raise Unavailable("the result was not recorded this time; submit it again") from None
    except RPCError as rpc:
        raise Unavailable(f"the workflow service is not reachable: {rpc.message}") from None
    idem.check_same(outcome.request_digest)
    return outcome.revision
