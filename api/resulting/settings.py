"""The resulting settings (DESIGN.md §4 "Resulting settings"): read by everyone, changed by
admins only (the SOP's open question, answered), checked whole by `models.resulting`."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from core import settings_store
from core.settings_store import RESULTING
from models.resulting import ResultingSettings


async def load(session: AsyncSession) -> ResultingSettings:
    return await settings_store.load(session, RESULTING, ResultingSettings)


async def save(
    session: AsyncSession, settings: ResultingSettings, username: str
) -> ResultingSettings:
    """Replaces the document. Results submitted from now on are checked against it; revisions
    already made keep the form they were made with."""
    await settings_store.save(session, RESULTING, settings, username)
    return settings
