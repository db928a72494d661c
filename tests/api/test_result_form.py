"""The job page's Result section and form over ASGI, on both databases (issue 10 §6), with the
real worker: a salesperson results a job as Sale from the page, resubmits it as No Sale, and the
page shows both revisions; a refused form shows the problem at its field and changes nothing; the
CSRF check; a technician's 404 on a job not theirs; and the one line shown when resulting is off.
The result itself is read back through the JSON API: the form became what the API would take."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx

from models.tables import Job
from tests.api.journeys import drive, quoted
from tests.api.settings import resulting_settings
from tests.api.signed_in import SignIn, csrf_of, signed_in_fixture  # noqa: F401
from tests.conftest import Stack


def result_key(page: httpx.Response) -> str:
    """The idempotency key the page made for its Result form."""
    found = re.search(
        r'action="/jobs/[a-z0-9-]+/result".*?name="idempotency_key" value="([^"]+)"',
        page.text,
        re.S,
    )
    assert found, "no Result form on the page"
    return found.group(1)


def section_text(page: httpx.Response) -> str:
    """The Result section's words, tags stripped."""
    found = re.search(r'<section id="result".*?</section>', page.text, re.S)
    assert found, "no Result section on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


async def post_result(
    client: httpx.AsyncClient, slug: str, fields: dict[str, str]
) -> httpx.Response:
    page = await client.get(f"/jobs/{slug}")
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page), "idempotency_key": result_key(page), **fields}
    return await client.post(f"/jobs/{slug}/result", data=data)


async def revisions(stack: Stack, slug: str) -> list[dict]:
    answer = await stack.get("olga", f"/api/v1/jobs/{slug}/result")
    assert answer.status_code == 200, answer.text
    return answer.json()["revisions"]


async def with_pdfs(client: httpx.AsyncClient, slug: str, count: int) -> httpx.Response:
    """The job page once `count` revisions have their PDF link (made just after the answer)."""
    for _ in range(200):
        page = await client.get(f"/jobs/{slug}")
        if len(re.findall(r">PDF of revision \d+<", page.text)) >= count:
            return page
        await asyncio.sleep(0.05)
    raise AssertionError(f"the PDFs of {count} revision(s) never showed on the page")


async def test_result_as_sale_then_resubmit_as_no_sale_and_see_both(
    stack: Stack, signed_in: SignIn
) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        sam = await signed_in(username="sam")
        page = await sam.get(f"/jobs/{slug}")
        text = section_text(page)
        assert "Not resulted yet" in text
        # The configured fields with their labels; money in the company's symbol; dropdowns.
        assert "Sale amount ($) (required)" in text and "Why we lost it (required)" in text
        assert 'name="no_sale-follow_up_on"' in page.text and 'type="date"' in page.text
        assert '<option value="Went with competitor"' in page.text

        answer = await post_result(sam, slug, {
            "type": "sale", "sale-sale_amount": "12,450", "sale-financing": "on",
            "sale-notes": "Signed on the spot",
            # The other type's fields are ignored: only the chosen one is read.
            "no_sale-loss_reason": "Price",
        })  # fmt: skip
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/jobs/{slug}#result"
        first = await revisions(stack, slug)
        assert [(r["revision"], r["type"], r["submitted_by"]) for r in first] == [
            (1, "sale", "sam")
        ]
        assert first[0]["fields"] == {
            "sale_amount": "12450.00", "financing": True, "notes": "Signed on the spot"
        }  # fmt: skip
        shown = await sam.get(f"/jobs/{slug}")
        assert "Resulted as Sale (revision 1)" in shown.text  # the banner
        assert "$12,450.00" in section_text(shown)

        # Resubmitted as No Sale; an unticked checkbox or an empty optional field is not sent.
        answer = await post_result(sam, slug, {
            "type": "no_sale", "no_sale-loss_reason": "Went with competitor",
            "no_sale-competitor_price": "", "no_sale-follow_up_on": "2031-03-02",
        })  # fmt: skip
        assert answer.status_code == 303, answer.text
        both = await revisions(stack, slug)
        assert [(r["revision"], r["type"]) for r in both] == [(1, "sale"), (2, "no_sale")]
        assert both[1]["fields"] == {
            "loss_reason": "Went with competitor", "follow_up_on": "2031-03-02"
        }  # fmt: skip

        page = await with_pdfs(sam, slug, 2)
        text = section_text(page)
        assert "replaces the current result" in text and "earlier revisions stay" in text
        # Newest first, each with who, its fields as submitted, and its PDF.
        assert text.index("Revision 2: No Sale") < text.index("Revision 1: Sale")
        assert "Why we lost it Went with competitor" in text
        assert "Sale amount $12,450.00" in text and "Financing Yes" in text
        links = dict(
            re.findall(r'href="(/jobs/[^"]+/documents/[0-9a-f]+)">PDF of revision (\d)', page.text)
        )
        assert set(links.values()) == {"1", "2"}
        for revision in both:
            assert f"/jobs/{slug}/documents/{revision['document_id']}" in links
        first_pdf = next(url for url, n in links.items() if n == "1")
        pdf = await sam.get(first_pdf)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        # The form starts from the current result, to edit it.
        assert re.search(r'value="no_sale"\s+checked', page.text)
        assert re.search(r'<option value="Went with competitor"\s+selected', page.text)
    # Resulting turned off later: the line says so, and the revisions made stay readable.
    text = section_text(await sam.get(f"/jobs/{slug}"))
    assert "Job resulting is turned off" in text and "Revision 2: No Sale" in text
    assert "Submit result" not in text


