"""The outbox pages (issue 9, item 4), on both databases: only office, managers and admins may
read them (the API's rule), the filters narrow the list, a message is shown whole with its body
as text, an attachment downloads only for a reader, and a message in doubt can be resent or
marked sent by a CSRF-checked form."""

from __future__ import annotations

import html
import re
import uuid

from sqlmodel import col, select

from models.tables import OutboxMessage
from tests.api.journeys import drive, on_site
from tests.api.send_outbox_helpers import Web, hidden, web  # noqa: F401
from tests.conftest import Stack
from tests.fakes.providers import wait_until

COMPLETED = {
    "work_performed": "Replaced the condenser fan motor; tested cooling for 20 minutes.",
    "parts_used": [{"sku": "FAN-1", "quantity": "1"}],
}


async def _update(stack: Stack, slug: str, message: str, sms: bool = False) -> list[dict]:
    answer = await stack.post("olga", f"/api/v1/jobs/{slug}/send", {"message": message, "sms": sms})
    assert answer.status_code == 202, answer.text
    return answer.json()["messages"]


def _rows(page: str) -> list[str]:
    """The ids of the messages listed, in order."""
    body = page.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in page else ""
    return re.findall(r'href="/outbox/(\d+)"', body)


async def test_only_the_office_managers_and_admins_read_the_outbox(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    job = await stack.new_job()
    [message] = await _update(stack, job["slug"], "Checking who reads this.")
    for username in ("tess", "sam"):
        async with web(username) as browser:
            for path in ("/outbox", f"/outbox/{message['id']}"):
                refused = await browser.get(path)
                assert refused.status_code == 403, (username, path)
                assert "The outbox is for: admin, manager, office" in refused.text
                assert "<h1>Not allowed</h1>" in refused.text  # a page, not JSON
    for username in ("olga", "mia", "ada"):
        async with web(username) as browser:
            assert (await browser.get("/outbox")).status_code == 200
    async with web("olga") as browser:
        assert (await browser.get("/outbox/999999999")).status_code == 404


async def test_the_filters_narrow_the_list(stack: Stack, web: Web) -> None:  # noqa: F811
    phone = f"+1 555 {uuid.uuid4().int % 10**7:07d}"  # no other test's client has it
    phone_client = await stack.new_client(phone=phone)
    job = await stack.new_job(client_id=phone_client["id"])
    other = await stack.new_job()
    marker = uuid.uuid4().hex[:10]
    both = await _update(stack, job["slug"], f"Parts ordered ({marker}).", sms=True)
    [elsewhere] = await _update(stack, other["slug"], f"Elsewhere ({marker}).")
    email = next(m for m in both if m["channel"] == "email")
    sms = next(m for m in both if m["channel"] == "sms")
    async with web("olga") as browser:

        async def listed(**params: str) -> list[int]:
            page = await browser.get("/outbox", params=params)
            assert page.status_code == 200, page.text
            return [int(i) for i in _rows(page.text)]

        # Newest first; the text is found in the body.
        assert await listed(q=marker) == [elsewhere["id"], sms["id"], email["id"]]
        assert await listed(q=marker.upper(), channel="sms") == [sms["id"]]
        assert await listed(q=marker, job=job["slug"]) == [sms["id"], email["id"]]
        assert await listed(job=job["slug"], channel="email", purpose="customer_update") == [
            email["id"]
        ]
        assert await listed(job=job["slug"], purpose="closeout") == []
        # The resulting workflow's purposes are filters too (the dry run links to results).
        assert await listed(q=marker, purpose="result") == []
        offered = await browser.get("/outbox")
        assert '<option value="result"' in offered.text
        assert '<option value="unresulted_reminder"' in offered.text
        assert await listed(q=phone) == [sms["id"]]  # in the recipient
        assert await listed(q="100%_of_nothing") == []  # % and _ mean themselves
        # A status filter; whatever the sandbox made of them, the two are found by theirs, once
        # their deliveries are over (one may finish between the answer and this listing).
        statuses: set[str] = set()

        async def delivered() -> bool:
            async with stack.db.session() as session:
                rows = await session.exec(
                    select(OutboxMessage).where(col(OutboxMessage.id).in_([sms["id"], email["id"]]))
                )
                statuses.clear()
                statuses.update(row.status for row in rows)
            return not statuses & {"queued", "sending"}

        await wait_until(delivered, within=30, what="both messages' deliveries to end")
        if len(statuses) == 1:
            assert await listed(job=job["slug"], status=statuses.pop()) == [sms["id"], email["id"]]
        # The form shows the filters chosen, and a value it never offers is ignored.
        page = await browser.get("/outbox", params={"channel": "sms", "q": marker})
        assert '<option value="sms" selected>' in page.text
        assert f'name="q" value="{marker}"' in page.text
        assert await listed(channel="fax", q=marker) == await listed(q=marker)
        empty = await browser.get("/outbox", params={"q": f"nothing-{marker}"})
        assert "No messages match these filters." in empty.text
        # Times are the company's, with the zone named.
        assert re.search(r"\d\d:\d\d (UTC|[A-Z]{3,4})</td>", page.text)

        # Pages: the filters and the page size carried in the links between them.
        first = await browser.get("/outbox", params={"q": marker, "page_size": "2"})
        assert _rows(first.text) == [str(elsewhere["id"]), str(sms["id"])]
        assert "1–2 of 3 messages" in first.text
        following = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text)[1])
        assert "Previous page" not in first.text
        second = await browser.get(following)
        assert _rows(second.text) == [str(email["id"])] and "3–3 of 3" in second.text
        assert 'rel="next"' not in second.text and 'rel="prev"' in second.text


