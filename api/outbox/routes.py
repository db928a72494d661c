from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api import idempotency
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from api.errors import ERROR_RESPONSES, error_responses
from api.idempotency import IdempotencyDep
from api.outbox import service
from api.outbox.metrics import ACTIONS
from api.outbox.schemas import OutboxPage, OutboxPublic, Resent, public
from models.outbox import Status
from models.tables import User

router = APIRouter(prefix="/api/v1/outbox", tags=["communications"], responses=ERROR_RESPONSES)
OutboxReader = Annotated[User, Depends(require(*service.KEEPERS, what="reading the outbox"))]
OutboxKeeper = Annotated[
    User, Depends(require(*service.KEEPERS, what="resending a message or marking it sent"))
]
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]
NOT_ACTIONABLE: dict[int | str, dict[str, Any]] = error_responses(
    404, 409, 422, _409="The message is not unknown or failed (or was resent already)"
)


@router.get("", response_model=OutboxPage, responses=error_responses(422))
async def list_outbox(
    session: SessionDep,
    _: OutboxReader,
    job_slug: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9-]+$")] = None,
    channel: Literal["email", "sms"] | None = None,
    purpose: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    # `unknown`: the messages in doubt, for a person to check, then resend or mark sent.
    status: Status | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OutboxPage:
    rows, total = await service.search(
        session,
        job_slug=job_slug,
        channel=channel,
        purpose=purpose,
        status=status,
        page=page,
        page_size=page_size,
    )
    return OutboxPage(items=[public(r) for r in rows], total=total, page=page, page_size=page_size)


@router.post(
    "/{message_id}/resend", status_code=202, response_model=Resent, responses=NOT_ACTIONABLE
)
async def resend_message(
    message_id: MessageId,
    session: SessionDep,
    user: OutboxKeeper,
    temporal: TemporalDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> Resent | JSONResponse:
    """Queues a new delivery of an unknown or failed message (a copy, made by you); the original
    becomes `resent` and says who resent it and when. Resending it again is a 409; a retry with
    the same Idempotency-Key gets this answer again."""
    if (first := await idempotency.replayed(session, idem)) is not None:
        return first
    original, copy = await service.resend(session, temporal, settings.task_queue, message_id, user)
    ACTIONS.labels("resend").inc()
    answer = Resent(original=public(original), resend=public(copy))
    return await idempotency.commit_with_answer(session, idem, 202, answer) or answer


@router.post("/{message_id}/mark-sent", response_model=OutboxPublic, responses=NOT_ACTIONABLE)
async def mark_message_sent(
    message_id: MessageId, session: SessionDep, user: OutboxKeeper, idem: IdempotencyDep
) -> OutboxPublic | JSONResponse:
    """The customer got an unknown or failed message after all (the office checked): it becomes
    `sent`, saying who confirmed it and when."""
    if (first := await idempotency.replayed(session, idem)) is not None:
        return first
    row = await service.mark_sent(session, message_id, user)
    ACTIONS.labels("mark_sent").inc()
    answer = public(row)
    return await idempotency.commit_with_answer(session, idem, 200, answer) or answer
