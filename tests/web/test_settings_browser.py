"""Settings pages in real Chromium, as an admin: a template changed in the browser is the text of
the next message of its purpose; the receipt-field editor adds a required field by clicking; and
axe-core finds nothing serious on each settings page, at desktop and phone width.

SQLite only (the httpx tests in tests/api/test_settings_pages.py run both databases). Settings are
shared by the session: each test puts back what it found.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from core import settings_store
from core.settings_store import BRANDING, CLOSEOUT, COMMUNICATIONS
from models.branding import BrandingSettings
from models.closeout import CloseoutSettings
from models.communications import CommunicationSettings
from tests.conftest import Stack
from tests.web.conftest import PHONE, person_with_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PAGES = ("/settings", "/settings/communications", "/settings/closeout", "/settings/branding")


@pytest.fixture
async def admin(stack: Stack) -> str:
    return await person_with_password(stack, "admin", PASSWORD, "a")


@pytest.fixture
async def kept(stack: Stack) -> AsyncIterator[None]:
    """The settings documents as they were, put back after the test."""
    async with stack.db.session() as session:
        before = (
            await settings_store.load(session, COMMUNICATIONS, CommunicationSettings),
            await settings_store.load(session, CLOSEOUT, CloseoutSettings),
            await settings_store.load(session, BRANDING, BrandingSettings),
        )
    yield
    async with stack.db.session() as session:
        for name, document in zip((COMMUNICATIONS, CLOSEOUT, BRANDING), before, strict=True):
            await settings_store.save(session, name, document, "test")


async def _signed_in(browser: Browser, base: str, username: str, viewport: dict) -> BrowserContext:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await sign_in(page, base, username, PASSWORD)
    await page.close()
    return context


async def test_a_template_change_shows_in_the_next_message(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    words = f"Our new words {uuid.uuid4().hex[:6]}"
    context = await _signed_in(browser, base_url, admin, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/jobs")
        await page.get_by_role("link", name="Settings").first.click()
        await page.get_by_role("link", name="Communications").first.click()
        await page.wait_for_url(f"{base_url}/settings/communications")
        template = page.get_by_role("region", name="Customer update (the Send dialog)")
        body = template.get_by_label("Email body")
        await body.fill(f"Hello {{{{ client_name }}}},\n\n{words}: {{{{ message }}}}\n")
        # Seen first with a sample job, nothing saved...
        await page.get_by_role("button", name="Preview with a sample job").click()
        preview = page.get_by_role("group", name="Preview of Customer update (the Send dialog)")
        sample = "Your technician will call about 30 minutes before arriving."  # the sample job's
        await preview.get_by_text(f"{words}: {sample}").wait_for()
        # ...then saved, with everything typed still in the form.
        assert words in await template.get_by_label("Email body").input_value()
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("status").get_by_text("Applies from the next message").wait_for()
        assert page.url == f"{base_url}/settings/communications"
    finally:
        await context.close()

    job = await stack.new_job()
    sent = await stack.post("olga", f"/api/v1/jobs/{job['slug']}/send", {"message": "Parts in."})
    assert sent.status_code == 202, sent.text
    (email,) = [m for m in sent.json()["messages"] if m["channel"] == "email"]
    assert email["purpose"] == "customer_update"
    assert f"{words}: Parts in." in email["body"]
    # The outbox holds the same words.
    outbox = await stack.get("olga", "/api/v1/outbox", params={"job_slug": job["slug"]})
    assert any(f"{words}: Parts in." in m["body"] for m in outbox.json()["items"])


async def test_the_receipt_field_editor_adds_a_required_field_by_clicking(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    key = f"gauge_{uuid.uuid4().hex[:4]}"
    context = await _signed_in(browser, base_url, admin, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/settings/closeout")
        new_rows = page.get_by_role("group", name="(new)")
        before = await new_rows.count()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Add a field").click()
        assert await new_rows.count() == before + 1
        row = new_rows.last
        await row.get_by_label("Label").fill("Gauge reading")
        await row.get_by_label("Key").fill(key)
        await row.get_by_label("Type").select_option(label="Dropdown (pick one option)")
        await row.get_by_label("Options (dropdown only)").fill("Low\nNormal\nHigh")
        await row.get_by_label("Required: the job cannot be completed without it").check()
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("status").get_by_text("Applies to jobs completed").wait_for()
        # The saved field is on the page, under its label.
        await page.get_by_role("group", name="Gauge reading").wait_for()
    finally:
        await context.close()
    closeout = (await stack.get("ada", "/api/v1/settings/closeout")).json()
    (field,) = [f for f in closeout["receipt_fields"] if f["key"] == key]
    assert field == {
        "key": key,
        "label": "Gauge reading",
        "type": "dropdown",
        "required": True,
        "options": ["Low", "Normal", "High"],
    }


async def test_a_logo_over_one_mib_is_refused_before_it_is_uploaded(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    before = (await stack.get("ada", "/api/v1/settings/branding")).json()
    context = await _signed_in(browser, base_url, admin, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/settings/branding")
        big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024)
        await page.get_by_label("Logo").set_input_files(
            {"name": "logo.png", "mimeType": "image/png", "buffer": big}
        )
        await page.get_by_text("The logo is larger than 1 MiB").wait_for()
        posted: list[str] = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        await page.get_by_role("button", name="Save", exact=True).click()
        assert await page.evaluate("document.activeElement.id") == "logo"
        assert posted == []
    finally:
        await context.close()
    assert (await stack.get("ada", "/api/v1/settings/branding")).json() == before


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_the_settings_pages(
    browser: Browser, base_url: str, admin: str, viewport: dict[str, int]
) -> None:
    context = await _signed_in(browser, base_url, admin, viewport)
    requested: list[str] = []
    try:
        page = await context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        found: dict[str, list[str]] = {}
        for path in PAGES:
            await page.goto(f"{base_url}{path}")
            found[path] = await serious_violations(page)
            assert await _fits(page), f"{path} scrolls sideways"
        # The error state (summary and field messages) and the template preview too. Nothing
        # is saved by either.
        await page.goto(f"{base_url}/settings/branding")
        await page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("alert").get_by_text("Unknown time zone").wait_for()
        # The summary is read first (focused), and links to the field.
        assert await page.evaluate("document.activeElement.className") == "error-summary"
        await page.get_by_role("alert").get_by_role("link", name="Unknown time zone").click()
        assert await page.evaluate("document.activeElement.id") == "timezone"
        found["/settings/branding (error)"] = await serious_violations(page)
        await page.goto(f"{base_url}/settings/communications")
        await page.get_by_role("button", name="Preview with a sample job").click()
        await page.get_by_text("Nothing was saved and nothing was sent").wait_for()
        found["/settings/communications (preview)"] = await serious_violations(page)
        assert await _fits(page), "the preview scrolls sideways"
        assert found == dict.fromkeys(found, [])
        assert [url for url in requested if not url.startswith(base_url)] == []
    finally:
        await context.close()


async def test_a_read_only_person_sees_why(browser: Browser, base_url: str, stack: Stack) -> None:
    username = await person_with_password(stack, "office", PASSWORD, "o")
    context = await _signed_in(browser, base_url, username, PHONE)
    try:
        page = await context.new_page()
        for path in PAGES[1:]:
            await page.goto(f"{base_url}{path}")
            await page.get_by_text("Only an admin can change these settings.").wait_for()
            assert await page.get_by_role("button", name="Save").count() == 0
        assert await serious_violations(page) == []
    finally:
        await context.close()


async def _fits(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
