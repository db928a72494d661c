"""`/pricebook` (search, the items, an "Add item" form, CSV export and import) and
`/pricebook/{sku}` (an item: its fields and its fixed prices).

The same services as `/api/v1/pricebook` (api/pricebook/service.py): everyone signed in reads,
office, managers and admins change (`service.may_edit`, the API's rule). An import is a dry run
first: the file's problems are listed by line, and a clean file's rows are shown with an
"Import" button that posts the same text again (kept in the form) for real; a file with
problems imports nothing.
"""

from __future__ import annotations

from decimal import Decimal
from math import ceil
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from api.deps import SessionDep
from api.errors import AppError, NotPermitted
from api.pricebook import csv_io, service
from api.pricebook.schemas import ImportResult, ItemCreate, ItemUpdate
from api.web.clients_pages import Problems, explain, text_of
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from models.pricebook import TIERS, FixedPrice
from models.tables import PricebookItem

router = page_router()

PAGE_SIZE = 50
TIER_NAMES = {"standard": "Standard", "platinum": "Platinum", "gov": "Government"}
ITEM_FIELDS = ("sku", "name", "description", "unit_price", "category")
LABELS = {
    "sku": "SKU",
    "name": "Name",
    "description": "Description",
    "unit_price": "Unit price",
    "taxable": "Taxable",
    "category": "Category",
    "active": "Active",
    "fixed_prices": "Fixed prices",
}
# The import form carries the file (or its text, to import for real): the API's limit, and room
# for the form's other fields.
FORM_BYTES = csv_io.MAX_IMPORT_BYTES + 16 * 1024


def _require_editor(viewer: SignedIn) -> None:
    if not service.may_edit(viewer.role):
        editors = ", ".join(sorted(r.value for r in service.EDITOR_ROLES))
        raise NotPermitted(f"changing the price book is for: {editors}; you are {viewer.role}")


def _flag(form: FormData, name: str) -> bool:
    return text_of(form, name) == "on"


def _item_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: text_of(form, name) for name in ITEM_FIELDS}
    values["taxable"] = _flag(form, "taxable")
    values["active"] = _flag(form, "active")
    return values


def _query_text(text: str | None, most: int = 200) -> str:
    return (text or "").replace("\x00", "").strip()[:most]


def _page_number(text: str | None) -> int:
    try:
        return min(max(int(text or "1"), 1), 100_000)
    except ValueError:
        return 1


async def _list_page(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    *,
    q: str = "",
    category: str = "",
    number: int = 1,
    values: dict[str, Any] | None = None,
    problems: Problems | None = None,
    result: ImportResult | None = None,
    csv_text: str = "",
    status: int = 200,
) -> Response:
    rows, total = await service.search(
        session, q or None, category or None, None, number, PAGE_SIZE
    )
    shown = await service.public_many(session, rows, viewer.user)
    pages = max(ceil(total / PAGE_SIZE), 1)

    def href(page: int) -> str:
        params = {"q": q, "category": category, "page": page if page > 1 else ""}
        return "/pricebook?" + urlencode({k: v for k, v in params.items() if v})

    return render(
        request,
        "pricebook.html",
        viewer,
        status=status,
        items=shown,
        total=total,
        q=q,
        category=category,
        categories=await service.categories(session),
        page=number,
        pages=pages,
        previous_href=href(number - 1) if number > 1 else None,
        next_href=href(number + 1) if number < pages else None,
        may_edit=service.may_edit(viewer.role),
        values=values or {"taxable": True, "active": True},
        errors=(problems or Problems()).errors,
        result=result,
        csv_text=csv_text,
        max_import=csv_io.MAX_IMPORT_BYTES,
    )


@router.get("/pricebook")
async def pricebook(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    q: str | None = None,
    category: str | None = None,
    page: str | None = None,
) -> Response:
    return await _list_page(
        request, viewer, session, q=_query_text(q), category=_query_text(category, 100),
        number=_page_number(page),
    )  # fmt: skip


@router.get("/pricebook.csv")
async def pricebook_csv(viewer: Viewer, session: SessionDep) -> Response:
    """The same file as `/api/v1/pricebook.csv`, for the signed-in person."""
    return csv_io.csv_response(await service.all_items(session))


