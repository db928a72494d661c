"""How a quote's and an invoice's figures read to people: the job page, the JSON's words and the
PDFs print the same rows from the numbers models.pricing worked out once (issue 11).

Pure: no I/O. Money comes in as a formatter (models.display.money with the company's symbol), so
every place prints `$1,234.50` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from models.events import QuoteLine
from models.lifecycle import Quote, QuoteOption
from models.pricing import Discount, Totals

Money = Callable[[Decimal], str]


def rate_text(rate: Decimal) -> str:
    """8.875 → `8.875%`, 10.000 → `10%`."""
    return f"{Decimal(rate).normalize():f}%"


def tax_words(label: str, rate: Decimal) -> str:
    """`Sales tax 8.875%`."""
    return f"{label} {rate_text(rate)}"


def basis_mark(line: QuoteLine, tier: str) -> str:
    """Where a line's price came from, for the office (never printed for the customer)."""
    if line.price_basis == "free":
        return "free line"
    if line.price_basis == "tier":
        return f"{tier.upper() if tier == 'gov' else tier.capitalize()} price"
    if line.price_basis == "client":
        return "client price"
    return ""


def total_rows(
    totals: Totals,
    discount: Discount | None,
    tax_rate: Decimal,
    tax_label: str,
    money: Money,
) -> list[tuple[str, str]]:
    """(label, amount) rows under the lines: just the total for a quote without discount or
    tax; otherwise subtotal, the discount with its label, the tax with its label and rate, and
    the total."""
    if (discount is None or not totals.discount) and not tax_rate and not totals.tax:
        return [("Total", money(totals.total))]
    rows = [("Subtotal", money(totals.subtotal))]
    if discount is not None and totals.discount:
        rows.append((discount.label, money(-totals.discount)))
    if tax_rate or totals.tax:
        rows.append((tax_words(tax_label, tax_rate), money(totals.tax)))
    rows.append(("Total", money(totals.total)))
    return rows


@dataclass(frozen=True)
class PrintedOption:
    key: str
    name: str
    chosen: bool
    lines: list[QuoteLine]
    totals: Totals
    rows: list[tuple[str, str]]


def printed_options(quote: Quote, tax_label: str, money: Money) -> list[PrintedOption]:
    """Every option of the quote with its figures' rows; once the customer has chosen, only the
    chosen option is `chosen` (the others stay readable)."""

    def one(option: QuoteOption) -> PrintedOption:
        return PrintedOption(
            key=option.key,
            name=option.name,
            chosen=quote.chosen == option.key,
            lines=option.lines,
            totals=option.totals,
            rows=total_rows(option.totals, quote.discount, quote.tax_rate, tax_label, money),
        )

    return [one(o) for o in quote.options]
