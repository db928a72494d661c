"""Users for admins at /settings/users (issue 9, item 1), over ASGI on both databases: the invite
link works once and not after it expires, roles change, deactivation ends sessions and tokens,
the last active admin is kept, others get 403, and a form without its CSRF token changes
nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import col, select, update

from api.app import create_app
from api.users.service import (
    add_token,
    authenticate,
    create_user,
    find_user,
    set_password,
)
from api.web.sessions import SESSION_COOKIE
from core.config import Settings
from core.db import Database
from models.tables import UserInvite, WebSession, utcnow
from tests.conftest import Stack, migrated_database

PASSWORD = "correct horse battery"
Client = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


def _web(stack: Stack, db: Database) -> Client:
    @asynccontextmanager
    async def _client() -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(
            Settings(environment="test", task_queue=stack.task_queue),
            db=db,
            temporal=stack.temporal,
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(
                    app=app, client=(f"10.7.0.{uuid.uuid4().int % 250 + 1}", 1)
                ),
                base_url="http://jobline.test",
            ) as client,
        ):
            yield client

    return _client


@pytest.fixture
def web(stack: Stack) -> Client:
    return _web(stack, stack.db)


async def _person(db: Database, role: str, username: str | None = None) -> str:
    username = username or f"u{uuid.uuid4().hex[:8]}"
    async with db.session() as session:
        user = await create_user(session, username, role, f"{username}@jobline.test")
        await set_password(session, user, PASSWORD)
    return username


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, username: str) -> str:
    """Sign in through the form; the session's CSRF token (from the next page's forms)."""
    form = await client.get("/signin")
    answer = await client.post(
        "/signin", data={"login": username, "password": PASSWORD, "csrf_token": _csrf(form)}
    )
    assert answer.status_code == 303, answer.text
    return _csrf(await client.get("/my"))


async def _invite(
    client: httpx.AsyncClient, csrf: str, **fields: str
) -> tuple[httpx.Response, str | None]:
    answer = await client.post("/settings/users/invite", data={"csrf_token": csrf, **fields})
    found = re.search(r'id="invite-link" value="([^"]+)"', answer.text)
    return answer, urlsplit(found.group(1)).path if found else None


async def test_an_invited_person_sets_a_password_once_and_is_signed_in(
    stack: Stack, web: Client
) -> None:
    admin = await _person(stack.db, "admin", f"admin{uuid.uuid4().hex[:6]}")
    newcomer = f"n{uuid.uuid4().hex[:8]}"
    async with web() as office, web() as them, web() as late:
        csrf = await _sign_in(office, admin)
        answer, link = await _invite(
            office, csrf, username=newcomer, display_name="Nia Newton",
            email=f"{newcomer}@jobline.test", role="technician",
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert link is not None and link.startswith("/invite/")
        token = link.rsplit("/", 1)[1]
        async with stack.db.session() as session:
            user = await find_user(session, newcomer)
            assert user is not None
            assert (user.role, user.display_name, user.active) == ("technician", "Nia Newton", True)
            assert user.password_hash is None
            # Only the hash is stored.
            stored = (
                await session.exec(select(UserInvite).where(UserInvite.user_id == user.id))
            ).all()
            assert len(stored) == 1 and token not in stored[0].token_hash
        listing = await office.get("/settings/users")
        assert newcomer in listing.text and "Nia Newton" in listing.text
        assert "Invited" in listing.text and token not in listing.text

        form = await them.get(link)
        assert form.status_code == 200 and "Welcome, Nia Newton" in form.text
        page_csrf = _csrf(form)
        # Too short, then two different ones: refused, nothing used up.
        short = await them.post(
            link, data={"csrf_token": page_csrf, "password": "short", "password_again": "short"}
        )
        assert short.status_code == 422 and "at least 8 characters" in short.text
        differ = await them.post(
            link,
            data={"csrf_token": page_csrf, "password": PASSWORD, "password_again": PASSWORD + "x"},
        )
        assert differ.status_code == 422 and "differ" in differ.text
        # Without the double-submit token: 403.
        forged = await them.post(
            link, data={"csrf_token": "nope", "password": PASSWORD, "password_again": PASSWORD}
        )
        assert forged.status_code == 403
        done = await them.post(
            link, data={"csrf_token": page_csrf, "password": PASSWORD, "password_again": PASSWORD}
        )
        assert done.status_code == 303 and done.headers["location"] == "/my"
        assert them.cookies.get(SESSION_COOKIE)
        mine = await them.get("/my")
        assert mine.status_code == 200 and "Signed in as <strong>Nia Newton</strong>" in mine.text

        # Once only: the same link is gone, for anyone.
        again = await late.get(link)
        assert again.status_code == 410 and "used already, or it has expired" in again.text
        again_post = await late.post(
            link, data={"csrf_token": _csrf(await late.get("/signin")), "password": "x" * 9,
                        "password_again": "x" * 9},
        )  # fmt: skip
        assert again_post.status_code == 410
        unknown = await late.get("/invite/not-a-real-token")
        assert unknown.status_code == 404 and "no such invitation" in unknown.text
        # And the password works at the sign-in form.
        assert await _sign_in(late, newcomer)


async def test_an_expired_link_is_refused_and_a_new_one_works(stack: Stack, web: Client) -> None:
    admin = await _person(stack.db, "admin", f"admin{uuid.uuid4().hex[:6]}")
    newcomer = f"n{uuid.uuid4().hex[:8]}"
    async with web() as office, web() as them:
        csrf = await _sign_in(office, admin)
        _, link = await _invite(
            office, csrf, username=newcomer, display_name="", email=f"{newcomer}@x.test",
            role="office",
        )  # fmt: skip
        assert link
        async with stack.db.session() as session:
            user = await find_user(session, newcomer)
            assert user is not None
            await session.exec(  # type: ignore[call-overload]
                update(UserInvite)
                .where(col(UserInvite.user_id) == user.id)
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
        expired = await them.get(link)
        assert expired.status_code == 410
        # The admin makes a new link; the old one stays dead, the new one works.
        page = await office.get(f"/settings/users/{newcomer}")
        assert "Make a new link" in page.text
        answer = await office.post(
            f"/settings/users/{newcomer}/new-link", data={"csrf_token": csrf}
        )
        new_link = urlsplit(
            re.search(r'id="invite-link" value="([^"]+)"', answer.text).group(1)
        ).path  # type: ignore[union-attr]
        assert new_link != link
        form = await them.get(new_link)
        assert form.status_code == 200
        done = await them.post(
            new_link,
            data={"csrf_token": _csrf(form), "password": PASSWORD, "password_again": PASSWORD},
        )
        assert done.status_code == 303 and done.headers["location"] == "/jobs"
        assert (await them.get(link)).status_code == 410


async def test_invite_errors_keep_what_was_typed(stack: Stack, web: Client) -> None:
    admin = await _person(stack.db, "admin", f"admin{uuid.uuid4().hex[:6]}")
    async with web() as office:
        csrf = await _sign_in(office, admin)
        answer, link = await _invite(
            office, csrf, username="tess", display_name="Second Tess", email="not an email",
            role="technician",
        )  # fmt: skip
        assert answer.status_code == 422 and link is None
        assert "There is already a user called tess" in answer.text
        assert "Enter an email address" in answer.text
        assert 'value="Second Tess"' in answer.text and 'value="not an email"' in answer.text
        assert '<option value="technician" selected>' in answer.text


async def test_role_display_name_tokens_and_deactivation(stack: Stack, web: Client) -> None:
    admin = await _person(stack.db, "admin", f"admin{uuid.uuid4().hex[:6]}")
    person = await _person(stack.db, "sales")
    async with stack.db.session() as session:
        user = await find_user(session, person)
        assert user is not None
        token = await add_token(session, user)
    async with web() as office, web() as theirs:
        csrf = await _sign_in(office, admin)
        await _sign_in(theirs, person)
        assert (await theirs.get("/jobs")).status_code == 200

        page = f"/settings/users/{person}"
        moved = await office.post(f"{page}/role", data={"csrf_token": csrf, "role": "manager"})
        assert moved.status_code == 303 and moved.headers["location"] == page
        shown = await office.get(page)
        assert f"Saved: {person} is now manager." in shown.text
        bad = await office.post(f"{page}/role", data={"csrf_token": csrf, "role": "boss"})
        assert bad.status_code == 422 and "role must be one of" in bad.text.lower()
        named = await office.post(
            f"{page}/display-name", data={"csrf_token": csrf, "display_name": " Sal Sands "}
        )
        assert named.status_code == 303
        async with stack.db.session() as session:
            user = await find_user(session, person)
            assert user is not None and (user.role, user.display_name) == ("manager", "Sal Sands")
            assert await authenticate(session, token) is not None

        revoked = await office.post(f"{page}/revoke-tokens", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        async with stack.db.session() as session:
            assert await authenticate(session, token) is None
            token = await add_token(session, (await find_user(session, person)))  # type: ignore[arg-type]

        gone = await office.post(f"{page}/deactivate", data={"csrf_token": csrf})
        assert gone.status_code == 303
        assert "can no longer sign in" in (await office.get(page)).text
        # Their open session has ended and their token is gone.
        assert (await theirs.get("/jobs")).status_code == 303
        async with stack.db.session() as session:
            user = await find_user(session, person)
            assert user is not None and not user.active
            assert await authenticate(session, token) is None
            sessions = await session.exec(select(WebSession).where(WebSession.user_id == user.id))
            assert sessions.all() == []
        listing = await office.get("/settings/users")
        assert re.search(rf">{person}</a>.*?Deactivated", listing.text, re.S)


async def test_others_get_403_and_forms_need_their_token(stack: Stack, web: Client) -> None:
    admin = await _person(stack.db, "admin", f"admin{uuid.uuid4().hex[:6]}")
    manager = await _person(stack.db, "manager")
    victim = await _person(stack.db, "office")
    async with web() as office, web() as them:
        await _sign_in(office, admin)
        for url in ("/settings/users", f"/settings/users/{victim}"):
            mine = await office.get(url)
            assert mine.status_code == 200
        await _sign_in(them, manager)
        their_csrf = _csrf(await them.get("/jobs"))
        for url in ("/settings/users", f"/settings/users/{victim}"):
            refused = await them.get(url)
            assert refused.status_code == 403 and "only an admin can manage users" in refused.text
        posted = await them.post(
            f"/settings/users/{victim}/deactivate", data={"csrf_token": their_csrf}
        )
        assert posted.status_code == 403
        invited = await them.post(
            "/settings/users/invite",
            data={"csrf_token": their_csrf, "username": "sneaky", "email": "s@x.test",
                  "role": "admin", "display_name": ""},
        )  # fmt: skip
        assert invited.status_code == 403
        # The admin's own forms without the token, or with another session's: 403, no change.
        for token in ("", their_csrf):
            refused = await office.post(
                f"/settings/users/{victim}/deactivate", data={"csrf_token": token}
            )
            assert refused.status_code == 403
            assert "This form could not be accepted" in refused.text
        async with stack.db.session() as session:
            user = await find_user(session, victim)
            assert user is not None and user.active
            assert await find_user(session, "sneaky") is None


async def test_the_last_active_admin_is_kept(stack: Stack, tmp_path: Path) -> None:
    """On a database of its own, so that only one admin exists."""
    async with migrated_database(stack.backend, tmp_path / "alone.db") as db:
        admin = await _person(db, "admin", "solo")
        async with _web(stack, db)() as office:
            csrf = await _sign_in(office, admin)
            page = f"/settings/users/{admin}"
            demoted = await office.post(f"{page}/role", data={"csrf_token": csrf, "role": "office"})
            assert demoted.status_code == 409
            assert "No active admin would be left: solo is the last one" in demoted.text
            assert '<option value="office" selected>' in demoted.text  # the choice is kept
            gone = await office.post(f"{page}/deactivate", data={"csrf_token": csrf})
            assert gone.status_code == 409 and "solo is the last one" in gone.text
            # With a second admin, the first may step down.
            second = await _person(db, "admin")
            assert (await office.post(
                f"{page}/role", data={"csrf_token": csrf, "role": "manager"}
            )).status_code == 303  # fmt: skip
            async with db.session() as session:
                solo = await find_user(session, admin)
                assert solo is not None and solo.role == "manager"
                other: Any = await find_user(session, second)
                assert other.role == "admin"
