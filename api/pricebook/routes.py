"""`/api/v1/pricebook`: items with their fixed prices, and the price book as CSV (DESIGN.md §8).

Everyone signed in reads it; office, managers and admins change it. An import with problems
imports nothing, whether or not it is a dry run, and answers 422 with the whole result (every
problem, by line and column) under `error.result`; a clean one answers 200.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api import idempotency
from api.deps import ALL_STAFF, SessionDep, require
from api.errors import BODY_ERRORS, ERROR_RESPONSES, Invalid, error_responses
from api.idempotency import IdempotencyDep
from api.pricebook import csv_io, service
from api.pricebook.schemas import ImportResult, ItemCreate, ItemPage, ItemPublic, ItemUpdate
from api.text import NoNul
from models.tables import User

router = APIRouter(prefix="/api/v1/pricebook", tags=["pricebook"], responses=ERROR_RESPONSES)

PricebookReader = Annotated[User, Depends(require(*ALL_STAFF, what="reading the price book"))]
PricebookWriter = Annotated[
    User,
    Depends(require(*service.EDITOR_ROLES, what="changing the price book")),
]


class ImportRefused(Invalid):
    code = "import_problems"


@router.get(
    ".csv",
    responses={200: {"content": {"text/csv": {}}, "description": "CSV"}},
    response_class=Response,
)
async def export_csv(session: SessionDep, _: PricebookReader) -> Response:
    """Every item, one row each: sku, name, description, unit_price, taxable (yes/no), category,
    active (yes/no) and each tier's fixed price (empty: none). Client prices are not in it."""
    return csv_io.csv_response(await service.all_items(session))


@router.post(
    "/import",
    response_model=ImportResult,
    max_body_size=csv_io.MAX_IMPORT_BYTES,
    responses=error_responses(413, 422, _422="The file has problems (under `error.result`): "
                              "nothing was imported"),
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def import_csv(
    request: Request,
    session: SessionDep,
    _: PricebookWriter,
    idem: IdempotencyDep,
    dry_run: bool = True,
) -> ImportResult | JSONResponse:
    """The CSV as the body (UTF-8; the export's columns, `sku`, `name` and `unit_price`
    required). Upserts by SKU; a tier's price column replaces that tier's fixed price (empty
    removes it). `dry_run` (the default) checks and counts, and writes nothing."""
    if not dry_run and (first := await idempotency.replayed(session, idem)) is not None:
        return first
    result = await import_body(session, await request.body(), dry_run)
    if dry_run:
        return result
    return await idempotency.commit_with_answer(session, idem, 200, result) or result


async def import_body(session: SessionDep, body: bytes, dry_run: bool) -> ImportResult:
    result = await service.apply_import(session, csv_io.read(body), dry_run)
    if not result.ok:
        count = len(result.problems)
        raise ImportRefused(
            f"the file has {count} problem{'' if count == 1 else 's'}; nothing was imported "
            f"(first: line {result.problems[0].line}"
            + (f", {result.problems[0].column}" if result.problems[0].column else "")
            + f": {result.problems[0].message})",
            result=result.model_dump(mode="json"),
        )
    return result


@router.post(
    "",
    status_code=201,
    response_model=ItemPublic,
    responses={**BODY_ERRORS, **error_responses(409, _409="An item with this SKU exists")},
)
async def create_item(
    body: ItemCreate, session: SessionDep, _: PricebookWriter, idem: IdempotencyDep
) -> ItemPublic | JSONResponse:
    if (first := await idempotency.replayed(session, idem)) is not None:
        return first
    created = await service.public(session, await service.create(session, body))
    return await idempotency.commit_with_answer(session, idem, 201, created) or created


@router.get("", response_model=ItemPage, responses=error_responses(422))
async def list_items(
    session: SessionDep,
    user: PricebookReader,
    q: Annotated[str | None, Query(max_length=200), NoNul] = None,
    category: Annotated[str | None, Query(max_length=100), NoNul] = None,
    active: bool | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ItemPage:
    """`q` finds SKUs and names holding it (any case); `category` is exact."""
    rows, total = await service.search(session, q, category, active, page, page_size)
    return ItemPage(
        items=await service.public_many(session, rows, user),
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get("/{sku}", response_model=ItemPublic, responses=error_responses(404, 422))
async def get_item(sku: str, session: SessionDep, user: PricebookReader) -> ItemPublic:
    """A technician sees the client prices of the clients of their jobs only."""
    return await service.public(session, await service.get(session, sku), user)


@router.patch("/{sku}", response_model=ItemPublic, responses=error_responses(404, 413, 422))
async def update_item(
    sku: str, body: ItemUpdate, session: SessionDep, _: PricebookWriter
) -> ItemPublic:
    """Only the fields sent change; `fixed_prices` replaces all the item's fixed prices."""
    return await service.public(session, await service.update(session, sku, body))
