"""The office's week in real Chromium (issue 9 item 3 and its tests): an office user signs in,
creates a client and a job at /jobs/new, and takes the job from lead to closed by clicking and
typing on the job page only; a sales user's approval request goes to a manager, who approves;
axe-core on the job page and on an event form, at desktop and phone width.

SQLite only (the forms' database work is tested on both backends in tests/api/test_job_page.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.api.journeys import QUOTE
from tests.api.settings import closeout_settings
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "office journey password"
DESKTOP = {"width": 1280, "height": 800}
RECEIPT = [{"key": "serial_number", "label": "Serial number", "type": "text", "required": True}]


@pytest.fixture
async def passwords(stack: Stack) -> None:
    for username in ("olga", "mia", "sam", "tess"):
        await give_password(stack, username, PASSWORD)


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def _signed_in(
    browser: Browser, contexts: list[BrowserContext], base: str, username: str,
    viewport: dict[str, int] = DESKTOP,
) -> Page:  # fmt: skip
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    contexts.append(context)
    page = await context.new_page()
    await sign_in(page, base, username, PASSWORD)
    return page


def _form(page: Page, event_type: str) -> Locator:
    return page.locator(f"form[data-event={event_type}]")


async def _primary(page: Page, heading: str) -> Locator:
    """The Next panel's main action: its heading says what it is."""
    section = page.locator("section.event.primary")
    await expect(section.get_by_role("heading", name=heading)).to_be_visible()
    return section.locator("form")


async def _done(page: Page, button: str) -> None:
    await expect(page.get_by_role("status").filter(has_text=f"Done: {button}.")).to_be_visible()


async def _click(form: Locator, button: str) -> None:
    await form.get_by_role("button", name=button, exact=True).click()


