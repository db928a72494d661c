"""Server-side sessions for people signed in with a password, and their CSRF secrets.

The cookie holds a random token; the table holds only its hash, so a leaked table signs no one
in. Each session has its own CSRF secret, put in every form as a hidden input and checked on
every state-changing POST. Before sign-in, the sign-in form is protected the same way by a
short random cookie that its hidden input must repeat (a double-submit token).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from fastapi import Request, Response
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.users.service import hash_token
from core.config import Settings
from models.tables import User, WebSession, utcnow

SESSION_COOKIE = "jobline_session"
PRESIGNIN_COOKIE = "jobline_signin_csrf"
CSRF_FIELD = "csrf_token"
# A working day and then some: a browser left signed in overnight asks again in the morning.
SESSION_LIFETIME = timedelta(hours=12)


def cookie_is_secure(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(settings),
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=cookie_is_secure(settings)
    )


def same_secret(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def start_session(session: AsyncSession, user: User) -> tuple[str, WebSession]:
    """A new session for `user`: the cookie's token (shown once) and the stored row."""
    assert user.id is not None
    # Expired sessions go as new ones come: the table holds only live ones and a day's worth.
    await session.exec(delete(WebSession).where(col(WebSession.expires_at) <= utcnow()))  # type: ignore[call-overload]
    token = secrets.token_urlsafe(32)
    row = WebSession(
        user_id=user.id,
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + SESSION_LIFETIME,
    )
    session.add(row)
    await session.flush()
    return token, row


async def current_session(
    session: AsyncSession, request: Request
) -> tuple[WebSession, User] | None:
    """The request's live session and its active user, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    query = (
        select(WebSession, User)
        .join(User)
        .where(
            WebSession.token_hash == hash_token(token),
            col(WebSession.expires_at) > utcnow(),
            col(User.active).is_(True),
        )
    )
    return (await session.exec(query)).first()  # type: ignore[return-value]


async def end_session(session: AsyncSession, row: WebSession) -> None:
    await session.exec(delete(WebSession).where(col(WebSession.id) == row.id))  # type: ignore[call-overload]
    await session.flush()
