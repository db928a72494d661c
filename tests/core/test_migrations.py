"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

A model changed without a migration (or a migration that differs from its model) would work in
tests that create tables from the models and break on a real upgrade; here the database comes
from the migrations alone, and Alembic's autogenerate comparison must find nothing to do.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from core.db import Database


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []
