"""Back-pressure instead of collapse (issue 13): a busy database or workflow service is a 503
with Retry-After that changed nothing — never a 500 — and an event the job already took is never
turned into an error a client would retry.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client as TemporalClient

from api.app import create_app
from core import db as db_module
from core.config import Settings
from tests.api.settings import api_error
from tests.conftest import Stack
from tests.fakes.providers import wait_until


@contextmanager
def write_lock_held(stack: Stack) -> Iterator[None]:
    """Another process holding SQLite's write lock (as a stuck writer would)."""
    path = Path(stack.db.url.split("///", 1)[1])
    holder = sqlite3.connect(path)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.rollback()
        holder.close()


def sqlite_only(stack: Stack) -> None:
    if stack.backend != "sqlite":
        pytest.skip("SQLite's single write lock; PostgreSQL locks rows, not the database")


async def test_a_locked_database_is_a_503_that_changes_nothing(stack: Stack) -> None:
    sqlite_only(stack)
    before = (await stack.get("olga", "/api/v1/clients")).json()["total"]
    with write_lock_held(stack):
        busy = await stack.post("olga", "/api/v1/clients", {"name": "Locked Out Ltd"})
    assert api_error(busy, 503, "busy")["code"] == "busy"
    assert int(busy.headers["retry-after"]) > 0
    assert (await stack.get("olga", "/api/v1/clients")).json()["total"] == before
    again = await stack.post("olga", "/api/v1/clients", {"name": "Locked Out Ltd"})
    assert again.status_code == 201, again.text


async def test_an_event_taken_while_the_database_is_locked_is_answered_and_written_later(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_only(stack)
    job = await stack.new_job()
    slug = job["slug"]
    monkeypatch.setattr(db_module, "RETRY_FOR_S", 0.5)
    with write_lock_held(stack):
        answer = await stack.event("olga", slug, "note_added", text="Gate code 4471")
    # The job took the note: a 503 here would have the client send it again.
    assert answer.status_code == 200, answer.text
    assert [e["type"] for e in answer.json()["timeline"]] == ["job_created", "note_added"]

    async def written() -> bool:
        timeline = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["timeline"]
        return [e["type"] for e in timeline] == ["job_created", "note_added"]

    # The workflow writes it once the database takes writes again.
    await wait_until(written, within=30, what="the note in the stored timeline")


async def test_requests_beyond_the_limit_wait_their_turn_then_get_a_503(
    stack: Stack, temporal_client: TemporalClient
) -> None:
    client_id = (await stack.new_client())["id"]
    # No worker polls this queue: a job sent there waits for ever, holding its turn.
    settings = Settings(
        environment="test",
        task_queue=f"no-worker-{uuid.uuid4().hex[:8]}",
        api_max_in_flight=1,
        api_admission_wait_s=0.3,
    )
    app = create_app(settings, db=stack.db, temporal=temporal_client)
    body = {"client_id": client_id, "title": "Waiting on a worker", "source": "incoming_call"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        headers = stack.auth("olga")
        stuck = asyncio.ensure_future(http.post("/api/v1/jobs", json=body, headers=headers))
        # Until the first request holds the one turn (its sign-in and session come first, which
        # on a loaded machine can take longer than any fixed sleep), then the second is sent.
        async with asyncio.timeout(10):
            while not app.state.admission._turns.locked():
                assert not stuck.done(), stuck.result().text
                await asyncio.sleep(0.01)
        turned_away = await http.post("/api/v1/jobs", json=body, headers=headers)
        assert not stuck.done()  # still waiting for a worker, holding its turn
        stuck.cancel()
    assert api_error(turned_away, 503, "nothing was done")["code"] == "unavailable"
    assert int(turned_away.headers["retry-after"]) > 0
