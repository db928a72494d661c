"""The quote settings (issue 11): the tax rate quotes are drafted with, what documents call the
tax, and how long a customer's quote link (`/q/…`) opens. Pure data; admins change it at
`/api/v1/settings/quotes` and `/settings/quotes`.

The rate is read when a quote is drafted and travels in its `quote_drafted` event, so a later
change never reprices a quote already drafted (or sent, or approved)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.pricing import TaxRate

LINK_DAYS_MAX = 365


class QuoteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tax_rate: TaxRate = Decimal("0")
    tax_label: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
    ] = "Sales tax"
    # Days a quote link opens after the quote is sent (a follow-up's link is the same one).
    link_days: Annotated[int, Field(ge=1, le=LINK_DAYS_MAX)] = 30
