"""Users and their bearer tokens. Tokens are random, shown once, and stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import col, delete, func, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from models.lifecycle import USER_ROLES, Actor, Role
from models.tables import ApiToken, User, UserInvite, WebSession, utcnow

# argon2id with the library's defaults (RFC 9106's low-memory profile).
_hasher = PasswordHasher()
# Verified against when no such user exists, so a wrong name costs as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 8


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough (no need for a slow hash).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "jl_" + secrets.token_urlsafe(32)


def demo_token(secret_key: str, username: str) -> str:
    """Demo tokens are derived from the data dir's secret, so every `jobline dev` can print them."""
    digest = hmac.new(secret_key.encode(), f"demo-token:{username}".encode(), "sha256")
    return "jl_demo_" + digest.hexdigest()[:40]


def actor_of(user: User) -> Actor:
    return Actor(username=user.username, role=Role(user.role))


async def find_user(session: AsyncSession, username: str) -> User | None:
    return (await session.exec(select(User).where(User.username == username))).first()


async def people(session: AsyncSession, roles: frozenset[str] | None = None) -> list[User]:
    """Active users (of these roles), by display name then username: the pages' people pickers
    and the names they show."""
    query = select(User).where(col(User.active))
    if roles is not None:
        query = query.where(col(User.role).in_(sorted(roles)))
    found = (await session.exec(query)).all()
    return sorted(found, key=lambda u: ((u.display_name or u.username).lower(), u.username))


async def create_user(
    session: AsyncSession,
    username: str,
    role: str,
    email: str | None = None,
    display_name: str = "",
) -> User:
    if role not in {r.value for r in USER_ROLES}:
        raise ValueError(f"role must be one of {', '.join(r.value for r in USER_ROLES)}")
    if await find_user(session, username) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(
        username=username,
        role=role,
        email=email or f"{username}@example.com",
        display_name=display_name.strip(),
    )
    session.add(user)
    await session.flush()
    return user


async def add_token(
    session: AsyncSession, user: User, token: str | None = None, label: str = ""
) -> str:
    token = token or new_token()
    assert user.id is not None
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), label=label))
    await session.flush()
    return token


async def authenticate(session: AsyncSession, token: str) -> User | None:
    query = (
        select(User)
        .join(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), col(User.active).is_(True))
    )
    return (await session.exec(query)).first()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    session.add(user)
    await session.flush()


async def check_password(session: AsyncSession, login: str, password: str) -> User | None:
    """The active user whose username or email is `login`, if `password` is theirs."""
    login = login.strip()
    query = select(User).where(
        or_(col(User.username) == login, func.lower(User.email) == login.lower())
    )
    found = (await session.exec(query)).all()
    # An email two users share signs in neither: only a username is unambiguous then.
    user = found[0] if len(found) == 1 else next((u for u in found if u.username == login), None)
    stored = user.password_hash if user is not None and user.active else None
    try:
        _hasher.verify(stored or _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if stored else None


async def replace_tokens(session: AsyncSession, user: User, label: str = "cli") -> str:
    """A new bearer token for `user`; every older one stops working."""
    await revoke_tokens(session, user)
    return await add_token(session, user, label=label)


async def revoke_tokens(session: AsyncSession, user: User) -> None:
    await session.exec(delete(ApiToken).where(col(ApiToken.user_id) == user.id))  # type: ignore[call-overload]
    await session.flush()


async def disable_user(session: AsyncSession, user: User) -> None:
    """No more sign-in, no token, no open session."""
    user.active = False
    session.add(user)
    await revoke_tokens(session, user)
    await session.exec(delete(WebSession).where(col(WebSession.user_id) == user.id))  # type: ignore[call-overload]
    await session.flush()


async def users_with_token_counts(session: AsyncSession) -> list[tuple[User, int]]:
    tokens = func.count(col(ApiToken.id))
    query = (
        select(User, tokens)
        .join(ApiToken, isouter=True)
        .group_by(col(User.id))
        .order_by(col(User.username))
    )
    return [(user, count) for user, count in (await session.exec(query)).all()]


class TokenCache:
    """Recently seen tokens, so each request does not look its bearer up again.

    A removed token or a changed role takes effect within `ttl` seconds.
    """

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._users: dict[str, tuple[float, User]] = {}

    def get(self, token: str) -> User | None:
        hit = self._users.get(hash_token(token))
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: str, user: User) -> None:
        if len(self._users) >= self.size:
            self._users.clear()
        # A detached copy: the request's session (and its rollbacks) must not reach it.
        copy = User(**user.model_dump())
        self._users[hash_token(token)] = (time.monotonic() + self.ttl, copy)


