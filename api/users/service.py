"""Users and their bearer tokens. Tokens are random, shown once, and stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.lifecycle import USER_ROLES, Actor, Role
from models.tables import ApiToken, User


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


async def create_user(
    session: AsyncSession, username: str, role: str, email: str | None = None
) -> User:
    if role not in {r.value for r in USER_ROLES}:
        raise ValueError(f"role must be one of {', '.join(r.value for r in USER_ROLES)}")
    if await find_user(session, username) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, role=role, email=email or f"{username}@example.com")
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
    query = select(User).join(ApiToken).where(ApiToken.token_hash == hash_token(token))
    return (await session.exec(query)).first()


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
