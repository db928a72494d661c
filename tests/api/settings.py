"""Helpers for API tests that change the session-wide settings, and read the error shape.

Settings are one document per database shared by the whole session, so every test that changes
them restores what it found (in a `finally`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.conftest import Stack

CLOSEOUT = "/api/v1/settings/closeout"
BRANDING = "/api/v1/settings/branding"


def api_error(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """The `{"error": {...}}` of a refusal, checked: status, a code, a readable message that
    names each of `mentions`."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and len(error["message"]) >= 8
    assert "Traceback" not in error["message"]
    for word in mentions:
        assert word in error["message"], (word, error["message"])
    return error


async def put(stack: Stack, path: str, body: object, username: str = "ada") -> httpx.Response:
    return await stack.http.put(path, headers=stack.auth(username), json=body)


async def read(stack: Stack, path: str) -> dict[str, Any]:
    response = await stack.get("ada", path)
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.asynccontextmanager
async def restoring(stack: Stack) -> AsyncIterator[None]:
    """The closeout and branding settings as they were before, whatever happens inside."""
    closeout, branding = await read(stack, CLOSEOUT), await read(stack, BRANDING)
    try:
        yield
    finally:
        if not closeout["webhook_secret_set"]:
            closeout["webhook_secret"] = None  # otherwise omitted: the stored one is kept
        assert (await put(stack, CLOSEOUT, closeout)).status_code == 200
        assert (await put(stack, BRANDING, branding)).status_code == 200


@contextlib.asynccontextmanager
async def closeout_settings(stack: Stack, **changes: Any) -> AsyncIterator[None]:
    """The closeout settings with `changes`, restored afterwards."""
    async with restoring(stack):
        current = await read(stack, CLOSEOUT)
        del current["webhook_secret_set"]
        response = await put(stack, CLOSEOUT, {**current, **changes})
        assert response.status_code == 200, response.text
        yield


RESULTING = "/api/v1/settings/resulting"
# Resulting as a company would set it up: on, both types emailed to sales.
RESULTING_ON: dict[str, Any] = {
    "enabled": True,
    "unresulted_after_days": 7,
    "types": {
        "sale": {
            "pattern": "standard",
            "recipients": ["sales@example.com"],
            "fields": [
                {"key": "sale_amount", "label": "Sale amount", "type": "currency",
                 "required": True},
                {"key": "financing", "label": "Financing", "type": "checkbox"},
                {"key": "notes", "label": "Notes", "type": "text"},
                {"key": "signed_on", "label": "Signed on", "type": "date"},
                {"key": "units", "label": "Units", "type": "number"},
            ],
        },
        "no_sale": {
            "pattern": "compact",
            "recipients": ["sales@example.com", "manager@example.com"],
            "fields": [
                {"key": "loss_reason", "label": "Why we lost it", "type": "dropdown",
                 "required": True, "options": ["Price", "Timing", "Went with competitor"]},
                {"key": "competitor_price", "label": "Competitor's price", "type": "currency"},
                {"key": "follow_up_on", "label": "Follow up on", "type": "date"},
            ],
        },
    },
}  # fmt: skip


@contextlib.asynccontextmanager
async def resulting_settings(
    stack: Stack, settings: dict[str, Any] | None = None
) -> AsyncIterator[None]:
    """The resulting settings (RESULTING_ON by default) for the block, restored afterwards."""
    before = await read(stack, RESULTING)
    try:
        response = await put(stack, RESULTING, settings or RESULTING_ON)
        assert response.status_code == 200, response.text
        yield
    finally:
        assert (await put(stack, RESULTING, before)).status_code == 200
