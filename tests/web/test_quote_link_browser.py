"""The customer's quote page in a real browser: Debian's Chromium at phone size with JavaScript
turned off, against the app served by uvicorn on a real socket.

The customer opens the link from their quote email, picks "Better", types their name and
approves; the page then shows the approval, and the job (read through the API) is approved with
a number and no quote follow-up due. axe finds nothing serious on the open page or the answered
one.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import Browser

from tests.api.test_quote_link import BETTER_TOTAL, job_view, link_from_email, quote_sent
from tests.conftest import Stack
from tests.web.conftest import PHONE, console_errors, fits_a_phone, serious_violations

# The browser is what is tested here; the database under it is tested on both backends elsewhere.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def _axe(browser: Browser, url: str) -> list[str]:
    """axe's serious findings on the page at `url` (axe is a script: its own context runs it)."""
    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        await page.goto(url)
        return await serious_violations(page)
    finally:
        await context.close()


async def test_the_customer_picks_better_signs_and_approves(
    stack: Stack, browser: Browser, base_url: str
) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)  # from the quote email in the outbox
    before = await job_view(stack, slug)
    url = f"{base_url}{path}"

    assert await _axe(browser, url) == []

    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = await context.new_page()
        errors = console_errors(page)
        opened = await page.goto(url)
        assert opened is not None and opened.status == 200
        await page.get_by_role("heading", name="No cooling, unit 4").wait_for()
        assert await page.get_by_role("heading", name="Option: Better").is_visible()
        await fits_a_phone(page)

        await page.get_by_role("radio", name="Better").check()
        await page.get_by_label("Type your full name to sign").fill("Dana Whitfield")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Approve").click()
        assert page.url == url  # post, redirect, get: back on the link's page
        await page.get_by_role("heading", name="Quote approved").wait_for()
        assert await page.get_by_text("Signed by Dana Whitfield on").is_visible()
        await fits_a_phone(page)
        assert errors == []
    finally:
        await context.close()

    job = await job_view(stack, slug)
    assert job["stage"] == "approved"
    assert job["number"] is not None
    assert Decimal(job["contract_amount"]) == BETTER_TOTAL
    assert job["next_reminder_at"] != before["next_reminder_at"]
    assert job["follow_ups_sent"] == 0
    [row] = [t for t in job["timeline"] if t["type"] == "quote_approved"]
    assert row["payload"]["signature_name"] == "Dana Whitfield"
    assert row["payload"]["ip_address"] == "127.0.0.1"

    assert await _axe(browser, url) == []


async def test_a_wrong_link_shows_the_not_found_text(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = await context.new_page()
        answer = await page.goto(f"{base_url}/q/{'A' * 43}")
        assert answer is not None and answer.status == 404
        assert await page.get_by_text("This link is not valid.").is_visible()
    finally:
        await context.close()
