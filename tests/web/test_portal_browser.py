"""The closeout portal in a real browser: Debian's Chromium, driven by Playwright, against the
app served by uvicorn on a real socket.

The customer opens the link from their closeout message on a phone-sized screen, reads the job
and opens the work receipt. Chromium shows an inline PDF in its own viewer rather than
downloading it (checked here: no download event fires, even headless), so the test checks the
navigation's response and then the bytes at the URL the browser opened.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Download

from activities.pdf import render_pdf_sync
from core import settings_store
from core.settings_store import BRANDING
from models.branding import BrandingSettings
from tests.api.test_portal import completed_job
from tests.conftest import Stack
from tests.web.conftest import PHONE, console_errors

# The browser is what is tested here; the database under it is tested on both backends elsewhere.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def _rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


async def test_the_customer_reads_the_job_and_opens_the_receipt(
    stack: Stack, browser: Browser, base_url: str
) -> None:
    receipt = render_pdf_sync("<p>Receipt</p>").pdf
    job = await completed_job(
        stack,
        receipt=receipt,
        work_performed="Replaced the run capacitor.\nThe unit cools again.",
    )
    async with stack.db.session() as session:
        branding = await settings_store.load(session, BRANDING, BrandingSettings)

    context = await browser.new_context(viewport=PHONE, accept_downloads=True)
    try:
        page = await context.new_page()
        errors = console_errors(page)
        downloads: list[Download] = []

        def _on_download(download: Download) -> None:
            downloads.append(download)

        page.on("download", _on_download)

        opened = await page.goto(f"{base_url}{job.page}")
        assert opened is not None and opened.status == 200
        await page.get_by_role("heading", name="No cooling, unit 4").wait_for()
        work = page.get_by_text("Replaced the run capacitor.")
        assert await work.inner_text() == "Replaced the run capacitor.\nThe unit cools again."
        assert await page.get_by_text("Run capacitor 45/5 uF").is_visible()
        assert await page.get_by_text("Gate code").is_visible()
        # The inline styles apply under the page's CSP, and the page fits a phone's width.
        header_colour = await page.locator("header").evaluate(
            "element => getComputedStyle(element).backgroundColor"
        )
        assert header_colour == _rgb(branding.primary_color)
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the page scrolls sideways on a phone"
        # Nothing refused by the CSP, nothing missing (checked before the PDF viewer opens: it
        # asks for /favicon.ico, which the API does not serve).
        assert errors == []

        link = page.get_by_role("link", name="Download your work receipt (PDF)")
        async with page.expect_response(lambda r: r.url.endswith("/receipt.pdf")) as answered:
            await link.click()
        response = await answered.value
        assert response.url == f"{base_url}{job.receipt}"
        assert response.status == 200
        headers = await response.all_headers()
        assert headers["content-type"] == "application/pdf"
        assert headers["content-disposition"].startswith("inline;")
        await page.wait_for_url(f"{base_url}{job.receipt}")
        # Chromium opened it in its PDF viewer: nothing downloaded.
        assert downloads == []
        fetched = await context.request.get(page.url)
        assert fetched.status == 200
        content = await fetched.body()
        assert content.startswith(b"%PDF")
        assert content == receipt
    finally:
        await context.close()


async def test_a_wrong_link_shows_the_not_found_text(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        answer = await page.goto(f"{base_url}/portal/{'A' * 43}")
        assert answer is not None and answer.status == 404
        assert await page.get_by_text(
            "This link is not valid. Ask the company that did the work for a new one."
        ).is_visible()
    finally:
        await context.close()
