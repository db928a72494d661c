"""The quote builder in real Chromium (issue 11 item 2): an office person finds items in the price
book, builds a three-option quote from SKUs and quantities plus a free line, gives a discount and
sees every option's figures (the same as the job's JSON); a GOV client's fixed price shows
read-only and a changed one is refused by its line. axe-core on the pages, and nothing wider
than a phone.

SQLite only; the rules and the pricing run on both backends in tests/api/test_quotes.py.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from playwright.async_api import Browser, Page, expect

from models import display
from tests.api.journeys import prospect
from tests.api.test_quotes import quote_settings
from tests.conftest import Stack
from tests.web.conftest import (
    DESKTOP,
    PHONE,
    fits_a_phone,
    person_with_password,
    serious_violations,
    sign_in,
)

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "quotes in the browser"
BOOK = "/api/v1/pricebook"


async def _item(stack: Stack, sku: str, name: str, price: str, **more: object) -> None:
    body = {"sku": sku, "name": name, "unit_price": price, **more}
    response = await stack.post("olga", BOOK, body)
    assert response.status_code == 201, response.text


async def _line(page: Page, group: str, row: int, sku: str = "", quantity: str = "", **more: str):
    prefix = f"#quote_drafted-{group}-{row}-"
    if sku:
        await page.locator(prefix + "sku").fill(sku)
    if quantity:
        await page.locator(prefix + "quantity").fill(quantity)
    for column, value in more.items():
        await page.locator(prefix + column).fill(value)


async def test_office_builds_a_three_option_quote_from_the_price_book(
    stack: Stack,
    browser: Browser,
    base_url: str,
) -> None:
    office = await person_with_password(stack, "office", PASSWORD, "o")
    tag = f"QB{uuid.uuid4().hex[:6].upper()}"
    await _item(stack, f"{tag}-HP", "Heat pump 3 ton", "1000.00")
    await _item(stack, f"{tag}-LAB", "Labour hour", "120.00", taxable=False)
    slug = await prospect(stack)
    findings: dict[str, list[str]] = {}

    async with quote_settings(stack, tax_rate="8.875", tax_label="Sales tax"):
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD, then=f"/jobs/{slug}/events/quote_drafted")

        # The search box lists the matches with this client's price.
        await page.get_by_label("SKU or name").fill(tag)
        await page.get_by_role("button", name="Search").click()
        matches = page.get_by_role("region", name="Price book matches")
        await expect(matches).to_contain_text(f"{tag}-HP")
        await expect(matches).to_contain_text("$1,000.00")
        await expect(matches).to_contain_text("not taxed")
        findings[page.url] = await serious_violations(page)
        # The SKU inputs suggest from the price book.
        sku_input = page.locator("#quote_drafted-lines-0-sku")
        assert await sku_input.get_attribute("list") == "quote_drafted-pricebook-items"
        options = page.locator("#quote_drafted-pricebook-items option")
        assert f"{tag}-HP" in await options.evaluate_all("os => os.map(o => o.value)")

        # Good: a heat pump by SKU and quantity, and a free line; Better and Best from SKUs.
        await _line(page, "lines", 0, f"{tag}-HP", "1")
        await _line(page, "lines", 1, quantity="1", description="Haul away the old unit",
                    unit_price="75")  # fmt: skip
        await _line(page, "lines2", 0, f"{tag}-HP", "1")
        await _line(page, "lines2", 1, f"{tag}-LAB", "2")
        await _line(page, "lines3", 0, f"{tag}-HP", "2")
        await _line(page, "lines3", 1, f"{tag}-LAB", "4")
        await page.locator("#quote_drafted-option3_name").fill("Best, two zones")
        await page.get_by_label("Discount percent").fill("10")
        await page.get_by_label("Discount reason").fill("Returning customer")
        await page.get_by_role("button", name="Draft quote").click()
        await page.wait_for_url(f"{base_url}/jobs/{slug}")
        await expect(page.get_by_role("status").first).to_contain_text("Draft quote")

        job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        quote = job["quote"]
        assert [o["name"] for o in quote["options"]] == ["Good", "Better", "Best, two zones"]
        assert [line["price_basis"] for line in quote["options"][0]["lines"]] == ["list", "free"]
        assert quote["options"][1]["lines"][1]["description"] == "Labour hour"
        assert quote["options"][1]["lines"][1]["taxable"] is False
        section = page.locator("#quote")
        for option in quote["options"]:
            block = section.locator(f'[data-option="{option["key"]}"]')
            for figure in ("subtotal", "tax", "total"):
                money = display.money(Decimal(option[figure]), "$")
                await expect(block).to_contain_text(money)
            await expect(block).to_contain_text(display.money(-Decimal(option["discount"]), "$"))
        await expect(section).to_contain_text("Sales tax 8.875%")
        await expect(section).to_contain_text("Discount 10% (Returning customer)")
        await expect(section.locator('[data-option="good"]')).to_contain_text("free line")
        # Hand-checked: Better is 1,240.00 - 124.00 + 8.875% of 900.00 = 1,195.88.
        await expect(section.locator('[data-option="better"]')).to_contain_text("$1,195.88")
        findings[page.url] = await serious_violations(page)

        # On a phone: the job page and the builder fit, with the quote's rows.
        phone = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
        small = await phone.new_page()
        await sign_in(small, base_url, office, PASSWORD, then=f"/jobs/{slug}")
        await fits_a_phone(small)
        await small.goto(f"{base_url}/jobs/{slug}/events/quote_drafted")
        await expect(small.locator("#quote_drafted-lines3-0-sku")).to_have_value(f"{tag}-HP")
        await fits_a_phone(small)
        findings[f"phone {small.url}"] = await serious_violations(small)
        await phone.close()
        await context.close()
    assert not any(findings.values()), findings


async def test_a_gov_fixed_price_cannot_be_changed_on_the_page(
    stack: Stack,
    browser: Browser,
    base_url: str,
) -> None:
    office = await person_with_password(stack, "office", PASSWORD, "o")
    sku = f"QG{uuid.uuid4().hex[:6].upper()}-TST"
    gov = [{"tier": "gov", "unit_price": "95"}]
    await _item(stack, sku, "Thermostat", "120.00", fixed_prices=gov)
    slug = await prospect(stack, "gov")

    context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = await context.new_page()
    await sign_in(page, base_url, office, PASSWORD, then=f"/jobs/{slug}/events/quote_drafted")
    # A SKU and a quantity: the server fills the GOV price.
    await _line(page, "lines", 0, sku, "2")
    await page.get_by_role("button", name="Draft quote").click()
    await page.wait_for_url(f"{base_url}/jobs/{slug}")
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    (line,) = job["quote"]["lines"]
    assert Decimal(line["unit_price"]) == Decimal("95.00") and line["price_basis"] == "tier"
    await expect(page.locator("#quote")).to_contain_text("GOV price")

    # Revising: the fixed price is read-only; forced open and changed, the server refuses it.
    await page.goto(f"{base_url}/jobs/{slug}/events/quote_drafted")
    price = page.locator("#quote_drafted-lines-0-unit_price")
    await expect(price).to_have_value("95.00")
    assert await price.get_attribute("readonly") is not None
    await price.evaluate("el => { el.removeAttribute('readonly'); el.value = '80.00'; }")
    await page.get_by_role("button", name="Revise quote").click()
    error = page.locator("#quote_drafted-lines-0-unit_price-error")
    await expect(error).to_contain_text("fixed GOV price of 95.00")
    await expect(page.get_by_role("alert")).to_contain_text("a quote cannot change it")
    await expect(price).to_have_value("95.00")
    assert await price.get_attribute("readonly") is not None
    await fits_a_phone(page)
    assert not await serious_violations(page)
    after = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert after["quote"]["version"] == 1 and after["earlier_quotes"] == []
    await context.close()