@router.post("/pricebook")
async def add_item(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    form = await viewer.form(request)
    _require_editor(viewer)
    values = _item_values(form)
    problems = Problems()
    data: ItemCreate | None = None
    try:
        data = ItemCreate.model_validate(values)
    except ValidationError as error:
        explain(error, LABELS, problems)
    if data is not None and await service.find(session, data.sku) is not None:
        problems.add("sku", f"The price book already has SKU {data.sku}")
    if problems or data is None:
        return await _list_page(
            request, viewer, session, values=values, problems=problems, status=422
        )
    item = await service.create(session, data)
    return see_other(f"/pricebook/{quote(item.sku)}", flash=f"Added {item.sku}: {item.name}.")


@router.post("/pricebook/import", max_body_size=FORM_BYTES)
async def import_file(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    # Read once with room for the file's text in a field (the confirm step), then checked.
    await request.form(max_files=1, max_part_size=FORM_BYTES)
    form = await viewer.form(request)
    _require_editor(viewer)
    upload = form.get("file")
    content: bytes | str
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read(csv_io.MAX_IMPORT_BYTES + 1)
    else:
        content = text_of(form, "csv_text")
    dry_run = text_of(form, "action") != "import"
    problems = Problems()
    size = len(content.encode() if isinstance(content, str) else content)
    if size == 0:
        problems.add("file", "Choose a CSV file to import")
    elif size > csv_io.MAX_IMPORT_BYTES:
        problems.add(
            "file", f"The file must be at most {csv_io.MAX_IMPORT_BYTES // 1024 // 1024} MiB"
        )
    if problems:
        return await _list_page(request, viewer, session, problems=problems, status=422)
    result = await service.apply_import(session, csv_io.read(content), dry_run)
    if result.ok and not dry_run:
        return see_other(
            "/pricebook",
            flash=f"Imported {result.rows} rows: {result.created} new, {result.updated} updated.",
        )
    text = content if isinstance(content, str) else content.decode("utf-8-sig", "replace")
    return await _list_page(
        request, viewer, session, result=result, csv_text=text if result.ok else "",
        status=200 if result.ok else 422,
    )  # fmt: skip


# --- /pricebook/{sku} ----------------------------------------------------------------------------


async def _item_page(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    item: PricebookItem,
    *,
    values: dict[str, Any] | None = None,
    price_values: dict[str, str] | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    shown = await service.public(session, item, viewer.user)
    if values is None:
        values = shown.model_dump()
        values["unit_price"] = f"{shown.unit_price:.2f}"
    if price_values is None:
        price_values = {}
        for price in shown.fixed_prices:
            key = f"tier_{price.tier}" if hasattr(price, "tier") else f"client_{price.client_id}"  # type: ignore[union-attr]
            price_values[key] = f"{price.unit_price:.2f}"
    return render(
        request,
        "pricebook_item.html",
        viewer,
        status=status,
        item=shown,
        may_edit=service.may_edit(viewer.role),
        values=values,
        price_values=price_values,
        tiers=TIER_NAMES,
        client_prices=[p for p in shown.fixed_prices if not hasattr(p, "tier")],
        errors=(problems or Problems()).errors,
    )


@router.get("/pricebook/{sku}")
async def item_page(request: Request, sku: str, viewer: Viewer, session: SessionDep) -> Response:
    return await _item_page(request, viewer, session, await service.get(session, sku))


@router.post("/pricebook/{sku}/details")
async def edit_item(request: Request, sku: str, viewer: Viewer, session: SessionDep) -> Response:
    form = await viewer.form(request)
    _require_editor(viewer)
    item = await service.get(session, sku)
    values = _item_values(form)
    values["sku"] = item.sku
    problems = Problems()
    data: ItemUpdate | None = None
    try:
        data = ItemUpdate.model_validate({k: v for k, v in values.items() if k != "sku"})
    except ValidationError as error:
        explain(error, LABELS, problems)
    if problems or data is None:
        return await _item_page(
            request, viewer, session, item, values=values, problems=problems, status=422
        )
    saved = await service.update(session, item.sku, data)
    return see_other(f"/pricebook/{quote(saved.sku)}", flash=f"Saved {saved.sku}: {saved.name}.")


def _price_problem(key: str, text: str, problems: Problems) -> Decimal | None:
    try:
        return FixedPrice.model_validate({"tier": "gov", "unit_price": text}).unit_price
    except ValidationError as error:
        detail = str(error.errors()[0].get("msg", "is not valid")).removeprefix("Value error, ")
        problems.add(key, f"Enter the price as an amount like 95.00: {detail}")
        return None


@router.post("/pricebook/{sku}/prices")
async def edit_prices(request: Request, sku: str, viewer: Viewer, session: SessionDep) -> Response:
    """The tiers' prices (empty: none), each client price kept (empty: removed), and one new
    client price (a client id and a price)."""
    form = await viewer.form(request)
    _require_editor(viewer)
    item = await service.get(session, sku)
    problems = Problems()
    prices: list[FixedPrice] = []
    price_values: dict[str, str] = {}
    for tier in TIERS:
        key = f"tier_{tier}"
        text = text_of(form, key).strip()
        price_values[key] = text
        if text and (amount := _price_problem(key, text, problems)) is not None:
            prices.append(FixedPrice(tier=tier, unit_price=amount))  # type: ignore[arg-type]
    for name in form:
        if not name.startswith("client_") or not name[7:].isdigit():
            continue
        text = text_of(form, name).strip()
        price_values[name] = text
        if text and (amount := _price_problem(name, text, problems)) is not None:
            prices.append(FixedPrice(client_id=int(name[7:]), unit_price=amount))
    new_client = text_of(form, "new_client_id").strip()
    new_price = text_of(form, "new_client_price").strip()
    price_values["new_client_id"], price_values["new_client_price"] = new_client, new_price
    if new_client or new_price:
        if not new_client.isdigit() or not 0 < int(new_client) < 2**31:
            problems.add("new_client_id", "Enter the client's number, like 12 (C-00012)")
        elif not new_price:
            problems.add("new_client_price", "Enter the client's price")
        elif (amount := _price_problem("new_client_price", new_price, problems)) is not None:
            if any(p.client_id == int(new_client) for p in prices):
                problems.add("new_client_id", f"Client {new_client} already has a price above")
            else:
                prices.append(FixedPrice(client_id=int(new_client), unit_price=amount))
    if not problems:
        try:
            await service.update(session, item.sku, ItemUpdate(fixed_prices=prices))
        except AppError as error:  # an unknown client
            problems.add("new_client_id", error.message.removeprefix("fixed_prices: ").capitalize())
    if problems:  # nothing written: the clients are checked before any price is
        return await _item_page(
            request, viewer, session, item, price_values=price_values, problems=problems,
            status=422,
        )  # fmt: skip
    return see_other(
        f"/pricebook/{quote(item.sku)}", flash=f"Saved the fixed prices of {item.sku}."
    )
