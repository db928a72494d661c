"""The settings pages over HTTP (ASGI), on both databases: an admin saves each page through its
form (post/redirect/get); anyone else reads them and is refused a POST; invalid input comes back
422 with the problem at its field and everything typed kept; the template preview saves and sends
nothing; a logo over 1 MiB is refused in words. Forms are sent as a browser sends them: every
field the page holds, as the page filled it in, with a person's changes on top.

Settings are shared by the whole session: each test puts back what it found.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from api.settings.service import MAX_LOGO_BYTES
from api.users.service import create_user, set_password
from core import settings_store
from core.settings_store import BRANDING, CLOSEOUT, COMMUNICATIONS
from models.branding import BrandingSettings
from models.closeout import CloseoutSettings
from models.communications import CommunicationSettings
from tests.conftest import Stack

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
READ_ONLY = "Only an admin can change these settings."
PAGES = ("/settings/communications", "/settings/closeout", "/settings/branding")


# --- a browser's view of a form ---------------------------------------------------------------


class _Form(HTMLParser):
    """The fields of the form posting to `action`, as a browser would send them unchanged."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.fields: dict[str, str] = {}
        self.disabled = False
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
            return
        if not self.inside:
            return
        if tag == "fieldset" and "disabled" in a:
            self.disabled = True
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "file"):
                return
            if kind == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = "on"
                return
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[self._textarea] = ""
        elif tag == "select":
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.fields.setdefault(self._select, self._first_option)
            if "selected" in a:
                self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    parser = _Form(action)
    parser.feed(page.text)
    # A textarea's first new line after its tag is not part of its value.
    return {k: v.removeprefix("\n") if k.startswith(("tpl-", "rf-")) else v
            for k, v in parser.fields.items()}  # fmt: skip


def field_error(page: httpx.Response, field: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field)}-error">'
        r'<span class="visually-hidden">Error:</span> (.*?)</p>',
        page.text,
        re.S,
    )
    assert found, (field, page.text[:3000])
    return html.unescape(found.group(1)).lower()  # what it says, whatever its first letter


def value_of(page: httpx.Response, field: str) -> str:
    return form_of(page, _action(page))[field]


