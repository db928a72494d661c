"""/docs and /redoc in real Chromium, against uvicorn on a real socket: they render the API's
operations and the browser asks no host but ours for anything (no CDN, no web fonts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request, Response

from tests.conftest import Stack

# The browser is what is tested here; the database under it is tested on both backends elsewhere.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@dataclass
class Traffic:
    """What the page asked for, what was answered, and what the browser refused or lost."""

    ours: str
    requested: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def watch(self, page: Page) -> None:
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("response", lambda response: self._answered(response))
        page.on("requestfailed", lambda request: self._failed(request))

    def _answered(self, response: Response) -> None:
        self.answered.append(response.url)

    def _failed(self, request: Request) -> None:
        self.failed[request.url] = request.failure or "?"

    def off_site(self, urls: list[str]) -> list[str]:
        host = urlsplit(self.ours).netloc
        return [
            url
            for url in urls
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).netloc != host
        ]


async def _open(browser: Browser, base_url: str, path: str) -> tuple[Page, Traffic]:  # noqa: F811
    page = await (await browser.new_context()).new_page()
    traffic = Traffic(base_url)
    traffic.watch(page)
    await page.goto(base_url + path)
    return page, traffic


async def test_swagger_ui_renders_the_operations_from_this_host_only(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
) -> None:
    page, traffic = await _open(browser, base_url, "/docs")
    try:
        events = page.locator(".opblock-summary-path", has_text="/api/v1/jobs/{slug}/events")
        await events.first.wait_for(timeout=15_000)
        assert await page.locator(".opblock").count() > 10
        assert await page.locator(".opblock-tag").count() >= 3
        assert f"{base_url}/openapi.json" in traffic.answered
        assert f"{base_url}/docs-assets/swagger-ui-bundle.js" in traffic.answered
        assert not traffic.off_site(traffic.requested), traffic.off_site(traffic.requested)
        assert not traffic.failed, traffic.failed
    finally:
        await page.context.close()


async def test_redoc_renders_the_operations_and_the_browser_contacts_no_other_host(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
) -> None:
    page, traffic = await _open(browser, base_url, "/redoc")
    try:
        await page.get_by_text("/api/v1/jobs/{slug}/events").first.wait_for(
            state="attached", timeout=20_000
        )
        assert f"{base_url}/docs-assets/redoc.standalone.js" in traffic.answered
        assert f"{base_url}/openapi.json" in traffic.answered
        # ReDoc's bundle hard-codes a Redocly logo on its CDN. The page's security policy stops
        # the browser before it asks: the attempt shows as a request, refused, never answered.
        assert not traffic.off_site(traffic.answered), traffic.off_site(traffic.answered)
        for url in traffic.off_site(traffic.requested):
            assert traffic.failed.get(url) == "csp", (url, traffic.failed)
    finally:
        await page.context.close()


async def test_try_it_out_prefills_a_note_the_api_accepts(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    stack: Stack,
) -> None:
    """The README's walkthrough, by hand: Authorize with a token, open the events route, press
    "Try it out" and Execute what Swagger pre-filled."""
    slug = (await stack.new_job())["slug"]
    page, traffic = await _open(browser, base_url, "/docs")
    try:
        await page.get_by_role("button", name="Authorize").first.click()
        await page.locator(".modal-ux input").first.fill(stack.tokens["olga"])
        await page.locator(".modal-ux button.authorize").click()
        await page.locator(".modal-ux button.btn-done").click()

        operation = page.locator("#operations-jobs-post_event_api_v1_jobs__slug__events_post")
        await operation.locator(".opblock-summary").click()
        await operation.get_by_role("button", name="Try it out").click()
        body = operation.locator("textarea.body-param__text")
        prefilled = json.loads(await body.input_value())
        assert prefilled["type"] == "note_added", prefilled
        await operation.locator("input[placeholder='slug']").fill(slug)
        await operation.get_by_role("button", name="Execute").click()

        status = operation.locator(".live-responses-table tr.response .response-col_status")
        await status.wait_for(timeout=15_000)
        assert (await status.inner_text()).strip() == "200"
        assert not traffic.off_site(traffic.requested), traffic.off_site(traffic.requested)
    finally:
        await page.context.close()

    job = await stack.get("olga", f"/api/v1/jobs/{slug}")
    notes = [entry for entry in job.json()["timeline"] if entry["type"] == "note_added"]
    assert len(notes) == 1, job.json()["timeline"]