async def test_a_message_is_shown_whole_and_its_body_as_text(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    job = await stack.new_job()
    words = "<script>alert('hi')</script> <b>not bold</b>"
    [message] = await _update(stack, job["slug"], words)
    async with web("olga") as browser:
        page = await browser.get(f"/outbox/{message['id']}")
    assert page.status_code == 200, page.text
    assert "<script>alert" not in page.text and "<b>not bold" not in page.text
    assert html.escape(words, quote=False) in page.text.replace("&#39;", "'")
    text = html.unescape(page.text)
    assert f'<dd class="wrap">{message["to"]}</dd>' in text
    assert f"An update on {job['title']}" in text
    assert f'href="/jobs/{job["slug"]}"' in page.text
    assert "Customer update" in text


async def test_the_closeout_receipt_downloads_for_a_reader_only(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    job = await on_site(stack)
    await drive(stack, job["slug"], [("tess", "job_completed", COMPLETED)])
    found: list[dict] = []

    async def closeout() -> bool:
        nonlocal found
        page = await stack.get(
            "olga",
            "/api/v1/outbox",
            params={"job_slug": job["slug"], "purpose": "closeout", "channel": "email"},
        )
        found = page.json()["items"]
        return bool(found)

    await wait_until(closeout, 30, "the closeout email")
    [email] = found
    [attachment] = email["attachments"]
    link = f"/outbox/{email['id']}/attachments/{attachment['document_id']}"
    async with web("olga") as browser:
        page = await browser.get(f"/outbox/{email['id']}")
        assert f'href="{link}"' in page.text and attachment["filename"] in page.text
        pdf = await browser.get(link)
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        # Only this message's attachments, by this route.
        other = await stack.new_job()
        [unrelated] = await _update(stack, other["slug"], "No attachments here.")
        wrong = await browser.get(
            f"/outbox/{unrelated['id']}/attachments/{attachment['document_id']}"
        )
        assert wrong.status_code == 404
    for username in ("sam", "tess"):
        async with web(username) as browser:
            assert (await browser.get(link)).status_code == 403
    # Not signed in: to sign-in first, and back here after.
    anonymous = await stack.http.get(link)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")


async def _in_doubt(stack: Stack, message_id: int) -> None:
    """What a delivery that died mid-send leaves (models/outbox.py): a message for a person."""
    async with stack.db.session() as session:
        row = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.id == message_id))
        ).one()
        row.status, row.error = "unknown", "the provider did not answer"
        session.add(row)
        await session.commit()


async def test_a_message_in_doubt_is_resent_once_or_marked_sent(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    job = await stack.new_job()
    [first] = await _update(stack, job["slug"], "First, in doubt.")
    [second] = await _update(stack, job["slug"], "Second, in doubt.")

    async def settled(message_id: int) -> bool:
        async with stack.db.session() as session:
            row = await session.get(OutboxMessage, message_id)
            return row is not None and row.status not in {"queued", "sending"}

    for m in (first, second):
        await wait_until(lambda m=m: settled(m["id"]), 20, f"message {m['id']} delivered")
        await _in_doubt(stack, m["id"])
    async with web("olga") as browser:
        page = await browser.get(f"/outbox/{first['id']}")
        assert "In doubt" in page.text and "Resend" in page.text and "Mark sent" in page.text
        token = hidden(page, "csrf_token")
        # Without the token: refused, nothing changed.
        bare = await browser.post(f"/outbox/{first['id']}/resend")
        assert bare.status_code == 403
        resent = await browser.post(f"/outbox/{first['id']}/resend", data={"csrf_token": token})
        assert resent.status_code == 303, resent.text
        copy_id = int(resent.headers["location"].rsplit("/", 1)[1])
        assert copy_id != first["id"]
        # The same form again (a double click): refused with the reason, no third message.
        again = await browser.post(f"/outbox/{first['id']}/resend", data={"csrf_token": token})
        assert again.status_code == 409 and "already resent" in again.text
        original = await browser.get(f"/outbox/{first['id']}")
        assert f'href="/outbox/{copy_id}"' in original.text and "Resent" in original.text

        marked = await browser.post(f"/outbox/{second['id']}/mark-sent", data={"csrf_token": token})
        assert marked.status_code == 303 and marked.headers["location"] == f"/outbox/{second['id']}"
        shown = await browser.get(f"/outbox/{second['id']}")
        assert "marked sent by olga" in shown.text and ">Sent<" in shown.text
        assert "Mark sent</button>" not in shown.text
    messages = (await stack.get("olga", "/api/v1/outbox", params={"job_slug": job["slug"]})).json()[
        "items"
    ]
    assert len(messages) == 3
    async with web("sam") as browser:
        refused = await browser.post(
            f"/outbox/{second['id']}/mark-sent", data={"csrf_token": "whatever"}
        )
        assert refused.status_code == 403
