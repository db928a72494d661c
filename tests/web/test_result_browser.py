"""Resulting a job in real Chromium (issue 10 §6), as the salesperson does after a visit: the
job page's Result form (only the chosen type's fields show with JavaScript), a required field
refused at its field, a Sale, a resubmission as No Sale, both revisions newest first and revision
1's PDF; axe-core on the page and on the refusal; no sideways scrolling at phone width. SQLite
only (the page's routes run on both databases in tests/api/test_result_form.py)."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.api.journeys import quoted
from tests.api.settings import resulting_settings
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "result browser password"
DESKTOP = {"width": 1280, "height": 800}


async def _submit(page: Page) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name="Submit result").click()


async def _pdf_links(page: Page, count: int) -> None:
    """Reload until `count` revisions show their PDF link (each made just after its answer)."""
    for _ in range(100):
        if await page.get_by_role("link", name=re.compile(r"^PDF of revision")).count() >= count:
            return
        await asyncio.sleep(0.1)
        await page.reload()
    raise AssertionError(f"{count} PDF link(s) never showed")


async def _fits(page: Page) -> bool:
    return bool(
        await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    )


async def test_a_salesperson_results_a_job_resubmits_and_sees_both_revisions(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack, title="Heat pump replacement")
        await give_password(stack, "sam", PASSWORD)
        context = await browser.new_context(viewport=DESKTOP)
        try:
            page = await context.new_page()
            await sign_in(page, base_url, "sam", PASSWORD, then=f"/jobs/{slug}")
            result = page.locator("section#result")
            await expect(result).to_contain_text("Not resulted yet")
            sale_fields = result.locator('fieldset[data-result-type="sale"]')
            no_sale_fields = result.locator('fieldset[data-result-type="no_sale"]')
            # Nothing chosen yet: with JavaScript, neither type's fields show.
            await expect(sale_fields).to_be_hidden()
            await expect(no_sale_fields).to_be_hidden()
            assert await serious_violations(page) == []

            await result.get_by_label("Sale", exact=True).check()
            await expect(sale_fields).to_be_visible()
            await expect(no_sale_fields).to_be_hidden()
            await result.get_by_label("Notes").fill("Signed at the kitchen table")
            await _submit(page)  # the amount is required: refused at its field, notes kept
            await expect(page.locator(".error-summary")).to_contain_text("Sale amount")
            amount = page.get_by_label(re.compile(r"^Sale amount"))
            await expect(amount).to_have_attribute("aria-invalid", "true")
            await expect(page.get_by_label("Notes")).to_have_value("Signed at the kitchen table")
            assert await serious_violations(page) == []

            await amount.fill("$12,450")
            await page.get_by_label("Financing").check()
            await _submit(page)
            assert page.url.endswith(f"/jobs/{slug}#result")
            await expect(page.get_by_text("Resulted as Sale (revision 1)")).to_be_visible()
            await expect(result.locator(".result-current")).to_contain_text("$12,450.00")

            # Resubmit as No Sale: the form starts from the current result.
            await result.locator("summary", has_text="Change the result").click()
            await expect(result.get_by_label("Sale", exact=True)).to_be_checked()
            await result.get_by_label("No Sale", exact=True).check()
            await expect(no_sale_fields).to_be_visible()
            await expect(sale_fields).to_be_hidden()
            await result.get_by_label("Why we lost it").select_option("Went with competitor")
            await _submit(page)
            await expect(page.get_by_text("Resulted as No Sale (revision 2")).to_be_visible()

            await _pdf_links(page, 2)
            revisions = result.locator("li.result-revision")
            await expect(revisions).to_have_count(2)
            await expect(revisions.nth(0)).to_contain_text("Revision 2: No Sale")
            await expect(revisions.nth(0)).to_contain_text("Went with competitor")
            await expect(revisions.nth(1)).to_contain_text("Revision 1: Sale")
            await expect(revisions.nth(1)).to_contain_text("$12,450.00")
            await expect(revisions.nth(1)).to_contain_text("Signed at the kitchen table")
            await expect(result.locator(".result-current")).to_contain_text("No Sale")
            assert await serious_violations(page) == []

            href = await page.get_by_role("link", name="PDF of revision 1").get_attribute("href")
            assert href
            pdf = await context.request.get(f"{base_url}{href}")
            assert pdf.status == 200
            assert pdf.headers["content-type"] == "application/pdf"
            assert (await pdf.body()).startswith(b"%PDF")

            await page.set_viewport_size(PHONE)
            await page.reload()
            await result.locator("summary", has_text="Change the result").click()
            assert await _fits(page), "the job page scrolls sideways at phone width"
        finally:
            await context.close()
