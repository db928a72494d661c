from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api import idempotency
from api.clients import service
from api.clients.schemas import ClientCreate, ClientPage, ClientPublic, ClientShown, ClientUpdate
from api.deps import ClientReader, ClientWriter, SessionDep
from api.errors import BODY_ERRORS, ERROR_RESPONSES, error_responses
from api.idempotency import IdempotencyDep
from api.text import NoNul
from models.bounds import IdParam

router = APIRouter(prefix="/api/v1/clients", tags=["clients"], responses=ERROR_RESPONSES)
ClientId = Annotated[IdParam, Path()]


@router.post("", status_code=201, response_model=ClientPublic, responses=BODY_ERRORS)
async def create_client(
    body: ClientCreate, session: SessionDep, _: ClientWriter, idem: IdempotencyDep
) -> ClientPublic | JSONResponse:
    if (first := await idempotency.replayed(session, idem)) is not None:
        return first
    created = service.public(await service.create(session, body))
    return await idempotency.commit_with_answer(session, idem, 201, created) or created


@router.get("", response_model=ClientPage, responses=error_responses(422))
async def list_clients(
    session: SessionDep,
    user: ClientReader,
    q: Annotated[str | None, Query(max_length=200), NoNul] = None,
    tier: Literal["standard", "platinum", "gov"] | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ClientPage:
    """Technicians list the clients of the jobs assigned to them, without the internal notes."""
    rows, total = await service.search(session, user, q, tier, page, page_size)
    return ClientPage(
        items=[service.shown_to(user, c) for c in rows], total=total, page=page, page_size=page_size
    )


@router.get("/{client_id}", response_model=ClientShown, responses=error_responses(404, 422))
async def get_client(client_id: ClientId, session: SessionDep, user: ClientReader) -> ClientShown:
    """Technicians read the clients of the jobs assigned to them, without the internal notes."""
    return service.shown_to(user, await service.read(session, user, client_id))


@router.patch("/{client_id}", response_model=ClientPublic, responses=error_responses(404, 413, 422))
async def update_client(
    client_id: ClientId, body: ClientUpdate, session: SessionDep, _: ClientWriter
) -> ClientPublic:
    return service.public(await service.update(session, client_id, body))
