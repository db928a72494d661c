"""The Send dialog page, `/jobs/{slug}/send` (issue 9, item 3), on both databases: the preview
renders the email and the SMS and sends nothing; Send queues the email (and the SMS when ticked)
once, even when the same form is sent twice; Bcc me copies the person sending; a refusal keeps
everything typed; the API's rules on who may send."""

from __future__ import annotations

import contextlib
import html
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from api.web.pages import FLASH_COOKIE
from tests.api.journeys import on_site
from tests.api.send_outbox_helpers import Web, hidden, web  # noqa: F401
from tests.conftest import Stack

PHONE = "+1 555 0101"


async def _outbox(stack: Stack, slug: str) -> list[dict]:
    page = await stack.get("olga", "/api/v1/outbox", params={"job_slug": slug})
    assert page.status_code == 200, page.text
    return page.json()["items"]


def _flash(answer: httpx.Response) -> str:
    cookie = SimpleCookie()
    for line in answer.headers.get_list("set-cookie"):
        cookie.load(line)
    return json.loads(cookie[FLASH_COOKIE].value)["text"]


async def _job(stack: Stack, **client: object) -> str:
    client_id = (await stack.new_client(**client))["id"]
    return (await stack.new_job(client_id=client_id))["slug"]


async def test_the_preview_shows_the_email_and_the_sms_and_sends_nothing(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    slug = await _job(stack, email="pat@example.com", phone=PHONE)
    async with web("olga") as browser:
        form = await browser.get(f"/jobs/{slug}/send")
        assert form.status_code == 200, form.text
        # The client's email and mobile are filled in, and the form has its own key.
        assert 'name="to_email" value="pat@example.com"' in form.text
        assert f'name="sms_phone" value="{PHONE}"' in form.text
        key = hidden(form, "idempotency_key")
        assert len(key) >= 16
        shown = await browser.post(
            f"/jobs/{slug}/send",
            data={
                "csrf_token": hidden(form, "csrf_token"),
                "idempotency_key": key,
                "to_email": "pat@example.com",
                "sms": "yes",
                "sms_phone": PHONE,
                "message": "The part arrives Thursday & we'll call first.",
                "bcc_me": "yes",
                "action": "preview",
            },
        )
    assert shown.status_code == 200, shown.text
    page = html.unescape(shown.text)
    assert "Preview: nothing has been sent yet" in page
    assert "An update on No cooling, unit 4" in page  # the template's subject
    assert "The part arrives Thursday & we'll call first." in page
    assert "olga@jobline.test" in page.split("Preview:")[1]  # Bcc me, in the preview
    assert "1 segment (GSM-7" in page
    # Everything typed is still in the form, with the same key for the Send that follows.
    assert hidden(shown, "idempotency_key") == key
    assert "checked" in shown.text.split('id="sms"')[1].split(">")[0]
    assert await _outbox(stack, slug) == []


async def test_send_queues_the_email_and_sms_once_even_when_sent_twice(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    slug = await _job(stack, email="pat@example.com", phone=PHONE)
    words = f"Your unit ships today ({uuid.uuid4().hex[:6]})."
    async with web("olga") as browser:
        form = await browser.get(f"/jobs/{slug}/send")
        data = {
            "csrf_token": hidden(form, "csrf_token"),
            "idempotency_key": hidden(form, "idempotency_key"),
            "to_email": "pat.other@example.com",
            "sms": "yes",
            "sms_phone": "+1 555 0199",
            "message": words,
            "bcc_me": "yes",
            "action": "send",
        }
        first = await browser.post(f"/jobs/{slug}/send", data=data)
        second = await browser.post(f"/jobs/{slug}/send", data=data)  # a double click
    for answer in (first, second):
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/jobs/{slug}"
        assert _flash(answer) == (
            "Queued: email to pat.other@example.com (Bcc olga@jobline.test), SMS to +1 555 0199."
        )
    messages = await _outbox(stack, slug)
    assert sorted((m["channel"], m["to"], m["purpose"]) for m in messages) == [
        ("email", "pat.other@example.com", "customer_update"),
        ("sms", "+1 555 0199", "customer_update"),
    ]
    email = next(m for m in messages if m["channel"] == "email")
    assert email["bcc"] == ["olga@jobline.test"] and words in email["body"]
    assert all(m["created_by"] == "olga" for m in messages)

    # Back, change the words, Send with the same form: nothing more goes, and the page says
    # so with a new key, so that sending again sends the new words once.
    async with web("olga") as browser:
        form = await browser.get(f"/jobs/{slug}/send")
        data.update(csrf_token=hidden(form, "csrf_token"), message="Changed my mind.", sms="")
        edited = await browser.post(f"/jobs/{slug}/send", data=data)
        assert edited.status_code == 409, edited.text
        assert "already sent once, with different details" in html.unescape(edited.text)
        assert "Changed my mind." in edited.text
        assert len(await _outbox(stack, slug)) == 2
        used = data["idempotency_key"]
        data["idempotency_key"] = hidden(edited, "idempotency_key")
        assert data["idempotency_key"] != used
        again = await browser.post(f"/jobs/{slug}/send", data=data)
        assert again.status_code == 303, again.text
    assert len(await _outbox(stack, slug)) == 3


async def test_email_only_without_bcc(stack: Stack, web: Web) -> None:  # noqa: F811
    slug = await _job(stack, email="pat@example.com", phone=PHONE)
    async with web("sam") as browser:  # sales may send, as the API lets them
        form = await browser.get(f"/jobs/{slug}/send")
        answer = await browser.post(
            f"/jobs/{slug}/send",
            data={
                "csrf_token": hidden(form, "csrf_token"),
                "idempotency_key": hidden(form, "idempotency_key"),
                "to_email": "pat@example.com",
                "sms_phone": PHONE,
                "message": "Just email.",
                "action": "send",
            },
        )
    assert answer.status_code == 303, answer.text
    assert _flash(answer) == "Queued: email to pat@example.com."
    [email] = await _outbox(stack, slug)
    assert email["channel"] == "email" and email["bcc"] == []


async def test_a_refusal_says_why_and_keeps_everything_typed(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    slug = await _job(stack, email=None)  # no email and no phone on file
    typed = "Hello <b>there</b>, about Thursday"
    async with web("olga") as browser:
        form = await browser.get(f"/jobs/{slug}/send")
        assert "The client has no email address on file" in html.unescape(form.text)
        assert "The client has no mobile number on file" in form.text
        data = {
            "csrf_token": hidden(form, "csrf_token"),
            "idempotency_key": hidden(form, "idempotency_key"),
            "to_email": "",
            "sms": "yes",
            "sms_phone": "",
            "message": typed,
            "bcc_me": "yes",
            "action": "send",
        }
        refused = await browser.post(f"/jobs/{slug}/send", data=data)
        assert refused.status_code == 422, refused.text
        page = html.unescape(refused.text)
        assert "There is a problem" in page
        assert 'href="#to_email"' in refused.text
        assert "The client has no email address on file; give one" in page
        assert 'id="to_email-error"' in refused.text
        assert html.escape(typed, quote=False) in refused.text  # kept, as text
        assert "checked" in refused.text.split('id="bcc_me"')[1].split(">")[0]

        # A badly typed address: named at the field, nothing sent.
        data.update(to_email="not-an-address", csrf_token=hidden(refused, "csrf_token"))
        data["idempotency_key"] = hidden(refused, "idempotency_key")
        bad = await browser.post(f"/jobs/{slug}/send", data=data)
        assert bad.status_code == 422 and 'id="to_email-error"' in bad.text
        assert 'value="not-an-address"' in bad.text

        # The address given, but SMS without a number: the rules name the phone.
        data.update(to_email="pat@example.com")
        no_phone = await browser.post(f"/jobs/{slug}/send", data=data)
        assert no_phone.status_code == 422, no_phone.text
        assert 'id="sms_phone-error"' in no_phone.text
        assert "The client has no phone number on file" in html.unescape(no_phone.text)

        # An empty message, previewed.
        data.update(message="", action="preview", sms="")
        empty = await browser.post(f"/jobs/{slug}/send", data=data)
        assert empty.status_code == 422 and "Enter a message" in empty.text
    assert await _outbox(stack, slug) == []


async def test_the_apis_rules_on_who_may_send(stack: Stack, web: Web) -> None:  # noqa: F811
    mine = (await on_site(stack, technician="tess"))["slug"]
    other = await _job(stack, email="pat@example.com")
    async with web("tess") as browser:
        assert (await browser.get(f"/jobs/{other}/send")).status_code == 404
        own = await browser.get(f"/jobs/{mine}/send")
        assert own.status_code == 403 and "technician" in own.text
    async with web("olga") as browser:
        form = await browser.get(f"/jobs/{other}/send")
        # No CSRF token: refused, nothing sent.
        bare = await browser.post(f"/jobs/{other}/send", data={"message": "hi", "action": "send"})
        assert bare.status_code == 403
        # A canceled job takes no message: the form says so (409) and keeps the words.
        canceled = await stack.event("olga", other, "job_canceled", reason="customer went away")
        assert canceled.status_code == 200, canceled.text
        late = await browser.post(
            f"/jobs/{other}/send",
            data={
                "csrf_token": hidden(form, "csrf_token"),
                "idempotency_key": hidden(form, "idempotency_key"),
                "to_email": "pat@example.com",
                "message": "Still there?",
                "action": "send",
            },
        )
        assert late.status_code == 409, late.text
        assert "Still there?" in late.text and "There is a problem" in late.text
        assert (await browser.get(f"/jobs/{other}/send")).status_code == 409
    assert await _outbox(stack, other) == []


COMMUNICATIONS = "/api/v1/settings/communications"


@contextlib.asynccontextmanager
async def _communications(stack: Stack, **changes: Any) -> AsyncIterator[dict]:
    """The communication settings with `changes`, restored afterwards (they are shared)."""
    before = (await stack.get("ada", COMMUNICATIONS)).json()
    changed = await stack.http.put(
        COMMUNICATIONS, headers=stack.auth("ada"), json={**before, **changes}
    )
    assert changed.status_code == 200, changed.text
    try:
        yield before
    finally:
        restored = await stack.http.put(COMMUNICATIONS, headers=stack.auth("ada"), json=before)
        assert restored.status_code == 200, restored.text


async def test_quiet_hours_and_sms_turned_off_are_said_before_sending(
    stack: Stack,
    web: Web,  # noqa: F811
) -> None:
    slug = await _job(stack, email="pat@example.com", phone=PHONE)
    zone = ZoneInfo((await stack.get("ada", COMMUNICATIONS)).json()["timezone"])
    now = datetime.now(UTC).astimezone(zone)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    async with (
        _communications(stack, quiet_hours=quiet, sms_enabled=False),
        web("olga") as browser,
    ):
        form = await browser.get(f"/jobs/{slug}/send")
        page = html.unescape(form.text)
        assert f"It is quiet hours now ({quiet['start']}–{quiet['end']}" in page
        assert f"Quiet hours end {now + timedelta(hours=1):%a}" in page
        assert "SMS is turned off in the communication settings" in page
        # Ticking SMS anyway is refused at the field, as the API refuses it.
        refused = await browser.post(
            f"/jobs/{slug}/send",
            data={
                "csrf_token": hidden(form, "csrf_token"),
                "idempotency_key": hidden(form, "idempotency_key"),
                "to_email": "pat@example.com",
                "sms": "yes",
                "sms_phone": PHONE,
                "message": "Late tonight, sorry.",
                "action": "send",
            },
        )
        assert refused.status_code == 422, refused.text
        assert 'id="sms-error"' in refused.text and "SMS is turned off" in refused.text
    assert await _outbox(stack, slug) == []
