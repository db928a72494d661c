"""The README's screenshots, rendered by the suite from real pages so they never go stale.

A small week of jobs is made through the API; then the board, a job page and a technician's day
at phone size are opened in Chromium, checked for what they must show, and saved over
docs/screenshots/*.png, which the README shows. A change that alters a page changes its picture
in the same commit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.api.journeys import drive, quoted_and_scheduled
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "screenshots for the readme"
DESKTOP = {"width": 1280, "height": 900}


def _today_window(hours_from_now: int) -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(hours=hours_from_now)).replace(
        minute=0, second=0, microsecond=0
    )
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=2)).isoformat(),
    }


async def _week_of_jobs(stack: Stack) -> str:
    """Jobs across the pipeline; returns the slug of the one the job page shows."""
    names = ["Rivera Residence", "Oakwood Dental", "Baker Street Bakery", "Lopez Family"]
    clients = [await stack.new_client(name=name, phone="+15550100") for name in names]
    await stack.new_job(client_id=clients[0]["id"], title="No heat upstairs")
    quoted = (await stack.new_job(client_id=clients[1]["id"], title="Rooftop unit service"))["slug"]
    await drive(stack, quoted, quoted_and_scheduled("tess")[:4])  # the quote is out
    shown = ""
    for index, (client, title) in enumerate(
        [(clients[2], "Walk-in cooler not cooling"), (clients[3], "Replace condenser fan")]
    ):
        slug = (await stack.new_job(client_id=client["id"], title=title))["slug"]
        when = _today_window(1 + 3 * index)
        await drive(stack, slug, quoted_and_scheduled("tess", when))
        shown = slug
    return shown


async def _signed_in(browser: Browser, base: str, username: str, viewport: dict) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await sign_in(page, base, username, PASSWORD)
    return page


async def test_readme_screenshots_are_rendered_from_the_pages(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    for username in ("olga", "tess"):
        await give_password(stack, username, PASSWORD)
    slug = await _week_of_jobs(stack)
    SHOTS.mkdir(parents=True, exist_ok=True)

    office = await _signed_in(browser, base_url, "olga", DESKTOP)
    await office.goto(f"{base_url}/jobs")
    await office.get_by_role("heading", name=re.compile("Lead")).first.wait_for()
    await office.get_by_text("Rooftop unit service").first.wait_for()
    await office.screenshot(path=SHOTS / "board.png", full_page=False)

    await office.goto(f"{base_url}/jobs/{slug}")
    await office.get_by_text("Replace condenser fan").first.wait_for()
    await office.screenshot(path=SHOTS / "job-page.png", full_page=False)
    await office.context.close()

    technician = await _signed_in(browser, base_url, "tess", PHONE)
    assert technician.url.endswith("/my")
    await technician.get_by_text("Walk-in cooler not cooling").first.wait_for()
    await technician.screenshot(path=SHOTS / "my-day-phone.png", full_page=False)
    await technician.context.close()

    readme = (ROOT / "README.md").read_text()
    for name in ("board.png", "job-page.png", "my-day-phone.png"):
        assert (SHOTS / name).stat().st_size > 10_000, name
        assert f"docs/screenshots/{name}" in readme, f"README does not show {name}"
