"""The database engine and sessions (SQLite by default, PostgreSQL in production).

SQLite has one writer at a time, and under a burst (issue 13) that is what gave out first:
fifteen pooled connections in each process queued for its write lock through SQLite's own busy
handler, which is not fair, so some waited past every timeout; local activities were cancelled
mid-transaction by the thousand, and in the end the worker held the write lock with no write
under way (57 connections open on a pool of 15) and every writer failed for good. So, on top of
the engine:

- `Database.run` carries one transaction to its end even when its caller is cancelled, takes its
  turn for SQLite's write lock in a fair queue within the process and then across processes,
  and retries a locked or dropped database with jittered backoff for a bounded time before it
  raises `DatabaseBusy` (the API's 503 with Retry-After; an activity's retry).
- Across processes the turn is an advisory lock on a file beside the database (`flock`), taken
  in a thread: the kernel wakes a waiting process the moment the lock is free, where SQLite's
  busy handler sleeps and polls, so a process with a stream of writes (the API at concurrency 8)
  no longer starves the other's (the worker's job numbers and message queueing, which an
  Update waits for: issue 12's p99 of 4.9 s).
- The pools are small and bounded (`Database.connections` is what a process may use at once; the
  worker sizes its local activities to it), and every wait (SQLite's busy timeout, a pool
  checkout) is shorter than the timeouts of the work that waits.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import sqlalchemy
from sqlalchemy import event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, SQLModel
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


# SQLite's write lock, queued across processes: `<database file>` + this.
SQLITE_WRITER_LOCK_SUFFIX = "-writers"


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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

        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
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
        self._writers_across: _FileTurn | None = None
        self._blocking: _BlockingSessions | None = None
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            self._writers_across = _FileTurn(database + SQLITE_WRITER_LOCK_SUFFIX)

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
        """SQLite's writers of this process one at a time, first come first served, then the
        turn across processes."""
        if not write or self.dialect != "sqlite":
            yield
            return
        if self._writer is None:
            self._writer = asyncio.Lock()
        async with self._writer:
            if self._writers_across is None:
                yield
                return
            async with self._writers_across.taken():
                yield

    async def _attempt(self, work: Callable[[AsyncSession], Awaitable[T]], write: bool) -> T:
        async with self._turn(write), self.session() as session:
            return await work(session)

    async def _attempt_in_one_go(self, work: Callable[[Session], T]) -> T:
        if self.dialect != "sqlite":
            # sqlmodel's AsyncSession runs it on a sqlmodel Session, typed as SQLAlchemy's.
            in_greenlet = cast(Callable[[sqlalchemy.orm.Session], T], work)
            return await self._attempt(lambda session: session.run_sync(in_greenlet), write=True)
        if self._blocking is None:
            self._blocking = _BlockingSessions(self.url)
        async with self._turn(write=True):
            return await self._blocking.run(work)

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + RETRY_FOR_S
        attempts = 0
        while True:
            try:
                return await attempt()
            except Exception as error:
                if not is_busy(error):
                    raise
                attempts += 1
                # Full jitter: writers that failed together do not come back together.
                pause = random.uniform(0, min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempts))
                if time.monotonic() + pause > deadline:
                    raise DatabaseBusy(f"the database is busy: {error}") from error
                await asyncio.sleep(pause)

    @staticmethod
    async def _carried_through(attempts: Awaitable[T]) -> T:
        task = asyncio.ensure_future(attempts)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
        """`work(session)` in one transaction, committed at its end.

        Carried through even if the caller is cancelled (the caller stops waiting at once): a
        transaction cut off mid-statement can strand a connection holding SQLite's write lock.
        `write=False` for reads, which need no turn for the write lock.
        """
        return await self._carried_through(self._with_retries(lambda: self._attempt(work, write)))

    async def run_in_one_go(self, work: Callable[[Session], T]) -> T:
        """A write as `run` does it, but `work` is plain blocking code on a plain session.

        On SQLite it runs in a thread of its own from the first statement to the commit, so the
        write lock is held only while the statements run. An async write gives the event loop a
        turn between its statements, and on a busy process each turn kept every other writer
        waiting (issue 12: at concurrency 8 the lock was held ~95% of the time, mostly by writes
        waiting for their event loop). For the busiest writes (the job view); on PostgreSQL it
        is `run` with SQLAlchemy's `run_sync`.
        """
        return await self._carried_through(
            self._with_retries(lambda: self._attempt_in_one_go(work))
        )

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
        if self._writers_across is not None:
            self._writers_across.close()
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None


class _BlockingSessions:
    """Plain sessions on SQLite (the standard library's driver) in one thread of their own:
    `Database.run_in_one_go`. One connection is enough, since the process writes one at a time."""

    def __init__(self, url: str) -> None:
        engine = sqlalchemy.create_engine(
            make_url(url).set(drivername="sqlite"),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
            pool_timeout=POOL_WAIT_S,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        self._engine = engine
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-in-one-go")

    def _transaction(self, work: Callable[[Session], T]) -> T:
        with self._sessions() as session, session.begin():
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work)

    def close(self) -> None:
        # Closed by the thread that used it, after any write still under way, off the event loop.
        self._thread.submit(self._engine.dispose)
        self._thread.shutdown(wait=False)


class _FileTurn:
    """An exclusive `flock` on one file, for one writer of this process at a time (the caller
    holds the process's own queue). Blocking in a thread of its own: the kernel wakes it as soon
    as the other process lets go."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._thread: ThreadPoolExecutor | None = None

    @asynccontextmanager
    async def taken(self) -> AsyncIterator[None]:
        if self._fd is None or self._thread is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writers")
        fd = self._fd
        taking = asyncio.get_running_loop().run_in_executor(
            self._thread, fcntl.flock, fd, fcntl.LOCK_EX
        )
        try:
            # As bounded as every other wait here: a holder that never lets go is a busy database.
            await asyncio.wait_for(asyncio.shield(taking), RETRY_FOR_S)
        except BaseException as error:
            # The thread may still get the lock: then it is let go at once, never kept.
            taking.add_done_callback(
                lambda done: done.cancelled() or done.exception() or self._let_go(fd)
            )
            if isinstance(error, TimeoutError):
                raise DatabaseBusy("the database is busy: no turn to write") from None
            raise
        try:
            yield
        finally:
            self._let_go(fd)

    @staticmethod
    def _let_go(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """After the engine is disposed (it opens again on its next write)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def insert(dialect: str, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the dialect in use."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
