"""A text search's pages come in the lists' order whichever way they are read, on SQLite and
PostgreSQL: few matches are taken whole and sorted, many are met walking the order's index
(api/jobs/service.py `ordered`, FEW_MATCHES). The same search is paged both ways, for the job
list, the board's list view and its column, and must give the same pages: every match once, most
recently changed first, the slug breaking ties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import col

from api.jobs import service as jobs
from api.jobs.service import JobFilters
from core.db import Database
from models.tables import Client, Job, User
from tests.core.search_rows import a_client, a_lead

OFFICE = User(username="olga", email="o@example.com", role="office")
MATCHES = 23
PAGE_SIZE = 5


@pytest.mark.parametrize("few_matches", [jobs.FEW_MATCHES, 0], ids=["sorted", "walked"])
async def test_a_search_pages_in_the_lists_order(
    database: Database, monkeypatch: pytest.MonkeyPatch, few_matches: int
) -> None:
    monkeypatch.setattr(jobs, "FEW_MATCHES", few_matches)
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    async with database.session() as session:
        client_id = await a_client(session, f"{tag} client")
        expected: list[tuple[datetime, str]] = []
        slugs = []
        for index in range(MATCHES + 10):
            slug = f"p{uuid.uuid4().hex[:10]}"
            slugs.append(slug)
            # Pairs changed at the same instant: the slug must break their tie.
            changed = now - timedelta(minutes=index // 2)
            matching = index < MATCHES
            session.add(
                a_lead(
                    slug,
                    client_id,
                    now,
                    updated_at=changed,
                    title=f"{tag} boiler" if matching and index % 2 else "a job",
                    client_name=f"Ann {tag}" if matching and not index % 2 else "someone",
                )
            )
            if matching:
                expected.append((changed, slug))
        await session.commit()
        in_order = [slug for _, slug in sorted(expected, reverse=True)]
        try:
            f = JobFilters(q=tag)
            listed: list[str] = []
            boarded: list[str] = []
            for page in range(1, -(-MATCHES // PAGE_SIZE) + 1):
                rows, total = await jobs.search(session, OFFICE, f, page=page, page_size=PAGE_SIZE)
                assert total == MATCHES
                listed += [row.slug for row in rows]
                cards = await jobs.board_list(
                    session, OFFICE, f, page=page, page_size=PAGE_SIZE, total=total
                )
                boarded += [card.row.slug for card in cards]
            assert listed == in_order
            assert boarded == in_order
            # The board's column of them (none is stuck, so the lists' order again).
            cards = await jobs.board_column(
                session, OFFICE, f, "Lead", limit=PAGE_SIZE * 3, total=MATCHES
            )
            assert [card.row.slug for card in cards] == in_order[: PAGE_SIZE * 3]
        finally:
            # The session's database is shared with the tests that run after this one.
            await session.execute(delete(Job).where(col(Job.slug).in_(slugs)))
            await session.execute(delete(Client).where(col(Client.id) == client_id))
            await session.commit()
