"""Request dependencies: the session, the current user, and one permission check per capability."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client as TemporalClient

from api.errors import NotAuthenticated, NotPermitted
from api.users.service import TokenCache, authenticate
from core.config import Settings
from core.db import Database
from models.lifecycle import Role
from models.tables import User

_bearer = HTTPBearer(
    auto_error=False, description="A token from `jobline user add` or `jobline dev`"
)


# Dependencies are async so FastAPI runs them inline instead of on its thread pool.
async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_temporal(request: Request) -> TemporalClient:
    return request.app.state.temporal


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[AsyncSession]:
    async with db.session() as session:
        yield session


# "function": the session commits when the route returns, before the answer is sent, so a 2xx
# means committed, and a commit that fails is the client's 503, not a line in a log.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[TemporalClient, Depends(get_temporal)]


async def current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send a bearer token: Authorization: Bearer <token>")
    cache: TokenCache = request.app.state.tokens
    user = cache.get(credentials.credentials)
    if user is None:
        user = await authenticate(session, credentials.credentials)
        if user is None:
            raise NotAuthenticated("the bearer token is not valid")
        cache.put(credentials.credentials, user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def signed_in(request: Request) -> User:
    """The request's user, checked as `current_user` checks it, for code that runs before a
    route's dependencies do (api/body_guard.py, before a body is read)."""
    async with request.app.state.db.session() as session:
        return await current_user(request, session, await _bearer(request))


def require(*roles: Role, what: str) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets only these roles through, with a 403 that says who may."""
    allowed = {r.value for r in roles}

    async def _check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise NotPermitted(f"{what} is for: {', '.join(sorted(allowed))}; you are {user.role}")
        return user

    return _check


ALL_STAFF = (Role.admin, Role.manager, Role.office, Role.sales, Role.technician)
ClientReader = Annotated[User, Depends(require(*ALL_STAFF, what="reading clients"))]
ClientWriter = Annotated[
    User,
    Depends(require(Role.admin, Role.manager, Role.office, Role.sales, what="changing clients")),
]
JobReader = Annotated[User, Depends(require(*ALL_STAFF, what="reading jobs"))]
