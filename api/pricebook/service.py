"""The price book's queries and writes (reference data the API owns: this module is the one writer
of `pricebook_items` and `pricebook_prices`), and the resolver quotes price their lines with.

Nothing here commits: the request's session commits once, so an import is all or nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import delete, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import visibility
from api.errors import Conflict, Invalid, NotFound
from api.pricebook.schemas import (
    ClientPricePublic,
    ImportProblem,
    ImportResult,
    ItemCreate,
    ItemPublic,
    ItemUpdate,
    TierPricePublic,
)
from models.bounds import CENT, ID_MAX
from models.lifecycle import Role
from models.pricebook import TIERS, CsvCheck, FixedPrice, resolve
from models.tables import Client, PricebookItem, PricebookPrice, User, utcnow

# Who changes the price book (everyone signed in reads it): the API's rule and the page's.
EDITOR_ROLES = (Role.admin, Role.manager, Role.office)


def may_edit(role: str) -> bool:
    return role in {r.value for r in EDITOR_ROLES}


# --- the resolver (the quote path) ---------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPrice:
    sku: str
    name: str
    description: str
    unit_price: Decimal  # what this client pays: client override, else tier price, else list
    list_price: Decimal
    taxable: bool
    active: bool
    basis: Literal["list", "tier", "client"]  # "tier"/"client": a fixed price a quote keeps


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


async def _prices_of(session: AsyncSession, skus: Sequence[str]) -> dict[str, list[PricebookPrice]]:
    found: dict[str, list[PricebookPrice]] = defaultdict(list)
    if not skus:
        return found
    rows = await session.exec(
        select(PricebookPrice)
        .where(col(PricebookPrice.sku).in_(list(skus)))
        .order_by(col(PricebookPrice.id))
    )
    for price in rows:
        found[price.sku].append(price)
    return found


def _resolved(
    item: PricebookItem, prices: list[PricebookPrice], client_id: int | None, tier: str | None
) -> ResolvedPrice:
    chosen = resolve(
        item.unit_price,
        {p.tier: p.unit_price for p in prices if p.tier is not None},
        {p.client_id: p.unit_price for p in prices if p.client_id is not None},
        client_id,
        tier,
    )
    return ResolvedPrice(
        sku=item.sku,
        name=item.name,
        description=item.description,
        unit_price=_money(chosen.unit_price),
        list_price=_money(item.unit_price),
        taxable=item.taxable,
        active=item.active,
        basis=chosen.basis,
    )


async def prices_for(
    session: AsyncSession, client_id: int, tier: str, skus: Iterable[str]
) -> dict[str, ResolvedPrice]:
    """Every known SKU among `skus` (active or not), priced for this client; unknown SKUs are
    absent."""
    wanted = sorted({s for s in skus if isinstance(s, str) and s})
    if not wanted:
        return {}
    items = (
        await session.exec(select(PricebookItem).where(col(PricebookItem.sku).in_(wanted)))
    ).all()
    prices = await _prices_of(session, [i.sku for i in items])
    return {i.sku: _resolved(i, prices[i.sku], client_id, tier) for i in items}


def _matching(query: Any, q: str | None) -> Any:
    if q:
        # autoescape: a % or _ typed into the search box means itself, not "anything".
        text = q.strip().lower()
        query = query.where(
            or_(
                func.lower(PricebookItem.sku).contains(text, autoescape=True),
                func.lower(PricebookItem.name).contains(text, autoescape=True),
            )
        )
    return query


async def search_items(
    session: AsyncSession,
    q: str,
    limit: int = 20,
    client_id: int | None = None,
    tier: str | None = None,
) -> list[ResolvedPrice]:
    """Active items whose SKU or name holds `q` (any case), priced for the client when given:
    for the quote builder."""
    query = _matching(select(PricebookItem).where(col(PricebookItem.active).is_(True)), q)
    limit = max(1, min(limit, 200))
    items = (
        await session.exec(
            query.order_by(col(PricebookItem.name), col(PricebookItem.sku)).limit(limit)
        )
    ).all()
    prices = await _prices_of(session, [i.sku for i in items])
    return [_resolved(i, prices[i.sku], client_id, tier) for i in items]


# --- reading -------------------------------------------------------------------------------------


async def _client_names(
    session: AsyncSession, ids: Iterable[int], user: User | None = None
) -> dict[int, str]:
    """The names of these clients (those `user` may see, when given)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(Client).where(col(Client.id).in_(wanted))
    if user is not None:
        query = visibility.clients(query, user)
    rows = ((c.id, c.name) for c in await session.exec(query))
    return {client_id: name for client_id, name in rows if client_id is not None}


