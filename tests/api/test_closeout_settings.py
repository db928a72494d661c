"""Closeout and branding settings through the HTTP API (DESIGN.md §4 "Closeout settings", §8):
everyone reads, admins write, nonsense is a 422 that says what is wrong, the webhook secret is
never returned, and the logo upload takes PNG, JPEG or GIF of at most 1 MiB.

Settings are shared by the whole session: every test that changes them restores what it found
(`tests.api.settings.restoring`).
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.settings import BRANDING, CLOSEOUT, api_error, put, read, restoring
from tests.conftest import Stack

LOGO = "/api/v1/settings/branding/logo"
READERS = ("ada", "mia", "olga", "sam", "tess")
NON_ADMINS = ("mia", "olga", "sam", "tess")
SECRET = "a-very-secret-webhook-key"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64
FIELDS = [
    {"key": "serial", "label": "Serial number", "type": "text", "required": True, "options": []},
    {
        "key": "refrigerant",
        "label": "Refrigerant",
        "type": "dropdown",
        "required": False,
        "options": ["R-410A", "R-22"],
    },
]


async def _upload(
    stack: Stack,
    content: bytes,
    username: str = "ada",
    filename: str = "logo.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await stack.http.post(
        LOGO, headers=stack.auth(username), files={"file": (filename, content, content_type)}
    )


# --- closeout ---------------------------------------------------------------------------------


async def test_closeout_defaults_everyone_reads(stack: Stack) -> None:
    for reader in READERS:
        response = await stack.get(reader, CLOSEOUT)
        assert response.status_code == 200, (reader, response.text)
        assert response.json() == {
            "channel": "email",
            "receipt_fields": [],
            "portal_link_days": 30,
            "webhook_url": None,
            "webhook_secret_set": False,
        }
    assert (await stack.http.get(CLOSEOUT)).status_code == 401


async def test_closeout_writes_are_for_admins(stack: Stack) -> None:
    for username in NON_ADMINS:
        response = await put(stack, CLOSEOUT, {"channel": "sms"}, username)
        api_error(response, 403, "admin")
    assert (await read(stack, CLOSEOUT))["channel"] == "email"


async def test_closeout_round_trip_and_secret_never_echoed(stack: Stack) -> None:
    async with restoring(stack):
        body = {
            "channel": "both",
            "receipt_fields": FIELDS,
            "portal_link_days": 14,
            "webhook_url": "https://portal.example.com/hook",
            "webhook_secret": SECRET,
        }
        response = await put(stack, CLOSEOUT, body)
        assert response.status_code == 200, response.text
        assert SECRET not in response.text
        expected = {**body, "webhook_secret_set": True}
        del expected["webhook_secret"]
        assert response.json() == expected
        for reader in READERS:
            read = await stack.get(reader, CLOSEOUT)
            assert read.json() == expected and SECRET not in read.text

        # What a GET returns can be PUT back as it is: the stored secret stays.
        again = await put(stack, CLOSEOUT, {**expected, "portal_link_days": 7})
        assert again.status_code == 200, again.text
        assert again.json()["webhook_secret_set"] is True
        assert again.json()["portal_link_days"] == 7

        # Removing the webhook and its secret together.
        cleared = await put(
            stack, CLOSEOUT, {**expected, "webhook_url": None, "webhook_secret": None}
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["webhook_secret_set"] is False
        # A webhook without a secret is refused: it could not be signed.
        api_error(
            await put(stack, CLOSEOUT, {"webhook_url": "https://portal.example.com/hook"}),
            422,
            "webhook_secret",
        )


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"channel": "fax"}, ["channel"]),
        ({"portal_link_days": 0}, ["portal_link_days"]),
        ({"portal_link_days": 400}, ["portal_link_days"]),
        ({"portal_link_days": "soon"}, ["portal_link_days"]),
        ({"webhook_url": "ftp://example.com", "webhook_secret": SECRET}, ["webhook_url", "http"]),
        ({"webhook_url": "https://example.com", "webhook_secret": "short"}, ["webhook_secret"]),
        ({"webhook_url": "https://example.com", "webhook_secret": None}, ["webhook_secret"]),
        ({"receipt_fields": [{"key": "Bad Key", "label": "X"}]}, ["key"]),
        ({"receipt_fields": [{"key": "x", "label": ""}]}, ["label"]),
        ({"receipt_fields": [{"key": "x", "label": "X", "type": "photo"}]}, ["type"]),
        ({"receipt_fields": [{"key": "x", "label": "X", "type": "dropdown"}]}, ["options"]),
        ({"receipt_fields": [{"key": "x", "label": "X", "options": ["a"]}]}, ["dropdown"]),
        ({"receipt_fields": [{"key": "x", "label": "X"}, {"key": "x", "label": "Y"}]}, ["unique"]),
        ({"receipt_fields": "serial"}, ["receipt_fields"]),
        ({"surprise": True}, ["surprise"]),
        ([1, 2], []),
    ],
)
async def test_closeout_nonsense_is_422(stack: Stack, body: object, mentions: list[str]) -> None:
    before = await read(stack, CLOSEOUT)
    api_error(await put(stack, CLOSEOUT, body), 422, *mentions)
    assert await read(stack, CLOSEOUT) == before


# --- branding ---------------------------------------------------------------------------------


async def test_branding_defaults_everyone_reads_admin_writes(stack: Stack) -> None:
    for reader in READERS:
        response = await stack.get(reader, BRANDING)
        assert response.status_code == 200, (reader, response.text)
        assert response.json()["primary_color"].startswith("#")
        assert "logo_document_id" in response.json()
    for username in NON_ADMINS:
        api_error(await put(stack, BRANDING, {"phone": "1"}, username), 403, "admin")
        api_error(await _upload(stack, PNG, username), 403, "admin")


async def test_branding_round_trip(stack: Stack) -> None:
    async with restoring(stack):
        current = await read(stack, BRANDING)
        body = {
            **current,
            "company_name": "Cool Air Co",
            "primary_color": "#C00",
            "paper_size": "A4",
        }
        response = await put(stack, BRANDING, body)
        assert response.status_code == 200, response.text
        assert response.json()["primary_color"] == "#cc0000"
        assert (await stack.get("tess", BRANDING)).json()["company_name"] == "Cool Air Co"


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"primary_color": "red; background: url(x)"}, ["primary_color", "hex"]),
        ({"paper_size": "A3"}, ["paper_size"]),
        ({"email": "not-an-email"}, ["email"]),
        ({"logo_document_id": "../../etc/passwd"}, ["logo_document_id"]),
        ({"logo_document_id": "0" * 32}, ["logo_document_id", "upload"]),
        ({"surprise": 1}, ["surprise"]),
    ],
)
async def test_branding_nonsense_is_422(stack: Stack, body: object, mentions: list[str]) -> None:
    before = await read(stack, BRANDING)
    api_error(await put(stack, BRANDING, body), 422, *mentions)
    assert await read(stack, BRANDING) == before


# --- logo upload ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename"), [(PNG, "logo.png"), (JPEG, "logo.jpg"), (GIF, "logo.gif")]
)
async def test_logo_upload_sets_branding(stack: Stack, content: bytes, filename: str) -> None:
    async with restoring(stack):
        response = await _upload(stack, content, filename=filename)
        assert response.status_code == 200, response.text
        logo_id = response.json()["logo_document_id"]
        assert isinstance(logo_id, str) and len(logo_id) == 32
        assert (await stack.get("tess", BRANDING)).json()["logo_document_id"] == logo_id
        # The uploaded logo may be named in a later PUT (it is a logo document).
        again = await put(stack, BRANDING, response.json())
        assert again.status_code == 200, again.text


async def test_logo_of_exactly_one_mib_is_accepted(stack: Stack) -> None:
    async with restoring(stack):
        content = PNG + b"\x00" * (1024 * 1024 - len(PNG))
        response = await _upload(stack, content)
        assert response.status_code == 200, response.text


async def test_logo_bad_uploads(stack: Stack) -> None:
    before = await read(stack, BRANDING)
    too_big = PNG + b"\x00" * (1024 * 1024 - len(PNG) + 1)
    api_error(await _upload(stack, too_big), 413, "1 MiB")
    # The name and content type say PNG; the bytes do not.
    api_error(await _upload(stack, b"<svg xmlns='http://www.w3.org/2000/svg'/>"), 422, "PNG")
    api_error(await _upload(stack, b"%PDF-1.7 not an image"), 422, "PNG, JPEG or GIF")
    api_error(await _upload(stack, b""), 422, "empty")
    no_file = await stack.http.post(LOGO, headers=stack.auth("ada"), data={"other": "x"})
    api_error(no_file, 422, "file")
    as_json = await stack.http.post(LOGO, headers=stack.auth("ada"), json={"file": "x"})
    api_error(as_json, 422)
    assert await read(stack, BRANDING) == before
