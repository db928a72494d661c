"""/pricebook in real Chromium (issue 11 item 1): an office person adds an item, sets a government
fixed price, and imports a CSV file after a dry run that named a bad row's line; a technician
reads the price book with no edit controls. axe-core on the pages, at desktop and phone width,
and no page wider than a phone.

SQLite only; the services under the pages run on both backends in tests/api/test_pricebook.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

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

PASSWORD = "prices in the browser"


async def _check(page: Page, findings: dict[str, list[str]]) -> None:
    findings[page.url] = await serious_violations(page)


async def test_office_adds_prices_and_imports_technician_reads(
    stack: Stack,
    browser: Browser,
    base_url: str,
    tmp_path: Path,
) -> None:
    office = await person_with_password(stack, "office", PASSWORD, "o")
    technician = await person_with_password(stack, "technician", PASSWORD, "t")
    tag = f"PB{uuid.uuid4().hex[:6].upper()}"
    findings: dict[str, list[str]] = {}

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await sign_in(page, base_url, office, PASSWORD, then="/pricebook")
    await expect(page.get_by_role("link", name="Price book", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    await _check(page, findings)

    # Add an item: a bad price first (shown at the field, input kept), then a good one.
    await page.get_by_label("SKU").fill(f"{tag}-CAP")
    await page.get_by_label("Name", exact=True).fill("Run capacitor 45/5 MFD")
    await page.get_by_label("Unit price").fill("twelve")
    await page.get_by_role("textbox", name="Category").fill("Electrical")
    await page.get_by_role("button", name="Add item").click()
    await expect(page.get_by_role("alert")).to_contain_text("Unit price")
    await expect(page.get_by_label("SKU")).to_have_value(f"{tag}-CAP")
    await _check(page, findings)
    await page.get_by_label("Unit price").fill("38.50")
    await page.get_by_role("button", name="Add item").click()
    await page.wait_for_url(f"{base_url}/pricebook/{tag}-CAP")
    await expect(page.get_by_role("status")).to_contain_text(f"Added {tag}-CAP")
    await expect(page.get_by_text("$38.50")).to_be_visible()

    # A government fixed price.
    await page.get_by_label("Government").fill("32")
    await page.get_by_role("button", name="Save fixed prices").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved the fixed prices")
    row = page.get_by_role("row", name="Government tier")
    await expect(row).to_contain_text("$32.00")
    await _check(page, findings)

    # Import: a dry run names the bad row's line; nothing is imported.
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sku,name,unit_price,price_gov\n"
        f"{tag}-FLT,Filter 20x25x1,12.00,\n"
        f"{tag}-BAD,Broken row,abc,\n"
    )
    await page.goto(f"{base_url}/pricebook")
    await page.get_by_label("CSV file", exact=True).set_input_files(str(bad))
    await page.get_by_role("button", name="Check the file").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("nothing was imported")
    await expect(alert).to_contain_text("Line 3, unit_price")
    await _check(page, findings)
    assert (await stack.get("olga", f"/api/v1/pricebook/{tag}-FLT")).status_code == 404

    good = tmp_path / "good.csv"
    good.write_text(
        "sku,name,unit_price,price_gov\n"
        f"{tag}-FLT,Filter 20x25x1,12.00,10.00\n"
        f"{tag}-CAP,Run capacitor 45/5 MFD,39.00,32.00\n"
    )
    await page.get_by_label("CSV file", exact=True).set_input_files(str(good))
    await page.get_by_role("button", name="Check the file").click()
    await expect(page.locator("#import-result")).to_contain_text("1 new item, 1 to update")
    assert (await stack.get("olga", f"/api/v1/pricebook/{tag}-FLT")).status_code == 404
    await _check(page, findings)
    await page.get_by_role("button", name="Import 2 rows").click()
    await page.wait_for_url(f"{base_url}/pricebook")
    await expect(page.get_by_role("status").first).to_contain_text("Imported 2 rows")
    imported = (await stack.get("olga", f"/api/v1/pricebook/{tag}-FLT")).json()
    assert imported["fixed_prices"] == [{"tier": "gov", "unit_price": "10.00"}]

    # The search finds both; the export link downloads the CSV.
    await page.get_by_label("Search").fill(tag)
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#items-count")).to_contain_text("2 items matching")
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download the price book (CSV)").click()
    saved = tmp_path / "export.csv"
    await (await download.value).save_as(saved)
    assert f"{tag}-FLT,Filter 20x25x1,,12.00" in saved.read_text(encoding="utf-8-sig")
    await context.close()

    # A technician reads, at phone width: no forms to change anything.
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await sign_in(page, base_url, technician, PASSWORD)
    await page.get_by_role("link", name="Price book", exact=True).click()
    await page.get_by_label("Search").fill(tag)
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name=f"{tag}-CAP")).to_be_visible()
    await expect(page.get_by_role("button", name="Add item")).to_have_count(0)
    await expect(page.get_by_label("CSV file", exact=True)).to_have_count(0)
    await fits_a_phone(page)
    await _check(page, findings)
    await page.get_by_role("link", name=f"{tag}-CAP").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Run capacitor")
    await expect(page.get_by_role("button")).to_have_count(1)  # Sign out only
    await expect(page.get_by_text("$32.00")).to_be_visible()
    await fits_a_phone(page)
    await _check(page, findings)
    await context.close()

    # The editor's pages at phone width.
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await sign_in(page, base_url, office, PASSWORD, then="/pricebook")
    await fits_a_phone(page)
    await page.goto(f"{base_url}/pricebook/{tag}-CAP")
    await fits_a_phone(page)
    await _check(page, findings)
    await context.close()

    assert {url: found for url, found in findings.items() if found} == {}
