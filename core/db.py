"""The database engine and sessions (SQLite by default, PostgreSQL in production).

SQLite has one writer at a time, and under a burst (issue 13) that is what gave out first:
fifteen pooled connections in each process queued for its write lock through SQLite's own busy
handler, which is not fair, so some waited past every timeout; local activities were cancelled
mid-transaction by the thousand, and in the end the worker held the write lock with no write
under way (57 connections open on a pool of 15) and every writer failed for good. So, on top of
the engine:

- `Database.run` carries one transaction to its end even when its caller is cancelled, takes its
  turn for SQLite's write lock in a fair queue within the process, and retries a locked or
  dropped database with jittered backoff for a bounded time before it raises `DatabaseBusy`
  (the API's 503 with Retry-After; an activity's retry).
- The pools are small and bounded (`Database.connections` is what a process may use at once; the
  worker sizes its local activities to it), and every wait (SQLite's busy timeout, a pool
  checkout) is shorter than the timeouts of the work that waits.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

# SQLite's own wait for the write lock, per statement. With one writer per process queued in
# `Database.run`, the only other writer is the other process (API or worker) for a few ms.
SQLITE_BUSY_TIMEOUT_S = 2.0
# Connections per process: SQLite serves one writer anyway; PostgreSQL takes many more.
SQLITE_POOL = (4, 4)  # pool_size, max_overflow
POSTGRES_POOL = (10, 10)
# A checkout waits this long for a free connection before it counts as busy (and is retried).
POOL_WAIT_S = 5.0
# `run` retries a busy database for this long (shorter than a local activity's 10 s).
RETRY_FOR_S = 8.0
RETRY_FIRST_S = 0.02
RETRY_MAX_S = 0.5


class DatabaseBusy(Exception):
    """The database did not take the work within the retry window: try again later."""


def is_busy(error: BaseException) -> bool:
    """A database that is locked, out of connections or dropped the connection: worth a retry,
    unlike a constraint or a bad statement."""
    if isinstance(error, DatabaseBusy | PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError):
        text = str(error.orig).lower()
        return "locked" in text or "busy" in text or "connection" in text
    return False


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        pool_size, overflow = SQLITE_POOL
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=pool_size,
            max_overflow=overflow,
            pool_timeout=POOL_WAIT_S,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    pool_size, overflow = POSTGRES_POOL
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_timeout=POOL_WAIT_S,
        pool_pre_ping=True,
    )


def _retrieve(task: asyncio.Future[object]) -> None:
    # A shielded transaction whose caller was cancelled has no one to raise to; its error
    # (already the caller's, if any) is not "never retrieved".
    if not task.cancelled():
        task.exception()


class Database:
    """One engine and its session factory, shared by the API or the worker process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._writer: asyncio.Lock | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def connections(self) -> int:
        """How many connections this process may hold at once."""
        pool_size, overflow = SQLITE_POOL if self.dialect == "sqlite" else POSTGRES_POOL
        return pool_size + overflow

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits once at the end, or rolls back if anything raised. For work
        that may be cancelled or must queue for SQLite's write lock, use `run`."""
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def _turn(self, write: bool) -> AsyncIterator[None]:
        """SQLite's writers of this process one at a time, first come first served."""
        if not write or self.dialect != "sqlite":
            yield
            return
        if self._writer is None:
            self._writer = asyncio.Lock()
        async with self._writer:
            yield

    async def _attempt(self, work: Callable[[AsyncSession], Awaitable[T]], write: bool) -> T:
        async with self._turn(write), self.session() as session:
            return await work(session)

    async def _with_retries(self, work: Callable[[AsyncSession], Awaitable[T]], write: bool) -> T:
        deadline = time.monotonic() + RETRY_FOR_S
        attempt = 0
        while True:
            try:
                return await self._attempt(work, write)
            except Exception as error:
                if not is_busy(error):
                    raise
                attempt += 1
                # Full jitter: writers that failed together do not come back together.
                pause = random.uniform(0, min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempt))
                if time.monotonic() + pause > deadline:
                    raise DatabaseBusy(f"the database is busy: {error}") from error
                await asyncio.sleep(pause)

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
        """`work(session)` in one transaction, committed at its end.

        Carried through even if the caller is cancelled (the caller stops waiting at once): a
        transaction cut off mid-statement can strand a connection holding SQLite's write lock.
        `write=False` for reads, which need no turn for the write lock.
        """
        task = asyncio.ensure_future(self._with_retries(work, write))
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def update(self, model: type[SQLModel], key: object, **changes: object) -> None:
        """Set some columns of one existing row, in a transaction of its own."""

        async def change(session: AsyncSession) -> None:
            row = await session.get(model, key)
            if row is None:
                raise LookupError(f"no {model.__name__} {key!r}")
            for name, value in changes.items():
                setattr(row, name, value)
            session.add(row)

        await self.run(change)

    async def dispose(self) -> None:
        await self.engine.dispose()


def insert(dialect: str, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the dialect in use."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
