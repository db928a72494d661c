"""Settings documents read together (`settings_store.stored` and `parsed`), on SQLite and
PostgreSQL: one query for several documents, each read as `load` reads it alone (a stored one
validated by its model, a missing one as the model's defaults)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Engine, event

from core import settings_store
from core.db import Database
from models.branding import BrandingSettings
from models.communications import CommunicationSettings


async def test_several_documents_are_read_in_one_query_as_load_reads_each(
    database: Database,
) -> None:
    # Names of this test's own: the session's database is shared with every other test.
    branding, comms, missing = (f"{kind}-{uuid.uuid4().hex[:12]}" for kind in "bcm")
    saved_branding = BrandingSettings(company_name="Cool Air Ltd", primary_color="#114477")
    saved_comms = CommunicationSettings(company_name="Cool Air", sms_enabled=False)
    async with database.session() as session:
        await settings_store.save(session, branding, saved_branding, "ada")
        await settings_store.save(session, comms, saved_comms, "ada")

    statements: list[str] = []

    def seen(connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if connection.engine.url == database.engine.url:
            statements.append(sql)

    async with database.session() as session:
        event.listen(Engine, "before_cursor_execute", seen)
        try:
            found = await settings_store.stored(session, branding, comms, missing)
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
        alone = (
            await settings_store.load(session, branding, BrandingSettings),
            await settings_store.load(session, comms, CommunicationSettings),
            await settings_store.load(session, missing, CommunicationSettings),
        )

    assert len([s for s in statements if "settings" in s]) == 1, statements
    together = (
        settings_store.parsed(found, branding, BrandingSettings),
        settings_store.parsed(found, comms, CommunicationSettings),
        settings_store.parsed(found, missing, CommunicationSettings),
    )
    assert together == alone
    assert together == (saved_branding, saved_comms, CommunicationSettings())
    assert missing not in found
