"""Schema migrations, run from code: `jobline dev`, `jobline api` and the tests call `upgrade`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db import Database

_LOCK_KEY = 0x6A6F626C696E65  # "jobline"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def is_model_object(obj: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
    """Alembic's `include_object`: what the models describe. The text search's trigram indexes
    (migration 0015, PostgreSQL only: GIN over an expression with pg_trgm's operator class) are
    the migration's alone, so autogenerate must not propose dropping them."""
    return not (type_ == "index" and reflected and (name or "").endswith("_trgm"))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    config = alembic_config()

    def _upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            # Several API replicas may start at once: one migrates, the others wait for it.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await connection.run_sync(_upgrade)
