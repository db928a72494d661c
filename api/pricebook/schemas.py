"""The price book's JSON shapes: an item in, an item out, a page of items, an import's answer."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, StrictBool, model_validator

from models.pricebook import (
    Category,
    Description,
    FixedPrices,
    ItemFields,
    ItemName,
    Price,
    Sku,
    Tier,
)


class ItemCreate(ItemFields):
    sku: Sku
    fixed_prices: FixedPrices = []


class ItemUpdate(BaseModel):
    """Only the fields sent change; `fixed_prices` replaces the item's fixed prices wholesale.
    The SKU cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: ItemName | None = None
    description: Description | None = None
    unit_price: Price | None = None
    taxable: StrictBool | None = None
    category: Category | None = None
    active: StrictBool | None = None
    fixed_prices: FixedPrices | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ItemUpdate:
        cleared = [f for f in self.model_fields_set if getattr(self, f) is None]
        if cleared:
            raise ValueError(
                f"{', '.join(sorted(cleared))} cannot be null: send a value (an empty string "
                "clears description or category, [] the fixed prices)"
            )
        return self


class TierPricePublic(BaseModel):
    tier: Tier
    unit_price: Decimal


class ClientPricePublic(BaseModel):
    client_id: int
    client_name: str
    unit_price: Decimal


class ItemPublic(BaseModel):
    sku: str
    name: str
    description: str
    unit_price: Decimal
    taxable: bool
    category: str
    active: bool
    fixed_prices: list[TierPricePublic | ClientPricePublic]


class ItemPage(BaseModel):
    items: list[ItemPublic]
    total: int
    page: int
    page_size: int


class ImportProblem(BaseModel):
    line: int
    column: str
    message: str


class ImportResult(BaseModel):
    """What an import found and did. With problems (`ok` false) nothing was imported, whether or
    not it was a dry run."""

    dry_run: bool
    ok: bool
    rows: int
    created: int
    updated: int
    problems: list[ImportProblem]