def _action(page: httpx.Response) -> str:
    found = re.search(r'<form method="post" action="(/settings/[a-z]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


# --- people and settings ----------------------------------------------------------------------


async def _person(stack: Stack, role: str) -> str:
    username = f"s{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(session, username, role, f"{username}@jobline.test")
        await set_password(session, user, PASSWORD)
    return username


@asynccontextmanager
async def signed_in(stack: Stack, role: str = "admin") -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the stack's app, signed in through /signin as a new person."""
    username = await _person(stack, role)
    transport = stack.http._transport  # the stack's app, over ASGI
    async with httpx.AsyncClient(transport=transport, base_url="http://jobline.test") as client:
        page = await client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        answer = await client.post(
            "/signin", data={"login": username, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture
async def kept(stack: Stack) -> AsyncIterator[None]:
    """The three settings documents as they were, put back after the test."""
    async with stack.db.session() as session:
        before = (
            await settings_store.load(session, COMMUNICATIONS, CommunicationSettings),
            await settings_store.load(session, CLOSEOUT, CloseoutSettings),
            await settings_store.load(session, BRANDING, BrandingSettings),
        )
    yield
    async with stack.db.session() as session:
        for name, document in zip((COMMUNICATIONS, CLOSEOUT, BRANDING), before, strict=True):
            await settings_store.save(session, name, document, "test")


async def _stored(stack: Stack) -> tuple[CommunicationSettings, CloseoutSettings, BrandingSettings]:
    async with stack.db.session() as session:
        return (
            await settings_store.load(session, COMMUNICATIONS, CommunicationSettings),
            await settings_store.load(session, CLOSEOUT, CloseoutSettings),
            await settings_store.load(session, BRANDING, BrandingSettings),
        )


async def _submit(
    client: httpx.AsyncClient, path: str, changes: dict[str, str | None], **extra: Any
) -> httpx.Response:
    """The page's form as it stands, with `changes` (None: a box unticked), sent."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    data = form_of(page, path)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return await client.post(path, data=data, **extra)


# --- the index and the side list ----------------------------------------------------------------


async def test_settings_index_lists_the_sections(stack: Stack) -> None:
    async with signed_in(stack) as client:
        page = await client.get("/settings")
    assert page.status_code == 200
    for path in (*PAGES, "/settings/resulting", "/settings/quotes", "/settings/users"):
        assert f'href="{path}"' in page.text
    # The price book is reference data with a page of its own (the nav's), not a setting.
    assert 'href="/settings/pricebook"' not in page.text
    assert READ_ONLY not in page.text


async def test_signed_out_is_sent_to_sign_in(stack: Stack) -> None:
    answer = await stack.http.get("/settings/branding")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fsettings%2Fbranding"


# --- admins save each page ------------------------------------------------------------------------


async def test_admin_saves_communications(stack: Stack, kept: None) -> None:
    body = "Hello {{ client_name }},\n\nNew words: {{ message }}\n\n{{ company_name }}"
    async with signed_in(stack) as client:
        page = await client.get("/settings/communications")
        assert page.status_code == 200
        # The merge fields with what they are; the company's identity read-only with a link.
        assert "{{ portal_link }}" in page.text
        assert "the customer&#39;s closeout portal link" in page.text
        assert 'href="/settings/branding"' in page.text
        assert 'name="company_name"' not in page.text and 'name="timezone"' not in page.text
        answer = await _submit(
            client,
            "/settings/communications",
            {
                "follow_up_interval_hours": "48",
                "max_follow_ups": "5",
                "quiet_start": "20:30",
                "limit-lead": "",
                "limit-quoting": "36",
                "default_bcc": "office@example.com",
                "tpl-customer_update-email_body": body.replace("\n", "\r\n"),
                "tpl-customer_update-sms": "",
                "action": "save",
            },
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/settings/communications"
        after = await client.get("/settings/communications")
        assert "Applies from the next message" in after.text
        assert value_of(after, "follow_up_interval_hours") == "48"
    comms, _, _ = await _stored(stack)
    assert comms.follow_up_interval_hours == 48 and comms.max_follow_ups == 5
    assert comms.quiet_hours is not None and comms.quiet_hours.start.strftime("%H:%M") == "20:30"
    assert "lead" not in comms.stage_limits_hours and comms.stage_limits_hours["quoting"] == 36  # type: ignore[index]
    assert comms.default_bcc == "office@example.com"
    assert comms.templates["customer_update"].email_body == body  # CRLF read as LF
    assert comms.templates["customer_update"].sms == ""
    # The same document the API serves.
    api = (await stack.get("ada", "/api/v1/settings/communications")).json()
    assert api["templates"]["customer_update"]["email_body"] == body


async def test_admin_turns_quiet_hours_and_sms_off(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        answer = await _submit(
            client,
            "/settings/communications",
            {"quiet_off": "on", "sms_enabled": None, "action": "save"},
        )
        assert answer.status_code == 303, answer.text
    comms, _, _ = await _stored(stack)
    assert comms.quiet_hours is None and comms.sms_enabled is False


async def test_admin_saves_closeout_receipt_fields(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        page = await client.get("/settings/closeout")
        assert form_of(page, "/settings/closeout")["rows"] == str(
            len((await _stored(stack))[1].receipt_fields) + 2
        )
        # Start from none: every stored row removed, then two typed into the blank rows.
        data = form_of(page, "/settings/closeout")
        rows = int(data["rows"])
        for i in range(rows - 2):
            data[f"rf-{i}-delete"] = "on"
        a, b = rows - 2, rows - 1
        data |= {
            f"rf-{a}-key": "refrigerant",
            f"rf-{a}-label": "Refrigerant",
            f"rf-{a}-type": "dropdown",
            f"rf-{a}-options": "R-410A\r\nR-22\r\n",
            f"rf-{a}-position": "2",
            f"rf-{b}-key": "serial",
            f"rf-{b}-label": "Serial number",
            f"rf-{b}-type": "text",
            f"rf-{b}-required": "on",
            f"rf-{b}-position": "1",
            "channel": "both",
            "portal_link_days": "14",
            "action": "save",
        }
        answer = await client.post("/settings/closeout", data=data)
        assert answer.status_code == 303, answer.text
        after = await client.get("/settings/closeout")
        assert "Applies to jobs completed from now on" in after.text
        # Saved in the order of the positions typed; the page shows them so.
        assert (
            value_of(after, "rf-0-key") == "serial" and value_of(after, "rf-1-key") == "refrigerant"
        )
    _, closeout, _ = await _stored(stack)
    assert [f.model_dump() for f in closeout.receipt_fields] == [
        {
            "key": "serial",
            "label": "Serial number",
            "type": "text",
            "required": True,
            "options": [],
        },
        {
            "key": "refrigerant",
            "label": "Refrigerant",
            "type": "dropdown",
            "required": False,
            "options": ["R-410A", "R-22"],
        },
    ]
    assert closeout.channel == "both" and closeout.portal_link_days == 14


async def test_closeout_add_a_field_keeps_what_was_typed_and_saves_nothing(
    stack: Stack, kept: None
) -> None:
    async with signed_in(stack) as client:
        page = await client.get("/settings/closeout")
        data = form_of(page, "/settings/closeout")
        rows = int(data["rows"])
        data |= {f"rf-{rows - 1}-label": "Half typed", "portal_link_days": "9", "action": "add"}
        answer = await client.post("/settings/closeout", data=data)
        assert answer.status_code == 200, answer.text
        assert value_of(answer, "rows") == str(rows + 1)
        assert value_of(answer, f"rf-{rows - 1}-label") == "Half typed"
        assert value_of(answer, "portal_link_days") == "9"
        assert value_of(answer, f"rf-{rows}-key") == ""
    assert (await _stored(stack))[1].portal_link_days != 9


async def test_closeout_webhook_secret_is_never_shown_and_kept_unless_changed(
    stack: Stack, kept: None
) -> None:
    secret = "a-very-secret-webhook-key"
    async with signed_in(stack) as client:
        answer = await _submit(
            client,
            "/settings/closeout",
            {"webhook_url": "https://hooks.example.com/jobline", "webhook_secret": secret,
             "action": "save"},
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        page = await client.get("/settings/closeout")
        assert secret not in page.text and "A secret is set" in page.text
        # Saved again without typing it: kept.
        answer = await _submit(client, "/settings/closeout", {"action": "save"})
        assert answer.status_code == 303, answer.text
        assert (await _stored(stack))[1].webhook_secret == secret
        # The webhook needs one: removing the secret alone is refused, at the secret.
        refused = await _submit(
            client, "/settings/closeout", {"webhook_secret_remove": "on", "action": "save"}
        )
        assert refused.status_code == 422
        assert "webhook_secret is required" in field_error(refused, "webhook_secret")
    assert (await _stored(stack))[1].webhook_secret == secret


async def test_admin_saves_branding_one_company_identity(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        page = await client.get("/settings/branding")
        assert 'enctype="multipart/form-data"' in page.text
        data = form_of(page, "/settings/branding") | {
            "company_name": "Cool Air Co",
            "timezone": "America/Chicago",
            "primary_color": "#C00",
            "address": "1 Main St\r\nSpringfield",
            "currency_symbol": "£",
            "paper_size": "A4",
            "footer": "Net 30",
        }
        answer = await client.post(
            "/settings/branding", data=data, files={"logo": ("logo.png", PNG, "image/png")}
        )
        assert answer.status_code == 303, answer.text
        after = await client.get("/settings/branding")
        assert "Applies from the next message" in after.text
        assert 'alt="Current logo"' in after.text
        # The company's name is the one the whole app now shows.
        assert "<title>Branding settings · Cool Air Co</title>" in after.text
    comms, _, branding = await _stored(stack)
    assert comms.company_name == "Cool Air Co" and comms.timezone == "America/Chicago"
    # One place holds the name: branding keeps none.
    assert branding.company_name is None
    assert branding.primary_color == "#cc0000" and branding.currency_symbol == "£"
    assert branding.address == "1 Main St\nSpringfield" and branding.paper_size == "A4"
    assert branding.logo_document_id is not None
    api = (await stack.get("tess", "/api/v1/settings/branding")).json()
    assert api["company_name"] == "Cool Air Co"


async def test_the_colour_picker_counts_when_only_it_changed(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        answer = await _submit(client, "/settings/branding", {"primary_color_picker": "#336699"})
        assert answer.status_code == 303, answer.text
    assert (await _stored(stack))[2].primary_color == "#336699"


async def test_the_api_stores_a_branding_company_name_with_communications(
    stack: Stack, kept: None
) -> None:
    current = (await stack.get("ada", "/api/v1/settings/branding")).json()
    answer = await stack.http.put(
        "/api/v1/settings/branding",
        headers=stack.auth("ada"),
        json={**current, "company_name": "Named Through The API"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["company_name"] == "Named Through The API"
    comms, _, branding = await _stored(stack)
    assert comms.company_name == "Named Through The API" and branding.company_name is None
    api = (await stack.get("ada", "/api/v1/settings/communications")).json()
    assert api["company_name"] == "Named Through The API"


# --- everyone else reads ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "office", "technician"])
async def test_non_admins_read_only_and_a_post_is_403(stack: Stack, kept: None, role: str) -> None:
    before = await _stored(stack)
    async with signed_in(stack, role) as client:
        index = await client.get("/settings")
        assert index.status_code == 200 and READ_ONLY in index.text
        for path in PAGES:
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert READ_ONLY in page.text
            assert "<fieldset disabled>" in page.text
            assert ">Save</button>" not in page.text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            data = form_of(page, path) | {"csrf_token": token[1], "action": "save"}
            answer = await client.post(path, data=data)
            assert answer.status_code == 403, (path, answer.text)
            assert "changing settings is for: admin" in answer.text
    assert await _stored(stack) == before


# --- invalid input ------------------------------------------------------------------------------


async def test_a_bad_zone_and_colour_come_back_with_what_was_typed(
    stack: Stack, kept: None
) -> None:
    before = await _stored(stack)
    async with signed_in(stack) as client:
        answer = await _submit(
            client,
            "/settings/branding",
            {
                "timezone": "Mars/Olympus_Mons",
                "primary_color": "red; background: url(x)",
                "company_name": "Typed Name Kept",
                "footer": "Typed footer",
            },
        )
    assert answer.status_code == 422
    assert "There is a problem" in answer.text
    assert '<a href="#timezone">' in answer.text and '<a href="#primary_color">' in answer.text
    assert "unknown time zone" in field_error(answer, "timezone")
    assert "not a hex colour" in field_error(answer, "primary_color")
    kept_values = form_of(answer, "/settings/branding")
    assert kept_values["timezone"] == "Mars/Olympus_Mons"
    assert kept_values["primary_color"] == "red; background: url(x)"
    assert kept_values["company_name"] == "Typed Name Kept"
    assert kept_values["footer"] == "Typed footer"
    assert await _stored(stack) == before


async def test_an_unknown_merge_field_comes_back_at_its_template(stack: Stack, kept: None) -> None:
    before = await _stored(stack)
    typed = "Hi {{ client_nickname }}, see you soon"
    async with signed_in(stack) as client:
        answer = await _submit(
            client,
            "/settings/communications",
            {"tpl-appointment-sms": typed, "max_follow_ups": "7", "action": "save"},
        )
    assert answer.status_code == 422
    message = field_error(answer, "tpl-appointment-sms")
    assert "unknown merge field(s) client_nickname" in message
    assert '<a href="#tpl-appointment-sms">' in answer.text
    assert value_of(answer, "tpl-appointment-sms") == typed
    assert value_of(answer, "max_follow_ups") == "7"
    assert await _stored(stack) == before


@pytest.mark.parametrize(
    ("field", "typed", "words"),
    [
        ("tpl-quote-email_subject", "{{ client_name.nickname }}", "cannot be rendered"),
        ("tpl-quote-email_body", "{% if %}", "template syntax error"),
        ("follow_up_interval_hours", "soon", "valid integer"),
        ("limit-dispatched", "0", "greater than or equal to 1"),
        ("default_bcc", "not-an-email", "email"),
    ],
)
async def test_other_bad_communications_input_is_shown_at_its_field(
    stack: Stack, kept: None, field: str, typed: str, words: str
) -> None:
    async with signed_in(stack) as client:
        answer = await _submit(client, "/settings/communications", {field: typed, "action": "save"})
    assert answer.status_code == 422
    assert words in field_error(answer, field)
    assert value_of(answer, field) == typed


async def test_a_dropdown_without_options_is_refused_at_its_options(
    stack: Stack, kept: None
) -> None:
    before = await _stored(stack)
    async with signed_in(stack) as client:
        page = await client.get("/settings/closeout")
        data = form_of(page, "/settings/closeout")
        row = int(data["rows"]) - 1
        data |= {
            f"rf-{row}-key": "brand",
            f"rf-{row}-label": "Brand",
            f"rf-{row}-type": "dropdown",
            f"rf-{row}-required": "on",
            "action": "save",
        }
        answer = await client.post("/settings/closeout", data=data)
    assert answer.status_code == 422
    assert "is a dropdown: give it options" in field_error(answer, f"rf-{row}-options")
    kept_values = form_of(answer, "/settings/closeout")
    assert kept_values[f"rf-{row}-key"] == "brand"
    assert kept_values[f"rf-{row}-type"] == "dropdown"
    assert kept_values[f"rf-{row}-required"] == "on"
    assert await _stored(stack) == before


async def test_two_fields_with_one_key_and_a_bad_key(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        page = await client.get("/settings/closeout")
        data = form_of(page, "/settings/closeout")
        a, b = int(data["rows"]) - 2, int(data["rows"]) - 1
        data |= {f"rf-{a}-key": "serial", f"rf-{a}-label": "Serial", "action": "save"}
        data |= {f"rf-{b}-key": "serial", f"rf-{b}-label": "Serial again"}
        twice = await client.post("/settings/closeout", data=data)
        assert twice.status_code == 422
        assert "two receipt fields have the key 'serial'" in field_error(twice, f"rf-{b}-key")
        data[f"rf-{b}-key"] = "Serial No"
        bad = await client.post("/settings/closeout", data=data)
        assert bad.status_code == 422
        assert "lower-case letters" in field_error(bad, f"rf-{b}-key")


# --- preview --------------------------------------------------------------------------------------


async def _outbox_total(stack: Stack) -> int:
    response = await stack.get("ada", "/api/v1/outbox", params={"page_size": 1})
    assert response.status_code == 200, response.text
    return response.json()["total"]


async def test_template_preview_renders_a_sample_and_saves_and_sends_nothing(
    stack: Stack, kept: None
) -> None:
    before, sent = await _stored(stack), await _outbox_total(stack)
    sms = "{{ company_name }}: job {{ job_number }} ✓ {{ window }}"
    async with signed_in(stack) as client:
        answer = await _submit(
            client,
            "/settings/communications",
            {
                "tpl-customer_update-email_subject": "Preview subject for {{ client_name }}",
                "tpl-customer_update-sms": sms,
                "action": "preview",
            },
        )
    assert answer.status_code == 200, answer.text
    assert "Nothing was saved and nothing was sent" in answer.text
    assert "Preview subject for Rivera Residence" in answer.text
    # The sample job (made by the real rules) with the company's own name, its window in the
    # company's zone with the zone named; a ✓ makes the SMS UCS-2.
    company = before[0].company_name
    assert re.search(
        re.escape(f"{html.escape(company, quote=True)}: job 1042 ✓ Tue ")
        + r"\d{1,2} \w{3}, 09:00–11:00 (UTC|[A-Z]{3,4}|UTC[+-]\d+)<",
        answer.text,
    ), answer.text
    assert "1 segment, UCS-2" in answer.text
    # What was typed is still in the form, to save or change.
    assert value_of(answer, "tpl-customer_update-sms") == sms
    assert await _stored(stack) == before
    assert await _outbox_total(stack) == sent


# --- the logo -----------------------------------------------------------------------------------


async def test_a_logo_over_one_mib_is_refused_in_words(stack: Stack, kept: None) -> None:
    before = await _stored(stack)
    too_big = PNG + b"\x00" * (MAX_LOGO_BYTES - len(PNG) + 1)
    async with signed_in(stack) as client:
        page = await client.get("/settings/branding")
        data = form_of(page, "/settings/branding") | {"footer": "Kept footer"}
        answer = await client.post(
            "/settings/branding", data=data, files={"logo": ("logo.png", too_big, "image/png")}
        )
        assert answer.status_code == 413, answer.text
        assert "larger than 1048576 bytes (1 mib)" in field_error(answer, "logo")
        assert value_of(answer, "footer") == "Kept footer"
        # Not an image at all: refused by its content, not its name.
        answer = await client.post(
            "/settings/branding", data=data, files={"logo": ("logo.png", b"%PDF-1.7", "image/png")}
        )
        assert answer.status_code == 422
        assert "not a png, jpeg or gif image" in field_error(answer, "logo")
        # Far over: refused before the body is read, with the route's limit in words.
        huge = PNG + b"\x00" * (3 * MAX_LOGO_BYTES)
        answer = await client.post(
            "/settings/branding", data=data, files={"logo": ("logo.png", huge, "image/png")}
        )
        assert answer.status_code == 413
        # ...as a page, not the API's JSON.
        assert answer.headers["content-type"].startswith("text/html")
        assert "larger than this route takes" in answer.text and "1,064,960 bytes" in answer.text
    assert await _stored(stack) == before
