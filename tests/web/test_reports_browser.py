"""The reports page in real Chromium (issue 10 §6): a manager opens Reports from the nav, picks
one seller with the filter form, sees the charts and their tables, downloads a CSV; axe-core
finds nothing serious at desktop or phone width, and at 390 px the page never scrolls sideways.
SQLite only."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.api.reports_seed import CANCEL_REASON, seed
from tests.api.signed_in import PASSWORD
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

DESKTOP = {"width": 1280, "height": 900}
CHARTS = {
    "Open jobs by milestone",
    "Approved contract amount by month",
    "Conversion: leads to approved to closed",
    "Time in stage: median and 90th percentile",
    "Loss reasons",
}


async def no_sideways_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"


async def test_a_manager_filters_by_owner_and_reads_the_charts(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    data = await seed(stack)
    await give_password(stack, "mia", PASSWORD)
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, "mia", PASSWORD)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
        )
        await page.wait_for_url(f"{base_url}/reports")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Reports")

        await page.get_by_label("Owner", exact=True).select_option(data.seller)
        await page.get_by_role("button", name="Show reports").click()
        await page.wait_for_url(re.compile(rf"/reports\?.*owner={data.seller}"))
        await expect(page.get_by_label("Owner", exact=True)).to_have_value(data.seller)

        # Every chart drawn and named; its numbers in the table beside it.
        for name in CHARTS:
            chart = page.get_by_role("img", name=name)
            await expect(chart).to_be_visible()
            box = await chart.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 40, (name, box)
        pipeline = page.get_by_role("region", name="Pipeline", exact=True)
        await expect(pipeline.get_by_role("row", name=re.compile("All open jobs"))).to_contain_text(
            "$1,315.00"
        )
        funnel = page.get_by_role("img", name="Conversion: leads to approved to closed")
        await expect(funnel).to_contain_text("1 · 33% of leads")
        loss = page.get_by_role("region", name="Loss reasons", exact=True)
        await expect(loss.get_by_role("table")).to_contain_text(CANCEL_REASON)  # as text
        resulting = page.get_by_role("region", name="Resulting", exact=True)
        await expect(
            resulting.get_by_role("link", name=re.compile(data.quoted["slug"]))
        ).to_have_count(1)
        assert await serious_violations(page) == []

        # A CSV downloads for the signed-in manager, with the page's filters.
        async with page.expect_download() as downloading:
            await loss.get_by_role("link", name=re.compile("Download CSV")).click()
        download = await downloading.value
        assert re.fullmatch(
            r"jobline-loss-reasons-\d{4}-\d\d-\d\d\.csv", download.suggested_filename
        )
        text = (await download.path()).read_text(encoding="utf-8-sig")
        assert "Price" in text and "Too pricey" in text

        # At a phone's width: nothing sideways, charts still there, nothing serious for axe.
        await page.set_viewport_size(PHONE)
        await page.reload()
        await no_sideways_scroll(page)
        for name in CHARTS:
            box = await page.get_by_role("img", name=name).bounding_box()
            assert box and box["width"] <= PHONE["width"], (name, box)
        assert await serious_violations(page) == []
    finally:
        await context.close()


async def test_a_sales_person_reads_their_own_at_phone_width(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    data = await seed(stack)
    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, data.other, PASSWORD, then="/reports")
        await expect(page.get_by_label("Owner", exact=True)).to_have_count(0)
        await expect(page.get_by_text("Your own jobs.")).to_be_visible()
        pipeline = page.get_by_role("region", name="Pipeline", exact=True)
        await expect(pipeline.get_by_role("row", name=re.compile("All open jobs"))).to_contain_text(
            "$657.50"
        )
        await no_sideways_scroll(page)
        assert await serious_violations(page) == []
    finally:
        await context.close()
