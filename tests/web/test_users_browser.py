"""Users in real Chromium, as people: an admin invites a person at /settings/users, the person
opens the one-time link in a browser of their own, sets a password and lands signed in; the link
then refuses. Also axe-core on /settings/users, a person's page, the link shown once and
/invite/{token}, at desktop and phone width."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import Stack
from tests.web.conftest import PHONE, person_with_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}


async def _invite(page: Page, username: str, display_name: str, role: str) -> str:
    """Fill in and send the invite form; the link's path as shown to the admin."""
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Display name").fill(display_name)
    await page.get_by_label("Email").fill(f"{username}@jobline.test")
    await page.get_by_label("Role").select_option(role)
    await page.get_by_role("button", name="Invite").click()
    await page.get_by_role("heading", name=f"Pass this link on to {display_name}").wait_for()
    link = await page.get_by_label("One-time link").input_value()
    return urlsplit(link).path


async def test_an_admin_invites_a_person_who_sets_a_password_and_is_signed_in(
    stack: Stack, browser: Browser, base_url: str
) -> None:
    admin = await person_with_password(stack, "admin", PASSWORD, "admin")
    newcomer = f"o{uuid.uuid4().hex[:8]}"
    theirs = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    office = await browser.new_context()
    try:
        page = await office.new_page()
        await sign_in(page, base_url, admin, PASSWORD, then="/settings/users")
        # A mistake first: refused in words, what was typed kept.
        await page.get_by_label("Username").fill(newcomer)
        await page.get_by_label("Display name").fill("Ola Office")
        await page.get_by_label("Email").fill("no at sign")
        await page.get_by_role("button", name="Invite").click()
        await page.get_by_role("alert").get_by_text("Enter an email address").wait_for()
        assert await page.get_by_label("Display name").input_value() == "Ola Office"
        assert await page.get_by_label("Username").input_value() == newcomer

        path = await _invite(page, newcomer, "Ola Office", "office")
        assert path.startswith("/invite/")
        await page.get_by_role("link", name="Done").click()
        await page.get_by_text("Invited", exact=True).wait_for()

        mine = await theirs.new_page()
        await mine.goto(f"{base_url}{path}")
        await mine.get_by_role("heading", name="Welcome, Ola Office").wait_for()
        await mine.get_by_label("New password", exact=True).fill(PASSWORD)
        await mine.get_by_label("New password again").fill(PASSWORD + "!")
        await mine.get_by_role("button", name="Set password and sign in").click()
        await mine.get_by_role("alert").get_by_text("The two passwords differ").wait_for()
        await mine.get_by_label("New password", exact=True).fill(PASSWORD)
        await mine.get_by_label("New password again").fill(PASSWORD)
        await mine.get_by_role("button", name="Set password and sign in").click()
        await mine.wait_for_url(f"{base_url}/jobs")
        await mine.get_by_text("Signed in as Ola Office (office)", exact=True).wait_for()
        await mine.get_by_role("status").get_by_text("Welcome, Ola Office.").wait_for()

        # The link worked once: now it says so.
        answer = await mine.goto(f"{base_url}{path}")
        assert answer is not None and answer.status == 410
        await mine.get_by_role("heading", name="This invitation link does not work").wait_for()

        # The admin sees them active now, and can change their role.
        await page.goto(f"{base_url}/settings/users/{newcomer}")
        await page.get_by_label("Role").select_option("sales")
        await page.get_by_role("button", name="Change role").click()
        await page.get_by_role("status").get_by_text(f"Saved: {newcomer} is now sales.").wait_for()
    finally:
        await theirs.close()
        await office.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_the_users_pages(
    stack: Stack, browser: Browser, base_url: str, viewport: dict[str, int]
) -> None:
    admin = await person_with_password(stack, "admin", PASSWORD, "admin")
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    stranger = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    requested: list[str] = []
    try:
        page = await context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        await sign_in(page, base_url, admin, PASSWORD, then="/settings/users")
        found = {"/settings/users": await serious_violations(page)}
        await page.get_by_role("button", name="Invite").click()  # empty: the error state
        await page.get_by_role("alert").wait_for()
        found["/settings/users (errors)"] = await serious_violations(page)
        newcomer = f"t{uuid.uuid4().hex[:8]}"
        path = await _invite(page, newcomer, "Tam Tech", "technician")
        found["invite link"] = await serious_violations(page)
        await page.goto(f"{base_url}/settings/users/{newcomer}")
        found["/settings/users/{name}"] = await serious_violations(page)
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "a person's page scrolls sideways"

        theirs = await stranger.new_page()
        theirs.on("request", lambda request: requested.append(request.url))
        await theirs.goto(f"{base_url}{path}")
        found["/invite/{token}"] = await serious_violations(theirs)
        await theirs.get_by_role("button", name="Set password and sign in").click()
        await theirs.get_by_role("alert").wait_for()
        found["/invite/{token} (errors)"] = await serious_violations(theirs)
        await theirs.goto(f"{base_url}/invite/not-a-token")
        found["/invite (dead)"] = await serious_violations(theirs)
        assert found == {name: [] for name in found}
        assert [url for url in requested if not url.startswith(base_url)] == []
    finally:
        await stranger.close()
        await context.close()
