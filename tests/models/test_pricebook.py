"""The price book's pure rules: fixed prices, which price a client pays, and CSV rows checked line
by line (models/pricebook.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from models.pricebook import CSV_COLUMNS, FixedPrice, ItemFields, check_rows, flag, resolve


def test_a_fixed_price_is_for_a_tier_or_a_client() -> None:
    assert FixedPrice.model_validate({"tier": "gov", "unit_price": "95"}).unit_price == Decimal(
        "95.00"
    )
    assert FixedPrice.model_validate({"client_id": 3, "unit_price": 90}).client_id == 3
    for bad in (
        {"unit_price": "1"},
        {"tier": "gov", "client_id": 3, "unit_price": "1"},
        {"tier": "gold", "unit_price": "1"},
        {"client_id": "3", "unit_price": "1"},
        {"tier": "gov", "unit_price": "10000000.01"},
        {"tier": "gov", "unit_price": "-0.01"},
    ):
        with pytest.raises(ValidationError):
            FixedPrice.model_validate(bad)


def test_item_fields_take_json_booleans_only() -> None:
    with pytest.raises(ValidationError):
        ItemFields.model_validate({"name": "n", "unit_price": "1", "taxable": "yes"})
    item = ItemFields.model_validate({"name": " Fan ", "unit_price": "1.5"})
    assert (item.name, item.unit_price, item.taxable, item.active) == (
        "Fan",
        Decimal("1.50"),
        True,
        True,
    )


def test_client_beats_tier_beats_list() -> None:
    tiers = {"gov": Decimal("95")}
    clients = {7: Decimal("90")}
    assert resolve(Decimal("100"), tiers, clients, 7, "gov").basis == "client"
    assert resolve(Decimal("100"), tiers, clients, 7, "standard").unit_price == Decimal("90")
    assert resolve(Decimal("100"), tiers, clients, 8, "gov").basis == "tier"
    assert resolve(Decimal("100"), tiers, clients, 8, "platinum").basis == "list"
    assert resolve(Decimal("100"), {}, {}, None, None).unit_price == Decimal("100")


def test_flags() -> None:
    assert [flag(w) for w in ("Yes", "y", "TRUE", "1", "no", "N", "false", "0")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert flag("") is None and flag("maybe") is None


def test_rows_clean_and_with_problems() -> None:
    header = list(CSV_COLUMNS)
    clean = check_rows(
        header, [(2, ["A-1", "Fan", "", "10", "no", "Motors", "yes", "", "", "9.5"])]
    )
    assert clean.problems == [] and clean.row_count == 1
    row = clean.rows[0]
    assert (row.sku, row.fields["unit_price"], row.fields["taxable"]) == (
        "A-1",
        Decimal("10.00"),
        False,
    )
    assert row.tier_prices == {"standard": None, "platinum": None, "gov": Decimal("9.50")}

    checked = check_rows(
        ["sku", "name", "unit_price", "active"],
        [
            (2, ["A-1", "Fan", "10", "yes"]),
            (3, ["A-1", "Fan again", "10", "yes"]),
            (5, ["B-1", "", "1e3", "perhaps"]),
            (6, ["C-1", "x\x00", "1", "no"]),
        ],
    )
    assert checked.rows == []  # any problem: no rows to import
    assert [(p.line, p.column) for p in checked.problems] == [
        (3, "sku"),
        (5, "name"),
        (5, "active"),
        (6, "name"),
    ]


def test_header_problems() -> None:
    checked = check_rows(["sku", "sku", "price", "name"], [])
    assert [(p.line, p.column) for p in checked.problems] == [
        (1, "sku"),
        (1, "price"),
        (1, "unit_price"),
    ]
