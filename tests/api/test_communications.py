"""Communications through the HTTP API: settings, the Send dialog, the outbox, and the customer
messages lifecycle events send (DESIGN.md §4 "Shapes the API keeps", §5, §6, §8).

Settings are one document per database and the database is shared by the whole session, so every
test that changes them restores what it found (`_settings_changed`, in a `finally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.users.service import create_user
from tests.api.settings import api_error
from tests.conftest import Stack
from tests.fakes.providers import wait_until

COMMS = "/api/v1/settings/communications"
OUTBOX = "/api/v1/outbox"
JOBS = "/api/v1/jobs"
TITLE = "No cooling, unit 4"
PURPOSES = {
    "quote",
    "quote_follow_up",
    "appointment",
    "appointment_reminder",
    "on_my_way",
    "parts_eta",
    "customer_update",
    "payment_reminder",
    "parts_overdue",
    "closeout",
    "invoice",
    "supplier_quote_request",
    "quote_answered",
}
MESSAGE_FIELDS = {
    "id",
    "channel",
    "to",
    "cc",
    "bcc",
    "subject",
    "body",
    "attachments",
    "job_slug",
    "purpose",
    "status",
    "created_at",
}
QUOTE_LINES = [
    {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"},
    {"description": "Labour", "quantity": "2.5", "unit_price": "95.00", "sku": "LAB"},
]
EVIDENCE = dict.fromkeys(
    ("documents", "notes", "parts_usage", "photos", "customer_communication"), True
)
CHECKLIST = {
    "parts_verified": True,
    "check_in_phone": "+1 555 0100",
    "pricing_discussion": "not_allowed",
}


# --- helpers ----------------------------------------------------------------------------------


async def _put(stack: Stack, username: str, body: object) -> httpx.Response:
    return await stack.http.put(COMMS, headers=stack.auth(username), json=body)


async def _current(stack: Stack) -> dict[str, Any]:
    response = await stack.get("ada", COMMS)
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.asynccontextmanager
async def _settings_changed(stack: Stack, **changes: Any) -> AsyncIterator[dict[str, Any]]:
    """The communication settings with `changes` applied; what was there before comes back after,
    whatever happens in between."""
    before = await _current(stack)
    try:
        response = await _put(stack, "ada", {**before, **changes})
        assert response.status_code == 200, response.text
        yield response.json()
    finally:
        restored = await _put(stack, "ada", before)
        assert restored.status_code == 200, restored.text


async def _client(stack: Stack, **fields: object) -> dict[str, Any]:
    name = f"Dana {uuid.uuid4().hex[:6]}"
    email = f"{name.split()[1]}@example.com"
    return await stack.new_client(**{"name": name, "email": email, **fields})


async def _job(stack: Stack, **client_fields: object) -> tuple[dict[str, Any], dict[str, Any]]:
    client = await _client(stack, **client_fields)
    job = await stack.new_job(client_id=client["id"], title=TITLE)
    return client, job


# Events whose email carries a PDF: the event answers at once, the email follows its document.
_WITH_DOCUMENT = {"quote_sent": "quote", "invoice_sent": "invoice"}


async def _drive(stack: Stack, slug: str, steps: list[tuple[str, str, dict]]) -> dict[str, Any]:
    """Send each event; after one whose email waits for its PDF, the job once that is queued."""
    job: dict[str, Any] = {}
    for username, type_, fields in steps:
        response = await stack.event(username, slug, type_, **fields)
        assert response.status_code == 200, (type_, response.text)
        job = response.json()
        if (purpose := _WITH_DOCUMENT.get(type_)) is not None:
            job = await _with_message(stack, username, slug, purpose)
    return job


async def _with_message(stack: Stack, username: str, slug: str, purpose: str) -> dict[str, Any]:
    view: dict[str, Any] = {}

    async def queued() -> bool:
        nonlocal view
        view = (await stack.get(username, f"{JOBS}/{slug}")).json()
        return any(m["purpose"] == purpose for m in view["communications"])

    await wait_until(queued, 30, f"the {purpose} message of job {slug}")
    return view


def _to_quoting() -> list[tuple[str, str, dict]]:
    return [
        ("olga", "owner_assigned", {"owner": "olga"}),
        ("olga", "lead_qualified", {}),
        ("olga", "quote_drafted", {"lines": QUOTE_LINES}),
    ]


def _window(start: datetime, hours: int = 3) -> dict[str, str]:
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=hours)).isoformat(),
    }


def _soon(days: int = 2) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def _outbox(stack: Stack, **params: object) -> dict[str, Any]:
    response = await stack.get("olga", OUTBOX, params={"page_size": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def _job_messages(stack: Stack, slug: str, purpose: str | None = None) -> list[dict]:
    params: dict[str, object] = {"job_slug": slug}
    if purpose:
        params["purpose"] = purpose
    # Oldest first, as the job's communication history shows them.
    return list(reversed((await _outbox(stack, **params))["items"]))


async def _captured(stack: Stack, slug: str, count: int) -> list[dict[str, Any]]:
    """The job's messages once the outbox backend has delivered (captured) all `count` of them."""
    items: list[dict[str, Any]] = []
    for _ in range(150):
        items = await _job_messages(stack, slug)
        if len(items) == count and all(m["status"] == "captured" for m in items):
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all captured: {items}")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _out_of_quiet_hours(when: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """DESIGN.md §5: a customer-facing reminder due in the quiet hours waits for their end."""
    local = when.astimezone(zone)
    if start <= local.time() or local.time() < end:  # the hours span midnight
        day = local.date() + timedelta(days=1) if local.time() >= start else local.date()
        return datetime.combine(day, end, tzinfo=zone)
    return when


def _assert_message_shape(message: dict[str, Any]) -> None:
    assert set(message) >= MESSAGE_FIELDS, set(message)
    assert isinstance(message["id"], int)
    assert message["channel"] in {"email", "sms"}
    assert isinstance(message["cc"], list) and isinstance(message["bcc"], list)
    assert isinstance(message["attachments"], list)
    assert message["status"] in {"queued", "sending", "sent", "captured"}
    assert _parse(message["created_at"]).tzinfo is not None


# --- settings ---------------------------------------------------------------------------------


async def test_settings_defaults(stack: Stack) -> None:
    for reader in ("ada", "mia", "olga", "sam", "tess"):  # everyone reads them
        response = await stack.get(reader, COMMS)
        assert response.status_code == 200, (reader, response.text)
    settings = response.json()
    assert settings["timezone"] == "UTC"
    # The document's times are "HH:MM" or "HH:MM:SS"; either way 21:00 to 08:00.
    assert settings["quiet_hours"]["start"][:5] == "21:00"
    assert settings["quiet_hours"]["end"][:5] == "08:00"
    assert settings["follow_up_interval_hours"] == 72
    assert settings["sms_enabled"] is True
    assert settings["default_bcc"] is None
    assert isinstance(settings["company_name"], str) and settings["company_name"]
    for key in ("max_follow_ups", "appointment_reminder_hours", "payment_reminder_days"):
        assert isinstance(settings[key], int) and settings[key] >= 0, key
    assert set(settings["stage_limits_hours"]) <= {
        "lead",
        "prospect",
        "quoting",
        "quote_sent",
        "saving",
        "approved",
        "awaiting_parts",
        "ready_to_schedule",
        "scheduled",
        "dispatched",
        "on_site",
        "completed",
        "invoiced",
        "verified",
    }
    assert set(settings["templates"]) == PURPOSES
    for purpose, template in settings["templates"].items():
        assert set(template) == {"email_subject", "email_body", "sms"}, purpose
        assert template["email_subject"] and template["email_body"], purpose
    assert "{{ message }}" in settings["templates"]["customer_update"]["email_body"]


async def test_admin_replaces_the_settings(stack: Stack) -> None:
    before = await _current(stack)
    wanted = {
        **before,
        "company_name": "Acme Heating & Air",
        "timezone": "America/Chicago",
        "quiet_hours": {"start": "20:00", "end": "07:30"},
        "sms_enabled": False,
        "default_bcc": "records@acme.test",
        "follow_up_interval_hours": 48,
        "max_follow_ups": 5,
        "appointment_reminder_hours": 12,
        "payment_reminder_days": 14,
        "stage_limits_hours": {"lead": 24, "dispatched": 6},
        "templates": {
            **before["templates"],
            "customer_update": {
                "email_subject": "News from {{ company_name }} on {{ job_title }}",
                "email_body": "Hi {{ client_name }},\n{{ message }}\n-- {{ company_name }}",
                "sms": "{{ company_name }}: {{ message }}",
            },
        },
    }
    try:
        response = await _put(stack, "ada", wanted)
        assert response.status_code == 200, response.text
        saved = response.json()
        assert (await _current(stack)) == saved
        assert saved["company_name"] == "Acme Heating & Air"
        assert saved["timezone"] == "America/Chicago"
        assert saved["quiet_hours"]["start"][:5] == "20:00"
        assert saved["quiet_hours"]["end"][:5] == "07:30"
        assert saved["sms_enabled"] is False
        assert saved["default_bcc"] == "records@acme.test"
        assert saved["follow_up_interval_hours"] == 48
        assert saved["max_follow_ups"] == 5
        assert saved["appointment_reminder_hours"] == 12
        assert saved["payment_reminder_days"] == 14
        assert saved["stage_limits_hours"] == {"lead": 24, "dispatched": 6}
        assert saved["templates"]["customer_update"] == wanted["templates"]["customer_update"]
        assert saved["templates"]["quote"] == before["templates"]["quote"]

        # PUT replaces the whole document: what is left out goes back to its default.
        response = await _put(stack, "ada", {"company_name": "Acme", "quiet_hours": None})
        assert response.status_code == 200, response.text
        now = await _current(stack)
        assert now == response.json()
        assert now["company_name"] == "Acme"
        assert now["quiet_hours"] is None
        assert now["timezone"] == "UTC"
        assert now["follow_up_interval_hours"] == 72
        assert now["sms_enabled"] is True and now["default_bcc"] is None
        # Templates left out are the defaults, every purpose still has one.
        assert now["templates"] == before["templates"]
    finally:
        assert (await _put(stack, "ada", before)).status_code == 200
    assert (await _current(stack)) == before


@pytest.mark.parametrize("username", ["olga", "mia", "sam", "tess"])
async def test_only_admins_change_settings(stack: Stack, username: str) -> None:
    before = await _current(stack)
    response = await _put(stack, username, {**before, "company_name": "Hijacked Ltd"})
    error = api_error(response, 403, "admin")
    assert error["code"] == "forbidden"
    assert (await _current(stack)) == before


async def test_settings_need_a_token(stack: Stack) -> None:
    assert (await stack.http.get(COMMS)).status_code == 401
    assert (await stack.http.put(COMMS, json={"company_name": "x"})).status_code == 401


def _bad_template(part: str, text: str, purpose: str = "quote") -> dict[str, Any]:
    template = {
        "email_subject": "Quote for {{ job_title }}",
        "email_body": "Hello {{ client_name }}",
        "sms": "",
        part: text,
    }
    return {"templates": {purpose: template}}


NONSENSE: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("negative-interval", {"follow_up_interval_hours": -5}, ("follow_up_interval_hours",)),
    ("zero-interval", {"follow_up_interval_hours": 0}, ("follow_up_interval_hours",)),
    ("interval-not-a-number", {"follow_up_interval_hours": "soon"}, ("follow_up_interval_hours",)),
    (
        "unknown-merge-field",
        _bad_template("email_body", "Hello {{ client_nam }}"),
        ("client_nam", "templates.quote.email_body"),
    ),
    (
        "unknown-merge-field-in-sms",
        _bad_template("sms", "{{ company_name }}: {{ eta }}", purpose="on_my_way"),
        ("eta", "templates.on_my_way.sms"),
    ),
    (
        "unknown-merge-field-in-subject",
        _bad_template("email_subject", "{% if vip %}VIP{% endif %} quote"),
        ("vip", "templates.quote.email_subject"),
    ),
    ("template-syntax-error", _bad_template("email_body", "Hello {{ client_name }"), ("syntax",)),
    (
        "template-unclosed-block",
        _bad_template("email_body", "{% if client_name %}Hello"),
        ("syntax",),
    ),
    ("unknown-purpose", _bad_template("email_body", "Hi", purpose="birthday"), ("birthday",)),
    ("template-empty-subject", _bad_template("email_subject", ""), ("email_subject",)),
    ("unknown-time-zone", {"timezone": "Mars/Olympus_Mons"}, ("timezone", "Mars/Olympus_Mons")),
    ("lowercase-time-zone", {"timezone": "america/chicago"}, ("timezone",)),
    (
        "quiet-hours-start-equals-end",
        {"quiet_hours": {"start": "21:00", "end": "21:00"}},
        ("quiet_hours", "same"),
    ),
    ("quiet-hours-not-a-time", {"quiet_hours": {"start": "25:00", "end": "08:00"}}, ("start",)),
    ("quiet-hours-unknown-key", {"quiet_hours": {"from": "21:00"}}, ("from",)),
    ("stage-limit-for-closed", {"stage_limits_hours": {"closed": 24}}, ("closed",)),
    ("stage-limit-for-canceled", {"stage_limits_hours": {"canceled": 24}}, ("canceled",)),
    ("stage-limit-unknown-stage", {"stage_limits_hours": {"limbo": 24}}, ("limbo",)),
    ("stage-limit-zero", {"stage_limits_hours": {"lead": 0}}, ("stage_limits_hours",)),
    ("extra-unknown-key", {"colour": "blue"}, ("colour",)),
    ("bad-default-bcc", {"default_bcc": "not an email"}, ("default_bcc",)),
    ("empty-company-name", {"company_name": ""}, ("company_name",)),
    ("sms-enabled-not-bool", {"sms_enabled": "perhaps"}, ("sms_enabled",)),
]


@pytest.mark.parametrize(
    ("changes", "mentions"), [c[1:] for c in NONSENSE], ids=[c[0] for c in NONSENSE]
)
async def test_nonsense_settings_are_refused_and_change_nothing(
    stack: Stack, changes: dict[str, Any], mentions: tuple[str, ...]
) -> None:
    before = await _current(stack)
    response = await _put(stack, "ada", {**before, **changes})
    error = api_error(response, 422, *mentions)
    assert error["code"] == "validation_error"
    assert (await _current(stack)) == before


BROKEN_TEMPLATES = [
    pytest.param("{{ message | shout }}", ("shout",), id="unknown-filter"),
    pytest.param("{% if message is shouting %}!{% endif %}", ("shouting",), id="unknown-test"),
    pytest.param("{{ client_name.nickname }}", ("nickname",), id="attribute-of-a-string"),
    pytest.param("{{ client_name.__class__ }}", ("__class__",), id="unsafe-attribute"),
    pytest.param("{{ 1 / 0 }}", ("division",), id="division-by-zero"),
    pytest.param("{{ 100 / (job_number | int) }}", ("division",), id="before-a-job-number"),
]


@pytest.mark.parametrize(("text", "mentions"), BROKEN_TEMPLATES)
async def test_templates_that_cannot_render_are_refused(
    stack: Stack, text: str, mentions: tuple[str, ...]
) -> None:
    """A template that parses but can never render would break every message of its purpose:
    refused when saved, naming the template."""
    before = await _current(stack)
    changes = _bad_template("email_body", text, purpose="customer_update")
    try:
        response = await _put(stack, "ada", {**before, **changes})
        api_error(response, 422, "templates.customer_update.email_body", *mentions)
    finally:
        if (await _current(stack)) != before:
            assert (await _put(stack, "ada", before)).status_code == 200
    assert (await _current(stack)) == before


@pytest.mark.parametrize(
    "body", [None, [], "settings", 42], ids=["null", "list", "string", "number"]
)
async def test_settings_body_must_be_a_document(stack: Stack, body: object) -> None:
    before = await _current(stack)
    api_error(await _put(stack, "ada", body), 422)
    assert (await _current(stack)) == before


# --- Send: preview ----------------------------------------------------------------------------


async def _preview(
    stack: Stack, slug: str, username: str = "olga", **fields: Any
) -> httpx.Response:
    return await stack.post(username, f"{JOBS}/{slug}/send", {"preview": True, **fields})


async def _send(stack: Stack, slug: str, username: str = "olga", **fields: Any) -> httpx.Response:
    return await stack.post(username, f"{JOBS}/{slug}/send", fields)


async def test_preview_renders_and_sends_nothing(stack: Stack) -> None:
    client, job = await _job(stack, phone="+1 555 0142")
    slug = job["slug"]
    message = "Your technician is running 20 minutes late."
    async with _settings_changed(stack, company_name="Acme Heating"):
        response = await _preview(stack, slug, message=message, sms=True)
        assert response.status_code == 200, response.text
        preview = response.json()
    assert preview == {
        "email": {
            "to": [client["email"]],
            "bcc": [],
            "subject": f"An update on {TITLE}",
            "body": f"Hello {client['name']},\n\n{message}\n\nAcme Heating",
        },
        "sms": {
            "to": "+1 555 0142",
            "body": f"Acme Heating: {message}",
            "segments": 1,
            "encoding": "GSM-7",
        },
    }
    # Nothing was sent: no message for the job, no event in its history.
    assert (await _outbox(stack, job_slug=slug))["total"] == 0
    after = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert after["seq"] == job["seq"]
    assert [e["type"] for e in after["timeline"]] == ["job_created"]
    assert after["communications"] == []


async def test_preview_uses_the_company_name_and_bcc_settings(stack: Stack) -> None:
    client, job = await _job(stack)
    slug = job["slug"]
    async with _settings_changed(
        stack, company_name="Northwind Plumbing", default_bcc="records@northwind.test"
    ):
        preview = (await _preview(stack, slug, message="We are on it.", bcc_me=True)).json()
        assert preview["email"]["body"].endswith("\n\nNorthwind Plumbing")
        assert preview["sms"]["body"] == "Northwind Plumbing: We are on it."
        # The company's copy and the acting user's own copy.
        assert preview["email"]["bcc"] == ["olga@jobline.test", "records@northwind.test"]
        preview = (await _preview(stack, slug, "mia", message="We are on it.")).json()
        assert preview["email"]["bcc"] == ["records@northwind.test"]
    # Back to the defaults: the name is the default one again, no company Bcc.
    defaults = await _current(stack)
    preview = (await _preview(stack, slug, "sam", message="Hi.", bcc_me=True)).json()
    assert preview["email"]["body"].endswith(f"\n\n{defaults['company_name']}")
    assert preview["email"]["bcc"] == ["sam@jobline.test"]
    assert preview["email"]["to"] == [client["email"]]


async def test_preview_bcc_me_and_recipient_override(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0100")
    slug = job["slug"]
    response = await _preview(
        stack,
        slug,
        message="Gate code is 4411.",
        to_email="facilities@example.org",
        bcc_me=True,
        sms=True,
        sms_phone="+1 555 0199",
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["email"]["to"] == ["facilities@example.org"]
    assert preview["email"]["bcc"] == ["olga@jobline.test"]
    assert preview["sms"]["to"] == "+1 555 0199"  # the override, not the client's phone


async def test_preview_shows_the_message_literally(stack: Stack) -> None:
    """What staff type is text, never a template: merge-field syntax in it stays as typed."""
    client, job = await _job(stack)
    message = "Price is {{ quote_total }} and {% raw %} stays; {{ __class__ }}"
    preview = (await _preview(stack, job["slug"], message=message)).json()
    assert preview["email"]["body"].startswith(f"Hello {client['name']},\n\n{message}\n\n")


def _fill(prefix: str, total: int, middle: str = "") -> str:
    """A message that makes the rendered SMS (`prefix` + message) exactly `total` characters."""
    size = total - len(prefix) - len(middle)
    assert size >= 2
    return "a" * (size // 2) + middle + "b" * (size - size // 2)


SEGMENTS = [
    # (message middle, total characters of the SMS, segments, encoding)
    ("", 160, 1, "GSM-7"),
    ("", 161, 2, "GSM-7"),
    ("", 306, 2, "GSM-7"),
    ("", 307, 3, "GSM-7"),
    ("€", 160, 2, "GSM-7"),  # an extension character takes two septets: 161
    ("[", 159, 1, "GSM-7"),  # 160 septets
    ("—", 20, 1, "UCS-2"),  # an em dash is not in the GSM-7 alphabet
    ("—", 70, 1, "UCS-2"),
    ("—", 71, 2, "UCS-2"),
    ("—", 134, 2, "UCS-2"),
    ("—", 135, 3, "UCS-2"),
    ("🙂", 20, 1, "UCS-2"),  # an emoji is two UTF-16 units
    ("🙂", 69, 1, "UCS-2"),  # 70 units
    ("🙂", 70, 2, "UCS-2"),  # 71 units
    ("é", 160, 1, "GSM-7"),  # é is in the GSM-7 alphabet
    ("ê", 20, 1, "UCS-2"),  # ê is not
]


async def test_sms_encoding_and_segments(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0101")
    async with _settings_changed(stack, company_name="Acme"):
        for middle, total, segments, encoding in SEGMENTS:
            message = _fill("Acme: ", total, middle)
            response = await _preview(stack, job["slug"], message=message, sms=True)
            assert response.status_code == 200, response.text
            sms = response.json()["sms"]
            assert sms["body"] == f"Acme: {message}"
            assert len(sms["body"]) == total
            assert (sms["segments"], sms["encoding"]) == (segments, encoding), (middle, total)
        # A plain message.
        sms = (await _preview(stack, job["slug"], message="On our way!", sms=True)).json()["sms"]
        assert sms == {
            "to": "+1 555 0101",
            "body": "Acme: On our way!",
            "segments": 1,
            "encoding": "GSM-7",
        }


# --- Send: for real ---------------------------------------------------------------------------


async def test_send_queues_email_and_sms_and_the_job_shows_them(stack: Stack) -> None:
    client, job = await _job(stack, phone="+1 555 0123")
    slug = job["slug"]
    message = "Parts are in; we will call you to book the visit."
    fields = {"message": message, "bcc_me": True, "sms": True}
    async with _settings_changed(stack, company_name="Acme Heating"):
        preview = (await _preview(stack, slug, **fields)).json()
        response = await _send(stack, slug, **fields)
        assert response.status_code == 202, response.text
        sent = response.json()
    assert set(sent) == {"messages"}
    email, sms = sent["messages"]
    for m in (email, sms):
        _assert_message_shape(m)
        assert m["job_slug"] == slug
        assert m["purpose"] == "customer_update"
    assert email["channel"] == "email"
    assert email["to"] == client["email"]
    assert email["cc"] == [] and email["bcc"] == ["olga@jobline.test"]
    assert email["subject"] == f"An update on {TITLE}"
    assert email["body"] == f"Hello {client['name']},\n\n{message}\n\nAcme Heating"
    assert email["attachments"] == []
    assert sms["channel"] == "sms"
    assert sms["to"] == "+1 555 0123"
    assert sms["body"] == f"Acme Heating: {message}"
    assert sms["bcc"] == [] and sms["attachments"] == []
    # What was sent is what the preview showed.
    assert [email["to"]] == preview["email"]["to"] and email["bcc"] == preview["email"]["bcc"]
    assert (email["subject"], email["body"]) == (
        preview["email"]["subject"],
        preview["email"]["body"],
    )
    assert (sms["to"], sms["body"]) == (preview["sms"]["to"], preview["sms"]["body"])

    # Right away: the job's communication history and timeline show it.
    view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert [m["id"] for m in view["communications"]] == [email["id"], sms["id"]]
    assert view["seq"] == job["seq"] + 1
    last = view["timeline"][-1]
    assert last["type"] == "customer_update_sent"
    assert last["actor"] == "olga" and last["seq"] == view["seq"]
    assert last["payload"]["message"] == message

    # A moment later the outbox backend has captured both.
    captured = await _captured(stack, slug, 2)
    assert [m["id"] for m in captured] == [email["id"], sms["id"]]
    for m in captured:
        assert m["status"] == "captured"
        assert m["sent_at"] is not None
        assert m["error"] is None
    view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert [m["status"] for m in view["communications"]] == ["captured", "captured"]


async def test_send_without_sms_sends_email_only(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0124")
    response = await _send(stack, job["slug"], message="Quick note.")
    assert response.status_code == 202, response.text
    messages = response.json()["messages"]
    assert [m["channel"] for m in messages] == ["email"]
    assert messages[0]["bcc"] == []


async def test_send_to_an_override_phone_and_email(stack: Stack) -> None:
    _, job = await _job(stack)  # the client has no phone on file
    response = await _send(
        stack,
        job["slug"],
        message="Running late.",
        sms=True,
        sms_phone="+1 555 0177",
        to_email="site.manager@example.org",
    )
    assert response.status_code == 202, response.text
    email, sms = response.json()["messages"]
    assert email["to"] == "site.manager@example.org"
    assert sms["to"] == "+1 555 0177"


async def test_sales_may_send(stack: Stack) -> None:
    _, job = await _job(stack)
    response = await _send(stack, job["slug"], "sam", message="Checking in.", bcc_me=True)
    assert response.status_code == 202, response.text
    (email,) = response.json()["messages"]
    assert email["bcc"] == ["sam@jobline.test"]
    view = (await stack.get("sam", f"{JOBS}/{job['slug']}")).json()
    assert view["timeline"][-1]["actor"] == "sam"


async def _assert_nothing_sent(stack: Stack, slug: str, seq: int) -> None:
    assert (await _outbox(stack, job_slug=slug))["total"] == 0
    view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert view["seq"] == seq and view["communications"] == []


async def test_sms_refused_when_turned_off(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0125")
    slug = job["slug"]
    async with _settings_changed(stack, sms_enabled=False):
        for call in (_preview, _send):
            response = await call(stack, slug, message="Hello.", sms=True)
            api_error(response, 422, "sms")
        await _assert_nothing_sent(stack, slug, job["seq"])
        # Email alone still goes.
        response = await _send(stack, slug, message="Hello.")
        assert response.status_code == 202, response.text
        assert [m["channel"] for m in response.json()["messages"]] == ["email"]


async def test_client_without_email_needs_a_recipient(stack: Stack) -> None:
    _, job = await _job(stack, email=None, phone="+1 555 0126")
    slug = job["slug"]
    for call in (_preview, _send):
        api_error(await call(stack, slug, message="Hello."), 422, "to_email")
    await _assert_nothing_sent(stack, slug, job["seq"])
    preview = (await _preview(stack, slug, message="Hello.", to_email="x@example.org")).json()
    assert preview["email"]["to"] == ["x@example.org"]


async def test_sms_without_a_phone_is_refused(stack: Stack) -> None:
    _, job = await _job(stack)
    for call in (_preview, _send):
        api_error(await call(stack, job["slug"], message="Hello.", sms=True), 422, "sms_phone")
    await _assert_nothing_sent(stack, job["slug"], job["seq"])


BAD_SEND = [
    ("no-message", {}, ("message",)),
    ("blank-message", {"message": "   "}, ("message",)),
    ("message-too-long", {"message": "x" * 2001}, ("message",)),
    ("bad-email", {"message": "Hi", "to_email": "nobody"}, ("to_email",)),
    ("bad-phone", {"message": "Hi", "sms": True, "sms_phone": "call me"}, ("sms_phone",)),
    ("unknown-field", {"message": "Hi", "cc": ["a@example.org"]}, ("cc",)),
    ("sms-not-bool", {"message": "Hi", "sms": "maybe"}, ("sms",)),
]


@pytest.mark.parametrize(
    ("body", "mentions"), [c[1:] for c in BAD_SEND], ids=[c[0] for c in BAD_SEND]
)
async def test_bad_send_requests(stack: Stack, body: dict, mentions: tuple[str, ...]) -> None:
    _, job = await _job(stack, phone="+1 555 0127")
    for preview in (True, False):
        api_error(await _send(stack, job["slug"], **body, preview=preview), 422, *mentions)
    await _assert_nothing_sent(stack, job["slug"], job["seq"])


async def test_send_roles_and_missing_jobs(stack: Stack) -> None:
    _, job = await _job(stack)
    slug = job["slug"]
    job = await _drive(
        stack,
        slug,
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tess", **_window(_soon())}),
        ],
    )
    before = len(await _job_messages(stack, slug))  # the appointment message
    # The assigned technician sees the job but may not send customer updates.
    for call in (_preview, _send):
        error = api_error(await call(stack, slug, "tess", message="Hi."), 403, "office")
        assert error["code"] == "role_not_allowed"
    # A technician not on the job does not even see it.
    for call in (_preview, _send):
        api_error(await call(stack, slug, "tom", message="Hi."), 404)
    # No such job.
    for call in (_preview, _send):
        api_error(await call(stack, "zzzzzzzz", message="Hi."), 404, "zzzzzzzz")
    assert len(await _job_messages(stack, slug)) == before
    view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert view["seq"] == job["seq"]
    # The manager may.
    assert (await _send(stack, slug, "mia", message="Hi.")).status_code == 202


async def test_send_to_closed_or_canceled_jobs_is_refused(stack: Stack) -> None:
    _, closed = await _job(stack, phone="+1 555 0128")
    slug = closed["slug"]
    closed = await _drive(
        stack,
        slug,
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tess", **_window(_soon())}),
            ("olga", "checklist_completed", CHECKLIST),
            ("olga", "tech_dispatched", {}),
            ("olga", "tech_checked_in", {}),
            ("olga", "job_completed", {"work_performed": "Reset the breaker"}),
            (
                "olga",
                "invoice_sent",
                {"lines": [{"description": "Call-out", "quantity": "1", "unit_price": "120.00"}]},
            ),
            ("mia", "evidence_verified", EVIDENCE),
            ("olga", "payment_recorded", {"amount": "120.00", "method": "card"}),
        ],
    )
    assert closed["stage"] == "closed"
    _, canceled = await _job(stack)
    canceled = await _drive(
        stack, canceled["slug"], [("mia", "job_canceled", {"reason": "customer went elsewhere"})]
    )
    assert canceled["stage"] == "canceled"

    for job in (closed, canceled):
        count = len(await _job_messages(stack, job["slug"]))
        for call in (_preview, _send):
            error = api_error(await call(stack, job["slug"], message="One more thing."), 409)
            assert error["code"] == "event_not_allowed"
            assert error["stage"] == job["stage"]
            assert error["allowed_events"] == []
        assert len(await _job_messages(stack, job["slug"])) == count
        view = (await stack.get("olga", f"{JOBS}/{job['slug']}")).json()
        assert view["seq"] == job["seq"]


async def test_a_long_update_subject_is_cut_the_same_in_preview_and_outbox(stack: Stack) -> None:
    _, job = await _job(stack)
    slug = job["slug"]
    before = await _current(stack)
    template = {
        "email_subject": "{{ company_name }}: {{ message }}",
        "email_body": "{{ message }}",
        "sms": "",
    }
    message = "word " * 100 + "end"
    templates = {**before["templates"], "customer_update": template}
    async with _settings_changed(stack, company_name="Acme", templates=templates):
        preview = (await _preview(stack, slug, message=message)).json()
        response = await asyncio.wait_for(_send(stack, slug, message=message), timeout=30)
    assert response.status_code == 202, response.text
    (email,) = response.json()["messages"]
    assert len(preview["email"]["subject"]) == 300
    assert preview["email"]["subject"] == f"Acme: {message}"[:300]
    assert email["subject"] == preview["email"]["subject"]
    assert email["body"] == preview["email"]["body"] == message


# --- the outbox -------------------------------------------------------------------------------


async def test_outbox_readers_and_filters(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0130")
    slug = job["slug"]
    response = await _send(stack, slug, message="First.", sms=True)
    assert response.status_code == 202, response.text
    email, sms = response.json()["messages"]
    await _captured(stack, slug, 2)

    for reader in ("olga", "mia", "ada"):
        response = await stack.get(reader, OUTBOX, params={"job_slug": slug})
        assert response.status_code == 200, (reader, response.text)
        page = response.json()
        assert set(page) == {"items", "total", "page", "page_size"}
        assert page["total"] == 2 and page["page"] == 1 and page["page_size"] == 50
        # Newest first.
        assert [m["id"] for m in page["items"]] == [sms["id"], email["id"]]
        for m in page["items"]:
            _assert_message_shape(m)
    for outsider in ("sam", "tess", "tom"):
        api_error(await stack.get(outsider, OUTBOX), 403, "office")
    assert (await stack.http.get(OUTBOX)).status_code == 401

    def ids(page: dict) -> list[int]:
        return [m["id"] for m in page["items"]]

    assert ids(await _outbox(stack, job_slug=slug, channel="sms")) == [sms["id"]]
    assert ids(await _outbox(stack, job_slug=slug, channel="email")) == [email["id"]]
    assert ids(await _outbox(stack, job_slug=slug, purpose="customer_update")) == [
        sms["id"],
        email["id"],
    ]
    assert (await _outbox(stack, job_slug=slug, purpose="quote"))["total"] == 0
    assert ids(await _outbox(stack, job_slug=slug, status="captured")) == [sms["id"], email["id"]]
    assert (await _outbox(stack, job_slug=slug, status="failed"))["total"] == 0
    # Filters across jobs: everything listed matches.
    page = await _outbox(stack, channel="sms", purpose="customer_update", status="captured")
    assert page["total"] >= 1
    assert all(
        (m["channel"], m["purpose"], m["status"]) == ("sms", "customer_update", "captured")
        for m in page["items"]
    )
    # Pagination.
    first = await _outbox(stack, job_slug=slug, page_size=1)
    second = await _outbox(stack, job_slug=slug, page_size=1, page=2)
    third = await _outbox(stack, job_slug=slug, page_size=1, page=3)
    assert (first["total"], first["page"], first["page_size"]) == (2, 1, 1)
    assert ids(first) == [sms["id"]] and ids(second) == [email["id"]] and ids(third) == []
    assert (await _outbox(stack, job_slug="nosuchjob"))["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "fax"},
        {"status": "lost"},
        {"page": 0},
        {"page_size": 0},
        {"page_size": 1000},
        {"job_slug": "NOT A SLUG"},
        {"purpose": "Robert'); DROP TABLE outbox_messages;--"},
    ],
    ids=lambda p: next(iter(p)),
)
async def test_outbox_bad_filters(stack: Stack, params: dict) -> None:
    api_error(await stack.get("olga", OUTBOX, params=params), 422, next(iter(params)))


# --- messages the lifecycle sends -------------------------------------------------------------


def _quote_email(client: dict, company: str, to: str | None = None) -> dict[str, Any]:
    return {
        "channel": "email",
        "to": to or client["email"],
        "subject": f"Your quote from {company}: {TITLE}",
        "body": (
            f"Hello {client['name']},\n\nThank you for calling {company}. Your quote for "
            f'"{TITLE}" comes to $657.50.\n\nSee it, approve it or decline it online: '
            f"{QUOTE_LINK}\n\nOr reply to this email to ask us anything.\n\n{company}"
        ),
    }


def _day(moment: datetime) -> str:
    """A date as messages show it: `Tue 3 Jun 2026` (the test stack's company is in UTC)."""
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


# The customer's quote link (`/q/<token>`): a new token for every job, so shown as this.
QUOTE_LINK = "<quote link>"
_QUOTE_LINK = re.compile(r"https?://[^\s/]+(?:/[^\s]*)?/q/[A-Za-z0-9_-]{43}")


def _brief(message: dict[str, Any]) -> dict[str, Any]:
    keys = ["channel", "to", "body"] + (["subject"] if message["channel"] == "email" else [])
    brief = {k: message[k] for k in keys}
    brief["body"] = _QUOTE_LINK.sub(QUOTE_LINK, brief["body"])
    return brief


async def test_quote_sent_emails_the_quote_and_sets_the_follow_up(stack: Stack) -> None:
    company = (await _current(stack))["company_name"]
    client, job = await _job(stack, phone="+1 555 0140")
    slug = job["slug"]
    await _drive(stack, slug, _to_quoting())
    job = await _drive(stack, slug, [("olga", "quote_sent", {})])
    assert job["stage"] == "quote_sent"
    # The quote email is in the job's communications once its PDF is made (moments after the
    # event returns); no SMS unless asked for, though the client has a phone.
    assert [_brief(m) for m in job["communications"]] == [_quote_email(client, company)]
    (message,) = job["communications"]
    assert message["purpose"] == "quote" and message["job_slug"] == slug
    assert message["created_by"] == "olga"
    _assert_message_shape(message)

    # The follow-up is due 72 h after sending, outside the quiet hours (21:00-08:00 UTC).
    sent_at = _parse(job["quote"]["sent_at"])
    expected = _out_of_quiet_hours(
        sent_at + timedelta(hours=72), ZoneInfo("UTC"), time(21), time(8)
    )
    assert job["next_reminder_at"] is not None
    assert _parse(job["next_reminder_at"]) == expected
    view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
    assert _parse(view["next_reminder_at"]) == expected
    listed = (await stack.get("olga", JOBS, params={"q": slug})).json()["items"]
    assert [_parse(i["next_reminder_at"]) for i in listed] == [expected]

    captured = await _captured(stack, slug, 1)
    assert captured[0]["status"] == "captured"


async def test_quote_sent_with_sms_and_another_address(stack: Stack) -> None:
    client, job = await _job(stack, phone="+1 555 0141")
    slug = job["slug"]
    async with _settings_changed(stack, company_name="Acme Heating"):
        await _drive(stack, slug, _to_quoting())
        job = await _drive(
            stack, slug, [("sam", "quote_sent", {"sms": True, "to_email": "buyer@example.org"})]
        )
    email, sms = job["communications"]
    assert _brief(email) == _quote_email(client, "Acme Heating", to="buyer@example.org")
    assert _brief(sms) == {
        "channel": "sms",
        "to": "+1 555 0141",
        "body": f"Acme Heating: your quote for {TITLE} is $657.50. "
        f"Approve or decline: {QUOTE_LINK}",
    }
    assert {m["purpose"] for m in job["communications"]} == {"quote"}
    assert {m["created_by"] for m in job["communications"]} == {"sam"}
    await _captured(stack, slug, 2)


async def test_quote_by_sms_refused_when_sms_is_off(stack: Stack) -> None:
    """As in the Send dialog: asking for an SMS while SMS is turned off is a clear 422, not an
    SMS sent anyway."""
    _, job = await _job(stack, phone="+1 555 0142")
    slug = job["slug"]
    job = await _drive(stack, slug, _to_quoting())
    async with _settings_changed(stack, sms_enabled=False):
        api_error(await stack.event("olga", slug, "quote_sent", sms=True), 422, "sms")
        view = (await stack.get("olga", f"{JOBS}/{slug}")).json()
        assert (view["stage"], view["seq"], view["communications"]) == ("quoting", job["seq"], [])
        # Without the SMS the quote goes by email.
        job = await _drive(stack, slug, [("olga", "quote_sent", {})])
    assert [(m["purpose"], m["channel"]) for m in job["communications"]] == [("quote", "email")]


async def test_a_long_subject_does_not_stop_the_quote(stack: Stack) -> None:
    """The longest company name and job title the API takes still make a quote email (the
    outbox keeps subjects up to 300 characters)."""
    client = await _client(stack)
    title = "T" * 200
    job = await stack.new_job(client_id=client["id"], title=title)
    slug = job["slug"]
    company = "C" * 200
    async with _settings_changed(stack, company_name=company):
        await _drive(stack, slug, _to_quoting())
        job = await asyncio.wait_for(_drive(stack, slug, [("olga", "quote_sent", {})]), timeout=30)
    (email,) = job["communications"]
    assert email["purpose"] == "quote"
    assert len(email["subject"]) <= 300
    assert email["subject"].startswith(f"Your quote from {company}: TTT")
    assert email["body"].startswith(f"Hello {client['name']},\n\nThank you for calling {company}.")
    await _captured(stack, slug, 1)


async def test_follow_up_at_the_expected_approval_moved_out_of_quiet_hours(stack: Stack) -> None:
    _, job = await _job(stack)
    slug = job["slug"]
    await _drive(stack, slug, _to_quoting())
    # 23:30 UTC, three days out: inside the default quiet hours, so 08:00 UTC the next day.
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    expected_at = datetime.combine(day, time(23, 30), tzinfo=UTC)
    job = await _drive(
        stack, slug, [("olga", "quote_sent", {"approval_expected_at": expected_at.isoformat()})]
    )
    assert _parse(job["quote"]["approval_expected_at"]) == expected_at
    assert _parse(job["next_reminder_at"]) == datetime.combine(
        day + timedelta(days=1), time(8), tzinfo=UTC
    )

    # At 14:00 it is outside the quiet hours: exactly then.
    _, job = await _job(stack)
    await _drive(stack, job["slug"], _to_quoting())
    afternoon = datetime.combine(day, time(14), tzinfo=UTC)
    job = await _drive(
        stack,
        job["slug"],
        [("olga", "quote_sent", {"approval_expected_at": afternoon.isoformat()})],
    )
    assert _parse(job["next_reminder_at"]) == afternoon


async def test_follow_up_follows_the_settings(stack: Stack) -> None:
    chicago = ZoneInfo("America/Chicago")
    async with _settings_changed(
        stack, follow_up_interval_hours=5, quiet_hours=None, timezone="America/Chicago"
    ):
        # The interval from the settings, no quiet hours to avoid.
        _, job = await _job(stack)
        await _drive(stack, job["slug"], _to_quoting())
        job = await _drive(stack, job["slug"], [("olga", "quote_sent", {})])
        sent_at = _parse(job["quote"]["sent_at"])
        assert _parse(job["next_reminder_at"]) == sent_at + timedelta(hours=5)

    async with _settings_changed(
        stack,
        timezone="America/Chicago",
        quiet_hours={"start": "21:00", "end": "08:00"},
    ):
        # 03:00 UTC is 21:00 or 22:00 in Chicago: quiet until 08:00 there.
        _, job = await _job(stack)
        await _drive(stack, job["slug"], _to_quoting())
        day = (datetime.now(UTC) + timedelta(days=3)).date()
        expected_at = datetime.combine(day, time(3), tzinfo=UTC)
        job = await _drive(
            stack,
            job["slug"],
            [("olga", "quote_sent", {"approval_expected_at": expected_at.isoformat()})],
        )
        local = expected_at.astimezone(chicago)
        assert local.hour in (21, 22)
        wanted = datetime.combine(local.date() + timedelta(days=1), time(8), tzinfo=chicago)
        assert _parse(job["next_reminder_at"]) == wanted
        assert wanted == _out_of_quiet_hours(expected_at, chicago, time(21), time(8))


async def test_job_scheduled_tells_the_customer_in_the_company_time_zone(stack: Stack) -> None:
    """The appointment email and SMS: the window in the company's zone with the zone named
    (EDT in summer, EST in winter), and the technician by display name, not username."""
    technician = f"tina{uuid.uuid4().hex[:6]}"
    async with stack.db.session() as session:
        await create_user(session, technician, "technician", display_name="Tina Tran")
    client, job = await _job(stack, phone="+1 555 0150")
    slug = job["slug"]
    await _drive(stack, slug, [("olga", "emergency_dispatch", {})])
    async with _settings_changed(stack, timezone="America/New_York", company_name="Acme Heating"):
        # 15:00-18:00 UTC on a July Tuesday is 11:00-14:00 EDT (UTC-4).
        summer = datetime(2030, 7, 16, 15, 0, tzinfo=UTC)
        job = await _drive(
            stack, slug, [("olga", "job_scheduled", {"technician": technician, **_window(summer)})]
        )
        window = "Tue 16 Jul, 11:00–14:00 EDT"
        assert [_brief(m) for m in job["communications"]] == [
            {
                "channel": "email",
                "to": client["email"],
                "subject": f"Your appointment: {window}",
                "body": (
                    f"Hello {client['name']},\n\nTina Tran from Acme Heating will arrive {window} "
                    f'for "{TITLE}".\n\nAcme Heating'
                ),
            },
            {
                "channel": "sms",
                "to": "+1 555 0150",
                "body": f"Acme Heating: Tina Tran will arrive {window} for {TITLE}.",
            },
        ]
        assert {m["purpose"] for m in job["communications"]} == {"appointment"}

        # Rescheduled overnight in January (EST, UTC-5): a new message with the new window.
        winter = datetime(2030, 1, 16, 4, 0, tzinfo=UTC)
        job = await _drive(
            stack,
            slug,
            [("olga", "job_scheduled", {"technician": technician, **_window(winter, hours=4)})],
        )
        newest = job["communications"][2:]
        assert [m["purpose"] for m in newest] == ["appointment", "appointment"]
        assert newest[0]["subject"] == (
            "Your appointment: Tue 15 Jan 2030, 23:00 EST – Wed 16 Jan 2030, 03:00 EST"
        )
        assert newest[1]["body"].endswith(f"23:00 EST – Wed 16 Jan 2030, 03:00 EST for {TITLE}.")
    await _captured(stack, slug, 4)


async def test_amounts_carry_the_configured_currency_symbol(stack: Stack) -> None:
    """The branding's currency symbol in the quote's email and SMS (and so in every amount)."""
    client, job = await _job(stack, phone="+1 555 0152")
    slug = job["slug"]
    branding = (await stack.get("ada", "/api/v1/settings/branding")).json()
    put = await stack.http.put(
        "/api/v1/settings/branding",
        headers=stack.auth("ada"),
        json={**branding, "currency_symbol": "€"},
    )
    assert put.status_code == 200, put.text
    try:
        await _drive(stack, slug, _to_quoting())
        job = await _drive(stack, slug, [("olga", "quote_sent", {"sms": True})])
    finally:
        back = await stack.http.put(
            "/api/v1/settings/branding", headers=stack.auth("ada"), json=branding
        )
        assert back.status_code == 200, back.text
    email, sms = job["communications"]
    assert "comes to €657.50.\n" in email["body"], email["body"]
    assert f"your quote for {TITLE} is €657.50." in sms["body"], sms["body"]
    await _captured(stack, slug, 2)


async def test_appointment_sms_only_when_sms_is_on(stack: Stack) -> None:
    _, job = await _job(stack, phone="+1 555 0151")
    slug = job["slug"]
    await _drive(stack, slug, [("olga", "emergency_dispatch", {})])
    async with _settings_changed(stack, sms_enabled=False):
        job = await _drive(
            stack, slug, [("olga", "job_scheduled", {"technician": "tess", **_window(_soon())})]
        )
    assert [(m["purpose"], m["channel"]) for m in job["communications"]] == [
        ("appointment", "email")
    ]


async def test_tech_dispatched_sends_on_my_way_only_when_asked(stack: Stack) -> None:
    company = (await _current(stack))["company_name"]
    steps = [
        ("olga", "emergency_dispatch", {}),
        ("olga", "job_scheduled", {"technician": "tess", **_window(_soon(1))}),
        ("olga", "checklist_completed", CHECKLIST),
    ]
    _, quiet = await _job(stack, phone="+1 555 0160")
    await _drive(stack, quiet["slug"], steps)
    quiet = await _drive(stack, quiet["slug"], [("tess", "tech_dispatched", {})])
    assert [m["purpose"] for m in quiet["communications"]] == ["appointment", "appointment"]

    client, job = await _job(stack, phone="+1 555 0161")
    slug = job["slug"]
    await _drive(stack, slug, steps)
    job = await _drive(stack, slug, [("tess", "tech_dispatched", {"notify_customer": True})])
    assert job["stage"] == "dispatched"
    on_my_way = [m for m in job["communications"] if m["purpose"] == "on_my_way"]
    assert [_brief(m) for m in on_my_way] == [
        {
            "channel": "email",
            "to": client["email"],
            "subject": "tess is on the way",
            "body": (
                f"Hello {client['name']},\n\ntess from {company} is on the way for "
                f'"{TITLE}".\n\n{company}'
            ),
        },
        {"channel": "sms", "to": "+1 555 0161", "body": f"{company}: tess is on the way."},
    ]
    assert {m["created_by"] for m in on_my_way} == {"tess"}
    await _captured(stack, slug, 4)


async def test_parts_delivered_in_full_sends_the_parts_eta(stack: Stack) -> None:
    company = (await _current(stack))["company_name"]
    client, job = await _job(stack)
    slug = job["slug"]
    part = {"quantity": 1, "supplier": "Ferguson", "expected_delivery": "2030-01-05"}
    await _drive(
        stack,
        slug,
        [
            *_to_quoting(),
            ("olga", "quote_sent", {}),
            ("olga", "quote_approved", {}),
            (
                "olga",
                "parts_ordered",
                {
                    "parts": [
                        {"sku": "FAN-1", "description": "Fan motor", "po_number": "PO-1", **part},
                        {"sku": "CAP-2", "description": "Capacitor", "po_number": "PO-2", **part},
                    ]
                },
            ),
        ],
    )
    days_before = _day(datetime.now(UTC))
    job = await _drive(stack, slug, [("olga", "parts_delivered", {"skus": ["FAN-1"]})])
    assert job["stage"] == "awaiting_parts"
    assert [m["purpose"] for m in job["communications"]] == ["quote"]  # not yet

    job = await _drive(stack, slug, [("olga", "parts_delivered", {"skus": ["CAP-2"]})])
    days = {days_before, _day(datetime.now(UTC))}
    assert job["stage"] == "ready_to_schedule"
    eta = [m for m in job["communications"] if m["purpose"] == "parts_eta"]
    assert len(eta) == 1  # the client has no phone: no SMS
    assert eta[0]["channel"] == "email" and eta[0]["to"] == client["email"]
    assert eta[0]["subject"] == f"Your parts have arrived: {TITLE}"
    assert eta[0]["body"] in {
        f'Hello {client["name"]},\n\nThe parts for "{TITLE}" have arrived. We can schedule your '
        f"visit from {day} and will confirm the time with you.\n\n{company}"
        for day in days
    }
    await _captured(stack, slug, 2)
