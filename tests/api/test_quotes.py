"""Quotes with options, tax and a discount through the HTTP API (issue 11 item 2): the job view's
figures, the approved option's contract amount, the quote and invoice PDFs and the quote email
all say the same numbers; the price book prices quote lines (a GOV client's fixed price cannot
be changed, an inactive item cannot be quoted, anything else is a free line).

The figures below are worked by hand (tax 8.875 % on the taxable lines after their share of a
10 % discount, rounded half up once per option), so a change in the arithmetic shows here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from tests.activities.test_documents import flat, pdf_text
from tests.api.journeys import CHECKLIST, drive, window
from tests.api.settings import api_error, put, read
from tests.api.test_closeout import document, messages
from tests.conftest import Stack

QUOTES = "/api/v1/settings/quotes"
BOOK = "/api/v1/pricebook"


@contextlib.asynccontextmanager
async def quote_settings(stack: Stack, **changes: Any) -> AsyncIterator[None]:
    """The quote settings changed for the block, and put back as they were after it."""
    before = await read(stack, QUOTES)
    try:
        assert (await put(stack, QUOTES, {**before, **changes})).status_code == 200
        yield
    finally:
        assert (await put(stack, QUOTES, before)).status_code == 200


def _line(description: str, price: str, quantity: str = "1", **more: Any) -> dict[str, Any]:
    return {"description": description, "quantity": quantity, "unit_price": price, **more}


OPTIONS = {
    "options": [
        {
            "name": "Good",
            "lines": [_line("Filter", "80.00"), _line("Labour", "120.00", taxable=False)],
        },
        {
            "name": "Better",
            "lines": [_line("Heat pump", "1000.00"), _line("Labour", "120.00", "2", taxable=False)],
        },
        {
            "name": "Best",
            "lines": [
                _line("Heat pump, high efficiency", "1500.00"),
                _line("Smart thermostat", "250.00"),
                _line("Labour", "120.00", "3", taxable=False),
            ],
        },
    ],
    "discount": {"percent": "10", "reason": "Returning customer"},
}
# key: (subtotal, discount, tax, total), by hand:
#   good:   200.00 - 20.00;  taxable 80 - 8 = 72      x 8.875% = 6.39;   total 186.39
#   better: 1240.00 - 124.00; taxable 1000 - 100 = 900 x 8.875% = 79.875 → 79.88; total 1195.88
#   best:   2110.00 - 211.00; taxable 1750 - 175 = 1575 x 8.875% = 139.78125 → 139.78; 2038.78
FIGURES = {
    "good": ("200.00", "20.00", "6.39", "186.39"),
    "better": ("1240.00", "124.00", "79.88", "1195.88"),
    "best": ("2110.00", "211.00", "139.78", "2038.78"),
}
MONEY = {"good": "$186.39", "better": "$1,195.88", "best": "$2,038.78"}


def _figures(option: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"{Decimal(option[k]):.2f}" for k in ("subtotal", "discount", "tax", "total"))


async def test_three_options_taxed_and_discounted_print_the_same_everywhere(stack: Stack) -> None:
    async with quote_settings(stack, tax_rate="8.875", tax_label="Sales tax"):
        slug = (await stack.new_job())["slug"]
        job = await drive(
            stack,
            slug,
            [
                ("olga", "owner_assigned", {"owner": "olga"}),
                ("olga", "lead_qualified", {}),
                ("olga", "quote_drafted", {**OPTIONS, "tax_rate": "0"}),  # a sent rate is replaced
            ],
        )
        quote = job["quote"]
        assert Decimal(quote["tax_rate"]) == Decimal("8.875")
        assert Decimal(quote["discount"]["percent"]) == 10
        assert quote["discount"]["reason"] == "Returning customer"
        assert [o["key"] for o in quote["options"]] == ["good", "better", "best"]
        assert [o["name"] for o in quote["options"]] == ["Good", "Better", "Best"]
        assert {o["key"]: _figures(o) for o in quote["options"]} == FIGURES
        assert quote["chosen"] is None
        # The stable contract: lines and total are the first option's until one is chosen.
        assert Decimal(quote["total"]) == Decimal("186.39") and len(quote["lines"]) == 2
        assert [line["taxable"] for line in quote["options"][0]["lines"]] == [True, False]
        assert quote["options"][0]["lines"][0]["price_basis"] == "free"

        await drive(stack, slug, [("olga", "quote_sent", {})])
        # The quote email's quote_total names each option's total; its PDF prints every figure.
        (email,) = [m for m in await messages(stack, slug, "quote") if m["channel"] == "email"]
        job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        assert job["quote_url"] and job["quote_url"].split("/q/")[1] in email["body"]
        assert "Good $186.39, Better $1,195.88, Best $2,038.78" in email["body"]
        text = flat(pdf_text(await document(stack, email["attachments"][0]["document_id"])))
        for key, (subtotal, discount, tax, _) in FIGURES.items():
            rows = (
                f"Subtotal ${Decimal(subtotal):,.2f} "
                f"Discount 10% (Returning customer) -${Decimal(discount):,.2f} "
                f"Sales tax 8.875% ${Decimal(tax):,.2f} Total {MONEY[key]}"
            )
            assert rows in text, (key, text)
        upper = text.upper()  # the option names print as labels
        assert upper.index("GOOD") < upper.index("BETTER") < upper.index("BEST")

        # The office approves "better": the contract amount is that option's total.
        refused = await stack.event("olga", slug, "quote_approved")
        api_error(refused, 422, "option")
        job = await drive(stack, slug, [("olga", "quote_approved", {"option": "better"})])
        assert job["quote"]["chosen"] == "better"
        assert Decimal(job["contract_amount"]) == Decimal("1195.88")
        assert Decimal(job["quote"]["total"]) == Decimal("1195.88")

        # Worked and invoiced with the approved lines: the same total, taxed and discounted.
        job = await drive(
            stack,
            slug,
            [
                ("olga", "job_scheduled", {"technician": "tess", **window()}),
                ("olga", "checklist_completed", CHECKLIST),
                ("tess", "tech_dispatched", {}),
                ("tess", "tech_checked_in", {}),
                ("tess", "job_completed", {"work_performed": "Fitted the heat pump."}),
                ("olga", "invoice_sent", {}),
            ],
        )
        assert Decimal(job["invoice"]["total"]) == Decimal("1195.88")
        assert Decimal(job["invoice"]["tax_rate"]) == Decimal("8.875")
        (invoice,) = [m for m in await messages(stack, slug, "invoice") if m["channel"] == "email"]
        text = flat(pdf_text(await document(stack, invoice["attachments"][0]["document_id"])))
        assert "Subtotal $1,240.00" in text
        assert "Discount 10% (Returning customer) -$124.00" in text
        assert "Sales tax 8.875% $79.88" in text
        assert "$1,195.88" in text


async def _item(stack: Stack, **fields: Any) -> dict[str, Any]:
    body = {"sku": f"Q{uuid.uuid4().hex[:8].upper()}", "name": "Thermostat", "unit_price": "120.00"}
    response = await stack.post("olga", BOOK, {**body, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def _prospect(stack: Stack, tier: str) -> str:
    client = await stack.new_client(tier=tier)
    slug = (await stack.new_job(client_id=client["id"]))["slug"]
    await drive(
        stack, slug, [("olga", "owner_assigned", {"owner": "olga"}), ("olga", "lead_qualified", {})]
    )
    return slug


async def test_a_gov_clients_fixed_price_cannot_be_changed(stack: Stack) -> None:
    item = await _item(stack, fixed_prices=[{"tier": "gov", "unit_price": "95.00"}], taxable=False)
    sku = item["sku"]
    slug = await _prospect(stack, "gov")
    before = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()

    changed = _line("Thermostat", "120.00", sku=sku)
    answer = await stack.event("olga", slug, "quote_drafted", lines=[changed])
    api_error(answer, 422, "lines[0].unit_price", sku, "95.00")
    # Inside options too, named by option and line.
    options = [
        {"name": "Good", "lines": [_line("Service call", "80.00")]},
        {"name": "Better", "lines": [_line("Service call", "80.00"), changed]},
    ]
    answer = await stack.event("olga", slug, "quote_drafted", options=options)
    api_error(answer, 422, "options[1].lines[1].unit_price", sku)
    after = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert after["stage"] == "prospect" and after["quote"] is None
    assert after["seq"] == before["seq"]

    # The right price is accepted, marked as the tier's; the item's taxable flag wins.
    right = _line("Thermostat", "95.00", sku=sku)
    job = await drive(stack, slug, [("olga", "quote_drafted", {"lines": [right]})])
    (line,) = job["quote"]["lines"]
    assert line["price_basis"] == "tier" and line["taxable"] is False
    assert job["quote"]["version"] == 1


async def test_free_lines_unknown_skus_and_inactive_items(stack: Stack) -> None:
    listed = await _item(stack, unit_price="40.00")
    gone = await _item(stack, active=False)
    slug = await _prospect(stack, "standard")
    lines = [
        _line("Haul away the old unit", "75.00"),
        _line("Part we do not stock", "12.50", sku="NOT-IN-THE-BOOK-1"),
        _line("Filter, our price today", "35.00", sku=listed["sku"]),  # list prices may change
    ]
    job = await drive(stack, slug, [("olga", "quote_drafted", {"lines": lines})])
    assert [line["price_basis"] for line in job["quote"]["lines"]] == ["free", "free", "list"]

    answer = await stack.event(
        "olga", slug, "quote_drafted", lines=[_line("Old thermostat", "120.00", sku=gone["sku"])]
    )
    api_error(answer, 422, "lines[0].sku", gone["sku"], "no longer sold")
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["quote"]["version"] == 1 and job["earlier_quotes"] == []


async def test_a_revised_quote_keeps_the_earlier_version_and_supplier_requests_show(
    stack: Stack,
) -> None:
    slug = await _prospect(stack, "standard")
    await drive(
        stack,
        slug,
        [
            ("olga", "quote_drafted", {"lines": [_line("Fan motor", "420.00", sku="FAN-1")]}),
            ("olga", "quote_drafted", {"lines": [_line("Fan motor", "400.00", sku="FAN-1")]}),
        ],
    )
    request = {
        "supplier": "Ferguson",
        "supplier_email": "quotes@ferguson.example",
        "po_number": "PO-7781",
        "lines": [{"sku": "FAN-1", "description": "Fan motor", "quantity": "1"}],
    }
    job = await drive(stack, slug, [("olga", "supplier_quote_requested", request)])
    assert [q["version"] for q in job["earlier_quotes"]] == [1]
    assert Decimal(job["earlier_quotes"][0]["options"][0]["total"]) == Decimal("420.00")
    assert job["quote"]["version"] == 2 and job["quote_url"] is None  # not sent yet
    (requested,) = job["supplier_requests"]
    assert requested["po_number"] == "PO-7781" and requested["answered_at"] is None
    answer = {
        "channel": "email",
        "direction": "incoming",
        "summary": "$310 each, 3 days",
        "po_number": "PO-7781",
    }
    job = await drive(stack, slug, [("olga", "communication_logged", answer)])
    assert job["supplier_requests"][0]["answered_at"] is not None
