"""A quote's money (models/pricing.py): property tests over random lines, discounts and tax
rates, and a table of examples worked out by hand.

Tax is "stated once": it is charged on the taxable lines' sum after their share of the discount,
rounded half up once, not summed from per-line taxes. The two ways differ by rounding only: the
sum of n per-line roundings drifts from the one rounding of the sum by less than half a cent per
line plus half a cent, and since both are whole cents, without a discount they differ by at most
half a cent per taxable line (rounded down to a cent: n=1 never differs, n=2 or 3 by at most a
cent, ...). With a discount, each line's discounted share is rounded too (as a per-line document
would print it), which adds up to rate x half a cent per line: the tests state that wider bound.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.events import QuoteLine
from models.pricing import TAX_RATE_MAX, Discount, Totals, totals

CENT = Decimal("0.01")
HALF_CENT = Decimal("0.005")


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line(quantity: str, unit_price: str, *, taxable: bool = True) -> QuoteLine:
    return QuoteLine.model_validate(
        {
            "description": "item",
            "quantity": quantity,
            "unit_price": unit_price,
            "taxable": taxable,
        }
    )


# --- strategies --------------------------------------------------------------------------------

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("500"), places=3)
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("20000"), places=2)
lines = st.lists(
    st.builds(
        lambda q, p, t: QuoteLine(description="item", quantity=q, unit_price=p, taxable=t),
        quantities,
        prices,
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)
rates = st.decimals(min_value=Decimal("0"), max_value=TAX_RATE_MAX, places=3)
discounts = st.one_of(
    st.none(),
    st.builds(
        lambda amount: Discount(amount=amount, reason="goodwill"),
        st.one_of(
            st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2),
            # whole amounts as a client sends them ("5"): still a figure with two places
            st.integers(0, 5000).map(Decimal),
        ),
    ),
    st.builds(
        lambda percent: Discount(percent=percent, reason="returning customer"),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2),
    ),
)


def figures(t: Totals) -> dict[str, Decimal]:
    return {
        "subtotal": t.subtotal,
        "discount": t.discount,
        "taxable": t.taxable,
        "tax": t.tax,
        "total": t.total,
    }


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(lines=lines, rate=rates, discount=discounts)
def test_the_figures_add_up(
    lines: list[QuoteLine], rate: Decimal, discount: Discount | None
) -> None:
    t = totals(lines, rate, discount)
    # the lines always sum to the subtotal
    assert t.subtotal == sum((line.amount for line in lines), Decimal("0"))
    # every figure is money: two decimal places, never negative (not even -0.00)
    for name, value in figures(t).items():
        assert value.as_tuple().exponent == -2, (name, value)
        assert value >= 0 and not value.is_signed(), (name, value)
    # the total is exactly what the document prints above it
    assert t.total == t.subtotal - t.discount + t.tax
    assert t.discount <= t.subtotal
    assert t.taxable <= sum((line.amount for line in lines if line.taxable), Decimal("0"))
    # tax is the rate on the base, rounded half up once
    assert t.tax == half_up(t.taxable * rate / 100)
    assert abs(t.tax - t.taxable * rate / 100) <= HALF_CENT
    if discount is None:
        assert t.discount == 0 and t.total == t.subtotal + t.tax
    # the same lines give the same figures (the PDF, the email and the invoice agree)
    assert totals(list(lines), rate, discount) == t


@settings(max_examples=400, deadline=None)
@given(lines=lines, rate=rates, discount=discounts)
def test_tax_stated_once_is_within_rounding_of_per_line_tax(
    lines: list[QuoteLine], rate: Decimal, discount: Discount | None
) -> None:
    t = totals(lines, rate, discount)
    taxed = [line.amount for line in lines if line.taxable]
    n = len(taxed)
    if t.subtotal > 0 and t.discount > 0:
        # each line's share of the discount, its discounted amount rounded as a line would print
        bases = [half_up(a - t.discount * a / t.subtotal) for a in taxed]
    else:
        bases = taxed
    per_line = sum((half_up(b * rate / 100) for b in bases), Decimal("0"))
    drift = abs(t.tax - per_line)
    assert drift % CENT == 0
    if t.discount == 0:
        assert drift <= HALF_CENT * n
    else:
        # the shares' roundings (half a cent each, and one for the base) taxed at the rate
        assert drift <= HALF_CENT * (n + 1) + HALF_CENT * (n + 1) * rate / 100


@settings(max_examples=200, deadline=None)
@given(lines=lines, discount=discounts)
def test_zero_rate_means_zero_tax(lines: list[QuoteLine], discount: Discount | None) -> None:
    t = totals(lines, Decimal("0"), discount)
    assert t.tax == 0
    assert t.total == t.subtotal - t.discount


@settings(max_examples=200, deadline=None)
@given(lines=lines, rate=rates, discount=discounts)
def test_nothing_taxable_means_zero_tax(
    lines: list[QuoteLine], rate: Decimal, discount: Discount | None
) -> None:
    untaxed = [line.model_copy(update={"taxable": False}) for line in lines]
    t = totals(untaxed, rate, discount)
    assert (t.taxable, t.tax) == (0, 0)
    assert t.total == t.subtotal - t.discount


@settings(max_examples=200, deadline=None)
@given(lines=lines, rate=rates)
def test_a_full_discount_makes_the_total_zero(lines: list[QuoteLine], rate: Decimal) -> None:
    t = totals(lines, rate, Discount(percent=Decimal("100"), reason="warranty"))
    assert t.discount == t.subtotal
    assert (t.taxable, t.tax, t.total) == (0, 0, 0)


@settings(max_examples=200, deadline=None)
@given(lines=lines, rate=rates, extra=st.decimals(min_value=0, max_value=1000, places=2))
def test_an_amount_discount_is_capped_at_the_subtotal(
    lines: list[QuoteLine], rate: Decimal, extra: Decimal
) -> None:
    subtotal = sum((line.amount for line in lines), Decimal("0"))
    t = totals(lines, rate, Discount(amount=subtotal + extra, reason="goodwill"))
    assert t.discount == t.subtotal
    assert t.total == 0


# --- examples worked out by hand ---------------------------------------------------------------

EXAMPLES = [
    pytest.param(
        [line("1", "100.00")],
        "8.875",
        None,
        # 100.00 x 8.875 % = 8.875 -> 8.88 (half up)
        ("100.00", "0.00", "100.00", "8.88", "108.88"),
        id="nyc-8.875-half-up",
    ),
    pytest.param(
        [line("3", "33.33")],
        "0",
        None,
        ("99.99", "0.00", "99.99", "0.00", "99.99"),
        id="3x33.33",
    ),
    pytest.param(
        [line("3", "33.33")],
        "0",
        {"percent": "10", "reason": "r"},
        # 10 % of 99.99 = 9.999 -> 10.00
        ("99.99", "10.00", "89.99", "0.00", "89.99"),
        id="3x33.33-less-10-percent",
    ),
    pytest.param(
        [line("1", "100.00"), line("1", "50.00", taxable=False)],
        "8.875",
        {"amount": "10", "reason": "r"},
        # the taxable line's share of 10.00: 10 x 100/150 = 6.666… -> 6.67; base 93.33;
        # 93.33 x 8.875 % = 8.2830375 -> 8.28; 150.00 - 10.00 + 8.28
        ("150.00", "10.00", "93.33", "8.28", "148.28"),
        id="discount-split-unevenly",
    ),
    pytest.param(
        [line("1", "10.05"), line("1", "10.05"), line("1", "10.05")],
        "8.875",
        None,
        # once: 30.15 x 8.875 % = 2.6758125 -> 2.68; per line it would be 3 x 0.89 = 2.67
        ("30.15", "0.00", "30.15", "2.68", "32.83"),
        id="once-not-per-line",
    ),
    pytest.param(
        [line("0.333", "10.00")],
        "0",
        None,
        # 3.33 (the line's amount to the cent)
        ("3.33", "0.00", "3.33", "0.00", "3.33"),
        id="fractional-quantity",
    ),
    pytest.param(
        [line("1", "0.10")],
        "0",
        {"percent": "15", "reason": "r"},
        # 15 % of 0.10 = 0.015 -> 0.02 (half up, not to even)
        ("0.10", "0.02", "0.08", "0.00", "0.08"),
        id="percent-half-up",
    ),
    pytest.param(
        [line("2", "40.00"), line("1", "20.00", taxable=False)],
        "7.25",
        {"amount": "500", "reason": "r"},
        ("100.00", "100.00", "0.00", "0.00", "0.00"),
        id="amount-capped",
    ),
    pytest.param(
        [line("1", "19.99", taxable=False)],
        "30",
        None,
        ("19.99", "0.00", "0.00", "0.00", "19.99"),
        id="nothing-taxable",
    ),
    pytest.param(
        [line("1", "0.00")],
        "10",
        {"percent": "50", "reason": "r"},
        ("0.00", "0.00", "0.00", "0.00", "0.00"),
        id="free-line",
    ),
]


@pytest.mark.parametrize(("lines", "rate", "discount", "expected"), EXAMPLES)
def test_examples(
    lines: list[QuoteLine],
    rate: str,
    discount: dict[str, str] | None,
    expected: tuple[str, str, str, str, str],
) -> None:
    t = totals(lines, Decimal(rate), Discount.model_validate(discount) if discount else None)
    got = tuple(str(v) for v in (t.subtotal, t.discount, t.taxable, t.tax, t.total))
    assert got == expected


def test_per_line_tax_would_drift_by_a_cent() -> None:
    lines_ = [line("1", "10.05")] * 3
    per_line = sum(half_up(x.amount * Decimal("8.875") / 100) for x in lines_)
    assert per_line == Decimal("2.67")
    assert totals(lines_, Decimal("8.875")).tax == Decimal("2.68")


@pytest.mark.parametrize(
    "bad",
    [
        {"reason": "r"},
        {"amount": "5", "percent": "5", "reason": "r"},
        {"amount": "5", "reason": "  "},
        {"amount": "5"},
        {"percent": "0", "reason": "r"},
        {"percent": "100.01", "reason": "r"},
        {"percent": "5.001", "reason": "r"},
        {"amount": "-1", "reason": "r"},
        {"amount": "1.001", "reason": "r"},
    ],
)
def test_a_discount_is_an_amount_or_a_percent_with_a_reason(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Discount.model_validate(bad)


def test_discount_labels() -> None:
    assert Discount(percent=Decimal("10.00"), reason="loyal").label == "Discount 10% (loyal)"
    assert Discount(percent=Decimal("12.5"), reason="x").label == "Discount 12.5% (x)"
    assert Discount(amount=Decimal("5"), reason=" spring ").label == "Discount (spring)"


def test_with_a_discount_once_and_per_line_may_differ_by_a_cent_on_one_line() -> None:
    """Why the bound with a discount is wider than half a cent per line: the taxable line's
    share of a 0.01 discount is exactly 0.005, which rounds up (base 0.99) when shared once but
    leaves the line at 1.00 when the line's discounted amount is rounded on its own."""
    lines_ = [line("1", "1.00"), line("1", "1.00", taxable=False)]
    t = totals(lines_, Decimal("0.5"), Discount(amount=Decimal("0.01"), reason="r"))
    assert (t.taxable, t.tax, t.total) == (Decimal("0.99"), Decimal("0.00"), Decimal("1.99"))
    per_line = half_up(half_up(Decimal("1.00") - Decimal("0.005")) * Decimal("0.5") / 100)
    assert per_line == Decimal("0.01")
