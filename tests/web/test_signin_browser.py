"""Sign-in in real Chromium, as a person: labels, buttons and forms only, against uvicorn on a
real socket. Also the cookie's flags as the browser stored them, the CSRF refusal, the slowing
of wrong passwords, and axe-core on each page at desktop and phone width."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from api.app import create_app
from api.web.sessions import SESSION_COOKIE
from api.web.throttle import MAX_FAILURES
from core.config import Settings
from tests.conftest import Stack
from tests.web.conftest import PHONE, person_with_password, serious_violations, serving

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
async def person(stack: Stack) -> str:
    return await person_with_password(stack, "office", PASSWORD)


async def _sign_in(page: Page, base: str, login: str, password: str) -> int:
    """Fill in and send the sign-in form as a person would; the answer's status."""
    await page.goto(f"{base}/signin")
    await page.get_by_label("Username or email").fill(login)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation() as navigated:
        await page.get_by_role("button", name="Sign in").click()
    answer = await navigated.value
    assert answer is not None
    # After a redirect, the first answer was the 303: report where it led.
    return answer.status


async def _session_cookie(context: BrowserContext) -> dict:
    cookies = [c for c in await context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(cookies) == 1, await context.cookies()
    return dict(cookies[0])


async def test_a_person_signs_in_lands_on_the_board_and_signs_out(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    person: str,
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/")
        assert page.url == f"{base_url}/signin"
        assert await _sign_in(page, base_url, person, PASSWORD) == 200
        assert page.url == f"{base_url}/jobs"
        await page.get_by_text(f"Signed in as {person} (office)", exact=True).wait_for()

        cookie = await _session_cookie(context)
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/"
        assert cookie["secure"] is False  # the public URL is http
        # Not readable from the page's scripts.
        assert SESSION_COOKIE not in await page.evaluate("document.cookie")

        # The same cookie in a second browser is the same session...
        replay = await browser.new_context()
        await replay.add_cookies(
            [{"name": SESSION_COOKIE, "value": cookie["value"], "url": base_url}]
        )
        other = await replay.new_page()
        await other.goto(f"{base_url}/jobs")
        assert other.url == f"{base_url}/jobs"

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(f"{base_url}/signin")
        assert [c for c in await context.cookies() if c["name"] == SESSION_COOKIE] == []
        # ...until sign-out ends it on the server: the second browser still sends the cookie,
        # and it no longer signs anyone in.
        await other.goto(f"{base_url}/jobs")
        # Sent to sign in, and back to the board after it.
        assert other.url == f"{base_url}/signin?next=%2Fjobs"
        assert (await _session_cookie(replay))["value"] == cookie["value"]
        await replay.close()
    finally:
        await context.close()


async def test_a_wrong_password_is_slowed(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    person: str,
) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        for _ in range(MAX_FAILURES):
            assert await _sign_in(page, base_url, person, "a wrong guess") == 401
            await page.get_by_role("alert").get_by_text("is not right").wait_for()
            # What was typed as the name is kept; the password is not.
            assert await page.get_by_label("Username or email").input_value() == person
            assert await page.get_by_label("Password").input_value() == ""
        # Now even the right password waits.
        assert await _sign_in(page, base_url, person, PASSWORD) == 429
        await page.get_by_role("alert").get_by_text("Too many failed sign-ins").wait_for()
        assert page.url == f"{base_url}/signin"
        assert [c for c in await context.cookies() if c["name"] == SESSION_COOKIE] == []
    finally:
        await context.close()


async def test_a_form_sent_without_its_csrf_token_gets_403(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    person: str,
) -> None:
    strip_token = "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())"
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/signin")
        await page.evaluate(strip_token)
        await page.get_by_label("Username or email").fill(person)
        await page.get_by_label("Password").fill(PASSWORD)
        async with page.expect_navigation() as navigated:
            await page.get_by_role("button", name="Sign in").click()
        assert (await navigated.value).status == 403  # type: ignore[union-attr]
        await page.get_by_role("heading", name="This form could not be accepted").wait_for()
        assert [c for c in await context.cookies() if c["name"] == SESSION_COOKIE] == []

        assert await _sign_in(page, base_url, person, PASSWORD) == 200
        await page.evaluate(strip_token)
        async with page.expect_navigation() as navigated:
            await page.get_by_role("button", name="Sign out").click()
        assert (await navigated.value).status == 403  # type: ignore[union-attr]
        await page.goto(f"{base_url}/jobs")  # still signed in: the refused sign-out did nothing
        await page.get_by_text(f"Signed in as {person} (office)", exact=True).wait_for()
    finally:
        await context.close()


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    stack: Stack,
    browser: Browser,  # noqa: F811
    person: str,
) -> None:
    settings = Settings(
        environment="test", task_queue=stack.task_queue, public_url="https://jobs.example"
    )
    app = create_app(settings, db=stack.db, temporal=stack.temporal)
    async with serving(app) as base:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            # Chromium keeps Secure cookies from a loopback address (a trustworthy origin).
            assert await _sign_in(page, base, person, PASSWORD) == 200
            assert page.url == f"{base}/jobs"
            cookie = await _session_cookie(context)
            assert cookie["secure"] is True and cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Lax"
        finally:
            await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_signin_and_jobs(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    person: str,
    viewport: dict[str, int],
) -> None:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    requested: list[str] = []
    try:
        page = await context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(f"{base_url}/signin")
        pages = {"/signin": await serious_violations(page)}
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "/signin scrolls sideways"
        # The error state too: the summary and the field's message.
        await _sign_in(page, base_url, person, "a wrong guess")
        pages["/signin (error)"] = await serious_violations(page)
        assert await _sign_in(page, base_url, person, PASSWORD) == 200
        pages["/jobs"] = await serious_violations(page)
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "/jobs scrolls sideways"
        assert pages == {"/signin": [], "/signin (error)": [], "/jobs": []}
        assert [url for url in requested if not url.startswith(base_url)] == []
    finally:
        await context.close()
