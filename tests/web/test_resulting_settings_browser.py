"""`/settings/resulting` in real Chromium: an admin adds a dropdown field with its options by
clicking and saves it; a save the rules refuse shows its problem in the summary and at its field;
the dry run shows its checks; axe-core finds nothing serious (the form, its error state, the dry
run's answer, and the read-only page), and nothing scrolls sideways at phone width (390 px).

SQLite only (the httpx tests in tests/api/test_resulting_settings_page.py run both databases).
The resulting settings are shared by the session: each test puts back what it found.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from api.resulting import settings as resulting_settings
from models.resulting import ResultingSettings
from tests.conftest import Stack
from tests.web.conftest import PHONE, person_with_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PATH = "/settings/resulting"


@pytest.fixture
async def admin(stack: Stack) -> str:
    return await person_with_password(stack, "admin", PASSWORD, "a")


@pytest.fixture
async def kept(stack: Stack) -> AsyncIterator[None]:
    """The resulting settings as they were, put back after the test."""
    async with stack.db.session() as session:
        before = await resulting_settings.load(session)
    yield
    async with stack.db.session() as session:
        await resulting_settings.save(session, before, "test")


async def _stored(stack: Stack) -> ResultingSettings:
    async with stack.db.session() as session:
        return await resulting_settings.load(session)


async def _signed_in(browser: Browser, base: str, username: str, viewport: dict) -> BrowserContext:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await sign_in(page, base, username, PASSWORD)
    await page.close()
    return context


async def _fits(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def _turn_on(page: Page) -> None:
    """Resulting on, with an address for each type: a form the rules accept."""
    await page.get_by_label("Resulting is on").check()
    await page.get_by_label("Email each Sale result to").fill("sales@example.com")
    await page.get_by_label("Email each No Sale result to").fill(
        "sales@example.com, manager@example.com"
    )


async def test_an_admin_adds_a_dropdown_field_with_options_and_saves(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    key = f"competitor_{uuid.uuid4().hex[:4]}"
    context = await _signed_in(browser, base_url, admin, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/settings")
        await page.get_by_role("link", name="Resulting").first.click()
        await page.wait_for_url(f"{base_url}{PATH}")
        await _turn_on(page)
        no_sale = page.get_by_role("region", name="No Sale", exact=True)
        new_rows = no_sale.get_by_role("group", name="(new)")
        before = await new_rows.count()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Add a field to No Sale").click()
        assert await new_rows.count() == before + 1
        # What was typed before "Add a field" is still there.
        assert await page.get_by_label("Resulting is on").is_checked()
        row = new_rows.last
        # The options box belongs to dropdowns: shown once the type is one.
        options = row.get_by_label("Options (dropdown only)")
        assert not await options.is_visible()
        await row.get_by_label("Label").fill("Who we lost it to")
        await row.get_by_label("Key").fill(key)
        await row.get_by_label("Type").select_option(label="Dropdown (pick one option)")
        await options.fill("Acme Air\nBest HVAC\nCool Co")
        await row.get_by_label("Required: a No Sale result cannot be submitted without it").check()
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("status").get_by_text("Results submitted from now on").wait_for()
        assert page.url == f"{base_url}{PATH}"
        # The saved field is on the page, under its label, with its options.
        saved = no_sale.get_by_role("group", name="Who we lost it to")
        await saved.wait_for()
        assert await saved.get_by_label("Type").input_value() == "dropdown"
        assert await saved.get_by_label("Options (dropdown only)").input_value() == (
            "Acme Air\nBest HVAC\nCool Co"
        )
    finally:
        await context.close()
    stored = await _stored(stack)
    assert stored.enabled
    assert stored.types.no_sale.recipients == ["sales@example.com", "manager@example.com"]
    (field,) = [f for f in stored.types.no_sale.fields if f.key == key]
    assert field.model_dump() == {
        "key": key,
        "label": "Who we lost it to",
        "type": "dropdown",
        "required": True,
        "options": ["Acme Air", "Best HVAC", "Cool Co"],
    }


async def test_a_refused_save_names_the_problem_and_keeps_the_form(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    before = await _stored(stack)
    context = await _signed_in(browser, base_url, admin, PHONE)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}{PATH}")
        await _turn_on(page)
        await page.get_by_label("Email each Sale result to").fill("")
        await page.get_by_label("Flag a job as unresulted after (days)").fill("12")
        await page.get_by_role("button", name="Save", exact=True).click()
        summary = page.get_by_role("alert")
        await summary.get_by_text("Sale (sale) has no recipients").wait_for()
        # The summary is read first, and its link goes to the field, where the words are again.
        assert await page.evaluate("document.activeElement.className") == "error-summary"
        await summary.get_by_role("link", name="Sale (sale) has no recipients").click()
        assert await page.evaluate("document.activeElement.id") == "sale-recipients"
        recipients = page.get_by_label("Email each Sale result to")
        assert await recipients.get_attribute("aria-invalid") == "true"
        assert await page.locator("#sale-recipients-error").is_visible()
        # What was typed is kept.
        assert await page.get_by_label("Resulting is on").is_checked()
        days = page.get_by_label("Flag a job as unresulted after (days)")
        assert await days.input_value() == "12"
        assert await serious_violations(page) == []
        assert await _fits(page), "the refused form scrolls sideways"
        # A dropdown with one option: named at its options box, shown whatever the type says.
        await recipients.fill("sales@example.com")
        sale = page.get_by_role("region", name="Sale", exact=True)
        row = sale.get_by_role("group", name="(new)").last
        await row.get_by_label("Label").fill("Financing")
        await row.get_by_label("Key").fill("financing")
        await row.get_by_label("Type").select_option(label="Dropdown (pick one option)")
        await row.get_by_label("Options (dropdown only)").fill("Cash")
        # Enter in a text box saves (the form's first button), as the Save button does.
        await days.press("Enter")
        await page.get_by_role("alert").get_by_text("give it at least two options").wait_for()
        financing = sale.get_by_role("group", name="Financing")
        await financing.get_by_text("give it at least two options").wait_for()
        assert await financing.get_by_label("Options (dropdown only)").input_value() == "Cash"
    finally:
        await context.close()
    assert await _stored(stack) == before


async def test_the_dry_run_shows_its_checks(
    browser: Browser, base_url: str, stack: Stack, admin: str, kept: None
) -> None:
    before = await _stored(stack)
    context = await _signed_in(browser, base_url, admin, PHONE)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}{PATH}")
        await _turn_on(page)
        await page.get_by_role("button", name="Try these settings (dry run)").click()
        answer = page.get_by_role("region", name="Dry run: every check passed")
        await answer.wait_for()
        # Read first; each check with its mark in words and what it found.
        assert await page.evaluate("document.activeElement.id") == "dry-run"
        checks = answer.get_by_role("listitem")
        assert await checks.count() >= 5
        assert await answer.get_by_text("Failed", exact=True).count() == 0
        await answer.get_by_text("Sale: required fields are enforced", exact=True).wait_for()
        await answer.get_by_text("No Sale: the email is written").wait_for()
        assert await answer.get_by_text("OK", exact=True).count() == await checks.count()
        # The form still holds what was tried (unsaved); the outbox link is filtered to results.
        assert await page.get_by_label("Resulting is on").is_checked()
        link = answer.get_by_role("link", name="See the result messages in the outbox")
        assert await link.get_attribute("href") == "/outbox?purpose=result"
        assert await serious_violations(page) == []
        assert await _fits(page), "the dry run's answer scrolls sideways"
        # Turned off and with nobody to email: the checks that fail say so.
        await page.get_by_label("Resulting is on").uncheck()
        await page.get_by_label("Email each Sale result to").fill("")
        await page.get_by_label("Email each No Sale result to").fill("")
        await page.get_by_role("button", name="Try these settings (dry run)").click()
        failed = page.locator("#dry-run")
        await failed.get_by_role("heading", name="checks failed").wait_for()
        await failed.get_by_text("nobody would be emailed").first.wait_for()
        assert await failed.get_by_text("Failed", exact=True).count() >= 3
        await failed.get_by_role("link", name="See the result messages in the outbox").click()
        await page.wait_for_url(f"{base_url}/outbox?purpose=result")
    finally:
        await context.close()
    assert await _stored(stack) == before


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_and_nothing_scrolls_sideways(
    browser: Browser, base_url: str, stack: Stack, admin: str, viewport: dict[str, int]
) -> None:
    office = await person_with_password(stack, "office", PASSWORD, "o")
    requested: list[str] = []
    for username in (admin, office):
        context = await _signed_in(browser, base_url, username, viewport)
        try:
            page = await context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{base_url}{PATH}")
            if username == office:
                await page.get_by_text("Only an admin can change these settings.").wait_for()
                assert await page.get_by_role("button", name="Save").count() == 0
            assert await serious_violations(page) == [], username
            assert await _fits(page), f"{PATH} scrolls sideways for {username}"
            assert [url for url in requested if not url.startswith(base_url)] == []
        finally:
            await context.close()
