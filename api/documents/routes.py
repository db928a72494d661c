"""Stored documents (DESIGN.md §8 `GET /api/v1/documents/{id}`): quotes, work receipts,
invoices and result documents, by the id their messages and jobs carry.

Office, sales, managers and admins read any document; a technician reads the documents of the
jobs they may see (those assigned to them now). A document someone may not read is simply not
found, exactly like one that does not exist: the answer reveals nothing either way.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from api.deps import ALL_STAFF, SessionDep, require
from api.errors import ERROR_RESPONSES, NotFound, error_responses
from api.jobs.service import get_row
from core import documents
from models.lifecycle import Role
from models.tables import Document, User

router = APIRouter(prefix="/api/v1/documents", tags=["documents"], responses=ERROR_RESPONSES)
DocumentReader = Annotated[User, Depends(require(*ALL_STAFF, what="reading documents"))]
_ID = re.compile(r"^[0-9a-f]{32}$")
# Documents open in the browser; anything else (an uploaded logo) only downloads.
_INLINE = {"application/pdf"}


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266: a plain ASCII `filename` for every client, and `filename*` for the exact name."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "document"
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def document_response(row: Document) -> Response:
    """A stored document as a download: PDFs open in the browser, anything else saves; never
    cached, never sniffed. Who may have it is the caller's check."""
    return Response(
        content=row.content,
        media_type=row.content_type,
        headers={
            "Content-Disposition": content_disposition(row.filename, row.content_type in _INLINE),
            "Content-Length": str(row.size),
            "ETag": f'"{row.sha256}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/{id}",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The document's bytes"},
        **error_responses(404, 422),
    },
)
async def get_document(
    session: SessionDep,
    user: DocumentReader,
    document_id: Annotated[
        str, Path(alias="id", description="The id a job, message or link carries")
    ],
) -> Response:
    missing = NotFound(f"no document {document_id!r}")
    if not _ID.match(document_id):
        raise missing  # not an id we ever hand out (and nothing to send the database)
    row = await documents.load(session, document_id)
    if row is None:
        raise missing
    if user.role == Role.technician:
        if row.job_slug is None:
            raise missing
        try:
            await get_row(session, user, row.job_slug)
        except NotFound:
            raise missing from None
    return document_response(row)