def _tier_order(price: PricebookPrice) -> tuple[int, int]:
    """Tier prices first, in the tiers' order, then client prices by client id."""
    if price.tier is not None:
        return (0, TIERS.index(price.tier) if price.tier in TIERS else len(TIERS))
    return (1, price.client_id or 0)


async def public_many(
    session: AsyncSession, items: Sequence[PricebookItem], user: User | None = None
) -> list[ItemPublic]:
    """The items with their fixed prices; with `user`, only the client prices of clients that
    user may see (a technician: the clients of their jobs, DESIGN.md §3)."""
    prices = await _prices_of(session, [i.sku for i in items])
    names = await _client_names(
        session,
        (p.client_id for ps in prices.values() for p in ps if p.client_id is not None),
        user,
    )
    shown = []
    for item in items:
        fixed: list[TierPricePublic | ClientPricePublic] = []
        for price in sorted(prices[item.sku], key=_tier_order):
            if price.tier is not None:
                fixed.append(TierPricePublic(tier=price.tier, unit_price=_money(price.unit_price)))  # type: ignore[arg-type]
            elif price.client_id is not None and price.client_id in names:
                fixed.append(
                    ClientPricePublic(
                        client_id=price.client_id,
                        client_name=names.get(price.client_id, ""),
                        unit_price=_money(price.unit_price),
                    )
                )
        shown.append(
            ItemPublic(
                sku=item.sku,
                name=item.name,
                description=item.description,
                unit_price=_money(item.unit_price),
                taxable=item.taxable,
                category=item.category,
                active=item.active,
                fixed_prices=fixed,
            )
        )
    return shown


async def public(
    session: AsyncSession, item: PricebookItem, user: User | None = None
) -> ItemPublic:
    return (await public_many(session, [item], user))[0]


async def find(session: AsyncSession, sku: str) -> PricebookItem | None:
    if not sku or len(sku) > 64:
        return None
    return await session.get(PricebookItem, sku)


async def get(session: AsyncSession, sku: str) -> PricebookItem:
    item = await find(session, sku)
    if item is None:
        raise NotFound(f"no price-book item with SKU {sku}")
    return item


async def search(
    session: AsyncSession,
    q: str | None,
    category: str | None,
    active: bool | None,
    page: int,
    page_size: int,
) -> tuple[list[PricebookItem], int]:
    query = _matching(select(PricebookItem), q)
    if category:
        query = query.where(PricebookItem.category == category)
    if active is not None:
        query = query.where(col(PricebookItem.active).is_(active))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.exec(
        query.order_by(col(PricebookItem.name), col(PricebookItem.sku))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows.all()), total


async def categories(session: AsyncSession) -> list[str]:
    rows = await session.exec(
        select(PricebookItem.category)
        .where(PricebookItem.category != "")
        .distinct()
        .order_by(col(PricebookItem.category))
    )
    return list(rows.all())


# --- writing -------------------------------------------------------------------------------------


async def _check_clients(session: AsyncSession, prices: Sequence[FixedPrice]) -> None:
    wanted = {p.client_id for p in prices if p.client_id is not None}
    if not wanted:
        return
    known = await _client_names(session, (c for c in wanted if c <= ID_MAX))
    unknown = sorted(wanted - set(known))
    if unknown:
        listed = ", ".join(str(c) for c in unknown)
        raise Invalid(f"fixed_prices: no client with id {listed}", unknown_client_ids=unknown)