async def test_a_double_submit_records_one_revision(stack: Stack, signed_in: SignIn) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        sam = await signed_in(username="sam")
        page = await sam.get(f"/jobs/{slug}")
        data = {"csrf_token": csrf_of(page), "idempotency_key": result_key(page),
                "type": "sale", "sale-sale_amount": "990"}  # fmt: skip
        first, second = [await sam.post(f"/jobs/{slug}/result", data=data) for _ in range(2)]
        assert first.status_code == second.status_code == 303
        assert [r["revision"] for r in await revisions(stack, slug)] == [1]


async def test_a_refused_result_shows_the_problem_at_its_field_and_changes_nothing(
    stack: Stack, signed_in: SignIn
) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        olga = await signed_in(username="olga")
        answer = await post_result(olga, slug, {
            "type": "sale", "sale-sale_amount": "", "sale-notes": "Kept as typed",
        })  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert "<title>Error: Result" in answer.text
        assert 'href="#result-sale-sale_amount">Sale amount is required' in answer.text
        assert 'id="result-sale-sale_amount-error"' in answer.text
        assert "Kept as typed</textarea>" in answer.text
        assert re.search(r'value="sale"\s+checked', answer.text)

        answer = await post_result(olga, slug, {"type": "sale", "sale-sale_amount": "lots"})
        assert answer.status_code == 422
        assert "must be an amount of money" in unescape(answer.text)
        assert 'value="lots"' in answer.text

        answer = await post_result(olga, slug, {"type": "no_sale", "no_sale-loss_reason": "Bogus"})
        assert answer.status_code == 422
        assert "Why we lost it: &#39;Bogus&#39; is not one of the options" in answer.text

        answer = await post_result(olga, slug, {"no_sale-loss_reason": "Price"})  # no type
        assert answer.status_code == 422
        assert 'href="#result-type">Choose Sale or No Sale.' in answer.text

        assert await revisions(stack, slug) == []


async def test_csrf_a_technician_not_on_the_job_and_resulting_off(
    stack: Stack, signed_in: SignIn
) -> None:
    slug = await quoted(stack)
    olga = await signed_in(username="olga")
    # Off (the default): one line, and nothing is recorded if posted anyway.
    page = await olga.get(f"/jobs/{slug}")
    assert section_text(page) == "Result Job resulting is turned off; an admin can turn it on."
    ada = await signed_in(username="ada")
    admin_page = await ada.get(f"/jobs/{slug}")
    assert '<a href="/settings/resulting">turn it on' in admin_page.text
    answer = await olga.post(f"/jobs/{slug}/result", data={
        "csrf_token": csrf_of(page), "type": "sale", "sale-sale_amount": "10"})  # fmt: skip
    assert answer.status_code == 409 and "turned off" in answer.text

    async with resulting_settings(stack):
        answer = await olga.post(f"/jobs/{slug}/result", data={
            "csrf_token": "not-the-token", "type": "sale", "sale-sale_amount": "10"})  # fmt: skip
        assert answer.status_code == 403 and "security token" in answer.text

        tess = await signed_in(username="tess")  # a technician; the job is not hers
        assert (await tess.get(f"/jobs/{slug}")).status_code == 404
        answer = await tess.post(f"/jobs/{slug}/result", data={
            "csrf_token": csrf_of(await tess.get("/my")), "type": "sale",
            "sale-sale_amount": "10"})  # fmt: skip
        assert answer.status_code == 404
        assert await revisions(stack, slug) == []


async def test_an_unresulted_job_says_so_on_its_page(stack: Stack, signed_in: SignIn) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        due = datetime.now(UTC) - timedelta(days=2)
        async with stack.db.session() as session:
            row = await session.get(Job, slug)
            assert row is not None
            row.unresulted, row.resulting_due_at = True, due
            session.add(row)
            await session.commit()
        olga = await signed_in(username="olga")
        page = await olga.get(f"/jobs/{slug}")
        assert "Not resulted yet. Unresulted Overdue since" in section_text(page)
        assert '<a class="tag overdue" href="#result">Unresulted</a>' in page.text  # the header


async def test_a_canceled_job_is_resulted_no_sale_from_its_page(
    stack: Stack, signed_in: SignIn
) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        await drive(stack, slug, [("olga", "job_canceled", {"reason": "Went elsewhere"})])
        sam = await signed_in(username="sam")
        answer = await post_result(
            sam, slug, {"type": "no_sale", "no_sale-loss_reason": "Went with competitor"}
        )
        assert answer.status_code == 303, answer.text
        assert [r["type"] for r in await revisions(stack, slug)] == ["no_sale"]
        page = await sam.get(f"/jobs/{slug}")
        assert "This job is canceled" in page.text and "Revision 1: No Sale" in section_text(page)
