"""Quote and invoice lines priced from the price book, before the event goes to the job.

The price book and the quote settings are reference data the API owns (DESIGN.md §3), so the
API fills in what they say and the rules (models.lifecycle, models.pricing) do the arithmetic:

- a line whose sku is in the price book takes the item's taxable flag and its price basis
  (`list`, or `tier`/`client` for a fixed price); a fixed price the line does not match is
  refused, so neither the API nor the quote builder can change a GOV client's price;
- a line without a sku, or with one the price book does not know, is a free line (`free`);
- an item no longer sold (inactive) cannot be put on a new quote;
- the tax rate is the quote settings' at this moment (a value the client sent is replaced).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Invalid
from api.pricebook.service import ResolvedPrice, prices_for
from core import settings_store
from core.settings_store import QUOTES
from models import events as ev
from models.lifecycle import ClientSnapshot
from models.quoting import QuoteSettings
from models.tables import Client

_BASIS_NAMES = {"tier": "fixed {tier} price", "client": "fixed price for this client"}


def _priced_line(
    line: ev.QuoteLine, where: str, item: ResolvedPrice | None, tier: str
) -> ev.QuoteLine:
    if item is None:
        return line.model_copy(update={"price_basis": "free"})
    if not item.active:
        raise Invalid(f"{where}.sku: {item.sku} ({item.name}) is no longer sold; take it off")
    if item.basis != "list" and line.unit_price != item.unit_price:
        what = _BASIS_NAMES[item.basis].format(tier=tier.upper())
        raise Invalid(
            f"{where}.unit_price: {item.sku} has a {what} of {item.unit_price}; "
            "a quote cannot change it"
        )
    return line.model_copy(update={"taxable": item.taxable, "price_basis": item.basis})


async def _client_tier(session: AsyncSession, client: ClientSnapshot) -> str:
    row = await session.get(Client, client.id)
    return row.tier if row is not None else client.tier


async def priced_lines(
    session: AsyncSession, client: ClientSnapshot, lines: Sequence[ev.QuoteLine], where: str
) -> list[ev.QuoteLine]:
    tier = await _client_tier(session, client)
    skus = {line.sku for line in lines if line.sku}
    items = await prices_for(session, client.id, tier, skus) if skus else {}
    return [
        _priced_line(line, f"{where}[{i}]", items.get(line.sku or ""), tier)
        for i, line in enumerate(lines)
    ]


async def priced(
    session: AsyncSession, client: ClientSnapshot, event: ev._Event, *, from_customer: bool = False
) -> ev._Event:
    """The event with its lines priced and the tax rate set; other events as they came.
    `from_customer`: the customer's own answer on their quote page, whose `ip_address` it set."""
    if isinstance(event, ev.QuoteDrafted):
        settings = await settings_store.load(session, QUOTES, QuoteSettings)
        update: dict[str, object] = {"tax_rate": settings.tax_rate}
        if event.lines is not None:
            update["lines"] = await priced_lines(session, client, event.lines, "lines")
        else:
            update["options"] = [
                option.model_copy(
                    update={
                        "lines": await priced_lines(
                            session, client, option.lines, f"options[{i}].lines"
                        )
                    }
                )
                for i, option in enumerate(event.options or [])
            ]
        return event.model_copy(update=update)
    if isinstance(event, ev.InvoiceSent):
        settings = await settings_store.load(session, QUOTES, QuoteSettings)
        update = {"tax_rate": settings.tax_rate}
        if event.lines is not None:
            update["lines"] = await priced_lines(session, client, event.lines, "lines")
        return event.model_copy(update=update)
    if isinstance(event, ev.QuoteApproved | ev.QuoteDeclined) and not from_customer:
        # Only the customer's own page (api/quotes/routes.py) records where an answer came from.
        return event.model_copy(update={"ip_address": None})
    return event
