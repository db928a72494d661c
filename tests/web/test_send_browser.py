"""The Send dialog in real Chromium, as a person (issue 9 tests: "Send, with its preview"): an
office user opens a job, clicks Send, types a message, ticks SMS, previews the email and the SMS
with its segment count (nothing sent yet), sends, sees the Queued banner on the job and finds
the message in /outbox. axe-core on the Send page with and without the preview, at desktop and
phone width. SQLite only (heavy journeys, see the brief)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}


async def axe_clean(page: Page, where: str) -> None:
    """No serious or critical axe-core violation, at desktop and at phone width; the page
    fits the phone's width."""
    found: dict[str, list[str]] = {}
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        found[name] = await serious_violations(page)
        if name == "phone":
            fits = await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            found[name] += [] if fits else ["wider than the phone's screen"]
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    assert found == {"desktop": [], "phone": []}, where


async def outbox_count(stack: Stack, slug: str) -> int:
    page = await stack.get("olga", "/api/v1/outbox", params={"job_slug": slug})
    return int(page.json()["total"])


async def test_send_with_its_preview(browser: Browser, base_url: str, stack: Stack) -> None:
    client = await stack.new_client(email="robin@example.com", phone="+1 555 0177")
    job = await stack.new_job(client_id=client["id"], title="Boiler service, flat 2")
    slug = job["slug"]
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await give_password(stack, "olga", PASSWORD)
        await sign_in(page, base_url, "olga", PASSWORD)
        await page.goto(f"{base_url}/jobs/{slug}")
        await page.get_by_role("link", name="Send", exact=True).click()
        await page.wait_for_url(f"{base_url}/jobs/{slug}/send")
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Send to {client['name']}")
        # The client's email and mobile are filled in.
        await expect(page.get_by_label("To (email)")).to_have_value("robin@example.com")
        await expect(page.get_by_label("Mobile for SMS")).to_have_value("+1 555 0177")
        await axe_clean(page, "the Send page")

        await page.get_by_label("Message").fill("The engineer is running 20 minutes late.")
        await page.get_by_label("Notify customer via SMS").check()
        await page.get_by_label("Bcc me").check()
        await page.get_by_role("button", name="Preview").click()
        preview = page.get_by_role("region", name="Preview: nothing has been sent yet")
        await expect(preview).to_be_visible()
        await expect(preview).to_be_focused()  # static/send.js: where the change is
        email = preview.get_by_role("region", name="Email")
        await expect(email).to_contain_text("robin@example.com")
        await expect(email).to_contain_text("olga@jobline.test")  # Bcc me
        await expect(email).to_contain_text("An update on Boiler service, flat 2")
        await expect(email).to_contain_text("The engineer is running 20 minutes late.")
        sms = preview.get_by_role("region", name="SMS")
        await expect(sms).to_contain_text("+1 555 0177")
        await expect(sms).to_contain_text(re.compile(r"1 segment \(GSM-7, \d+ characters\)"))
        await expect(sms).to_contain_text("The engineer is running 20 minutes late.")
        # What was typed is still there, and nothing has gone.
        await expect(page.get_by_label("Message")).to_have_value(
            "The engineer is running 20 minutes late."
        )
        await expect(page.get_by_label("Notify customer via SMS")).to_be_checked()
        assert await outbox_count(stack, slug) == 0
        await axe_clean(page, "the Send page with its preview")

        await page.get_by_role("button", name="Send", exact=True).click()
        await page.wait_for_url(f"{base_url}/jobs/{slug}")
        await expect(page.get_by_role("status")).to_have_text(
            "Queued: email to robin@example.com (Bcc olga@jobline.test), SMS to +1 555 0177."
        )
        assert await outbox_count(stack, slug) == 2

        # In the outbox: filtered to the job, the email opened from its row.
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
        await page.wait_for_url(f"{base_url}/outbox")
        await page.get_by_label("Job").fill(slug)
        await page.get_by_label("Channel").select_option(label="Email")
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_url(re.compile(r"/outbox\?"))
        rows = page.get_by_role("table").get_by_role("row")
        await expect(rows).to_have_count(2)  # the header and the one email
        await expect(rows.nth(1)).to_contain_text("robin@example.com")
        await axe_clean(page, "the outbox")
        await rows.nth(1).get_by_role("link", name="An update on Boiler service, flat 2").click()
        await page.wait_for_url(re.compile(r"/outbox/\d+$"))
        await expect(page.get_by_role("region", name="Message text")).to_contain_text(
            "The engineer is running 20 minutes late."
        )
        await expect(page.get_by_text("olga@jobline.test", exact=True)).to_be_visible()
        await axe_clean(page, "a message")
    finally:
        await context.close()
