"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

A model changed without a migration (or a migration that differs from its model) would work in
tests that create tables from the models and break on a real upgrade; here the database comes
from the migrations alone, and Alembic's autogenerate comparison must find nothing to do.

A migration that fills columns from data (0009) or writes rows again (0018) is run over a database
holding rows in the shape of the revision before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

import models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from api.jobs import service
from api.jobs.service import ATTENTION, JobFilters
from core.db import Database
from core.migrate import is_model_object, upgrade
from core.projection_store import job_row
from models import board, reminders
from models.communications import CommunicationSettings
from models.lifecycle import FINAL_STAGES, ClientSnapshot, JobState, Role, Stage
from models.reminders import Kind
from models.tables import Client, Job, User
from tests.conftest import BACKENDS, _drop_postgres_database, _new_postgres_database
from tests.models.test_lifecycle_table import BASE, OFFICE, reach


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": is_model_object}
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


# --- 0009: the board's columns, filled from the state of the jobs already there -----------------

OLD_SHAPE_FILLERS = 1_050  # stale quotes besides the named jobs: more than two batches of 500
BOARD_COLUMNS = ("amount", "quote_stale", "parts_overdue", "unpaid")


def _old_states() -> dict[str, JobState]:
    """Jobs the rules made, one per case the board tells apart (slug: state)."""
    at = BASE + timedelta(days=60)  # every reminder below is due by then
    settings = CommunicationSettings()

    def fired(state: JobState, kind: Kind) -> JobState:
        return reminders.fired(state, reminders.Due(kind, at), at, settings)

    part_paid = reach(Stage.invoiced)
    part_paid.do(OFFICE, "payment_recorded", amount="10.00", method="card")
    assert part_paid.state.stage == Stage.invoiced
    return {
        "lead": reach(Stage.lead).state,
        "quoting": reach(Stage.quoting).state,
        "sent": reach(Stage.quote_sent).state,
        "stale": fired(reach(Stage.quote_sent).state, "quote_stale"),
        "parts": reach(Stage.awaiting_parts).state,
        "overdue": fired(reach(Stage.awaiting_parts).state, "parts_overdue"),
        "stuck": fired(reach(Stage.scheduled).state, "stuck"),
        "invoiced": reach(Stage.invoiced).state,
        "part-paid": part_paid.state,
        "verified": reach(Stage.verified).state,
        "closed": reach(Stage.closed).state,
        "canceled": reach(Stage.canceled).state,
    }


