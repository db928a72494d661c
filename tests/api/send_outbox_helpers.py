"""Signed-in browsers without a browser, for the Send dialog's and the outbox's page tests:
httpx over ASGI against an app of their own on the shared stack (its own sign-in throttle),
signed in through the real /signin form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import httpx
import pytest

from api.app import create_app
from api.users.service import find_user, set_password
from core.config import Settings
from tests.conftest import Stack

PASSWORD = "correct horse battery"
Web = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def hidden(page: httpx.Response, name: str) -> str:
    """A hidden input's value in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, (name, page.text[:3000])
    return found.group(1)


async def give_password(stack: Stack, username: str) -> None:
    async with stack.db.session() as session:
        user = await find_user(session, username)
        assert user is not None
        await set_password(session, user, PASSWORD)


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[Web]:
    """`async with web("olga") as client:` a client signed in as olga."""
    settings = Settings(environment="test", task_queue=stack.task_queue)
    app = create_app(settings, db=stack.db, temporal=stack.temporal)
    async with AsyncExitStack() as running:
        await running.enter_async_context(app.router.lifespan_context(app))

        @asynccontextmanager
        async def _signed_in(username: str) -> AsyncIterator[httpx.AsyncClient]:
            await give_password(stack, username)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://jobline.test"
            ) as client:
                form = await client.get("/signin")
                answer = await client.post(
                    "/signin",
                    data={
                        "login": username,
                        "password": PASSWORD,
                        "csrf_token": hidden(form, "csrf_token"),
                    },
                )
                assert answer.status_code == 303, answer.text
                yield client

        yield _signed_in
