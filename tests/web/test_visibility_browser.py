"""A technician's browser shows only their own jobs (issue 9 item 6): another technician's job
page, its event forms and its Send page are simply not found, as in the API."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.api.journeys import drive, quoted_and_scheduled
from tests.conftest import Stack
from tests.web.conftest import PHONE, give_password, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "only my own jobs"


async def test_a_technician_cannot_open_another_technicians_job(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    await give_password(stack, "tom", PASSWORD)
    slug = (await stack.new_job(title="Tess's boiler visit"))["slug"]
    await drive(stack, slug, quoted_and_scheduled("tess"))
    context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        await sign_in(page, base_url, "tom", PASSWORD)
        assert page.url == f"{base_url}/my"
        assert await page.get_by_text("Tess's boiler visit").count() == 0

        for path in (f"/jobs/{slug}", f"/jobs/{slug}/events/tech_dispatched", f"/jobs/{slug}/send"):
            answer = await page.goto(f"{base_url}{path}")
            assert answer is not None and answer.status == 404, path
            await page.get_by_role("heading", name="Not found").wait_for()
            assert await page.get_by_text("Tess's boiler visit").count() == 0, path

        # Their list of jobs does not have it either.
        await page.goto(f"{base_url}/jobs?q=boiler")
        assert await page.get_by_text("Tess's boiler visit").count() == 0
    finally:
        await context.close()
    # And nothing was sent in their name.
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["stage"] == "scheduled"