async def _replace_prices(session: AsyncSession, sku: str, prices: Sequence[FixedPrice]) -> None:
    await session.exec(delete(PricebookPrice).where(col(PricebookPrice.sku) == sku))  # type: ignore[call-overload]
    for price in prices:
        session.add(
            PricebookPrice(
                sku=sku, tier=price.tier, client_id=price.client_id, unit_price=price.unit_price
            )
        )
    await session.flush()


async def create(session: AsyncSession, data: ItemCreate) -> PricebookItem:
    if await find(session, data.sku) is not None:
        raise Conflict(
            f"the price book already has SKU {data.sku}; change it with PATCH", sku=data.sku
        )
    await _check_clients(session, data.fixed_prices)
    now = utcnow()
    item = PricebookItem(
        **data.model_dump(exclude={"fixed_prices"}), created_at=now, updated_at=now
    )
    session.add(item)
    await session.flush()
    await _replace_prices(session, item.sku, data.fixed_prices)
    await session.refresh(item)
    return item


async def update(session: AsyncSession, sku: str, data: ItemUpdate) -> PricebookItem:
    item = await get(session, sku)
    changes = data.model_dump(exclude_unset=True, exclude={"fixed_prices"})
    if data.fixed_prices is not None:
        await _check_clients(session, data.fixed_prices)
        await _replace_prices(session, item.sku, data.fixed_prices)
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    session.add(item)
    await session.flush()
    await session.refresh(item)
    return item


async def set_tier_prices(
    session: AsyncSession, sku: str, tier_prices: dict[str, Decimal | None]
) -> None:
    """Sets (or, for None, removes) these tiers' fixed prices of one item; other tiers and
    client prices stay."""
    existing = {
        p.tier: p
        for p in (
            await session.exec(
                select(PricebookPrice).where(
                    PricebookPrice.sku == sku, col(PricebookPrice.tier).is_not(None)
                )
            )
        ).all()
    }
    for tier, price in tier_prices.items():
        row = existing.get(tier)
        if price is None:
            if row is not None:
                await session.delete(row)
        elif row is None:
            session.add(PricebookPrice(sku=sku, tier=tier, unit_price=price))
        else:
            row.unit_price = price
            session.add(row)
    await session.flush()


async def apply_import(session: AsyncSession, check: CsvCheck, dry_run: bool) -> ImportResult:
    """A checked file's rows, upserted by SKU unless it is a dry run or has problems (then
    nothing is written)."""
    problems = [
        ImportProblem(line=p.line, column=p.column, message=p.message) for p in check.problems
    ]
    skus = [r.sku for r in check.rows]
    existing = (
        {
            i.sku: i
            for i in (
                await session.exec(select(PricebookItem).where(col(PricebookItem.sku).in_(skus)))
            ).all()
        }
        if skus
        else {}
    )
    created = sum(1 for r in check.rows if r.sku not in existing)
    result = ImportResult(
        dry_run=dry_run,
        ok=not problems,
        rows=check.row_count,
        created=created if not problems else 0,
        updated=len(check.rows) - created if not problems else 0,
        problems=problems,
    )
    if dry_run or problems:
        return result
    now = utcnow()
    for row in check.rows:
        item = existing.get(row.sku)
        if item is None:
            item = PricebookItem(sku=row.sku, created_at=now, updated_at=now, **row.fields)
        else:
            for name, value in row.fields.items():
                setattr(item, name, value)
            item.updated_at = now
        session.add(item)
        await session.flush()
        if row.tier_prices:
            await set_tier_prices(session, row.sku, row.tier_prices)
    return result


async def all_items(session: AsyncSession) -> list[ItemPublic]:
    """Every item, in SKU order, for the export."""
    items = (await session.exec(select(PricebookItem).order_by(col(PricebookItem.sku)))).all()
    return await public_many(session, items)
