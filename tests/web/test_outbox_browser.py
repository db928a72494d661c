"""The closeout email in /outbox, in real Chromium (issue 9 tests: "The closeout email appears
in /outbox"): a job driven through the API to `job_completed`; an office user finds the
closeout email by filtering and clicking, opens it, and opens its receipt attachment (a PDF).
axe-core on the filtered list and the message, desktop and phone. SQLite only."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.api.journeys import drive, on_site
from tests.conftest import Stack
from tests.fakes.providers import wait_until
from tests.web.conftest import give_password, sign_in
from tests.web.test_send_browser import DESKTOP, PASSWORD, axe_clean

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

COMPLETED = {
    "work_performed": "Replaced the condenser fan motor; tested cooling for 20 minutes.",
    "parts_used": [{"sku": "FAN-1", "quantity": "1"}],
}


async def test_the_closeout_email_appears_in_the_outbox(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    job = await on_site(stack, email="casey@example.com")
    slug = job["slug"]
    await drive(stack, slug, [("tess", "job_completed", COMPLETED)])

    async def queued() -> bool:
        page = await stack.get(
            "olga", "/api/v1/outbox", params={"job_slug": slug, "purpose": "closeout"}
        )
        return page.json()["total"] > 0

    await wait_until(queued, 30, "the closeout message")  # the workflow queues it

    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await give_password(stack, "olga", PASSWORD)
        await sign_in(page, base_url, "olga", PASSWORD)
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
        await page.wait_for_url(f"{base_url}/outbox")
        await page.get_by_label("Purpose").select_option(label="Closeout")
        await page.get_by_label("Channel").select_option(label="Email")
        await page.get_by_label("Job").fill(slug)
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_url(re.compile(r"/outbox\?.*purpose=closeout"))
        rows = page.get_by_role("table").get_by_role("row")
        await expect(rows).to_have_count(2)
        row = rows.nth(1)
        await expect(row).to_contain_text("casey@example.com")
        await expect(row).to_contain_text("Closeout")
        await axe_clean(page, "the outbox, filtered")

        await row.get_by_role("link", name=re.compile("Your work receipt")).click()
        await page.wait_for_url(re.compile(r"/outbox/\d+$"))
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Your work receipt")
        body = page.get_by_role("region", name="Message text")
        await expect(body).to_contain_text("has finished")
        await expect(page.get_by_role("link", name=f"Job {slug}")).to_be_visible()
        attachment = page.get_by_role("link", name=re.compile(r"\.pdf$"))
        await expect(attachment).to_have_count(1)
        await axe_clean(page, "the closeout email")

        # Opening the attachment answers the PDF (for this signed-in reader).
        async with page.expect_response(re.compile(r"/attachments/[0-9a-f]{32}$")) as opened:
            await attachment.click()
        answer = await opened.value
        assert answer.status == 200
        assert answer.headers["content-type"] == "application/pdf"
        pdf = await page.request.get(answer.url)
        assert (await pdf.body()).startswith(b"%PDF")
    finally:
        await context.close()
