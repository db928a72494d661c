"""The quote builder's forms over ASGI, on both databases (issue 11 item 2): posted as a browser
would, read back through the JSON API. SKU-only lines priced from the price book, options and a
discount, the fields Jobline sets itself never on a form, the option picker of an approval, the
supplier request for quote and its answer, a refusal placed at its line, and /settings/quotes.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from tests.api.journeys import CHECKLIST, drive, prospect, window
from tests.api.signed_in import SignIn, signed_in_fixture  # noqa: F401
from tests.api.test_job_page import _job, _post, _text
from tests.api.test_quotes import quote_settings
from tests.conftest import Stack

BOOK = "/api/v1/pricebook"
JOBLINE_SETS = ("tax_rate", "ip_address", "quote_version", "price_basis", "signature_name")


async def _item(stack: Stack, **fields: object) -> str:
    sku = f"B{uuid.uuid4().hex[:8].upper()}"
    body = {"sku": sku, "name": "Fan motor", "unit_price": "420.00", **fields}
    response = await stack.post("olga", BOOK, body)
    assert response.status_code == 201, response.text
    return sku


async def test_options_from_skus_a_discount_and_the_approval_picker(
    stack: Stack, signed_in: SignIn
) -> None:
    motor = await _item(stack)
    labour = await _item(stack, name="Labour hour", unit_price="95.00", taxable=False)
    slug = await prospect(stack)
    office = await signed_in("office")
    page = await office.get(f"/jobs/{slug}/events/quote_drafted")
    for name in JOBLINE_SETS:
        assert f'name="{name}"' not in page.text, name
    assert f'<option value="{motor}">Fan motor: $420.00</option>' in page.text

    async with quote_settings(stack, tax_rate="5"):
        await _post(office, slug, "quote_drafted", {
            "option1_name": "Repair", "lines-0-sku": motor, "lines-0-quantity": "1",
            "lines-1-description": "Call-out", "lines-1-quantity": "1",
            "lines-1-unit_price": "$60", "lines-1-taxable": "on",
            "option2_name": "Repair and service", "lines2-0-sku": motor,
            "lines2-0-quantity": "1", "lines2-1-sku": labour, "lines2-1-quantity": "2",
            "option3_name": "",  # an empty third option is dropped
            "discount_amount": "$48", "discount_reason": "Spring offer",
            "tax_rate": "20",  # not a field of the form: ignored
        })  # fmt: skip
    quote = (await _job(stack, slug))["quote"]
    assert [(o["key"], o["name"]) for o in quote["options"]] == [
        ("good", "Repair"),
        ("better", "Repair and service"),
    ]
    repair, service = quote["options"]
    assert [
        (x["description"], Decimal(x["unit_price"]), x["price_basis"]) for x in repair["lines"]
    ] == [("Fan motor", Decimal("420.00"), "list"), ("Call-out", Decimal("60"), "free")]
    assert service["lines"][1]["description"] == "Labour hour"
    assert service["lines"][1]["taxable"] is False
    assert Decimal(quote["discount"]["amount"]) == 48 and Decimal(quote["tax_rate"]) == 5
    # Repair: 480.00 - 48.00, all taxable: 432.00 x 5% = 21.60; total 453.60.
    assert (Decimal(repair["tax"]), Decimal(repair["total"])) == (
        Decimal("21.60"),
        Decimal("453.60"),
    )

    job_page = _text(await office.get(f"/jobs/{slug}"))
    assert "Discount (Spring offer) -$48.00" in job_page
    assert "Sales tax 5% $21.60" in job_page and "Total $453.60" in job_page
    assert "free line" in job_page

    # The revise form comes back with both options, the discount and the taxable flags.
    again = await office.get(f"/jobs/{slug}/events/quote_drafted")
    assert 'value="Repair and service"' in again.text and 'value="Spring offer"' in again.text

    await _post(office, slug, "quote_sent")
    approve = await office.get(f"/jobs/{slug}/events/quote_approved")
    assert "Option the customer chose" in _text(approve) and "$453.60" in _text(approve)
    for name in JOBLINE_SETS:
        assert f'name="{name}"' not in approve.text, name
    refused = await _post(office, slug, "quote_approved", {}, status=422)
    assert "option" in _text(refused)
    await _post(office, slug, "quote_approved", {"option": "better"})
    job = await _job(stack, slug)
    assert job["quote"]["chosen"] == "better"
    assert Decimal(job["contract_amount"]) == Decimal(service["total"])
    assert "Chosen" in _text(await office.get(f"/jobs/{slug}"))

    # Invoiced from the form as prefilled: the untaxed labour line stays untaxed, and the
    # invoice is the approved option's total with its discount and tax.
    await drive(stack, slug, [
        ("olga", "job_scheduled", {"technician": "tess", **window()}),
        ("olga", "checklist_completed", CHECKLIST),
        ("tess", "tech_dispatched", {}),
        ("tess", "tech_checked_in", {}),
        ("tess", "job_completed", {"work_performed": "Fitted the motor and serviced the unit."}),
    ])  # fmt: skip
    form = await office.get(f"/jobs/{slug}/events/invoice_sent")
    ticked = re.findall(r'name="(lines-\d-taxable)" value="on" checked', form.text)
    assert "lines-0-taxable" in ticked and "lines-1-taxable" not in ticked  # labour: untaxed
    fields = dict(re.findall(r'type="text" id="[^"]+" name="(lines-\d-[a-z_]+)" value="([^"]*)"',
                             form.text))  # fmt: skip
    assert fields["lines-1-description"] == "Labour hour"
    fields |= {name: "on" for name in ticked}
    await _post(office, slug, "invoice_sent", fields)
    invoice = (await _job(stack, slug))["invoice"]
    assert Decimal(invoice["total"]) == Decimal(service["total"])
    assert [line["taxable"] for line in invoice["lines"]] == [True, False]


async def test_a_refused_fixed_price_is_shown_at_its_line(stack: Stack, signed_in: SignIn) -> None:
    sku = await _item(stack, fixed_prices=[{"tier": "gov", "unit_price": "380.00"}])
    slug = await prospect(stack, "gov")
    office = await signed_in("office")
    fields = {
        "lines-0-description": "Call-out", "lines-0-quantity": "1", "lines-0-unit_price": "60",
        "lines2-0-description": "Call-out", "lines2-0-quantity": "1",
        "lines2-0-unit_price": "60",
        "lines2-2-sku": sku, "lines2-2-quantity": "1", "lines2-2-unit_price": "420.00",
    }  # fmt: skip
    answer = await _post(office, slug, "quote_drafted", fields, status=422)
    assert 'id="quote_drafted-lines2-2-unit_price-error"' in answer.text
    assert "fixed GOV price of 380.00" in _text(answer)
    assert 'value="Call-out"' in answer.text  # what was typed is kept
    assert (await _job(stack, slug))["quote"] is None
    # SKU and quantity only: the GOV price is filled in and kept.
    await _post(office, slug, "quote_drafted", {"lines-0-sku": sku, "lines-0-quantity": "2"})
    (line,) = (await _job(stack, slug))["quote"]["lines"]
    assert (line["unit_price"], line["price_basis"]) == ("380.00", "tier")
    assert "GOV price" in _text(await office.get(f"/jobs/{slug}"))


async def test_supplier_request_for_quote_and_its_answer(stack: Stack, signed_in: SignIn) -> None:
    slug = await prospect(stack)
    office = await signed_in("office")
    lines = {"lines-0-description": "Compressor", "lines-0-quantity": "1",
             "lines-0-unit_price": "1200", "lines-0-sku": "CMP-9",
             "lines-1-description": "Labour", "lines-1-quantity": "3",
             "lines-1-unit_price": "90"}  # fmt: skip
    await _post(office, slug, "quote_drafted", lines)
    form = await office.get(f"/jobs/{slug}/events/supplier_quote_requested")
    # Prefilled from the quote's price-book (SKU) lines only.
    assert 'value="CMP-9"' in form.text and 'value="Labour"' not in form.text
    await _post(office, slug, "supplier_quote_requested", {
        "supplier": "Ferguson", "supplier_email": "rfq@ferguson.example", "po_number": "PO-1",
        "lines-0-sku": "CMP-9", "lines-0-description": "Compressor", "lines-0-quantity": "1",
        "notes": "Need it by Friday",
    })  # fmt: skip
    page = _text(await office.get(f"/jobs/{slug}"))
    assert "PO PO-1 to Ferguson" in page and "Waiting" in page
    logged = await office.get(f"/jobs/{slug}/events/communication_logged")
    assert "Supplier request (PO)" in _text(logged)
    await _post(office, slug, "communication_logged", {
        "channel": "email", "direction": "incoming", "summary": "$980, 2 days", "po_number": "PO-1",
    })  # fmt: skip
    job = await _job(stack, slug)
    assert job["supplier_requests"][0]["answered_at"] is not None
    assert "Answered" in _text(await office.get(f"/jobs/{slug}"))


async def test_quote_settings_page(stack: Stack, signed_in: SignIn) -> None:
    office = await signed_in("office")
    page = await office.get("/settings/quotes")
    assert page.status_code == 200 and "Only an admin can change" in page.text, _text(page)[-1500:]
    admin = await signed_in("admin")
    async with quote_settings(stack):
        form = await admin.get("/settings/quotes")
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        bad = await admin.post("/settings/quotes", data={
            "csrf_token": csrf, "tax_rate": "45", "tax_label": "VAT", "link_days": "14",
        })  # fmt: skip
        assert bad.status_code == 422
        assert 'value="VAT"' in bad.text and "30" in _text(bad)
        good = await admin.post("/settings/quotes", data={
            "csrf_token": csrf, "tax_rate": "7.25%", "tax_label": "VAT", "link_days": "14",
        })  # fmt: skip
        assert good.status_code == 303
        saved = (await stack.get("ada", "/api/v1/settings/quotes")).json()
        assert (Decimal(saved["tax_rate"]), saved["tax_label"], saved["link_days"]) == (
            Decimal("7.25"), "VAT", 14,
        )  # fmt: skip
        assert 'href="/settings/quotes"' in (await admin.get("/settings")).text
