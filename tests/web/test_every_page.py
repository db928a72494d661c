"""axe-core on every page of the office app, at desktop and at phone width (issue 9 item 11).

One job is taken from `lead` to `closed` through the API; at each stage the job page is checked
as the person who acts next, and so is the form of every event that person may send then, so
every event's form is checked once. Then every other page, as the people who use it. The last
check holds the list honest: every GET page route in api/web/site.py must have been visited, so
a new page cannot go unchecked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from api.users.service import invite_user
from api.web import site
from api.web.event_forms import FORM_EVENTS
from tests.api.journeys import CHECKLIST, EVIDENCE, QUOTE, window
from tests.api.test_quote_link import link_from_email
from tests.conftest import PEOPLE, Stack
from tests.web.conftest import PHONE, give_password, serious_violations, sign_in

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PASSWORD = "every page, checked"
DESKTOP = {"width": 1280, "height": 800}
# Not pages: redirects, the live board's fragment, and file downloads (PDFs, CSVs).
NOT_PAGES = {
    "/",
    "/login",
    "/jobs/board.fragment",
    "/jobs/{slug}/documents/{document_id}",
    "/outbox/{message_id}/attachments/{document_id}",
    "/reports/{name}.csv",
    "/pricebook.csv",
}
# Who sends each step from lead to closed, and with what.
PATH: list[tuple[str, str, dict]] = [
    ("olga", "owner_assigned", {"owner": "sam"}),
    ("sam", "lead_qualified", {}),
    ("sam", "quote_drafted", QUOTE),
    ("sam", "quote_sent", {}),
    ("olga", "quote_approved", {}),
    ("olga", "parts_ordered", {
        "parts": [{
            "sku": "FAN-1", "description": "Condenser fan motor", "quantity": 1,
            "supplier": "Ferguson", "po_number": "PO-1", "expected_delivery": "2099-01-05",
        }],
    }),
    ("olga", "parts_delivered", {"skus": ["FAN-1"]}),
    ("olga", "job_scheduled", {"technician": "tess", **window()}),
    ("olga", "checklist_completed", CHECKLIST),
    ("tess", "tech_dispatched", {}),
    ("tess", "tech_checked_in", {}),
    ("tess", "job_completed", {"work_performed": "Replaced the fan motor", "parts_used": []}),
    ("olga", "invoice_sent", {}),
    ("mia", "evidence_verified", EVIDENCE),
    ("olga", "payment_recorded", {"amount": "657.50", "method": "card"}),
]  # fmt: skip


@dataclass
class Checked:
    """Pages checked so far: their serious or critical axe findings, and the routes they hit."""

    findings: dict[str, list[str]] = field(default_factory=dict)
    routes: set[str] = field(default_factory=set)


@pytest.fixture
async def passwords(stack: Stack) -> None:
    for username in PEOPLE:
        await give_password(stack, username, PASSWORD)


def _route_of(path: str) -> str | None:
    for router in site.ROUTERS:
        for route in router.routes:
            if "GET" in getattr(route, "methods", ()) and route.path_regex.match(path):  # type: ignore[attr-defined]
                return route.path  # type: ignore[attr-defined]
    return None


class Person:
    """One signed-in browser per person, at both widths."""

    def __init__(self, browser: Browser, base: str, username: str, checked: Checked) -> None:
        self.browser, self.base, self.username, self.checked = browser, base, username, checked
        self.contexts: dict[str, BrowserContext] = {}

    async def _page(self, width: str) -> Page:
        if width not in self.contexts:
            viewport = DESKTOP if width == "desktop" else PHONE
            context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
            self.contexts[width] = context
            page = await context.new_page()
            await sign_in(page, self.base, self.username, PASSWORD)
        return self.contexts[width].pages[0]

    async def check(self, path: str, *, widths: tuple[str, ...] = ("desktop", "phone")) -> Page:
        page = await self._page(widths[0])
        for width in widths:
            page = await self._page(width)
            answer = await page.goto(f"{self.base}{path}")
            assert answer is not None and answer.status == 200, (self.username, path)
            route = _route_of(path.split("?")[0])
            assert route is not None, path
            self.checked.routes.add(route)
            found = await serious_violations(page)
            self.checked.findings[f"{self.username} {width} {path}"] = found
        return page

    async def close(self) -> None:
        for context in self.contexts.values():
            await context.close()


@pytest.fixture
async def people(
    browser: Browser, base_url: str, passwords: None
) -> AsyncIterator[tuple[dict[str, Person], Checked]]:
    checked = Checked()
    everyone = {name: Person(browser, base_url, name, checked) for name in PEOPLE}
    try:
        yield everyone, checked
    finally:
        for person in everyone.values():
            await person.close()


async def _allowed(stack: Stack, username: str, slug: str) -> list[str]:
    answer = await stack.get(username, f"/api/v1/jobs/{slug}")
    assert answer.status_code == 200, answer.text
    return answer.json()["allowed_events"]


async def test_axe_finds_nothing_serious_on_any_page(
    stack: Stack, people: tuple[dict[str, Person], Checked]
) -> None:
    persons, checked = people
    client = await stack.new_client(name=f"Axe Residence {uuid.uuid4().hex[:4]}", phone="+15550100")
    slug = (await stack.new_job(client_id=client["id"]))["slug"]

    forms_seen: set[str] = set()
    for username, type_, fields in PATH:
        person = persons[username]
        await person.check(f"/jobs/{slug}")
        for event in await _allowed(stack, username, slug):
            if event in FORM_EVENTS and event not in forms_seen:
                forms_seen.add(event)
                await person.check(f"/jobs/{slug}/events/{event}", widths=("desktop",))
        answer = await stack.event(username, slug, type_, **fields)
        assert answer.status_code == 200, (type_, answer.text)
    await persons["olga"].check(f"/jobs/{slug}")  # closed

    # The sales path to approval, and the forms only it shows.
    second = (await stack.new_job(client_id=client["id"]))["slug"]
    for step in [*PATH[:4], None, ("sam", "approval_requested", {}), None]:
        if step is None:  # the sales person's forms at quote_sent, then the manager's
            for username in ("sam", "mia"):
                for event in await _allowed(stack, username, second):
                    if event in FORM_EVENTS and event not in forms_seen:
                        forms_seen.add(event)
                        path = f"/jobs/{second}/events/{event}"
                        await persons[username].check(path, widths=("desktop",))
            continue
        username, type_, fields = step
        answer = await stack.event(username, second, type_, **fields)
        assert answer.status_code == 200, (type_, answer.text)
    await persons["sam"].check(f"/jobs/{second}")
    await persons["olga"].check(f"/jobs/{second}/send")

    office, admin = persons["olga"], persons["ada"]
    for path in ("/jobs", "/jobs?view=list", "/jobs/new", "/clients", f"/clients/{client['id']}"):
        await office.check(path)
    sku = f"AXE-{uuid.uuid4().hex[:6]}"
    item = {
        "sku": sku, "name": "Condenser fan motor", "unit_price": "120.00", "category": "Motors",
        "fixed_prices": [
            {"tier": "gov", "unit_price": "95.00"},
            {"client_id": client["id"], "unit_price": "90.00"},
        ],
    }  # fmt: skip
    assert (await stack.post("olga", "/api/v1/pricebook", item)).status_code == 201
    for path in ("/pricebook", f"/pricebook/{sku}"):
        await office.check(path)
        await persons["tess"].check(path)  # read-only
    outbox = await stack.get("olga", "/api/v1/outbox", params={"job_slug": slug})
    assert outbox.status_code == 200, outbox.text
    message_id = outbox.json()["items"][0]["id"]
    await office.check("/outbox")
    await office.check(f"/outbox/{message_id}")
    await persons["mia"].check("/reports")  # everyone's, with the owner to pick
    await persons["sam"].check("/reports")  # their own
    for path in (
        "/settings",
        "/settings/communications",
        "/settings/closeout",
        "/settings/quotes",
        "/settings/resulting",
        "/settings/branding",
        "/settings/users",
        "/settings/users/tess",
    ):
        await admin.check(path)
    await office.check("/settings/communications")  # read-only for everyone else
    await persons["tess"].check("/my")
    await persons["tess"].check("/jobs")

    async with stack.db.session() as session:
        _, token = await invite_user(
            session,
            username=f"new{uuid.uuid4().hex[:6]}",
            role="office",
            email="new.person@jobline.test",
            display_name="New Person",
            invited_by="ada",
        )
    # The customer's quote page (api/quotes/routes.py), from the second job's quote email.
    quote_link = await link_from_email(stack, second)
    signed_out = Person(persons["ada"].browser, persons["ada"].base, "nobody", checked)
    try:
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = await signed_out.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
            signed_out.contexts[width] = context
            page = await context.new_page()
            for path in (f"/invite/{token}", "/signin", quote_link):
                answer = await page.goto(f"{signed_out.base}{path}")
                assert answer is not None and answer.status == 200, path
                checked.routes.add(_route_of(path) or path)
                checked.findings[f"signed out {width} {path}"] = await serious_violations(page)
    finally:
        await signed_out.close()

    assert {page: found for page, found in checked.findings.items() if found} == {}
    pages = {
        route.path  # type: ignore[attr-defined]
        for router in site.ROUTERS
        for route in router.routes
        if "GET" in getattr(route, "methods", ())
    }
    assert pages - NOT_PAGES - checked.routes == set(), "pages no axe check visited"
    # The Send dialog is customer_update_sent's form; every other event's form was checked.
    assert set(FORM_EVENTS) - forms_seen == set(), "event forms no axe check visited"
