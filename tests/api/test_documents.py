"""`GET /api/v1/documents/{id}` (DESIGN.md §8): who may read a stored document, and what they get.

Office, sales, managers and admins read any document; technicians only those of the jobs they are
assigned to now. Anything else, and any id that is not a stored document, is the same
plain 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.documents import DocumentActivities, job_reference
from api.documents.routes import content_disposition
from core import documents
from models.documents import RenderDocument
from models.lifecycle import Completion, JobState
from models.tables import Job
from tests.activities.test_documents import pdf_text, png
from tests.api.journeys import window
from tests.conftest import Stack

DOCS = "/api/v1/documents"
STAFF = ("ada", "mia", "olga", "sam", "sue")


async def _tess_job(stack: Stack) -> str:
    """A job scheduled for tess (and so visible to her, not to tom)."""
    slug = (await stack.new_job())["slug"]
    for type_, fields in (
        ("emergency_dispatch", {}),
        ("job_scheduled", {"technician": "tess", **window()}),
    ):
        response = await stack.event("olga", slug, type_, **fields)
        assert response.status_code == 200, response.text
    return slug


async def _store(stack: Stack, content: bytes, **fields: object) -> str:
    async with stack.db.session() as session:
        return await documents.save(session, content, **fields)  # type: ignore[arg-type]


def _not_found(response: object) -> None:
    assert response.status_code == 404, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "not_found" and error["message"]


async def test_staff_and_the_assigned_technician_read_a_job_document(stack: Stack) -> None:
    slug = await _tess_job(stack)
    async with stack.db.session() as session:
        row = await session.get(Job, slug)
    assert row is not None
    state = JobState.model_validate(row.state).model_copy(
        update={
            "completion": Completion(
                work_performed="Reset the breaker and replaced the capacitor.",
                completed_by="tess",
                completed_at=datetime.now(UTC),
            )
        }
    )
    document_id = await DocumentActivities(stack.db).render_document(
        RenderDocument(state=state, kind="work_receipt")
    )
    for username in (*STAFF, "tess"):
        response = await stack.get(username, f"{DOCS}/{document_id}")
        assert response.status_code == 200, (username, response.text)
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"].startswith(
            f'inline; filename="work-receipt-{job_reference(state)}.pdf"'
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "no-store" in response.headers["cache-control"]
        assert response.content.startswith(b"%PDF-")
        assert int(response.headers["content-length"]) == len(response.content)
    text = pdf_text(response.content)
    assert "Reset the breaker and replaced the capacitor." in text
    # Another technician: not theirs, so not found (the same answer as no document at all).
    _not_found(await stack.get("tom", f"{DOCS}/{document_id}"))


async def test_a_document_of_no_job_is_for_staff_only(stack: Stack) -> None:
    logo = await _store(stack, png(), kind="logo", filename="logo.png", content_type="image/png")
    for username in STAFF:
        response = await stack.get(username, f"{DOCS}/{logo}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        # Anything but a PDF downloads rather than opening in the API's origin.
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.content == png()
    for technician in ("tess", "tom"):
        _not_found(await stack.get(technician, f"{DOCS}/{logo}"))


async def test_a_reassigned_jobs_documents_go_with_it(stack: Stack) -> None:
    slug = await _tess_job(stack)
    response = await stack.event("tess", slug, "note_added", text="Gate code is 4411")
    assert response.status_code == 200, response.text
    # Reassigned to tom: though tess worked on it, the job and its documents are his alone now.
    response = await stack.event("olga", slug, "job_scheduled", technician="tom", **window())
    assert response.status_code == 200, response.text
    document_id = await _store(
        stack,
        b"%PDF-1.7 fake",
        kind="quote",
        filename="quote.pdf",
        content_type="application/pdf",
        job_slug=slug,
    )
    assert (await stack.get("tom", f"{DOCS}/{document_id}")).status_code == 200
    _not_found(await stack.get("tess", f"{DOCS}/{document_id}"))


@pytest.mark.parametrize(
    "document_id",
    [
        "0" * 32,  # well formed, never stored
        "f" * 31,
        "not-an-id",
        "..%2F..%2Fetc%2Fpasswd",
        "%00" * 10,
        "a" * 5000,
    ],
)
async def test_unknown_ids_are_not_found(stack: Stack, document_id: str) -> None:
    _not_found(await stack.get("ada", f"{DOCS}/{document_id}"))


async def test_a_bearer_token_is_required(stack: Stack) -> None:
    document_id = await _store(
        stack, b"%PDF-1.7", kind="invoice", filename="i.pdf", content_type="application/pdf"
    )
    response = await stack.http.get(f"{DOCS}/{document_id}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_content_disposition_names_any_file_safely() -> None:
    assert content_disposition("quote-1042-v2.pdf", inline=True) == (
        "inline; filename=\"quote-1042-v2.pdf\"; filename*=UTF-8''quote-1042-v2.pdf"
    )
    header = content_disposition('reçu "final"\r\n.pdf', inline=False)
    assert header.startswith('attachment; filename="re_u_final_.pdf";')
    assert "filename*=UTF-8''re%C3%A7u%20%22final%22%0D%0A.pdf" in header
    assert "\r" not in header and "\n" not in header


async def test_the_route_is_in_the_openapi(stack: Stack) -> None:
    spec = (await stack.http.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/documents/{id}"]["get"]
    assert "application/pdf" in operation["responses"]["200"]["content"]
