from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, require
from api.errors import ERROR_RESPONSES, error_responses
from api.outbox import service
from api.outbox.schemas import OutboxPage, public
from models.lifecycle import Role
from models.tables import User

router = APIRouter(prefix="/api/v1/outbox", tags=["communications"], responses=ERROR_RESPONSES)
OutboxReader = Annotated[
    User, Depends(require(Role.office, Role.manager, Role.admin, what="reading the outbox"))
]


@router.get("", response_model=OutboxPage, responses=error_responses(422))
async def list_outbox(
    session: SessionDep,
    _: OutboxReader,
    job_slug: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9-]+$")] = None,
    channel: Literal["email", "sms"] | None = None,
    purpose: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    status: Literal["queued", "sending", "sent", "failed", "captured", "unknown"] | None = None,
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
