"""The board in real Chromium, as a person: filtering with the form, the board keeping itself
current when someone else's event lands (no reload), the keyboard, and axe-core on the board
and the list at desktop and phone width. SQLite only (the queries run on both databases in
tests/api/test_board_page.py)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bench.pages import job_state, write_states
from models.lifecycle import ClientSnapshot, Stage
from tests.conftest import Stack
from tests.web.conftest import PHONE, person_with_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "board browser password"
DESKTOP = {"width": 1280, "height": 800}
POLL_WAIT_MS = 40_000  # board.js asks every 12 s


async def _seed(stack: Stack, client: dict[str, Any], jobs: list[dict[str, Any]]) -> list[str]:
    rng = random.Random(3)
    now = datetime.now(UTC)
    snapshot = ClientSnapshot(id=client["id"], name=client["name"])
    states = [
        job_state(f"w{uuid.uuid4().hex[:10]}", snapshot, rng=rng, now=now, **job) for job in jobs
    ]
    await write_states(stack.db, [(s, now - timedelta(minutes=i)) for i, s in enumerate(states)])
    return [s.slug for s in states]


def _card(page: Page, slug: str, milestone: str | None = None) -> Any:
    within = f'section[data-milestone="{milestone}"] ' if milestone else ""
    return page.locator(f'{within}li.card[data-slug="{slug}"]')


async def test_a_person_filters_the_board_with_the_form(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    word = f"Skylight{uuid.uuid4().hex[:5]}"
    client = await stack.new_client()
    wanted = await stack.new_job(client_id=client["id"], title=f"{word} leaks")
    other = await stack.new_job(client_id=client["id"], title="Fence repair")
    assert (await stack.event("olga", wanted["slug"], "owner_assigned", owner="sue")).is_success
    office = await person_with_password(stack, "office", PASSWORD, "w")
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD, then="/jobs")
        await page.locator("summary", has_text="More filters").click()
        await page.get_by_label("Client number").fill(f"C-{client['id']:05d}")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Filter").click()
        await _card(page, wanted["slug"], "Lead").wait_for()
        await _card(page, other["slug"], "Lead").wait_for()

        # Owner: picked from the list, by name; the URL says what was asked (shareable).
        await page.get_by_label("Owner").select_option(label="sue")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Filter").click()
        assert "owner=sue" in page.url and f"client=C-{client['id']:05d}" in page.url
        await _card(page, wanted["slug"], "Lead").wait_for()
        assert await _card(page, other["slug"]).count() == 0
        assert await page.get_by_label("Owner").input_value() == "sue"

        # Text, typed and sent with Enter, in the list view.
        await page.get_by_role("link", name="Clear filters").click()
        await page.get_by_role("link", name="List", exact=True).click()
        await page.get_by_label("Search").fill(word)
        async with page.expect_navigation():
            await page.get_by_label("Search").press("Enter")
        assert "view=list" in page.url
        rows = page.locator("table.board-list tbody tr[data-slug]")
        assert await rows.count() == 1
        assert await rows.first.get_attribute("data-slug") == wanted["slug"]
    finally:
        await context.close()


async def test_the_board_shows_another_persons_event_without_a_reload(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    client = await stack.new_client()
    job = await stack.new_job(client_id=client["id"])
    slug = job["slug"]
    office = await person_with_password(stack, "office", PASSWORD, "w")
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD, then=f"/jobs?client={client['id']}")
        await _card(page, slug, "Lead").wait_for()
        await page.evaluate("window.stillThisPage = true")

        # Someone else, elsewhere: Olga gives the lead to Sam; Sam qualifies it.
        assert (await stack.event("olga", slug, "owner_assigned", owner="sam")).is_success
        assert (await stack.event("sam", slug, "lead_qualified")).is_success

        await _card(page, slug, "Prospect").wait_for(timeout=POLL_WAIT_MS)
        assert await _card(page, slug, "Lead").count() == 0
        await _card(page, slug, "Prospect").get_by_text("Owner: sam").wait_for()
        assert await page.evaluate("window.stillThisPage === true")  # swapped in place
    finally:
        await context.close()


async def test_the_board_works_from_the_keyboard(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    client = await stack.new_client()
    job = await stack.new_job(client_id=client["id"], title="Keyboard only")
    office = await person_with_password(stack, "office", PASSWORD, "w")
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD, then="/jobs")
        # Into the form by Tab, open "More filters" with Enter, type a client number, send it
        # with Enter.
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.tagName") == "SUMMARY":
                break
        else:
            raise AssertionError("Tab never reached More filters")
        await page.keyboard.press("Enter")
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "f-client":
                break
        else:
            raise AssertionError("Tab never reached the client number")
        await page.keyboard.type(str(client["id"]))
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        # On by Tab to the card's link, and Enter opens the job.
        link = f"/jobs/{job['slug']}"
        for _ in range(60):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.getAttribute('href')") == link:
                break
        else:
            raise AssertionError("Tab never reached the card")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert page.url.endswith(link)
    finally:
        await context.close()


async def test_axe_finds_nothing_serious_on_the_board_and_the_list(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    client = await stack.new_client(name=f"Axe Heating {uuid.uuid4().hex[:4]}")
    await _seed(
        stack,
        client,
        [
            {"stage": Stage.lead, "owner": None, "stuck": True},
            {"stage": Stage.quote_sent, "stuck": True, "stale_quote": True},
            {"stage": Stage.awaiting_parts, "number": 94001, "parts_overdue": True},
            {"stage": Stage.scheduled, "number": 94002},
            {"stage": Stage.completed, "number": 94003},
            {"stage": Stage.verified, "number": 94004},
        ],
    )
    office = await person_with_password(stack, "office", PASSWORD, "w")
    tech = await person_with_password(stack, "technician", PASSWORD, "w")
    await _seed(stack, client, [{"stage": Stage.scheduled, "number": 94005, "technician": tech}])
    for who in (office, tech):
        for viewport in (DESKTOP, PHONE):
            context = await browser.new_context(viewport=viewport)
            try:
                page = await context.new_page()
                await sign_in(page, base_url, who, PASSWORD)  # the board, or /my
                for path in ("/jobs", f"/jobs?client={client['id']}", "/jobs?view=list"):
                    await page.goto(f"{base_url}{path}")
                    await page.locator("#board").wait_for()
                    assert await serious_violations(page) == [], (who, viewport, path)
            finally:
                await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_long_unbroken_words_do_not_push_the_board_sideways(
    browser: Browser, base_url: str, stack: Stack, viewport: dict[str, int]
) -> None:
    """Whatever people type (a 200-letter title, an e-mail address as a client's name), the
    board and the list stay within the window: found when the PostgreSQL suite's jobs filled it."""
    unbroken = "Z" * 200
    client = await stack.new_client(name=f"{unbroken[:150]}@{uuid.uuid4().hex[:6]}.example")
    await stack.new_job(client_id=client["id"], title=unbroken)
    office = await person_with_password(stack, "office", PASSWORD)
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD)
        for path in ("/jobs", "/jobs?view=list"):
            await page.goto(f"{base_url}{path}")
            await page.get_by_text(unbroken[:20], exact=False).first.wait_for()
            fits = "document.documentElement.scrollWidth <= window.innerWidth"
            assert await page.evaluate(fits), f"{path} scrolls sideways"
    finally:
        await context.close()
