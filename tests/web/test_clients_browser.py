"""/jobs/new and /clients in real Chromium, as an office person (issue 9 item 4): create a client
and a job by clicking and typing, land on the job's page; create the same client again, see the
likely-duplicate warning and use the existing one; search /clients and edit a client (an error
first, shown at the field with the input kept). axe-core on /jobs/new (plain and with the
warning), /clients and /clients/{id}, at desktop and phone width.

SQLite only; the pages' database work runs on both backends in tests/api/test_new_job_page.py
and tests/api/test_client_pages.py.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Stack
from tests.web.conftest import (
    DESKTOP,
    PHONE,
    person_with_password,
    serious_violations,
    sign_in,
)

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "clients in the browser"
JOB_URL = re.compile(r".*/jobs/(?!new\b)[a-z0-9-]+$")


@pytest.fixture
async def office(stack: Stack) -> str:
    return await person_with_password(stack, "office", PASSWORD, "o")


async def _create_job(page: Page) -> str:
    """Press "Create job"; the job page's path, once it has answered 200."""
    async with page.expect_navigation(url=JOB_URL) as navigated:
        await page.get_by_role("button", name="Create job").click()
    answer = await navigated.value
    assert answer is not None and answer.status == 200, answer and answer.status
    return page.url.rsplit("/jobs/", 1)[1]


