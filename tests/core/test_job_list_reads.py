"""The job list reads a job's columns, never its state (kept out of line on PostgreSQL, migration
0018): `UNREAD_STATE` in api/jobs/service.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import InvalidRequestError
from sqlmodel import col

from api.jobs import service as jobs
from api.jobs.service import JobFilters
from core.db import Database
from models.tables import Client, Job, User
from tests.core.search_rows import a_client, a_lead

OFFICE = User(username="olga", email="o@example.com", role="office")


async def test_the_job_list_leaves_the_state_unread(database: Database) -> None:
    tag = uuid.uuid4().hex[:8]
    slug = f"u{uuid.uuid4().hex[:10]}"
    async with database.session() as session:
        client_id = await a_client(session, f"{tag} client")
        session.add(a_lead(slug, client_id, datetime.now(UTC), title=f"{tag} unread"))
        await session.commit()
    try:
        # A session of its own: the one above holds the row whole.
        async with database.session() as session:
            rows, total = await jobs.search(
                session, OFFICE, JobFilters(q=tag), page=1, page_size=50
            )
            assert total == 1 and [row.title for row in rows] == [f"{tag} unread"]
            with pytest.raises(InvalidRequestError, match="raiseload"):
                _ = rows[0].state
    finally:
        async with database.session() as session:
            await session.execute(delete(Job).where(col(Job.slug) == slug))
            await session.execute(delete(Client).where(col(Client.id) == client_id))
            await session.commit()
