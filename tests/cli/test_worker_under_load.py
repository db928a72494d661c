"""`jobline worker` under a storm (issue 13): it catches up by itself and goes quiet once the
storm is over, it stops when told even in the middle of one, and its PDF processes go with it.

The storm: another process holds SQLite's write lock while twenty jobs each wait to write their
projection, so the worker's local activities are all failing and retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
from temporalio.client import Client

from models.events import NoteAdded
from models.lifecycle import ClientSnapshot
from models.messages import EventRequest
from tests.fakes.providers import wait_until
from tests.workflows.test_durability import OLGA, Job, _fresh_sqlite
from worker import DRAIN_LIMIT, MARGIN
from workflows.job import JobWorkflow

# Times a worker's drain and catch-up under a storm: run alone (`make test`'s serial pass).
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[2]
JOBS = 20


class WorkerProcess:
    def __init__(self, client: Client, db_path: Path, task_queue: str, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")}
        env.update(
            JOBLINE_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
            JOBLINE_TEMPORAL_ADDRESS=client.service_client.config.target_host,
            JOBLINE_TASK_QUEUE=task_queue,
            JOBLINE_DATA_DIR=str(data_dir),
            PYTHONUNBUFFERED="1",
        )
        self.log = data_dir / "worker.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def pdf_processes(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []

    def wait_until_warm(self, seconds: float = 60) -> list[psutil.Process]:
        """The worker polls and its PDF processes have started."""
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, self.log.read_text()
            children = self.pdf_processes()
            if "worker polling" in self.log.read_text() and len(children) >= 2:
                return children
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def task_queue() -> str:
    return f"shutdown-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    holder = sqlite3.connect(tmp_path / "jobline.db")
    yield holder
    holder.rollback()
    holder.close()


async def _storm(
    client: Client, task_queue: str, customer: ClientSnapshot, locked: sqlite3.Connection
) -> list[Job]:
    """Jobs whose next projection writes cannot get through: created while the database is free
    (a create's Update writes its projection before it answers: under the lock, each would wait
    out its writes first), then the write lock taken, and each job sent a signal (its projection
    is the worker's to write)."""
    jobs = [Job(client, task_queue, customer) for _ in range(JOBS)]
    await asyncio.gather(*(job.create() for job in jobs))
    locked.execute("BEGIN IMMEDIATE")
    for job in jobs:
        await job.handle.signal(
            JobWorkflow.event_signal, EventRequest(event=NoteAdded(text="storm"), actor=OLGA)
        )
    return jobs


def _gone(processes: list[psutil.Process], within: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=within)
    return not alive


@pytest.fixture
async def worker(
    temporal_client: Client, tmp_path: Path, task_queue: str
) -> AsyncIterator[tuple[WorkerProcess, ClientSnapshot]]:
    """`jobline worker` on a fresh SQLite database with one client, polling and warm."""
    db_path = tmp_path / "jobline.db"
    db, customer = await _fresh_sqlite(db_path)
    await db.dispose()
    process = WorkerProcess(temporal_client, db_path, task_queue, tmp_path)
    try:
        process.wait_until_warm()
        yield process, customer
    finally:
        process.stop()


@pytest.fixture
async def storm(
    temporal_client: Client,
    task_queue: str,
    worker: tuple[WorkerProcess, ClientSnapshot],
    locked: sqlite3.Connection,
) -> list[Job]:
    """The write lock taken, and jobs whose projection the worker must write."""
    return await _storm(temporal_client, task_queue, worker[1], locked)


async def test_a_stopped_worker_drains_within_its_limit_mid_storm(
    worker: tuple[WorkerProcess, ClientSnapshot], storm: list[Job]
) -> None:
    process, _ = worker
    pool = process.pdf_processes()
    await asyncio.sleep(2)  # the projection writes are retrying now
    assert process.process.poll() is None

    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    limit = (DRAIN_LIMIT + MARGIN).total_seconds() + 2
    await asyncio.to_thread(process.process.wait, limit)
    took = time.monotonic() - started
    assert took < limit, f"took {took:.1f} s"
    assert _gone(pool, within=5), "the PDF processes outlived their worker"


async def test_a_killed_workers_pdf_processes_die_with_it(
    worker: tuple[WorkerProcess, ClientSnapshot],
) -> None:
    process, _ = worker
    pool = process.pdf_processes()
    process.process.kill()  # SIGKILL: no chance to shut the pool down
    process.process.wait()
    assert _gone(pool, within=5), "the PDF processes outlived their killed worker"


async def test_after_a_locked_database_the_worker_catches_up_and_goes_quiet(
    tmp_path: Path,
    worker: tuple[WorkerProcess, ClientSnapshot],
    storm: list[Job],
    locked: sqlite3.Connection,
) -> None:
    process, _ = worker
    await asyncio.sleep(12)  # past the local activities' retries: the run loops catch up
    locked.rollback()

    def projected() -> int:
        with contextlib.closing(sqlite3.connect(tmp_path / "jobline.db")) as db:
            return int(db.execute("SELECT count(*) FROM jobs WHERE seq = 2").fetchone()[0])

    await wait_until(lambda: projected() == len(storm), within=60, what="every note projected")
    # Back to idle by itself: nothing left retrying.
    worker_process = psutil.Process(process.process.pid)
    await asyncio.sleep(5)
    before = worker_process.cpu_times()
    await asyncio.sleep(10)
    after = worker_process.cpu_times()
    busy = (after.user + after.system) - (before.user + before.system)
    assert busy / 10 < 0.05, f"{100 * busy / 10:.1f}% of a core after the storm"
