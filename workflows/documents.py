"""Rendering a job's documents from the job workflow: the state goes in, a stored id comes back
(the PDF itself never enters workflow history, DESIGN.md §3)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.documents import RENDER_DOCUMENT, RenderableKind, RenderDocument
    from models.lifecycle import JobState

RENDER_TIMEOUT = timedelta(seconds=60)
# A document goes with a message someone is waiting for: a few quick tries, then the message
# goes without it rather than never.
RENDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
)


async def render(
    state: JobState, kind: RenderableKind, field_labels: dict[str, str] | None = None
) -> str | None:
    """The stored document's id, or None when it could not be rendered (logged)."""
    try:
        document_id: str = await workflow.execute_activity(
            RENDER_DOCUMENT,
            RenderDocument(state=state, kind=kind, field_labels=field_labels or {}),
            result_type=str,
            start_to_close_timeout=RENDER_TIMEOUT,
            retry_policy=RENDER_RETRY,
        )
    except ActivityError as failed:
        workflow.logger.warning(
            "document not rendered; the message goes without it",
            extra={"job_slug": state.slug, "kind": kind, "error": str(failed.cause or failed)},
        )
        return None
    return document_id