@asynccontextmanager
async def _database_at(backend: str, revision: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database migrated up to `revision` only."""
    dropped = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        dropped, url = await _new_postgres_database()
    db = Database(url)
    try:
        await upgrade(db, revision)
        yield db
    finally:
        await db.dispose()
        if dropped:
            await _drop_postgres_database(dropped)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_0009_fills_the_board_columns_of_jobs_already_there(
    backend: str, tmp_path: Path
) -> None:
    states = _old_states()
    async with _database_at(backend, "0008", tmp_path) as db:
        async with db.session() as session:
            client = Client(name="Acme Heating")
            session.add(client)
            await session.commit()
            snapshot = ClientSnapshot(id=client.id, name=client.name)

            def old_row(slug: str, state: JobState) -> dict[str, Any]:
                state = state.model_copy(update={"slug": slug, "client": snapshot})
                row = job_row(state, 1, BASE)
                return {k: v for k, v in row.items() if k not in BOARD_COLUMNS}  # 0008's shape

            old_jobs = await (await session.connection()).run_sync(_jobs_table)
            assert not set(BOARD_COLUMNS) & set(old_jobs.c.keys())
            rows = [old_row(slug, state) for slug, state in states.items()]
            rows += [old_row(f"filler-{i:04d}", states["stale"]) for i in range(OLD_SHAPE_FILLERS)]
            await session.execute(sa.insert(old_jobs), rows)
            await session.commit()

        await upgrade(db)

        async with db.session() as session:
            found = {job.slug: job for job in (await session.exec(select(Job))).all()}
            office = User(username="olga", email="o@example.com", role=Role.office)
            tally = await service.board_tally(session, office, JobFilters())
    assert len(found) == len(states) + OLD_SHAPE_FILLERS

    def columns(slug: str) -> tuple[Any, ...]:
        job = found[slug]
        amount = None if job.amount is None else Decimal(job.amount).quantize(Decimal("0.01"))
        return amount, job.quote_stale, job.parts_overdue, job.unpaid

    def quoted(slug: str) -> Decimal:
        quote = states[slug].quote
        assert quote is not None
        return quote.total

    def contract(slug: str) -> Decimal:
        amount = states[slug].contract_amount
        assert amount is not None
        return amount

    assert columns("lead") == (None, False, False, False)
    assert columns("quoting") == (quoted("quoting"), False, False, False)
    assert columns("sent") == (quoted("sent"), False, False, False)
    assert columns("stale") == (quoted("stale"), True, False, False)
    assert columns("parts") == (contract("parts"), False, False, False)
    assert columns("overdue") == (contract("overdue"), False, True, False)
    assert columns("stuck") == (contract("stuck"), False, False, False)
    assert columns("invoiced") == (contract("invoiced"), False, False, True)
    assert columns("part-paid") == (contract("part-paid"), False, False, False)
    assert columns("verified") == (contract("verified"), False, False, True)
    assert columns("closed") == (contract("closed"), False, False, False)
    assert columns("canceled") == (None, False, False, False)
    assert all(columns(f"filler-{i:04d}") == columns("stale") for i in range(OLD_SHAPE_FILLERS))
    # What the projection writes now is what the migration wrote.
    for slug, job in found.items():
        state = JobState.model_validate(job.state)
        assert columns(slug) == tuple(board.columns(state)[k] for k in BOARD_COLUMNS), slug

    # The board reads them at once: the attention strip of the open jobs, and the money.
    open_jobs = [t for stage, t in tally.items() if Stage(stage) not in FINAL_STAGES]

    def counted(kind: str) -> int:
        return sum(t.attention[kind] for t in open_jobs)

    assert {kind: counted(kind) for kind in ATTENTION} == {
        "stuck": 1,
        "stale_quote": 1 + OLD_SHAPE_FILLERS,
        "parts_overdue": 1,
        "unassigned": 1,
        "unpaid": 2,
        "unresulted": 0,  # no job here is due a result
    }
    assert tally["quote_sent"].amount == quoted("sent") * (2 + OLD_SHAPE_FILLERS)


def _jobs_table(connection: Connection) -> sa.Table:
    """The jobs table as it is in the database."""
    return sa.Table("jobs", sa.MetaData(), autoload_with=connection)


async def test_0018_moves_the_state_of_jobs_already_there_out_of_their_rows(
    tmp_path: Path,
) -> None:
    """PostgreSQL only (SQLite has no TOAST). A job's state written before 0018 sat in its row;
    after it, the rows hold their narrow columns and the states read back unchanged."""
    jobs = 200
    state = reach(Stage.invoiced).state
    async with _database_at("postgresql", "0017", tmp_path) as db:
        async with db.session() as session:
            client = Client(name="Acme Heating")
            session.add(client)
            await session.commit()
            snapshot = ClientSnapshot(id=client.id, name=client.name)
            for i in range(jobs):
                slug = f"job-{i:04d}"
                own = state.model_copy(update={"slug": slug, "client": snapshot})
                session.add(Job(**job_row(own, 1, BASE)))
            await session.commit()
        before = await _values_out_of_line(db)

        await upgrade(db)

        after = await _values_out_of_line(db)
        async with db.session() as session:
            found = (await session.exec(select(Job).where(Job.slug == "job-0042"))).one()
    assert (before, after) == (0, jobs)
    assert JobState.model_validate(found.state) == state.model_copy(
        update={"slug": "job-0042", "client": snapshot}
    )


async def _values_out_of_line(db: Database) -> int:
    """How many values the jobs table keeps in its TOAST relation."""
    async with db.engine.connect() as connection:
        toast = (
            await connection.exec_driver_sql(
                "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'jobs'"
            )
        ).scalar_one()
        return (
            await connection.exec_driver_sql(f"SELECT count(DISTINCT chunk_id) FROM {toast}")
        ).scalar_one()