async def test_an_office_user_takes_a_job_from_lead_to_closed_on_the_job_page(
    stack: Stack, browser: Browser, base_url: str, passwords: None,
    contexts: list[BrowserContext],
) -> None:  # fmt: skip
    async with closeout_settings(stack, receipt_fields=RECEIPT):
        olga = await _signed_in(browser, contexts, base_url, "olga")
        # Name, email and phone no other test's client has: a shared one is a likely duplicate.
        name = f"Bakery {uuid.uuid4().hex[:6]}"
        digits = f"{uuid.uuid4().int % 10**7:07d}"
        await olga.get_by_role("link", name="New job").click()
        await olga.get_by_role("textbox", name="Name", exact=True).fill(name)
        await olga.get_by_role("textbox", name="Email (optional)", exact=True).fill(
            f"owner-{digits}@bakery.example"
        )
        await olga.get_by_role("textbox", name="Phone (optional)").fill(f"+1 555 {digits}")
        await olga.get_by_role("textbox", name="Address (optional)", exact=True).fill(
            "12 Baker Street"
        )
        await olga.get_by_label("Title").fill("Walk-in cooler warm")
        await olga.get_by_label("How the job came in").select_option(label="Incoming call")
        await olga.get_by_role("button", name="Create job").click()
        await olga.wait_for_url(re.compile(rf"{base_url}/jobs/[a-z0-9]+$"))
        slug = olga.url.rsplit("/", 1)[1]
        await expect(olga.get_by_role("heading", level=1)).to_have_text("Walk-in cooler warm")
        await expect(olga.get_by_text("Unassigned lead since")).to_be_visible()
        await expect(olga.get_by_role("link", name=f"Call +1 555 {digits}")).to_have_attribute(
            "href", f"tel:+1555{digits}"
        )

        form = await _primary(olga, "Assign owner")
        await form.get_by_label("Owner").select_option(label="olga (office)")
        await _click(form, "Assign owner")
        await _done(olga, "Assign owner")

        await _click(await _primary(olga, "Qualify lead"), "Qualify lead")
        await _done(olga, "Qualify lead")

        form = await _primary(olga, "Draft quote")
        line = form.locator("fieldset.row").nth(0)
        await line.get_by_label("Description").fill("Compressor")
        await line.get_by_label("Quantity").fill("1")
        await line.get_by_label("Unit price").fill("1200")
        line = form.locator("fieldset.row").nth(1)
        await line.get_by_label("Description").fill("Labour")
        await line.get_by_label("Quantity").fill("2.5")
        await line.get_by_label("Unit price").fill("80")
        # "Add a row" adds one here (our script), ready to type in; an empty row is skipped.
        await _click(form, "Add a row")
        await expect(form.get_by_role("group", name="Line 4")).to_be_visible()
        added = form.get_by_role("group", name="Line 4").get_by_label("SKU")  # the builder's first
        await expect(added).to_be_focused()
        # The running total while typing (our script), before anything is sent.
        await expect(form.locator("[data-total-of=lines]")).to_have_text("$1,400.00")
        await _click(form, "Draft quote")
        await _done(olga, "Draft quote")
        await expect(olga.get_by_role("cell", name="$1,400.00")).to_be_visible()

        await _click(await _primary(olga, "Send quote"), "Send quote")
        await _done(olga, "Send quote")
        await _click(await _primary(olga, "Mark quote approved"), "Mark quote approved")
        await _done(olga, "Mark quote approved")
        await expect(olga.locator(".job-number")).to_contain_text("Job #")

        form = await _primary(olga, "Schedule visit")
        await form.get_by_label("Technician").select_option(label="tess (technician)")
        await form.get_by_label("Window starts").fill("2030-07-02T09:00")
        await form.get_by_label("Window ends").fill("2030-07-02T11:00")
        await _click(form, "Schedule visit")
        await _done(olga, "Schedule visit")
        # Typed in the company's zone (UTC here), shown with the zone named.
        await expect(olga.get_by_text("Tue 2 Jul, 09:00–11:00 UTC").first).to_be_visible()

        form = await _primary(olga, "Complete checklist")
        await form.get_by_label("Parts verified").check()
        await form.get_by_label("Check-in phone").fill("+1 555 0100")
        await form.get_by_label("Not allowed").check()
        await _click(form, "Complete checklist")
        await _done(olga, "Complete checklist")

        await _click(await _primary(olga, "Dispatch technician"), "Dispatch technician")
        await _done(olga, "Dispatch technician")
        await _click(await _primary(olga, "Check in"), "Check in")
        await _done(olga, "Check in")

        # The required receipt field, left empty: refused on the form, the typed work kept.
        form = await _primary(olga, "Complete job")
        await form.get_by_label("Work performed").fill("Replaced the compressor")
        await _click(form, "Complete job")
        summary = olga.get_by_role("alert")
        await expect(summary).to_contain_text("Serial number (serial_number) is required")
        await expect(summary).to_be_focused()
        form = _form(olga, "job_completed")
        await expect(form.get_by_label("Work performed")).to_have_value("Replaced the compressor")
        await summary.get_by_role("link", name=re.compile("Serial number")).click()
        await expect(form.get_by_label("Serial number")).to_be_focused()
        await form.get_by_label("Serial number").fill("SN-42")
        await _click(form, "Complete job")
        await _done(olga, "Complete job")

        form = await _primary(olga, "Send invoice")
        await expect(form.locator("fieldset.row").nth(0).get_by_label("Description")).to_have_value(
            "Compressor"
        )
        await expect(form.locator("[data-total-of=lines]")).to_have_text("$1,400.00")
        await _click(form, "Send invoice")
        await _done(olga, "Send invoice")

        mia = await _signed_in(browser, contexts, base_url, "mia")
        await mia.goto(f"{base_url}/jobs/{slug}")
        form = await _primary(mia, "Verify evidence")
        for item in ("Documents", "Notes", "Parts usage", "Photos", "Customer communication"):
            await form.get_by_label(item, exact=True).check()
        await _click(form, "Verify evidence")
        await _done(mia, "Verify evidence")

        await olga.goto(f"{base_url}/jobs/{slug}")
        form = await _primary(olga, "Record payment")
        await expect(form.get_by_label("Amount")).to_have_value("1400.00")
        await form.get_by_label("Method").select_option(label="Card")
        await _click(form, "Record payment")
        await _done(olga, "Record payment")
        await expect(olga.get_by_text("Stage: closed")).to_be_visible()
        final = olga.get_by_text("This job is closed: it takes no more actions.")
        await expect(final).to_be_visible()

    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["stage"] == "closed" and job["completion"]["fields"] == {"serial_number": "SN-42"}
    assert job["client"]["name"] == name and job["owner"] == "olga"


