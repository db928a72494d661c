"""The closeout webhook goes to public internet hosts only (issue 8 item 11): saving a URL that
names a loopback, private, link-local, unspecified or multicast address is a 422 that says why
and how an operator may allow it, and changes nothing. (The check at delivery, after DNS, is in
tests/activities/test_closeout.py.)

The session's stack allows private targets (its webhook receiver is on 127.0.0.1), so these
tests put an API with the default settings in front of the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from core.config import Settings
from tests.api.settings import CLOSEOUT, api_error, read, restoring
from tests.conftest import Stack

SECRET = "webhook-secret-for-target-tests"
REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:169.254.169.254]/",
    "http://10.0.0.5:8080/x",
    "https://192.168.1.10/hook",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://2130706433/",
]


@pytest.fixture
async def public_only(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API as shipped (JOBLINE_WEBHOOK_ALLOW_PRIVATE unset), over the stack's database."""
    settings = Settings(_env_file=None, environment="test", task_queue=stack.task_queue)  # type: ignore[call-arg]
    assert settings.webhook_allow_private is False
    app = create_app(settings, db=stack.db, temporal=stack.temporal)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


async def _put(stack: Stack, http: httpx.AsyncClient, url: str) -> httpx.Response:
    current = await read(stack, CLOSEOUT)
    del current["webhook_secret_set"]
    body = {**current, "webhook_url": url, "webhook_secret": SECRET}
    return await http.put(CLOSEOUT, headers=stack.auth("ada"), json=body)


@pytest.mark.parametrize("url", REFUSED)
async def test_a_non_public_webhook_url_is_refused_and_nothing_changes(
    stack: Stack, public_only: httpx.AsyncClient, url: str
) -> None:
    before = await read(stack, CLOSEOUT)
    error = api_error(
        await _put(stack, public_only, url), 422, "webhook_url", "JOBLINE_WEBHOOK_ALLOW_PRIVATE"
    )
    assert error["code"] == "invalid"
    assert await read(stack, CLOSEOUT) == before


async def test_a_public_webhook_url_is_saved(stack: Stack, public_only: httpx.AsyncClient) -> None:
    async with restoring(stack):
        saved = await _put(stack, public_only, "https://portal.example.com/hooks/jobline")
        assert saved.status_code == 200, saved.text
        assert saved.json()["webhook_url"] == "https://portal.example.com/hooks/jobline"


async def test_the_operator_may_allow_private_targets(stack: Stack) -> None:
    """The stack's API runs with JOBLINE_WEBHOOK_ALLOW_PRIVATE=true: the same URL is taken."""
    async with restoring(stack):
        saved = await _put(stack, stack.http, "http://127.0.0.1:8080/hook")
        assert saved.status_code == 200, saved.text
