from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from api.admission import Admitted
from api.deps import CurrentUser, DatabaseDep, JobReader, SessionDep, SettingsDep, TemporalDep
from api.errors import ERROR_RESPONSES, Invalid, error_responses
from api.idempotency import IdempotencyDep
from api.jobs import send, service
from api.jobs.schemas import JobPage, JobView, SendPreview, SendRequest, SendResult
from api.jobs.views import (
    job_view,
    list_item,
    portal_link_view,
    quote_link_view,
    state_of,
    view_of_state,
)
from api.outbox import service as outbox
from api.outbox.schemas import public as outbox_public
from api.resulting import service as resulting
from api.text import NoNul
from api.users.service import actor_of
from core.config import Settings
from models import events as ev
from models.bounds import IdParam
from models.event_examples import EVENT_EXAMPLES
from models.lifecycle import Milestone, Stage
from models.messages import EventOutcome

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)
Slug = Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[a-z0-9-]+$")]
# An event to a job: refused by its stage (409), or a body too large or not valid.
_EVENT_ERRORS = error_responses(409, 413, 422)


async def _view(
    session: SessionDep,
    settings: Settings,
    user: CurrentUser,
    slug: str,
    *,
    answering_their_event: bool = False,
) -> JobView:
    row = await service.get_row(session, user, slug, answering_their_event=answering_their_event)
    state = state_of(row)
    return job_view(
        row,
        await service.timeline(session, slug),
        await outbox.for_job(session, slug),
        actor_of(user),
        await portal_link_view(session, settings.secret_key, settings.public_url, slug, state),
        result=await resulting.current_result(session, slug),
        quote_link=await quote_link_view(
            session, settings.secret_key, settings.public_url, slug, state
        ),
        state=state,
    )


@router.post("", status_code=201, response_model=JobView, responses=_EVENT_ERRORS)
async def create_job(
    body: ev.JobCreated,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    db: DatabaseDep,
    user: JobReader,
    admitted: Admitted,
    idem: IdempotencyDep,
) -> JobView:
    slug, outcome = await service.create_job(
        session,
        db,
        temporal,
        settings.task_queue,
        user,
        body,
        idem,
        settings.api_event_timeout_s,
        settings.public_url.rstrip("/"),
    )
    return await _answer(session, settings, user, outcome, slug)


async def _answer(
    session: SessionDep,
    settings: Settings,
    user: CurrentUser,
    outcome: EventOutcome | None,
    slug: str,
) -> JobView:
    """The job as the event left it. The workflow handed back its state (from the answer-first
    patch on, always; between one-writer and it, when its own write failed): that state is
    shown, and only the timeline and messages are read. Otherwise the workflow wrote the job
    before answering, and the projection is read."""
    projection = None if outcome is None else outcome.unwritten or outcome.projection
    if projection is None:
        return await _view(session, settings, user, slug, answering_their_event=True)
    return view_of_state(
        projection.state,
        service.with_records(await service.timeline(session, slug), projection),
        await outbox.for_job(session, slug),
        actor_of(user),
        next_reminder_at=projection.next_reminder_at,
        updated_at=projection.at or datetime.now(UTC),
        portal=await portal_link_view(
            session, settings.secret_key, settings.public_url, slug, projection.state
        ),
        result=await resulting.current_result(session, slug),
        quote_link=await quote_link_view(
            session, settings.secret_key, settings.public_url, slug, projection.state
        ),
    )


@router.get("", response_model=JobPage, responses=error_responses(422))
async def list_jobs(
    session: SessionDep,
    user: JobReader,
    stage: Stage | None = None,
    milestone: Milestone | None = None,
    client_id: Annotated[IdParam | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200), NoNul] = None,
    stuck: bool | None = None,
    unresulted: Annotated[
        bool | None, Query(description="due a Sale / No Sale result and without one")
    ] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="owner's username"), NoNul
    ] = None,
    technician: Annotated[
        str | None, Query(max_length=64, description="assigned technician's username"), NoNul
    ] = None,
    waiting_on: Annotated[
        str | None, Query(max_length=32, description="office, owner, customer, manager, ..."), NoNul
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    filters = service.JobFilters(
        stage=stage.value if stage else None,
        milestone=milestone.value if milestone else None,
        client_id=client_id,
        q=q,
        stuck=stuck,
        unresulted=unresulted,
        owner=owner,
        technician=technician,
        waiting_on=waiting_on,
    )
    rows, total = await service.search(session, user, filters, page=page, page_size=page_size)
    return JobPage(items=[list_item(r) for r in rows], total=total, page=page, page_size=page_size)


@router.get("/{slug}", response_model=JobView, responses=error_responses(404, 422))
async def get_job(
    slug: Slug, session: SessionDep, settings: SettingsDep, user: JobReader
) -> JobView:
    return await _view(session, settings, user, slug)


@router.post(
    "/{slug}/events",
    response_model=JobView,
    responses={**error_responses(404), **_EVENT_ERRORS},
)
async def post_event(
    slug: Slug,
    event: Annotated[
        ev.Event,
        Body(
            # "Try it out" pre-fills the first (a note); job_created starts a job at POST /jobs.
            openapi_examples={
                type_: {"summary": type_, "value": body}
                for type_, body in EVENT_EXAMPLES.items()
                if type_ != "job_created"
            },
        ),
    ],
    session: SessionDep,
    temporal: TemporalDep,
    db: DatabaseDep,
    settings: SettingsDep,
    user: JobReader,
    admitted: Admitted,
    idem: IdempotencyDep,
) -> JobView:
    if isinstance(event, ev.JobCreated):
        raise Invalid("job_created starts a new job: POST /api/v1/jobs")
    if isinstance(event, ev.QuoteSent) and event.sms:
        await send.check_sms_enabled(session)
    outcome = await service.send_event(
        session, db, temporal, user, slug, event, idem, settings.api_event_timeout_s
    )
    return await _answer(session, settings, user, outcome, slug)


@router.post(
    "/{slug}/send",
    status_code=202,
    response_model=SendResult | SendPreview,
    responses={
        200: {"model": SendPreview, "description": "preview: rendered, nothing sent"},
        **error_responses(404),
        **_EVENT_ERRORS,
    },
)
async def send_customer_update(
    slug: Slug,
    body: SendRequest,
    session: SessionDep,
    temporal: TemporalDep,
    db: DatabaseDep,
    settings: SettingsDep,
    user: JobReader,
    response: Response,
    admitted: Admitted,
    idem: IdempotencyDep,
) -> SendResult | SendPreview:
    """Email the customer (and SMS when asked); `preview: true` renders both and sends nothing."""
    if body.preview:
        response.status_code = 200
        return await send.preview(session, user, slug, body)
    event = await send.as_event(session, body)
    outcome = await service.send_event(
        session, db, temporal, user, slug, event, idem, settings.api_event_timeout_s
    )
    if outcome is None:  # a retry: the job has finished since, and took this send then
        messages = await service.messages_of_request(session, slug, idem)
    else:
        messages = await outbox.by_ids(session, outcome.message_ids)
    return SendResult(messages=[outbox_public(m) for m in messages])