# --- People managed from /settings/users (issue 9): invitations, roles, deactivation. ---------

INVITE_LIFETIME = timedelta(days=7)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class LastAdmin(ValueError):
    """The change would leave no active admin: nobody could manage users any more."""


async def display_name_of(session: AsyncSession, username: str | None) -> str:
    """How customers and colleagues read this person: their display name, else the username
    (and "" for nobody). For customer-facing text (the `technician` merge field, documents,
    the portal)."""
    if not username:
        return ""
    user = await find_user(session, username)
    return (user.display_name if user is not None else "") or username


def check_username(username: str) -> str:
    """A username as people type it in: lower-case letters, digits, `.`, `_`, `-`."""
    username = username.strip()
    if not _USERNAME.fullmatch(username):
        raise ValueError(
            "a username is 1 to 64 lower-case letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit"
        )
    return username


async def issue_invite(session: AsyncSession, user: User, invited_by: str) -> str:
    """A new one-time link token for `user` (shown once; stored as a hash). Any earlier link of
    theirs that is still unused stops working."""
    assert user.id is not None
    now = utcnow()
    await session.exec(  # type: ignore[call-overload]
        update(UserInvite)
        .where(
            col(UserInvite.user_id) == user.id,
            col(UserInvite.used_at).is_(None),
            col(UserInvite.expires_at) > now,
        )
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserInvite(
            user_id=user.id,
            token_hash=hash_token(token),
            created_by=invited_by,
            expires_at=utcnow() + INVITE_LIFETIME,
        )
    )
    await session.flush()
    return token


async def invite_user(
    session: AsyncSession,
    *,
    username: str,
    role: str,
    email: str,
    display_name: str,
    invited_by: str,
) -> tuple[User, str]:
    """A new active user without a password, and the one-time link token that lets them set one."""
    user = await create_user(
        session, check_username(username), role, email.strip(), display_name=display_name
    )
    return user, await issue_invite(session, user, invited_by)


async def find_invite(session: AsyncSession, token: str) -> tuple[UserInvite, User] | None:
    """The invitation behind `token` (used, expired or live) and its user; None if unknown."""
    query = select(UserInvite, User).join(User).where(UserInvite.token_hash == hash_token(token))
    return (await session.exec(query)).first()  # type: ignore[return-value]


def invite_is_live(invite: UserInvite, user: User) -> bool:
    return invite.used_at is None and invite.expires_at > utcnow() and user.active


async def accept_invite(session: AsyncSession, token: str, password: str) -> User:
    """Set the invited person's password (the same rules as everywhere) and use the link up.
    Raises ValueError for an unknown, used or expired link, or a password that is too short."""
    found = await find_invite(session, token)
    if found is None or not invite_is_live(*found):
        raise ValueError("this invitation link is not valid any more")
    invite, user = found
    await set_password(session, user, password)
    invite.used_at = utcnow()
    session.add(invite)
    await session.flush()
    return user


async def pending_invites(session: AsyncSession) -> dict[int, datetime]:
    """user id -> when their unused, unexpired invitation link expires."""
    query = select(UserInvite).where(
        col(UserInvite.used_at).is_(None), col(UserInvite.expires_at) > utcnow()
    )
    return {invite.user_id: invite.expires_at for invite in (await session.exec(query)).all()}


async def _other_active_admins(session: AsyncSession, user: User) -> int:
    query = select(func.count(col(User.id))).where(
        User.role == Role.admin, col(User.active).is_(True), col(User.id) != user.id
    )
    return int((await session.exec(query)).one())


async def _keep_an_admin(session: AsyncSession, user: User) -> None:
    if user.role == Role.admin and user.active and not await _other_active_admins(session, user):
        raise LastAdmin(
            f"no active admin would be left: {user.username} is the last one; "
            "make someone else an admin first"
        )


async def change_role(session: AsyncSession, user: User, role: str) -> None:
    if role not in {r.value for r in USER_ROLES}:
        raise ValueError(f"role must be one of {', '.join(r.value for r in USER_ROLES)}")
    if role != Role.admin:
        await _keep_an_admin(session, user)
    user.role = role
    session.add(user)
    await session.flush()


async def change_display_name(session: AsyncSession, user: User, display_name: str) -> None:
    display_name = display_name.strip()
    if len(display_name) > 120:
        raise ValueError("a display name has at most 120 characters")
    user.display_name = display_name
    session.add(user)
    await session.flush()


async def deactivate_user(session: AsyncSession, user: User) -> None:
    """`disable_user`, unless it would leave no active admin."""
    await _keep_an_admin(session, user)
    await disable_user(session, user)
