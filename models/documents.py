"""Documents Jobline renders and stores (DESIGN.md §6 "Documents").

What the workflow and the renderer activity pass each other. A document's bytes never travel
through workflow history: the activity stores the PDF and returns its id (DESIGN.md §3).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from models.lifecycle import JobState

RENDER_DOCUMENT = "render_document"

# Every kind of stored document; `logo` is an uploaded image the branding settings point at.
DocumentKind = Literal["quote", "work_receipt", "invoice", "result", "logo"]
# The kinds rendered from a job's state by `render_document`.
RenderableKind = Literal["quote", "work_receipt", "invoice"]


class RenderDocument(BaseModel):
    """Render one document of a job as it stands in `state`.

    Idempotent: the document's key is (workflow id, `state.seq`, kind), so a retried or replayed
    render returns the document the first attempt stored.
    """

    state: JobState
    kind: RenderableKind
    # Labels for the work receipt's configured fields (field name -> label); a field without
    # one is printed under its name.
    field_labels: dict[str, str] = {}


def document_key(state: JobState, kind: str) -> str:
    return f"job-{state.slug}:{state.seq}:{kind}"
