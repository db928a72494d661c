"""The customer's quote page (issue 11 item 3): `/q/{token}` from the quote email.

The customer answers through the same rules as the office: an approval (signed, with an option)
moves the job to `approved` with a number, a decline to `saving`. Every wrong token is the same
plain 404; an old version's link says a newer quote exists and changes nothing.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, event
from sqlmodel import select

from api.quotes.routes import NOT_FOUND_BODY
from core import settings_store
from core.portal import token_hash
from core.settings_store import BRANDING
from models.branding import BrandingSettings
from models.tables import QuoteLink, utcnow
from tests.activities.test_documents import png
from tests.api.journeys import drive
from tests.conftest import Stack
from tests.fakes.providers import wait_until

JOBS = "/api/v1/jobs"
LINK = re.compile(r"/q/([A-Za-z0-9_-]{43})")


def _line(description: str, price: str, quantity: str = "1") -> dict[str, str]:
    return {"description": description, "quantity": quantity, "unit_price": price}


OPTIONS = {
    "options": [
        {"name": "Good", "lines": [_line("Repair the condenser fan", "300.00")]},
        {
            "name": "Better",
            "lines": [_line("New condenser fan motor", "420.00"), _line("Labour", "95.00", "2")],
        },
        {"name": "Best", "lines": [_line("New condensing unit", "3200.00")]},
    ],
    "discount": {"percent": "10", "reason": "Returning customer"},
    "valid_until": "2030-02-01",
}
# 420 + 2 x 95 = 610, less 10%; no tax in the default quote settings.
BETTER_TOTAL = Decimal("549.00")


async def quote_sent(stack: Stack, quote: dict[str, Any] = OPTIONS) -> str:
    slug = (await stack.new_job(title="No cooling, unit 4", site_address="12 Harbour Road"))["slug"]
    await drive(
        stack,
        slug,
        [
            ("olga", "owner_assigned", {"owner": "sam"}),
            ("sam", "lead_qualified", {}),
            ("sam", "quote_drafted", quote),
            ("sam", "quote_sent", {}),
        ],
    )
    return slug


async def _messages(stack: Stack, slug: str, purpose: str) -> list[dict[str, Any]]:
    response = await stack.get(
        "olga", "/api/v1/outbox", params={"job_slug": slug, "purpose": purpose, "page_size": 200}
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


async def link_from_email(stack: Stack, slug: str, count: int = 1) -> str:
    """The page's path from the newest quote email (waiting for the `count`th to be queued)."""
    found: list[dict[str, Any]] = []

    async def queued() -> bool:
        nonlocal found
        found = [m for m in await _messages(stack, slug, "quote") if m["channel"] == "email"]
        return len(found) >= count

    await wait_until(queued, 30, f"quote email {count} of job {slug}")
    match = LINK.search(found[-1]["body"])
    assert match, found[-1]["body"]
    return f"/q/{match.group(1)}"


