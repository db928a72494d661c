"""Job resulting over HTTP (DESIGN.md §8): a job's result, its PDFs, the resulting settings and
their dry run. Translates HTTP to the resulting service and nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response

from api.deps import DatabaseDep, JobReader, SessionDep, SettingsDep, TemporalDep, require
from api.documents.routes import document_response
from api.errors import BODY_ERRORS, ERROR_RESPONSES, NotFound, error_responses
from api.idempotency import IdempotencyDep
from api.resulting import service
from api.resulting import settings as resulting_settings
from api.resulting.dry_run import DryRun, dry_run
from api.settings.service import SETTINGS_WRITERS
from api.text import NulFree
from core import documents
from models.lifecycle import USER_ROLES
from models.resulting import ResultingSettings
from models.tables import User

jobs_router = APIRouter(prefix="/api/v1/jobs", tags=["resulting"], responses=ERROR_RESPONSES)
settings_router = APIRouter(prefix="/api/v1/settings", tags=["settings"], responses=ERROR_RESPONSES)
Slug = Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[a-z0-9-]+$")]
Reader = Annotated[User, Depends(require(*USER_ROLES, what="reading settings"))]
Admin = Annotated[User, Depends(require(*SETTINGS_WRITERS, what="changing settings"))]


@jobs_router.post(
    "/{slug}/result",
    status_code=201,
    response_model=service.ResultView,
    responses=error_responses(404, 409, 413, 422),
)
async def submit_result(
    slug: Slug,
    body: Annotated[service.ResultBody, NulFree],
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    user: JobReader,
    idem: IdempotencyDep,
) -> service.ResultView:
    """Result the job as a Sale or a No Sale with its type's fields (checked against today's
    settings; each problem named). A resubmission becomes the current result and is emailed
    again; earlier revisions stay. Works on open, closed and canceled jobs alike."""
    await service.submit(
        session,
        temporal,
        settings.task_queue,
        user,
        slug,
        body,
        idem,
        settings.api_event_timeout_s,
    )
    return await service.result_of(session, user, slug)


@jobs_router.get(
    "/{slug}/result", response_model=service.ResultView, responses=error_responses(404, 422)
)
async def get_result(slug: Slug, session: SessionDep, user: JobReader) -> service.ResultView:
    """The current result and every revision, oldest first."""
    return await service.result_of(session, user, slug)


@jobs_router.get(
    "/{slug}/result/document.pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The result's PDF"},
        **error_responses(404, 422),
    },
)
async def get_result_document(
    slug: Slug,
    session: SessionDep,
    user: JobReader,
    revision: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The current result's PDF, or revision N's with `?revision=N`."""
    document_id = await service.document_of(session, user, slug, revision)
    row = await documents.load(session, document_id)
    if row is None:
        raise NotFound(f"the PDF of job {slug!r}'s result is not stored")
    return document_response(row)


@settings_router.get("/resulting", response_model=ResultingSettings)
async def get_resulting(session: SessionDep, _: Reader) -> ResultingSettings:
    return await resulting_settings.load(session)


@settings_router.put("/resulting", response_model=ResultingSettings, responses=BODY_ERRORS)
async def put_resulting(
    body: Annotated[ResultingSettings, NulFree], session: SessionDep, admin: Admin
) -> ResultingSettings:
    """Replaces the whole document. Refused (422, naming the problem) when a type has no field,
    resulting is enabled without recipients, an address is not one, a key repeats, a label is
    empty, a dropdown has fewer than two options, or a pattern is unknown."""
    return await resulting_settings.save(session, body, admin.username)


@settings_router.post("/resulting/dry-run", response_model=DryRun, responses=BODY_ERRORS)
async def post_dry_run(
    session: SessionDep,
    db: DatabaseDep,
    admin: Admin,
    body: Annotated[ResultingSettings | None, Body(), NulFree] = None,
) -> DryRun:
    """Try the resulting settings (the body's, or the saved ones without a body) on a sample job
    that is in no list or report: results it as Sale and as No Sale, checks that required fields
    are enforced, resubmits once. Its PDFs are stored and its emails written to the outbox as
    captured, never sent."""
    settings = body if body is not None else await resulting_settings.load(session)
    return await dry_run(session, db, admin, settings)
