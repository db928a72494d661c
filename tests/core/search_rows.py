"""Bare rows for the search tests: a client and jobs with only the columns a search reads (no job
state, no timeline), added straight to the database. They reach every list of the shared test
database, so each test deletes them when it is done."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Client, Job


async def a_client(session: AsyncSession, name: str) -> int:
    """A new client's id (flushed, not committed)."""
    client = Client(name=name)
    session.add(client)
    await session.flush()
    assert client.id is not None
    return client.id


def a_lead(slug: str, client_id: int, now: datetime, **columns: object) -> Job:
    """A lead created `now`: its title, client name or updated_at as `columns` give them."""
    given: dict[str, object] = {
        "title": "a job",
        "client_name": "someone",
        "created_at": now,
        "updated_at": now,
        "stage_entered_at": now,
        **columns,
    }
    return Job(slug=slug, client_id=client_id, stage="lead", milestone="Lead", state={}, **given)