async def job_view(stack: Stack, slug: str) -> dict[str, Any]:
    response = await stack.get("olga", f"{JOBS}/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


def _form_key(page: str) -> str:
    match = re.search(r'name="form_key" value="([0-9a-f]{64})"', page)
    assert match, page
    return match.group(1)


async def _post(stack: Stack, path: str, **fields: str) -> httpx.Response:
    page = (await stack.http.get(path)).text
    return await stack.http.post(path, data={"form_key": _form_key(page), **fields})


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.text == NOT_FOUND_BODY
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_the_quote_email_links_to_a_page_showing_the_quote(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    response = await stack.http.get(path)  # no Authorization: the token is the key
    assert response.status_code == 200, response.text
    page = response.text
    for shown in (
        "No cooling, unit 4",
        "12 Harbour Road",
        "Quote, version 1",
        "Valid until",
        "Option: Good",
        "Option: Better",
        "Option: Best",
        "New condenser fan motor",
        "$610.00",
        "Discount 10% (Returning customer)",
        "$549.00",
        "$3,200.00",
        "Subtotal",
        "Type your full name to sign",
        '<button type="submit" class="primary">Approve</button>',
        '<button type="submit" class="secondary">Decline</button>',
        'type="radio" name="option" value="better"',
    ):
        assert shown in page, shown
    assert "<script" not in page
    assert response.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in response.headers["content-security-policy"]
    # The PDF sent with the quote, served from the link (relative to /q/).
    token = path.removeprefix("/q/")
    assert f'href="{token}/quote.pdf"' in page
    pdf = await stack.http.get(f"{path}/quote.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # The email's attachment is that same document.
    [email] = [m for m in await _messages(stack, slug, "quote") if m["channel"] == "email"]
    assert len(email["attachments"]) == 1


async def test_approving_online_signs_chooses_and_numbers_the_job(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    before = await job_view(stack, slug)
    assert before["stage"] == "quote_sent"
    follow_up_at = before["next_reminder_at"]
    assert follow_up_at is not None

    response = await _post(
        stack, path, action="approve", option="better", signature_name="  Dana Whitfield "
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == path.removeprefix("/q/")

    job = await job_view(stack, slug)
    assert job["stage"] == "approved"
    assert job["number"] is not None
    assert Decimal(job["contract_amount"]) == BETTER_TOTAL
    assert job["next_reminder_at"] != follow_up_at  # the quote follow-up is gone
    [row] = [t for t in job["timeline"] if t["type"] == "quote_approved"]
    assert row["actor"] == "customer" and row["actor_role"] == "customer"
    assert row["payload"]["signature_name"] == "Dana Whitfield"
    assert row["payload"]["option"] == "better"
    assert row["payload"]["quote_version"] == 1
    assert row["payload"]["ip_address"] == "127.0.0.1"  # httpx's ASGI client
    assert row["at"]
    assert "Dana Whitfield" in row["summary"] and "127.0.0.1" in row["summary"]

    page = (await stack.http.get(path)).text
    assert "Quote approved" in page
    assert "Signed by Dana Whitfield on " in page
    assert f"<dt>Job number</dt><dd>{job['number']}</dd>" in page
    assert "<dt>Option</dt><dd>Better</dd>" in page
    assert "Type your full name to sign" not in page  # nothing more to answer

    async def alerted() -> bool:
        return bool(await _messages(stack, slug, "quote_answered"))

    await wait_until(alerted, 30, "the office alert")
    [alert, *_] = await _messages(stack, slug, "quote_answered")
    assert "Dana Whitfield approved the quote online, choosing Better" in alert["body"]


async def test_declining_online_moves_the_job_to_saving(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    follow_up_at = (await job_view(stack, slug))["next_reminder_at"]
    response = await _post(stack, path, action="decline", reason="Too expensive for us now")
    assert response.status_code == 303, response.text
    job = await job_view(stack, slug)
    assert job["stage"] == "saving"
    assert job["next_reminder_at"] != follow_up_at  # no more quote follow-ups
    [row] = [t for t in job["timeline"] if t["type"] == "quote_declined"]
    assert row["payload"]["reason"] == "Too expensive for us now"
    assert row["payload"]["ip_address"] == "127.0.0.1"
    page = (await stack.http.get(path)).text
    assert "Quote declined" in page and "Too expensive for us now" in page
    # Still free to change their mind: the rules take an approval from `saving`.
    assert "Type your full name to sign" in page
    assert '<button type="submit" class="secondary">Decline</button>' not in page
    response = await _post(stack, path, action="approve", option="good", signature_name="Dana")
    assert response.status_code == 303, response.text
    assert (await job_view(stack, slug))["stage"] == "approved"


async def test_a_missing_signature_or_option_changes_nothing(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    before = await job_view(stack, slug)

    no_name = await _post(stack, path, action="approve", option="best", signature_name="  ")
    assert no_name.status_code == 422, no_name.text
    assert "Type your full name to sign the approval" in no_name.text
    assert 'id="signature_name-error"' in no_name.text
    assert 'value="best" checked' in no_name.text  # the choice is kept

    no_option = await _post(stack, path, action="approve", signature_name="Dana Whitfield")
    assert no_option.status_code == 422, no_option.text
    assert "Choose one of the options to approve" in no_option.text
    assert 'value="Dana Whitfield"' in no_option.text

    made_up = await _post(stack, path, action="approve", option="deluxe", signature_name="Dana")
    assert made_up.status_code == 422, made_up.text

    no_reason = await _post(stack, path, action="decline", reason="")
    assert no_reason.status_code == 422, no_reason.text
    assert 'id="reason-error"' in no_reason.text

    after = await job_view(stack, slug)
    assert after["stage"] == "quote_sent"
    assert after["seq"] == before["seq"]


async def test_a_double_post_records_one_answer(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    page = (await stack.http.get(path)).text
    form = {
        "form_key": _form_key(page),
        "action": "approve",
        "option": "best",
        "signature_name": "Dana Whitfield",
    }
    first = await stack.http.post(path, data=form)
    second = await stack.http.post(path, data=form)
    assert first.status_code == 303, first.text
    assert second.status_code == 303, second.text
    job = await job_view(stack, slug)
    assert [t["type"] for t in job["timeline"]].count("quote_approved") == 1
    # A different answer afterwards is judged by the rules: already approved, nothing changes.
    other = await stack.http.post(path, data={**form, "option": "good"})
    assert other.status_code == 409, other.text
    assert "already been approved" in other.text
    assert (await job_view(stack, slug))["seq"] == job["seq"]


async def test_a_single_option_quote_needs_no_choice(stack: Stack) -> None:
    quote = {"lines": [_line("Replace the run capacitor", "180.00")]}
    slug = await quote_sent(stack, quote)
    path = await link_from_email(stack, slug)
    page = (await stack.http.get(path)).text
    assert 'type="radio"' not in page and "Your quote" in page
    response = await _post(stack, path, action="approve", signature_name="Dana Whitfield")
    assert response.status_code == 303, response.text
    job = await job_view(stack, slug)
    assert job["stage"] == "approved" and Decimal(job["contract_amount"]) == Decimal("180.00")


async def test_an_old_versions_link_says_a_newer_quote_exists(stack: Stack) -> None:
    slug = await quote_sent(stack)
    old = await link_from_email(stack, slug)
    old_page = (await stack.http.get(old)).text
    await drive(
        stack,
        slug,
        [
            ("sam", "quote_declined", {"reason": "Customer asked for a cheaper repair"}),
            ("sam", "quote_drafted", {"lines": [_line("Revised: new fan motor", "450.00")]}),
            ("sam", "quote_sent", {}),
        ],
    )
    new = await link_from_email(stack, slug, count=2)
    assert new != old
    page = (await stack.http.get(old)).text
    assert "A newer quote exists" in page
    assert "replaced it with version 2" in page
    assert "<form" not in page
    before = await job_view(stack, slug)
    refused = await stack.http.post(
        old,
        data={
            "form_key": _form_key(old_page),
            "action": "approve",
            "option": "better",
            "signature_name": "Dana",
        },
    )
    assert refused.status_code == 409, refused.text
    assert "A newer quote (version 2) has replaced this one" in refused.text
    after = await job_view(stack, slug)
    assert after["stage"] == "quote_sent" and after["seq"] == before["seq"]
    # Each link serves the PDF sent with its own version.
    old_pdf = await stack.http.get(f"{old}/quote.pdf")
    new_pdf = await stack.http.get(f"{new}/quote.pdf")
    assert old_pdf.status_code == new_pdf.status_code == 200
    assert "-v1.pdf" in old_pdf.headers["content-disposition"]
    assert "-v2.pdf" in new_pdf.headers["content-disposition"]
    # The new link answers the new version.
    new_page = (await stack.http.get(new)).text
    assert "Quote, version 2" in new_page and "Revised: new fan motor" in new_page


async def test_a_post_from_elsewhere_changes_nothing(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    key = _form_key((await stack.http.get(path)).text)
    form = {"action": "decline", "reason": "forged"}
    for data, headers in (
        (form, {}),  # no form key
        ({**form, "form_key": "0" * 64}, {}),
        ({**form, "form_key": key}, {"Origin": "https://evil.example"}),
        ({**form, "form_key": key}, {"Sec-Fetch-Site": "cross-site"}),
        ({**form, "form_key": key}, {"Origin": "null", "Sec-Fetch-Site": "same-site"}),
        ({**form, "form_key": "0" * 64}, {"Origin": "null"}),
    ):
        response = await stack.http.post(path, data=data, headers=headers)
        assert response.status_code == 403, (headers, response.text)
    assert (await job_view(stack, slug))["stage"] == "quote_sent"


async def test_every_wrong_token_is_the_same_404(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    token = path.removeprefix("/q/")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for wrong in (tampered, "A" * 43, "short", token + "A", "%2e%2e"):
        _not_found(await stack.http.get(f"/q/{wrong}"))
        _not_found(await stack.http.get(f"/q/{wrong}/quote.pdf"))
        _not_found(await stack.http.post(f"/q/{wrong}", data={"action": "approve"}))
    _not_found(await stack.http.get(f"{path}/invoice.pdf"))
    _not_found(await stack.http.get("/q/"))
    assert (await stack.http.get(path)).status_code == 200

    # Expired: the same 404, for the page, the PDF and an answer.
    async with stack.db.session() as session:
        row = (
            await session.exec(select(QuoteLink).where(QuoteLink.token_hash == token_hash(token)))
        ).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    _not_found(await stack.http.get(path))
    _not_found(await stack.http.get(f"{path}/quote.pdf"))
    _not_found(await stack.http.post(path, data={"action": "decline", "reason": "late"}))
    assert (await job_view(stack, slug))["stage"] == "quote_sent"


async def test_the_page_wears_the_company_branding(stack: Stack) -> None:
    """The company's name, colour and logo (inlined: the page fetches nothing from anywhere)."""
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    async with stack.db.session() as session:
        before = await settings_store.load(session, BRANDING, BrandingSettings)
    logo = png()
    uploaded = await stack.http.post(
        "/api/v1/settings/branding/logo",
        headers=stack.auth("ada"),
        files={"file": ("logo.png", logo, "image/png")},
    )
    assert uploaded.status_code == 200, uploaded.text
    try:
        page = (await stack.http.get(path)).text
        branding = (await stack.get("ada", "/api/v1/settings/branding")).json()
    finally:
        async with stack.db.session() as session:
            await settings_store.save(session, BRANDING, before, "test")
    [src] = re.findall(r'<img class="logo" src="([^"]+)"', page)
    assert src == "data:image/png;base64," + base64.b64encode(logo).decode()
    assert f"--brand: {branding['primary_color']};" in page


async def test_a_canceled_jobs_link_says_it_is_no_longer_open(stack: Stack) -> None:
    slug = await quote_sent(stack)
    path = await link_from_email(stack, slug)
    key = _form_key((await stack.http.get(path)).text)
    await drive(stack, slug, [("mia", "job_canceled", {"reason": "Customer sold the building"})])
    page = (await stack.http.get(path)).text
    assert "This job is no longer open" in page and "<form" not in page
    before = await job_view(stack, slug)
    form = {"form_key": key, "action": "approve", "option": "good", "signature_name": "Dana"}
    refused = await stack.http.post(path, data=form)
    assert refused.status_code == 409, refused.text
    assert "This job is no longer open. Nothing was changed." in refused.text
    assert (await job_view(stack, slug))["seq"] == before["seq"]


async def test_a_job_view_reads_only_the_links_its_job_can_have(stack: Stack) -> None:
    """The quote link is read once the job has a quote, the portal link once it is completed
    (its closeout makes it): before that, an event's answer and the job view read neither
    (issue 12: every answer reads what it shows)."""
    statements: list[str] = []

    def seen(connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if connection.engine.url == stack.db.engine.url:
            statements.append(sql)

    def reads_of(table: str) -> list[str]:
        return [s for s in statements if table in s]

    lead = (await stack.new_job())["slug"]
    quoted = await quote_sent(stack)
    path = await link_from_email(stack, quoted)  # the quote's email has made its link
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        answered = await stack.event("olga", lead, "owner_assigned", owner="sam")
        assert answered.status_code == 200, answered.text
        assert (await job_view(stack, lead))["quote_url"] is None
        assert answered.json()["quote_url"] is None and answered.json()["portal_url"] is None
        assert reads_of("quote_links") == [] and reads_of("portal_links") == [], statements

        view = await job_view(stack, quoted)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert view["quote_url"] and view["quote_url"].endswith(path)
    assert reads_of("quote_links") and reads_of("portal_links") == []
