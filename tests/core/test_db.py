"""The database under pressure (issue 13): `Database.run` on SQLite's single writer.

- many writers at once, from two processes' worth of engines, all get through;
- a caller cancelled in the middle of its transaction leaves no connection holding the write
  lock (the burst's never-ending storm), and its transaction still ends;
- a database locked for longer than the retry window is `DatabaseBusy`, a read is not held up;
- the write turn across processes (issue 12): a writer of another process waits for the turn
  rather than polling SQLite's lock, so it writes at its first attempt even beside a process
  that writes back to back, and a turn never given is `DatabaseBusy` and is not kept;
- `run_in_one_go` (the job view's write): on SQLite it runs off the event loop from its first
  statement to its commit; on both databases it commits all of its work or none of it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from core import db as db_module
from core.db import Database, DatabaseBusy, is_busy
from core.migrate import upgrade
from models.tables import Client

ROOT = Path(__file__).resolve().parents[2]


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


async def test_a_writer_of_another_process_waits_for_the_turn_instead_of_retrying(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own wait cut short: without the turn across processes the second writer would
    # meet the held lock, fail and retry.
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    url = f"sqlite+aiosqlite:///{sqlite_path}"
    api, worker = Database(url), Database(url)
    holding = asyncio.Event()
    order: list[str] = []
    attempts = 0

    async def long_write(session: AsyncSession) -> None:
        session.add(Client(name="API"))
        await session.flush()
        holding.set()
        await asyncio.sleep(0.5)
        order.append("api done")

    async def other_write(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        order.append("worker started")
        session.add(Client(name="Worker"))

    try:
        first = asyncio.ensure_future(api.run(long_write))
        await holding.wait()
        await worker.run(other_write)
        await first
        assert order == ["api done", "worker started"]
        assert attempts == 1
        assert await _count(worker) == 2
    finally:
        await api.dispose()
        await worker.dispose()


_WRITES_BACK_TO_BACK = textwrap.dedent(
    """
    import asyncio, sys, time
    from core.db import Database
    from models.tables import Client

    async def main(url, seconds):
        db = Database(url)

        async def write(session):
            session.add(Client(name="Back to back"))
            await session.flush()
            await asyncio.sleep(0.005)  # the event loop's other work, with the lock held

        print("writing", flush=True)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await asyncio.gather(*(db.run(write) for _ in range(4)))
        await db.dispose()

    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
    """
)


async def test_a_process_writing_back_to_back_does_not_starve_the_other(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    url = f"sqlite+aiosqlite:///{sqlite_path}"
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITES_BACK_TO_BACK,
        url,
        "6",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    db = Database(url)
    attempts = 0

    async def counted(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        session.add(Client(name="Between the others"))

    try:
        assert other.stdout is not None
        assert await other.stdout.readline() == b"writing\n"
        await asyncio.sleep(0.3)
        for _ in range(20):
            await db.run(counted)
        # Each write waited for a turn, none met a locked database and tried again.
        assert attempts == 20
        assert other.returncode is None, "the other process had stopped: nothing was shown"
    finally:
        await db.dispose()
        assert await asyncio.wait_for(other.wait(), 30) == 0


async def test_a_turn_never_given_is_busy_and_not_kept(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "RETRY_FOR_S", 0.5)
    lock_path = f"{sqlite_path}{db_module.SQLITE_WRITER_LOCK_SUFFIX}"
    db = Database(f"sqlite+aiosqlite:///{sqlite_path}")
    holder = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another process in the middle of its write
        with pytest.raises(DatabaseBusy):
            await db.run(_add_client("Never written"))
        fcntl.flock(holder, fcntl.LOCK_UN)
        # The waiting thread got the turn after the caller had gone: it let go at once.
        deadline = time.monotonic() + 5
        while True:
            try:
                fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "an abandoned turn was kept"
                await asyncio.sleep(0.05)
        fcntl.flock(holder, fcntl.LOCK_UN)
        await db.run(_add_client("Written once the turn is free"))
        assert await _count(db) == 1
    finally:
        os.close(holder)
        await db.dispose()


async def test_a_write_in_one_go_runs_off_the_event_loop(sqlite_path: Path) -> None:
    # The work blocks until a task on the event loop lets it go: it returns only if the loop
    # went on running while the write (and SQLite's write lock) was under way.
    db = Database(f"sqlite+aiosqlite:///{sqlite_path}")
    let_go = threading.Event()
    holding = threading.Event()

    def write(session: Session) -> str:
        session.add(Client(name="In one go"))
        session.flush()
        holding.set()
        assert let_go.wait(5), "the event loop stood still while the write ran"
        return "written"

    async def loop_goes_on() -> None:
        assert await asyncio.to_thread(holding.wait, 5)
        assert not _write_lock_free(sqlite_path)  # held for the write's own statements
        let_go.set()

    try:
        written, _ = await asyncio.gather(db.run_in_one_go(write), loop_goes_on())
        assert written == "written"
        assert await _count(db) == 1
        assert _write_lock_free(sqlite_path)
    finally:
        await db.dispose()


async def test_a_write_in_one_go_commits_all_of_its_work_or_none(database: Database) -> None:
    name = f"One go {uuid.uuid4().hex[:8]}"

    def half_then_fail(session: Session) -> None:
        session.add(Client(name=name))
        session.flush()
        raise ValueError("the second half could not be written")

    def whole(session: Session) -> int:
        client = Client(name=name)
        session.add(client)
        session.flush()
        assert client.id is not None
        return client.id

    async def named(session: AsyncSession) -> int:
        found = await session.execute(
            text("SELECT count(*) FROM clients WHERE name = :n"), {"n": name}
        )
        return int(found.scalar_one())

    with pytest.raises(ValueError):
        await database.run_in_one_go(half_then_fail)
    assert await database.run(named, write=False) == 0
    assert await database.run_in_one_go(whole) > 0
    assert await database.run(named, write=False) == 1
