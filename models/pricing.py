"""A quote's and an invoice's money, worked out once (issue 11): line amounts, the discount,
tax and the total. The rules call `totals` when a quote is drafted or an invoice sent and keep
the answer in the job's state, so the PDF, the email, the job view, the customer's quote page and
the invoice all print the same numbers instead of adding them up again.

How the numbers are made, in order:

1. each line's amount is quantity x unit price, to the cent (`QuoteLine.amount`);
2. the subtotal is the sum of the line amounts, so the lines always add up to it;
3. the discount is a fixed amount (at most the subtotal) or a percentage of the subtotal,
   rounded half up to the cent;
4. tax is charged on the taxable lines after their share of the discount, at the rate the
   quote settings gave when the quote was drafted, computed once on that base and rounded half
   up to the cent — not per line, so it never drifts by a cent per line from the rate times the
   base;
5. the total is subtotal - discount + tax.

Pure: no I/O, no settings read here; the rate comes in with the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.bounds import CENT, Money

ZERO = Decimal("0.00")
TAX_RATE_MAX = Decimal("30")
# A rate in percent, like 8.875 for New York City's sales tax.
TaxRate = Annotated[Decimal, Field(ge=0, le=TAX_RATE_MAX, max_digits=6, decimal_places=3)]
Percent = Annotated[Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2)]
DiscountReason = Annotated[str, Field(min_length=1, max_length=200)]

# The options of a quote the customer picks from, in order; a quote of one has the key "quote".
OptionKey = Literal["quote", "good", "better", "best"]
OPTION_KEYS: tuple[OptionKey, ...] = ("good", "better", "best")
SINGLE: OptionKey = "quote"


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Discount(BaseModel):
    """Money off a quote: a fixed amount or a percentage of the subtotal, always with a reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Money | None = None
    percent: Percent | None = None
    reason: DiscountReason

    @model_validator(mode="before")
    @classmethod
    def _reason_stripped(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("reason"), str):
            return {**data, "reason": data["reason"].strip()}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Discount:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("give the discount as amount or as percent (one of them)")
        return self

    def of(self, subtotal: Decimal) -> Decimal:
        """The money off this subtotal (never more than the subtotal)."""
        if self.percent is not None:
            return min(_half_up(subtotal * self.percent / 100), subtotal)
        assert self.amount is not None
        return min(self.amount.quantize(CENT), subtotal)  # "5" is 5.00

    @property
    def label(self) -> str:
        """How documents name it: `Discount 10% (returning customer)`."""
        if self.percent is not None:
            return f"Discount {self.percent.normalize():f}% ({self.reason})"
        return f"Discount ({self.reason})"


class Totals(BaseModel):
    model_config = ConfigDict(frozen=True)

    subtotal: Decimal
    discount: Decimal = ZERO
    taxable: Decimal = ZERO  # the base tax is charged on: taxable lines less their discount share
    tax: Decimal = ZERO
    total: Decimal


def totals(
    lines: Iterable[object], tax_rate: Decimal = ZERO, discount: Discount | None = None
) -> Totals:
    """Every figure of one quote option or invoice (see the module's docstring for the order).

    `lines` are models.events.QuoteLine (anything with `amount` and `taxable`)."""
    amounts = [(Decimal(line.amount), bool(line.taxable)) for line in lines]  # type: ignore[attr-defined]
    subtotal = sum((a for a, _ in amounts), ZERO)
    taxable_lines = sum((a for a, taxable in amounts if taxable), ZERO)
    off = discount.of(subtotal) if discount is not None and subtotal > 0 else ZERO
    # The taxable lines carry the discount in proportion to their share of the subtotal.
    taxable_off = _half_up(off * taxable_lines / subtotal) if subtotal > 0 else ZERO
    base = max(taxable_lines - taxable_off, ZERO)
    tax = _half_up(base * tax_rate / 100)
    return Totals(
        subtotal=subtotal, discount=off, taxable=base, tax=tax, total=subtotal - off + tax
    )
