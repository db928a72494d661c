"""What the customer's closeout portal shows (DESIGN.md §6 "Closeout"): the snapshot of a
completed job that the portal-sync activity stores and the webhook sends.

Customer-facing only: the technician's `work_performed` is the summary the customer reads; their
`notes` on completion (like every note on the job) are internal and never enter a snapshot.

Pure: built from the job's state and the closeout settings. The work receipt is rendered from the
same rows (`used_parts`, `receipt_rows`), so the portal and the PDF always say the same thing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from models.closeout import JobCloseout
from models.lifecycle import JobState

SYNC_PORTAL = "sync_portal"
POST_PORTAL_WEBHOOK = "post_portal_webhook"
LOAD_JOB_CLOSEOUT = "load_job_closeout"


class UsedPart(BaseModel):
    sku: str
    description: str
    quantity: str


class ReceiptRow(BaseModel):
    key: str
    label: str
    value: Any  # as the technician entered it (for the webhook)
    display: str  # as the portal and the receipt print it


class CompletionSnapshot(BaseModel):
    """One version of a completed job's record, as the portal shows it and the webhook sends it."""

    job_slug: str
    job_number: int | None
    title: str
    site_address: str
    client_name: str
    technician: str
    completed_at: datetime
    work_performed: str
    parts_used: list[UsedPart]
    fields: list[ReceiptRow]
    receipt_document_id: str | None


class PortalSync(BaseModel):
    """The portal-sync activity's input: the job as completed and its receipt's id."""

    state: JobState
    closeout: JobCloseout
    receipt_document_id: str | None


class PortalSynced(BaseModel):
    snapshot_id: int
    version: int


def quantity_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def field_display(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(field_display(v) for v in value)
    return str(value)


def field_label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def technician_of(state: JobState) -> str:
    if state.schedule is not None:
        return state.schedule.technician
    return state.completion.completed_by if state.completion else ""


def used_parts(state: JobState) -> list[UsedPart]:
    """The parts the technician used; each described by its order line, else by the quote line
    of that SKU."""
    if state.completion is None:
        return []
    quoted = state.quote.lines if state.quote else []
    described = {line.sku: line.description for line in quoted if line.sku}
    described.update({p.line.sku: p.line.description for p in state.parts})
    return [
        UsedPart(
            sku=part.sku,
            description=described.get(part.sku, ""),
            quantity=quantity_text(part.quantity),
        )
        for part in state.completion.parts_used
    ]


def receipt_rows(fields: dict[str, object], labels: dict[str, str]) -> list[ReceiptRow]:
    """The completion's receipt fields, under the labels the service manager configured (a field
    no longer configured keeps its value, under its name)."""
    return [
        ReceiptRow(
            key=key,
            label=labels.get(key) or field_label(key),
            value=value,
            display=field_display(value),
        )
        for key, value in fields.items()
    ]


def snapshot_of(
    state: JobState, closeout: JobCloseout, receipt_document_id: str | None
) -> CompletionSnapshot:
    completion = state.completion
    if completion is None:
        raise ValueError(f"job {state.slug} is not completed: nothing to show in the portal")
    return CompletionSnapshot(
        job_slug=state.slug,
        job_number=state.number,
        title=state.title,
        site_address=state.site_address,
        client_name=state.client.name,
        technician=technician_of(state),
        completed_at=completion.completed_at,
        work_performed=completion.work_performed,
        parts_used=used_parts(state),
        fields=receipt_rows(completion.fields, closeout.labels()),
        receipt_document_id=receipt_document_id,
    )
