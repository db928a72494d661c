"""Sign-in for people (issue 9, item 1), on both databases: sessions, CSRF and throttling.

Each test gets its own app (and so its own in-memory throttle) on the shared stack's database,
and its own client address, so one test's failed sign-ins do not slow another's.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.app import create_app
from api.users.service import create_user, disable_user, find_user, set_password
from api.web.sessions import PRESIGNIN_COOKIE, SESSION_COOKIE
from api.web.throttle import MAX_FAILURES
from core.config import Settings
from models.tables import WebSession
from tests.conftest import Stack

PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[Callable[..., Any]]:
    """Clients of one app per public URL (one throttle per test), each from its own address."""
    apps: dict[str, FastAPI] = {}
    async with AsyncExitStack() as running:

        @asynccontextmanager
        async def _client(
            public_url: str = "http://jobline.test", address: str | None = None
        ) -> AsyncIterator[httpx.AsyncClient]:
            if public_url not in apps:
                settings = Settings(
                    environment="test", task_queue=stack.task_queue, public_url=public_url
                )
                app = create_app(settings, db=stack.db, temporal=stack.temporal)
                await running.enter_async_context(app.router.lifespan_context(app))
                apps[public_url] = app
            host = address or f"10.9.{next(_addresses) // 250 % 250}.{next(_addresses) % 250 + 1}"
            transport = httpx.ASGITransport(app=apps[public_url], client=(host, 40000))
            async with httpx.AsyncClient(transport=transport, base_url=public_url) as client:
                yield client

        yield _client


async def _person(stack: Stack, role: str = "office") -> str:
    username = f"p{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(session, username, role, f"{username}@Jobline.test")
        await set_password(session, user, PASSWORD)
    return username


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    form = await client.get("/signin")
    assert form.status_code == 200, form.text
    return await client.post(
        "/signin", data={"login": login, "password": password, "csrf_token": _csrf(form)}
    )


def _set_cookie(response: httpx.Response, name: str) -> str:
    lines = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert len(lines) == 1, response.headers.get_list("set-cookie")
    return lines[0]


async def test_a_person_signs_in_by_username_or_email_and_out(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    username = await _person(stack)
    async with web() as client:
        assert (await client.get("/")).headers["location"] == "/signin"
        answer = await _sign_in(client, username, PASSWORD)
        assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
        cookie = _set_cookie(answer, SESSION_COOKIE).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # the public URL is http
        assert (await client.get("/")).headers["location"] == "/jobs"
        board = await client.get("/jobs")
        assert (
            board.status_code == 200 and f"Signed in as <strong>{username}</strong>" in board.text
        )
        token = client.cookies[SESSION_COOKIE]

        out = await client.post("/signout", data={"csrf_token": _csrf(board)})
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert SESSION_COOKIE not in client.cookies
        # The server ended it: the old cookie, sent again, signs no one in.
        client.cookies.set(SESSION_COOKIE, token)
        again = await client.get("/jobs")
        assert again.status_code == 303 and again.headers["location"] == "/signin?next=%2Fjobs"

    async with web() as client:
        by_email = await _sign_in(client, f"{username.upper()}@jobline.test", PASSWORD)
        assert by_email.status_code == 303, by_email.text
        assert (await client.get("/jobs")).status_code == 200


async def test_a_wrong_password_signs_no_one_in_and_keeps_the_name(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    username = await _person(stack)
    async with web() as client:
        answer = await _sign_in(client, username, "not the password")
        assert answer.status_code == 401
        assert "is not right" in answer.text and f'value="{username}"' in answer.text
        assert SESSION_COOKIE not in client.cookies
        # A user with no password (API only) cannot sign in with an empty one either.
        assert (await _sign_in(client, "olga", "")).status_code == 401


async def test_a_post_without_its_csrf_token_gets_403_and_changes_nothing(
    stack: Stack,
    web,  # type: ignore[no-untyped-def]
) -> None:
    username = await _person(stack)
    async with web() as client:
        await client.get("/signin")  # the pre-sign-in cookie is set, the form's token not sent
        bare = await client.post("/signin", data={"login": username, "password": PASSWORD})
        assert bare.status_code == 403 and SESSION_COOKIE not in client.cookies
        wrong = await client.post(
            "/signin", data={"login": username, "password": PASSWORD, "csrf_token": "forged"}
        )
        assert wrong.status_code == 403 and SESSION_COOKIE not in client.cookies

        assert (await _sign_in(client, username, PASSWORD)).status_code == 303
        refused = await client.post("/signout")
        assert refused.status_code == 403 and "Nothing was changed" in refused.text
        # The pre-sign-in token is not the session's: a form from before sign-in is refused.
        stale = await client.post("/signout", data={"csrf_token": "x" * 43})
        assert stale.status_code == 403
        assert (await client.get("/jobs")).status_code == 200  # still signed in


async def test_failed_sign_ins_are_slowed_per_account(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    username = await _person(stack)
    for _ in range(MAX_FAILURES):  # from as many addresses: only the account's count adds up
        async with web() as client:
            assert (await _sign_in(client, username, "guess")).status_code == 401
    async with web() as client:
        slowed = await _sign_in(client, username, PASSWORD)  # even the right password waits
        assert slowed.status_code == 429, slowed.text
        assert int(slowed.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in slowed.text
        assert SESSION_COOKIE not in client.cookies
        # Another account from the same address is not held up by this one.
        assert (await _sign_in(client, await _person(stack), PASSWORD)).status_code == 303


async def test_failed_sign_ins_are_slowed_per_address(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    address = f"10.8.0.{next(_addresses) % 250 + 1}"
    async with web(address=address) as client:
        for _ in range(MAX_FAILURES):  # a different account each time: the address adds up
            assert (await _sign_in(client, await _person(stack), "guess")).status_code == 401
        slowed = await _sign_in(client, await _person(stack), PASSWORD)
        assert slowed.status_code == 429, slowed.text
    async with web() as elsewhere:  # the same person from another address gets in
        assert (await _sign_in(elsewhere, await _person(stack), PASSWORD)).status_code == 303


async def test_the_cookie_is_secure_when_the_public_url_is_https(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    username = await _person(stack)
    async with web(public_url="https://jobline.test") as client:
        form = await client.get("/signin")
        assert "secure" in _set_cookie(form, PRESIGNIN_COOKIE).lower()
        answer = await _sign_in(client, username, PASSWORD)
        assert answer.status_code == 303, answer.text
        cookie = _set_cookie(answer, SESSION_COOKIE).lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert (await client.get("/jobs")).status_code == 200


async def test_bearer_tokens_work_as_before_and_the_api_ignores_the_cookie(
    stack: Stack,
    web,  # type: ignore[no-untyped-def]
) -> None:
    username = await _person(stack)
    async with web() as client:
        assert (await _sign_in(client, username, PASSWORD)).status_code == 303
        # The JSON API keeps bearer tokens only: a page's cookie is no credential there.
        cookie_only = await client.get("/api/v1/users/me")
        assert cookie_only.status_code == 401
        cookie_post = await client.post("/api/v1/clients", json={"name": "By cookie"})
        assert cookie_post.status_code == 401
    me = await stack.get("olga", "/api/v1/users/me")
    assert me.status_code == 200 and me.json()["username"] == "olga"


async def test_a_disabled_user_is_signed_out_and_cannot_sign_in(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    username = await _person(stack)
    async with web() as client:
        assert (await _sign_in(client, username, PASSWORD)).status_code == 303
        async with stack.db.session() as session:
            user = await find_user(session, username)
            assert user is not None
            await disable_user(session, user)
        assert (await client.get("/jobs")).headers["location"] == "/signin?next=%2Fjobs"
        assert (await _sign_in(client, username, PASSWORD)).status_code == 401
    async with stack.db.session() as session:
        left = (await session.exec(select(WebSession).where(WebSession.user_id == user.id))).all()
    assert left == []
