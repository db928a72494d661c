"""Reading and writing the settings documents (communications, resulting, closeout).

A document is stored whole and validated by its pydantic model on the way in and out, so a
missing document (or a field added later) reads as the model's defaults.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Setting, utcnow

M = TypeVar("M", bound=BaseModel)
COMMUNICATIONS = "communications"
BRANDING = "branding"
CLOSEOUT = "closeout"
RESULTING = "resulting"
QUOTES = "quotes"


async def load(session: AsyncSession, name: str, model: type[M]) -> M:
    row = await session.get(Setting, name)
    return model.model_validate(row.value) if row else model()


async def stored(session: AsyncSession, *names: str) -> dict[str, Any]:
    """Several documents as stored, in one query (a message or a document needs two or three of
    them on every event: one round trip, not one each); `parsed` reads each."""
    rows = await session.exec(
        select(Setting.name, Setting.value).where(col(Setting.name).in_(names))
    )
    return dict(rows.all())


def parsed(documents: dict[str, Any], name: str, model: type[M]) -> M:
    """One document of `stored`'s, as `load` reads it."""
    value = documents.get(name)
    return model() if value is None else model.model_validate(value)


async def save(session: AsyncSession, name: str, value: BaseModel, username: str) -> None:
    row = await session.get(Setting, name)
    document = value.model_dump(mode="json")
    if row is None:
        session.add(Setting(name=name, value=document, updated_by=username))
    else:
        row.value = document
        row.updated_by = username
        row.updated_at = utcnow()
        session.add(row)
    await session.flush()