async def test_an_office_person_creates_a_client_and_a_job_then_reuses_the_client(
    stack: Stack,
    browser: Browser,
    base_url: str,
    office: str,
) -> None:
    tag = uuid.uuid4().hex[:6]
    name = f"Rivera Residence {tag}"
    digits = f"{uuid.uuid4().int % 10**7:07d}"  # a number no other test's client has
    phone = f"+1 (555) {digits[:3]}-{digits[3:]}"
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await sign_in(page, base_url, office, PASSWORD)

        # A new client and its job, from the navigation's "New job".
        await page.get_by_role("link", name="New job", exact=True).click()
        await expect(page.get_by_role("heading", name="New job", level=1)).to_be_visible()
        await page.get_by_label("Name").fill(name)
        await page.get_by_label(re.compile("^Email")).fill(f"rivera-{tag}@example.com")
        await page.get_by_label("Phone").fill(phone)
        await page.get_by_label("Tier").select_option(label="Platinum")
        await page.get_by_label("Address").fill("12 Harbor Road")
        await page.get_by_label("Title").fill("No cooling, unit 4")
        await page.get_by_label("Description").fill("Blows warm air since Monday")
        await page.get_by_label("How the job came in").select_option(label="Incoming email")
        first = await _create_job(page)
        await expect(page.get_by_text("No cooling, unit 4").first).to_be_visible()
        await expect(page.get_by_role("status").filter(has_text="Job created for")).to_be_visible()

        # The same client again (the name typed differently): warned, and the existing one used.
        await page.get_by_role("link", name="New job", exact=True).click()
        await page.get_by_label("Name").fill(f"  rivera RESIDENCE {tag}")
        await page.get_by_label("Phone").fill(f"555.{digits[:3]}.{digits[3:]}")
        await page.get_by_label("Title").fill("Annual boiler service")
        await page.get_by_role("button", name="Create job").click()
        warning = page.get_by_role("alert").filter(has_text="This client may already exist")
        await expect(warning).to_contain_text(
            re.compile(
                rf"A client with this name and phone number already exists: {name} \(C-\d+\)"
            )
        )
        await warning.get_by_role("button", name=re.compile(rf"^Use {name}")).click()
        chosen = page.get_by_role("region", name="Client")
        await expect(chosen.get_by_text(name, exact=True)).to_be_visible()
        await expect(page.get_by_label("Title")).to_have_value("Annual boiler service")
        await expect(page.get_by_label("Job site")).to_have_value("12 Harbor Road")
        await expect(page.get_by_label("Name", exact=True)).to_have_count(0)
        second = await _create_job(page)
        assert second != first
        await expect(page.get_by_text("Annual boiler service").first).to_be_visible()

        found = await stack.get("olga", "/api/v1/clients", params={"q": tag})
        [client] = found.json()["items"]
        jobs = await stack.get("olga", "/api/v1/jobs", params={"client_id": client["id"]})
        assert sorted(j["slug"] for j in jobs.json()["items"]) == sorted([first, second])
        assert client["tier"] == "platinum" and client["phone"] == phone

        # /clients: search, open the client, see its jobs, edit it.
        await page.get_by_role("link", name="Clients", exact=True).click()
        await page.get_by_label("Search").fill(f"rivera residence {tag}")
        await page.get_by_role("button", name="Search").click()
        await page.get_by_role("link", name=name).click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text(name)
        jobs_section = page.get_by_role("region", name=re.compile("^Jobs"))
        await expect(jobs_section.get_by_role("link", name="No cooling, unit 4")).to_be_visible()
        await expect(jobs_section.get_by_role("link", name="Annual boiler service")).to_be_visible()

        edit = page.get_by_role("region", name=re.compile("^Edit"))
        await edit.get_by_label("Phone").fill("call me maybe")
        await edit.get_by_label("Address").fill("14 Harbor Road")
        await edit.get_by_role("button", name="Save changes").click()
        summary = page.get_by_role("alert")
        await expect(summary).to_contain_text("There is a problem")
        await summary.get_by_role("link", name=re.compile("^Phone")).click()
        edit = page.get_by_role("region", name=re.compile("^Edit"))
        await expect(edit.get_by_label("Phone")).to_be_focused()
        await expect(edit.get_by_label("Phone")).to_have_value("call me maybe")
        await expect(edit.get_by_label("Address")).to_have_value("14 Harbor Road")
        await edit.get_by_label("Phone").fill("+1 555 010 2999")
        await edit.get_by_role("button", name="Save changes").click()
        await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        details = page.get_by_role("region", name="Details")
        await expect(details).to_contain_text("+1 555 010 2999")
        await expect(details).to_contain_text("14 Harbor Road")

        # A third job for it, found by typing only (the script filters as you type).
        await page.get_by_role("link", name="New job", exact=True).click()
        await page.get_by_label("Find an existing client").press_sequentially(f"residence {tag}")
        use = page.get_by_role("button", name=f"Use {name}")
        await use.click()
        await page.get_by_label("Title").fill("Thermostat check")
        await expect(page.get_by_label("Job site")).to_have_value("14 Harbor Road")
        await _create_job(page)
        jobs = await stack.get("olga", "/api/v1/jobs", params={"client_id": client["id"]})
        assert jobs.json()["total"] == 3
    finally:
        await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_axe_finds_nothing_serious_on_the_client_pages(
    stack: Stack,
    browser: Browser,
    base_url: str,
    office: str,
    viewport: dict[str, int],
) -> None:
    tag = uuid.uuid4().hex[:6]
    client = await stack.new_client(name=f"Harbour Dental {tag}", phone="+1 555 0188")
    await stack.new_job(client_id=client["id"], title="Compressor noise")
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    requested: list[str] = []
    try:
        page = await context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        await sign_in(page, base_url, office, PASSWORD)
        found: dict[str, list[str]] = {}

        await page.goto(f"{base_url}/jobs/new")
        found["/jobs/new"] = await serious_violations(page)
        await page.get_by_label("Find an existing client").fill(f"harbour dental {tag}")
        await page.get_by_role("button", name="Search").click()
        await expect(page.get_by_role("button", name=f"Use Harbour Dental {tag}")).to_be_visible()
        found["/jobs/new (search)"] = await serious_violations(page)
        await page.get_by_label("Name").fill(f"Harbour Dental {tag}")
        await page.get_by_role("button", name="Create job").click()
        await expect(page.get_by_role("alert").first).to_be_visible()
        found["/jobs/new (errors)"] = await serious_violations(page)  # the title is missing
        await page.get_by_label("Title").fill("Filter change")
        await page.get_by_role("button", name="Create job").click()
        await expect(page.get_by_text("This client may already exist")).to_be_visible()
        found["/jobs/new (duplicate warning)"] = await serious_violations(page)
        assert await _fits(page), "/jobs/new scrolls sideways"

        await page.goto(f"{base_url}/clients?q={tag}")
        found["/clients"] = await serious_violations(page)
        assert await _fits(page), "/clients scrolls sideways"
        await page.goto(f"{base_url}/clients/{client['id']}")
        found["/clients/{id}"] = await serious_violations(page)
        assert await _fits(page), "/clients/{id} scrolls sideways"
        await page.get_by_label(re.compile("^Email")).fill("not an email")
        await page.get_by_role("button", name="Save changes").click()
        await expect(page.get_by_role("alert")).to_be_visible()
        found["/clients/{id} (errors)"] = await serious_violations(page)

        assert found == {name: [] for name in found}
        assert [url for url in requested if not url.startswith(base_url)] == []
    finally:
        await context.close()


async def _fits(page: Page) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
