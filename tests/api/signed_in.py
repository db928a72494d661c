"""People signed in to the office pages over httpx (ASGI), for the page tests of /jobs/new and
/clients: each person gets a password, signs in through /signin like a browser, and keeps their
session cookie in their own client."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from api.app import create_app
from api.users.service import create_user, find_user, set_password
from core.config import Settings
from tests.conftest import Stack

PASSWORD = "correct horse battery"
SignIn = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, page.text
    return found.group(1)


async def new_person(stack: Stack, role: str) -> str:
    username = f"p{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(session, username, role, f"{username}@jobline.test")
        await set_password(session, user, PASSWORD)
    return username


@pytest.fixture(name="signed_in")
async def signed_in_fixture(stack: Stack) -> AsyncIterator[SignIn]:
    """`await signed_in("office")`: a client signed in as a new person of that role;
    `await signed_in(username="tess")`: as that person of the stack (given a password here)."""
    app = create_app(
        Settings(environment="test", task_queue=stack.task_queue),
        db=stack.db,
        temporal=stack.temporal,
    )
    async with AsyncExitStack() as running:
        await running.enter_async_context(app.router.lifespan_context(app))

        async def _sign_in(role: str = "office", username: str | None = None) -> httpx.AsyncClient:
            if username is None:
                username = await new_person(stack, role)
            else:
                async with stack.db.session() as session:
                    user = await find_user(session, username)
                    assert user is not None
                    await set_password(session, user, PASSWORD)
            client = await running.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://jobline.test"
                )
            )
            form = await client.get("/signin")
            answer = await client.post(
                "/signin",
                data={"login": username, "password": PASSWORD, "csrf_token": csrf_of(form)},
            )
            assert answer.status_code == 303, answer.text
            return client

        yield _sign_in
