"""`/settings/resulting` over HTTP (ASGI), on both databases: an admin saves the form
(post/redirect/get) and adds, reorders and removes fields; everyone else reads it and is refused
a POST; each rule of the resulting settings refuses a save with its words at its place in the
form and in the summary, everything typed kept and nothing saved; a POST without its CSRF token
changes nothing; the dry run tries the form's unsaved values and shows its checks.

Forms are sent as a browser sends them (tests/api/test_settings_pages.form_of): every field the
page holds, as the page filled it in, with a person's changes on top. The resulting settings are
shared by the session: each test puts back what it found.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.resulting import settings as resulting_settings
from core.settings_store import RESULTING
from models.resulting import ResultingSettings
from models.tables import OutboxMessage
from tests.api.test_settings_pages import field_error, form_of, signed_in
from tests.conftest import Stack

PATH = "/settings/resulting"
READ_ONLY = "Only an admin can change these settings."
SAVED = "Saved. Results submitted from now on use these settings"


@pytest.fixture
async def kept(stack: Stack) -> AsyncIterator[ResultingSettings]:
    """The resulting settings as they were (given to the test), put back after it."""
    async with stack.db.session() as session:
        before = await resulting_settings.load(session)
    yield before
    async with stack.db.session() as session:
        await resulting_settings.save(session, before, "test")


async def _stored(stack: Stack) -> ResultingSettings:
    async with stack.db.session() as session:
        return await resulting_settings.load(session)


async def _form(client: httpx.AsyncClient) -> dict[str, str]:
    page = await client.get(PATH)
    assert page.status_code == 200, page.text
    return form_of(page, PATH)


def _rows(data: dict[str, str], type_: str) -> int:
    return int(data[f"{type_}-rows"])


def _keys(data: dict[str, str], type_: str) -> list[str]:
    return [data[f"{type_}-rf-{i}-key"] for i in range(_rows(data, type_))]


def _row_of(data: dict[str, str], type_: str, key: str) -> int:
    return _keys(data, type_).index(key)


def _enabled(data: dict[str, str]) -> dict[str, str]:
    """The form with resulting on and an address for each type: a save that passes."""
    return data | {
        "enabled": "on",
        "sale-recipients": "sales@example.com",
        "no_sale-recipients": "sales@example.com",
    }


# --- reading ------------------------------------------------------------------------------------


async def test_the_page_shows_the_settings_in_the_side_list(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        page = await client.get(PATH)
        index = await client.get("/settings")
    assert page.status_code == 200, page.text
    assert '<a href="/settings/resulting" aria-current="page">Resulting</a>' in page.text
    assert 'href="/settings/resulting"' in index.text
    # Each type with its patterns (described), recipients and fields; the dry-run button.
    for name in ("standard", "compact"):
        assert f'<option value="{name}"' in page.text
    assert "Compact: a one-glance summary" in page.text
    data = form_of(page, PATH)
    stored = await _stored(stack)
    for type_ in ("sale", "no_sale"):
        fields = stored.types.of(type_).fields
        assert _keys(data, type_)[: len(fields)] == [f.key for f in fields]
        assert _rows(data, type_) == len(fields) + 1  # and one blank row
        assert data[f"{type_}-recipients"] == "\n".join(stored.types.of(type_).recipients)
    assert ">Try these settings (dry run)</button>" in page.text
    assert READ_ONLY not in page.text


@pytest.mark.parametrize("role", ["manager", "office", "sales", "technician"])
async def test_others_read_it_and_a_post_is_403(stack: Stack, kept: None, role: str) -> None:
    before = await _stored(stack)
    async with signed_in(stack, role) as client:
        page = await client.get(PATH)
        assert page.status_code == 200, page.text
        assert READ_ONLY in page.text and "<fieldset disabled>" in page.text
        assert ">Save</button>" not in page.text and "(dry run)</button>" not in page.text
        assert "Add a field" not in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        for action in ("save", "dry-run", "add-sale"):
            data = _enabled(form_of(page, PATH)) | {"csrf_token": token[1], "action": action}
            answer = await client.post(PATH, data=data)
            assert answer.status_code == 403, (action, answer.text)
            assert "changing settings is for: admin" in answer.text
    assert await _stored(stack) == before


async def test_a_post_without_its_csrf_token_changes_nothing(stack: Stack, kept: None) -> None:
    before = await _stored(stack)
    async with signed_in(stack) as client:
        data = _enabled(await _form(client)) | {"unresulted_after_days": "30", "action": "save"}
        for token in (None, "not-the-token"):
            sent = dict(data)
            if token is None:
                sent.pop("csrf_token")
            else:
                sent["csrf_token"] = token
            answer = await client.post(PATH, data=sent)
            assert answer.status_code == 403
            assert "missing its security token" in answer.text
    assert await _stored(stack) == before


async def test_signed_out_is_sent_to_sign_in(stack: Stack) -> None:
    answer = await stack.http.get(PATH)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fsettings%2Fresulting"


# --- an admin saves -------------------------------------------------------------------------------


async def test_admin_configures_both_types_and_saves(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        data = await _form(client)
        blank = _rows(data, "no_sale") - 1
        data |= {
            "enabled": "on",
            "unresulted_after_days": "10",
            "sale-pattern": "compact",
            # One a line, or comma-separated; CRLF as a browser sends it; blanks ignored.
            "sale-recipients": "sales@example.com, boss@example.com\r\n\r\nbooks@example.com",
            "no_sale-recipients": "sales@example.com",
            f"no_sale-rf-{blank}-label": "Competitor",
            f"no_sale-rf-{blank}-key": "competitor",
            f"no_sale-rf-{blank}-type": "dropdown",
            f"no_sale-rf-{blank}-options": "Acme Air\r\nBest HVAC\r\n\r\nCool Co\r\n",
            f"no_sale-rf-{blank}-required": "on",
            "action": "save",
        }
        answer = await client.post(PATH, data=data)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == PATH
        after = await client.get(PATH)
        assert SAVED in after.text
        shown = form_of(after, PATH)
        assert shown["enabled"] == "on" and shown["sale-pattern"] == "compact"
        assert shown["sale-recipients"] == "sales@example.com\nboss@example.com\nbooks@example.com"
        row = _row_of(shown, "no_sale", "competitor")
        assert shown[f"no_sale-rf-{row}-options"] == "Acme Air\nBest HVAC\nCool Co"
        assert "No Sale field 3: Competitor" in after.text
    stored = await _stored(stack)
    assert stored.enabled and stored.unresulted_after_days == 10
    assert stored.types.sale.pattern == "compact"
    assert stored.types.sale.recipients == [
        "sales@example.com",
        "boss@example.com",
        "books@example.com",
    ]
    competitor = stored.types.no_sale.fields[-1]
    assert competitor.model_dump() == {
        "key": "competitor",
        "label": "Competitor",
        "type": "dropdown",
        "required": True,
        "options": ["Acme Air", "Best HVAC", "Cool Co"],
    }


async def test_fields_are_reordered_and_removed(stack: Stack, kept: ResultingSettings) -> None:
    sale = [f.key for f in kept.types.sale.fields]
    assert len(sale) >= 2, sale  # the defaults: sale_amount, notes
    async with signed_in(stack) as client:
        data = await _form(client)
        # The last stored Sale field first; the first one removed.
        data |= {"sale-rf-0-delete": "on", f"sale-rf-{len(sale) - 1}-position": "0"}
        answer = await client.post(PATH, data=data | {"action": "save"})
        assert answer.status_code == 303, answer.text
    stored = [f.key for f in (await _stored(stack)).types.sale.fields]
    assert stored == [sale[-1], *sale[1:-1]]


async def test_add_a_field_keeps_what_was_typed_and_saves_nothing(stack: Stack, kept: None) -> None:
    before = await _stored(stack)
    async with signed_in(stack) as client:
        data = await _form(client)
        rows = _rows(data, "sale")
        data |= {
            f"sale-rf-{rows - 1}-label": "Half typed",
            "unresulted_after_days": "9",
            "no_sale-recipients": "typed@example.com",
            "action": "add-sale",
        }
        answer = await client.post(PATH, data=data)
        assert answer.status_code == 200, answer.text
        shown = form_of(answer, PATH)
        assert _rows(shown, "sale") == rows + 1
        assert _rows(shown, "no_sale") == _rows(data, "no_sale")
        assert shown[f"sale-rf-{rows - 1}-label"] == "Half typed"
        assert shown[f"sale-rf-{rows}-key"] == "" and shown[f"sale-rf-{rows}-label"] == ""
        assert shown["unresulted_after_days"] == "9"
        assert shown["no_sale-recipients"] == "typed@example.com"
        assert "There is a problem" not in answer.text
    assert await _stored(stack) == before


# --- every rule refuses, at its place -----------------------------------------------------------


def _no_sale_fields_removed(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    stored = [i for i, key in enumerate(_keys(data, "no_sale")) if key]
    removed = {f"no_sale-rf-{i}-delete": "on" for i in stored}
    return removed, "no_sale-fields", "no sale has no fields: give it at least one"


def _no_recipients_while_enabled(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    return {"sale-recipients": ""}, "sale-recipients", "sale (sale) has no recipients"


def _bad_recipient(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    changes = {"no_sale-recipients": "sales@example.com, sales-at-example"}
    return changes, "no_sale-recipients", "no sale: 'sales-at-example' is not an email address"


def _duplicate_key(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    blank = _rows(data, "sale") - 1
    changes = {f"sale-rf-{blank}-key": data["sale-rf-0-key"], f"sale-rf-{blank}-label": "Again"}
    key = data["sale-rf-0-key"]
    return changes, f"sale-rf-{blank}-key", f"sale: two fields have the key '{key}'"


def _empty_label(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    return {"sale-rf-0-label": "  "}, "sale-rf-0-label", "sale: give this field a label"


def _one_option_dropdown(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    blank = _rows(data, "no_sale") - 1
    changes = {
        f"no_sale-rf-{blank}-key": "competitor",
        f"no_sale-rf-{blank}-label": "Competitor",
        f"no_sale-rf-{blank}-type": "dropdown",
        f"no_sale-rf-{blank}-options": "Acme Air",
    }
    return changes, f"no_sale-rf-{blank}-options", "give it at least two options"


def _options_on_text(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    changes = {"sale-rf-0-type": "text", "sale-rf-0-options": "One\nTwo"}
    return changes, "sale-rf-0-options", "only dropdowns have options"


def _unknown_pattern(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    return {"sale-pattern": "fancy"}, "sale-pattern", "sale: unknown pattern 'fancy'"


def _bad_key(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    return {"sale-rf-0-key": "Sale Amount"}, "sale-rf-0-key", "must be lower-case letters"


def _bad_days(data: dict[str, str]) -> tuple[dict[str, str], str, str]:
    return {"unresulted_after_days": "0"}, "unresulted_after_days", "from 1 to 365"


RULES = [
    _no_sale_fields_removed,
    _no_recipients_while_enabled,
    _bad_recipient,
    _duplicate_key,
    _empty_label,
    _one_option_dropdown,
    _options_on_text,
    _unknown_pattern,
    _bad_key,
    _bad_days,
]


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__.strip("_") for r in RULES])
@pytest.mark.parametrize("action", ["save", "dry-run"])
async def test_each_rule_refuses_at_its_place_and_nothing_is_saved(
    stack: Stack, kept: None, rule: object, action: str
) -> None:
    before = await _stored(stack)
    async with signed_in(stack) as client:
        data = _enabled(await _form(client)) | {"unresulted_after_days": "21"}
        changes, field, words = rule(data)  # type: ignore[operator]
        sent = data | changes | {"action": action}
        answer = await client.post(PATH, data=sent)
    assert answer.status_code == 422, answer.text
    # Named at its place, and in the summary with a link to it.
    assert words in field_error(answer, field)
    assert "There is a problem" in answer.text and f'<a href="#{field}">' in answer.text
    assert f'id="{field}"' in answer.text
    # Everything typed is kept (new lines as LF), the problem too; but a select shows only
    # its options (a pattern no page offers was sent by hand).
    shown = form_of(answer, PATH)
    for name, value in sent.items():
        if name not in ("csrf_token", "action", "sale-pattern"):
            assert shown.get(name, "") == value.replace("\r\n", "\n"), name
    assert 'id="dry-run"' not in answer.text  # refused before anything was tried
    assert await _stored(stack) == before


# --- the dry run ----------------------------------------------------------------------------------


async def _result_messages(stack: Stack) -> list[OutboxMessage]:
    from sqlmodel import select

    async with stack.db.session() as session:
        found = await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "result"))
        return list(found.all())


async def test_the_dry_run_tries_the_unsaved_form_and_shows_its_checks(
    stack: Stack, kept: None
) -> None:
    before = await _stored(stack)
    messages_before = {m.id for m in await _result_messages(stack)}
    async with signed_in(stack) as client:
        data = await _form(client)
        blank = _rows(data, "sale") - 1
        sent = _enabled(data) | {
            "sale-recipients": "dry.run@example.com",
            f"sale-rf-{blank}-key": "financing",
            f"sale-rf-{blank}-label": "Financing",
            f"sale-rf-{blank}-type": "dropdown",
            f"sale-rf-{blank}-options": "Cash\nLoan",
            f"sale-rf-{blank}-required": "on",
            "action": "dry-run",
        }
        answer = await client.post(PATH, data=sent)
    assert answer.status_code == 200, answer.text
    assert "Dry run: every check passed" in answer.text, answer.text
    assert "not saved" in answer.text
    assert '<a href="/outbox?purpose=result">' in answer.text
    # Its checks, each marked in words: the new required field is among those it enforced.
    checks = re.findall(r'<span class="tag (ok|failed)">(OK|Failed)</span>', answer.text)
    assert checks and all(kind == "ok" for kind, _ in checks), checks
    assert "Sale: required fields are enforced" in answer.text
    assert "Financing" in answer.text
    # The form holds what was tried, to change or save; nothing was saved.
    shown = form_of(answer, PATH)
    assert shown[f"sale-rf-{blank}-key"] == "financing"
    assert shown["sale-recipients"] == "dry.run@example.com"
    assert await _stored(stack) == before
    # Its emails went to the outbox only, captured, to the unsaved recipients.
    new = [m for m in await _result_messages(stack) if m.id not in messages_before]
    assert new and {m.status for m in new} == {"captured"}
    assert any("dry.run@example.com" in m.to for m in new)


async def test_a_dry_run_of_turned_off_settings_names_what_fails(stack: Stack, kept: None) -> None:
    async with signed_in(stack) as client:
        data = await _form(client) | {"enabled": "", "action": "dry-run"}
        data |= {"sale-recipients": "", "no_sale-recipients": ""}
        answer = await client.post(PATH, data=data)
    assert answer.status_code == 200, answer.text
    assert re.search(r"Dry run: \d+ of \d+ checks failed", answer.text), answer.text
    assert '<span class="tag failed">Failed</span>' in answer.text
    assert "Resulting is turned on" in answer.text
    assert "nobody would be emailed" in answer.text


async def test_the_setting_is_stored_under_its_name(stack: Stack, kept: None) -> None:
    # The page writes the one `resulting` document the API and the workflows read.
    async with signed_in(stack) as client:
        data = _enabled(await _form(client)) | {"unresulted_after_days": "45", "action": "save"}
        assert (await client.post(PATH, data=data)).status_code == 303
    from core import settings_store

    async with stack.db.session() as session:
        stored = await settings_store.load(session, RESULTING, ResultingSettings)
    assert stored.unresulted_after_days == 45
