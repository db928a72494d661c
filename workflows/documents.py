"""Rendering a job's documents from the job workflow: the state goes in, a stored id comes back
(the PDF itself never enters workflow history, DESIGN.md §3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
# From the one-writer patch on, a document renders outside the event's Update and its message
# waits for it: retried for hours (a worker killed mid-render is the usual cause), never given up
# after a few tries; a failure that would fail again (a bad template) is not retried.
PATIENT_RENDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ValueError", "TypeError", "KeyError", "UndefinedError"],
)
PATIENT_RENDER_DEADLINE = timedelta(hours=6)
# A patient render heartbeats while its PDF is made (activities/heartbeats.py): an attempt runs
# as long as its worker lives (a long quote on a busy machine takes minutes; cut off at a fixed
# minute it started again from nothing, and never finished), and a dead worker's is retried
# after the heartbeat timeout. The attempt's own limit is for a render that never ends.
RENDER_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
PATIENT_RENDER_ATTEMPT = timedelta(minutes=15)
# Every patient render (a job's documents, a result's PDF) runs with these.
PATIENT_RENDER_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": PATIENT_RENDER_ATTEMPT,
    "heartbeat_timeout": RENDER_HEARTBEAT_TIMEOUT,
    "schedule_to_close_timeout": PATIENT_RENDER_DEADLINE,
    "retry_policy": PATIENT_RENDER_RETRY,
}


async def render(
    state: JobState,
    kind: RenderableKind,
    field_labels: dict[str, str] | None = None,
    patient: bool = False,
) -> str | None:
    """The stored document's id, or None when it could not be rendered (logged)."""
    request = RenderDocument(state=state, kind=kind, field_labels=field_labels or {})
    try:
        if patient:
            document_id: str = await workflow.execute_activity(
                RENDER_DOCUMENT,
                request,
                result_type=str,
                **PATIENT_RENDER_OPTIONS,
                summary=f"render {kind} PDF",
            )
        else:
            document_id = await workflow.execute_activity(
                RENDER_DOCUMENT,
                request,
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
