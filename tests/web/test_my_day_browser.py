"""The technician's day in real Chromium at phone size (390x844), as a person: sign in, land on
/my, On my way, Arrived, Complete with the required receipt field (refused once without it, what
was typed kept), and the job is completed. Also axe-core on /my at desktop and phone width."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Locator, Page

from tests.api.journeys import dispatched_and_scheduled, drive
from tests.api.settings import CLOSEOUT, put, read, restoring
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
SERIAL = {"key": "unit_serial", "label": "Unit serial number", "type": "text", "required": True}


async def _scheduled_visit(stack: Stack, technician: str, client_name: str) -> str:
    """A job scheduled for `technician` from an hour ago, its checklist done."""
    customer = await stack.new_client(
        name=client_name, phone="+1 555 0177", address="12 Harbour Road, Portsmouth"
    )
    job = await stack.new_job(
        client_id=customer["id"], title="No cooling, unit 4", description="Key at reception."
    )
    start = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(hours=1)
    window = {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
    }
    await drive(
        stack,
        job["slug"],
        dispatched_and_scheduled(technician, window),
    )
    return job["slug"]


async def _card(page: Page, client_name: str) -> Locator:
    """The visit's card, opened if it is not the next one (a tap on its summary)."""
    card = page.locator("article.visit", has_text=client_name)
    await card.wait_for()
    if await card.locator("details").get_attribute("open") is None:
        await card.locator("summary").click()
    return card


async def _tap(page: Page, base: str, control: Locator) -> None:
    """Tap a button or link and wait for the page it leads to to load."""
    async with page.expect_navigation():
        await control.click()


async def test_a_technician_at_phone_size_completes_a_job_with_required_receipt_fields(
    stack: Stack, browser: Browser, base_url: str
) -> None:
    async with restoring(stack):
        closeout = await read(stack, CLOSEOUT)
        fields = [f for f in closeout["receipt_fields"] if f["key"] != SERIAL["key"]]
        closeout["receipt_fields"] = [*fields, SERIAL]
        closeout.pop("webhook_secret_set", None)
        answer = await put(stack, CLOSEOUT, closeout)
        assert answer.status_code == 200, answer.text
        others = [f for f in fields if f["required"]]
        assert not others, f"another test left required receipt fields: {others}"

        client_name = f"Harbour Cafe {uuid.uuid4().hex[:5]}"
        slug = await _scheduled_visit(stack, "tess", client_name)
        await give_password(stack, "tess", PASSWORD)

        context = await browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)  # type: ignore[arg-type]
        try:
            page = await context.new_page()
            await sign_in(page, base_url, "tess", PASSWORD)
            await page.wait_for_url(f"{base_url}/my")
            await page.get_by_role("heading", name="My day", level=1).wait_for()
            fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, "/my scrolls sideways at phone width"

            card = await _card(page, client_name)
            await card.get_by_text("Key at reception.").wait_for()
            assert await card.get_by_role("link", name="Open in maps").get_attribute("href") == (
                "https://maps.google.com/?q=12%20Harbour%20Road%2C%20Portsmouth"
            )
            call = card.get_by_role("link", name=f"Call {client_name}")
            assert await call.get_attribute("href") == "tel:+15550177"
            await card.get_by_text("Texts and emails the customer").wait_for()
            await _tap(page, base_url, card.get_by_role("button", name="On my way"))
            assert page.url == f"{base_url}/my"
            await page.get_by_role("status").get_by_text("Done").wait_for()

            job = (await stack.get("tess", f"/api/v1/jobs/{slug}")).json()
            told = {m["channel"] for m in job["communications"] if m["purpose"] == "on_my_way"}
            assert (job["stage"], told) == ("dispatched", {"email", "sms"})

            card = await _card(page, client_name)
            await _tap(page, base_url, card.get_by_role("button", name="Arrived"))
            assert page.url == f"{base_url}/my"

            card = await _card(page, client_name)
            await card.get_by_role("link", name="Can't finish").wait_for()
            await _tap(page, base_url, card.get_by_role("link", name="Complete"))
            assert f"/jobs/{slug}/events/job_completed" in page.url
            fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, "the completion form scrolls sideways at phone width"

            work = "Replaced the condenser fan motor; tested cooling for 20 minutes."
            await page.get_by_label("Work performed").fill(work)
            # Without the required receipt field: refused, in words, and nothing typed is lost.
            await _tap(page, base_url, page.get_by_role("button", name="Complete job"))
            await page.get_by_role("alert").get_by_text("Unit serial number").first.wait_for()
            assert await page.get_by_label("Work performed").input_value() == work
            job = (await stack.get("tess", f"/api/v1/jobs/{slug}")).json()
            assert job["stage"] == "on_site"

            await page.get_by_label("Unit serial number").fill("SN-4411-B")
            await _tap(page, base_url, page.get_by_role("button", name="Complete job"))
            assert page.url == f"{base_url}/my"
            await page.get_by_role("status").get_by_text("Done").wait_for()
            assert await page.locator("article.visit", has_text=client_name).count() == 0

            job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
            assert job["stage"] == "completed", job
            completion = job["completion"]
            assert completion["work_performed"] == work
            assert completion["fields"] == {"unit_serial": "SN-4411-B"}
            assert completion["completed_by"] == "tess"

            # Done visits are under Previous.
            await _tap(page, base_url, page.get_by_role("link", name="Previous"))
            await page.locator("article.visit", has_text=client_name).wait_for()
        finally:
            await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_my_day(
    stack: Stack, browser: Browser, base_url: str, viewport: dict[str, int]
) -> None:
    client_name = f"Axe Bakery {uuid.uuid4().hex[:5]}"
    await _scheduled_visit(stack, "tom", client_name)
    await give_password(stack, "tom", PASSWORD)
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    requested: list[str] = []
    try:
        page = await context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        await sign_in(page, base_url, "tom", PASSWORD)
        await page.wait_for_url(f"{base_url}/my")
        await page.locator("article.visit", has_text=client_name).wait_for()
        found = {"/my": await serious_violations(page)}
        await page.goto(f"{base_url}/my?day=previous")
        found["/my?day=previous"] = await serious_violations(page)
        assert found == {"/my": [], "/my?day=previous": []}
        assert [url for url in requested if not url.startswith(base_url)] == []
    finally:
        await context.close()
