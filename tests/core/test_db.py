"""The database under pressure (issue 13): `Database.run` on SQLite's single writer.

- many writers at once, from two processes' worth of engines, all get through;
- a caller cancelled in the middle of its transaction leaves no connection holding the write
  lock (the burst's never-ending storm), and its transaction still ends;
- a database locked for longer than the retry window is `DatabaseBusy`, a read is not held up.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from core import db as db_module
from core.db import Database, DatabaseBusy, is_busy
from core.migrate import upgrade
from models.tables import Client


@pytest.fixture
async def sqlite_path(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "jobline.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    await db.dispose()
    yield path


def _write_lock_free(path: Path) -> bool:
    """Whether another connection can take SQLite's write lock right now."""
    probe = sqlite3.connect(path, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


async def _count(db: Database) -> int:
    async def count(session: AsyncSession) -> int:
        return int((await session.execute(text("SELECT count(*) FROM clients"))).scalar_one())

    return await db.run(count, write=False)


def _add_client(name: str):  # type: ignore[no-untyped-def]
    async def add(session: AsyncSession) -> None:
        session.add(Client(name=name))

    return add


async def test_many_writers_from_two_processes_all_get_through(sqlite_path: Path) -> None:
    # Two engines stand for the API and the worker: each queues its own writers, and SQLite's
    # busy timeout arbitrates between the two.
    url = f"sqlite+aiosqlite:///{sqlite_path}"
    api, worker = Database(url), Database(url)
    try:
        writes = [(api if n % 2 else worker).run(_add_client(f"Client {n}")) for n in range(300)]
        await asyncio.gather(*writes)
        assert await _count(api) == 300
    finally:
        await api.dispose()
        await worker.dispose()


async def test_a_cancelled_caller_strands_no_write_lock(sqlite_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{sqlite_path}")
    started = asyncio.Event()

    async def slow_write(session: AsyncSession) -> None:
        session.add(Client(name="Written despite the cancel"))
        await session.flush()  # the write lock is held from here to the commit
        started.set()
        await asyncio.sleep(0.5)

    try:
        caller = asyncio.ensure_future(db.run(slow_write))
        await started.wait()
        assert not _write_lock_free(sqlite_path)
        caller.cancel()  # as a local activity's timeout does
        with pytest.raises(asyncio.CancelledError):
            await caller
        deadline = time.monotonic() + 5
        while not _write_lock_free(sqlite_path):
            assert time.monotonic() < deadline, "a cancelled transaction kept the write lock"
            await asyncio.sleep(0.05)
        # Carried to its end, not cut off: committed, and the next writers are not held up.
        assert await _count(db) == 1
        await asyncio.wait_for(db.run(_add_client("Next")), timeout=5)
        assert await _count(db) == 2
    finally:
        await db.dispose()


async def test_a_locked_database_is_busy_and_reads_go_on(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "RETRY_FOR_S", 1.0)
    db = Database(f"sqlite+aiosqlite:///{sqlite_path}")
    holder = sqlite3.connect(sqlite_path)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            await db.run(_add_client("Never written"))
        # The busy timeout (2 s) and the retry window (1 s here) bound the wait.
        assert time.monotonic() - started < db_module.SQLITE_BUSY_TIMEOUT_S + 3
        assert await _count(db) == 0  # WAL: readers are not blocked by the writer
        holder.rollback()
        await db.run(_add_client("Written once the lock is gone"))
        assert await _count(db) == 1
    finally:
        holder.close()
        await db.dispose()


async def test_a_bad_statement_is_not_retried(sqlite_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{sqlite_path}")
    calls = 0

    async def duplicate(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        session.add(Client(id=1, name="One"))
        session.add(Client(id=1, name="Same id"))

    try:
        with pytest.raises(IntegrityError):
            await db.run(duplicate)
        assert calls == 1
    finally:
        await db.dispose()


def test_which_errors_count_as_busy() -> None:
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    no_table = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))
    assert is_busy(locked)
    assert is_busy(DatabaseBusy("busy"))
    assert not is_busy(no_table)
    assert not is_busy(ValueError("database is locked"))