async def test_a_sales_users_approval_request_goes_to_a_manager_who_approves(
    stack: Stack, browser: Browser, base_url: str, passwords: None,
    contexts: list[BrowserContext],
) -> None:  # fmt: skip
    job = await stack.new_job("sam", title="Office heat pump")
    slug = job["slug"]
    sam = await _signed_in(browser, contexts, base_url, "sam")
    await sam.goto(f"{base_url}/jobs/{slug}")
    await _click(await _primary(sam, "Qualify lead"), "Qualify lead")
    form = await _primary(sam, "Draft quote")
    line = form.locator("fieldset.row").nth(0)
    await line.get_by_label("Description").fill("Heat pump service")
    await line.get_by_label("Quantity").fill("1")
    await line.get_by_label("Unit price").fill("350")
    await _click(form, "Draft quote")
    await _click(await _primary(sam, "Send quote"), "Send quote")
    # A sales user is not offered the approval itself: the request for it leads.
    await expect(_form(sam, "quote_approved")).to_have_count(0)
    form = await _primary(sam, "Request manager approval")
    await form.get_by_label("Note for the manager").fill("Long-standing customer")
    await _click(form, "Request manager approval")
    await _done(sam, "Request manager approval")
    await expect(sam.get_by_text("Waiting on a manager to approve the quote")).to_be_visible()

    mia = await _signed_in(browser, contexts, base_url, "mia")
    await mia.goto(f"{base_url}/jobs/{slug}")
    await expect(mia.get_by_text("Waiting on a manager to approve the quote")).to_be_visible()
    await _click(await _primary(mia, "Grant approval"), "Grant approval")
    await _done(mia, "Grant approval")
    await expect(mia.get_by_text("Stage: approved")).to_be_visible()
    assert (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["stage"] == "approved"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_the_job_page_and_an_event_form(
    stack: Stack, browser: Browser, base_url: str, passwords: None,
    contexts: list[BrowserContext], viewport: dict[str, int],
) -> None:  # fmt: skip
    job = await stack.new_job("sam", title="Rooftop unit noisy", description="Rattles at night")
    slug = job["slug"]
    # A job with something in every part of the page: a quote, a message, a document, a note.
    steps = [("lead_qualified", {}), ("quote_drafted", QUOTE), ("quote_sent", {}),
             ("note_added", {"text": "Gate code 4711"})]  # fmt: skip
    for event_type, body in steps:
        assert (await stack.event("sam", slug, event_type, **body)).status_code == 200
    olga = await _signed_in(browser, contexts, base_url, "olga", viewport)
    requested: list[str] = []
    olga.on("request", lambda request: requested.append(request.url))
    await olga.goto(f"{base_url}/jobs/{slug}")
    # Every action's form open, as a person would open them.
    for summary in await olga.locator("details.event > summary").all():
        await summary.click()
    found = {"job page": await serious_violations(olga)}
    found["job page fits"] = await _fits(olga)
    await olga.goto(f"{base_url}/jobs/{slug}/events/quote_drafted")
    found["event form"] = await serious_violations(olga)
    form = _form(olga, "quote_drafted")
    await form.locator("fieldset.row").nth(0).get_by_label("Quantity").fill("two")
    await _click(form, "Revise quote")  # refused: the errors at the top and at the field
    await expect(olga.get_by_role("alert")).to_contain_text("Line 1, quantity")
    found["event form (error)"] = await serious_violations(olga)
    found["event form fits"] = await _fits(olga)
    assert found == {
        "job page": [], "job page fits": [], "event form": [], "event form (error)": [],
        "event form fits": [],
    }  # fmt: skip
    assert [url for url in requested if not url.startswith(base_url)] == []


async def _fits(page: Page) -> list[str]:
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return [] if fits else [f"{page.url} scrolls sideways"]
