"""`%`, `_` and the escape character `/` typed into any search mean themselves, in every column
each search reads (issue 12 item 4), on SQLite and PostgreSQL: the services' searches are
`LIKE '%text%'` with the text escaped (the trigram indexes of migration 0015 serve the same
expressions). For each column: a row holding the typed text, and a decoy the text would match
were it a LIKE pattern; only the first is found.

tests/api/test_clients.py and tests/api/test_outbox_page.py check the same through HTTP for the
client's name; this checks every searched column of every search."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from api.clients import service as clients
from api.jobs import service as jobs
from api.jobs.service import JobFilters
from api.outbox import service as outbox
from api.pricebook import service as pricebook
from core.db import Database
from models.tables import Client, Job, OutboxMessage, PricebookItem, User
from tests.core.search_rows import a_client, a_lead

OFFICE = User(username="olga", email="o@example.com", role="office")
# What is typed, and a text it would match as a LIKE pattern (with `/` as the escape character,
# "a/%b" would be "a%b" read literally; as typed, it is itself).
TYPED = {
    "percent": ("100%", "1000"),
    "underscore": ("a_b", "axb"),
    "escape": ("x/%y", "x%y"),
}


def _texts(tag: str) -> dict[str, tuple[str, str]]:
    """key: (the typed text, held by one row), (its decoy, held by another)."""
    return {key: (f"{tag}{typed}", f"{tag}{decoy}") for key, (typed, decoy) in TYPED.items()}


async def test_job_title_and_client_name(database: Database) -> None:
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    async with database.session() as session:
        client_id = await a_client(session, f"{tag} client")
        slugs: dict[str, str] = {}
        for key, (typed, decoy) in _texts(tag).items():
            for column in ("title", "client_name"):
                for kind, text in (("typed", typed), ("decoy", decoy)):
                    slug = f"w{uuid.uuid4().hex[:10]}"
                    slugs[f"{key} {column} {kind}"] = slug
                    session.add(a_lead(slug, client_id, now, **{column: f"{text} here"}))
        await session.commit()
        try:
            for key, (typed, _) in _texts(tag).items():
                rows, total = await jobs.search(
                    session, OFFICE, JobFilters(q=typed), page=1, page_size=50
                )
                assert sorted(r.slug for r in rows) == sorted(
                    [slugs[f"{key} title typed"], slugs[f"{key} client_name typed"]]
                ), key
                assert total == 2, key
        finally:
            # The session's database is shared: these bare rows (no job state) would reach the
            # board and the lists of the tests that run after this one.
            await _delete(session, Job, col(Job.slug).in_(slugs.values()))
            await _delete(session, Client, col(Client.id) == client_id)


async def _only_the_typed(
    database: Database,
    make: Callable[[str, str], Any],
    find: Callable[[Any, str], Any],
    key_of: Callable[[Any], Any],
    columns: tuple[str, ...],
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with database.session() as session:
        made: dict[tuple[str, str, str], Any] = {}
        for key, (typed, decoy) in _texts(tag).items():
            for column in columns:
                for kind, text in (("typed", typed), ("decoy", decoy)):
                    row = make(column, text)
                    session.add(row)
                    made[(key, column, kind)] = row
        await session.commit()
        try:
            for key, (typed, _) in _texts(tag).items():
                found = sorted(map(str, await find(session, typed)))
                expected = sorted(str(key_of(made[(key, c, "typed")])) for c in columns)
                assert found == expected, (key, typed)
        finally:
            for row in made.values():  # the session's database is shared with later tests
                await session.delete(row)
            await session.commit()


async def _delete(session: Any, table: Any, where: Any) -> None:
    await session.execute(delete(table).where(where))
    await session.commit()


async def test_client_name_email_and_phone(database: Database) -> None:
    def make(column: str, text: str) -> Client:
        client = Client(name=f"Client {uuid.uuid4().hex[:8]}")
        setattr(client, column, f"{text}@example.com" if column == "email" else f"{text} 1")
        return client

    async def find(session: Any, q: str) -> list[int | None]:
        rows, total = await clients.search(session, OFFICE, q, None, 1, 50)
        assert total == len(rows)
        return [c.id for c in rows]

    await _only_the_typed(database, make, find, lambda c: c.id, ("name", "email", "phone"))


async def test_outbox_recipient_subject_and_body(database: Database) -> None:
    def make(column: str, text: str) -> OutboxMessage:
        message = OutboxMessage(
            idempotency_key=f"wildcards:{uuid.uuid4().hex}", channel="email",
            purpose="custom", to="someone@example.com", subject="Hello", body="Hello.",
        )  # fmt: skip
        setattr(message, column, f"{text} here")
        return message

    async def find(session: Any, q: str) -> list[int | None]:
        rows, total = await outbox.search(
            session, job_slug=None, channel=None, purpose=None, status=None, page=1,
            page_size=50, q=q,
        )  # fmt: skip
        assert total == len(rows)
        return [m.id for m in rows]

    await _only_the_typed(database, make, find, lambda m: m.id, ("to", "subject", "body"))


async def test_price_book_sku_and_name(database: Database) -> None:
    def make(column: str, text: str) -> PricebookItem:
        values = {"sku": f"SKU-{uuid.uuid4().hex[:12]}", "name": "An item"}
        values[column] = f"{text}-{uuid.uuid4().hex[:6]}" if column == "sku" else f"{text} item"
        return PricebookItem(**values, unit_price=Decimal("1.00"))

    async def find(session: Any, q: str) -> list[str]:
        rows, total = await pricebook.search(session, q, None, None, 1, 50)
        assert total == len(rows)
        builder = [r.sku for r in await pricebook.search_items(session, q)]
        assert sorted(builder) == sorted(r.sku for r in rows)  # the quote builder's search
        return [r.sku for r in rows]

    await _only_the_typed(database, make, find, lambda i: i.sku, ("sku", "name"))
