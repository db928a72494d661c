"""The document store: bytes in, a random id out; the id back, the document out.

Documents (rendered PDFs, uploaded logos) live in the database next to the job they belong to,
so a backup of the database is a backup of every document and the API and worker need no shared
disk. Workflows and messages carry only the id (DESIGN.md §3). Ids are 128 random bits: a link
that names one cannot be guessed from another.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import insert
from models.tables import Document, utcnow


def new_id() -> str:
    return secrets.token_hex(16)


async def save(
    session: AsyncSession,
    content: bytes,
    *,
    kind: str,
    filename: str,
    content_type: str,
    job_slug: str | None = None,
    key: str | None = None,
) -> str:
    """Store `content` and return its id.

    With a `key`, saving is idempotent: the first save under that key wins and every later one
    (a retry, or a concurrent attempt) returns the first one's id and stores nothing.
    """
    document_id = new_id()
    values = {
        "id": document_id,
        "idempotency_key": key,
        "job_slug": job_slug,
        "kind": kind,
        "filename": filename,
        "content_type": content_type,
        "content": content,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "created_at": utcnow(),
    }
    if key is None:
        await session.execute(insert(_dialect(session), Document).values(**values))
        return document_id
    await session.execute(
        insert(_dialect(session), Document)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    found = await id_for_key(session, key)
    assert found is not None
    return found


async def id_for_key(session: AsyncSession, key: str) -> str | None:
    rows = await session.exec(select(Document.id).where(Document.idempotency_key == key))
    return rows.first()


async def load(session: AsyncSession, document_id: str) -> Document | None:
    return await session.get(Document, document_id)


async def for_job(session: AsyncSession, job_slug: str) -> list[Document]:
    """A job's documents, oldest first, without their bytes (`load` reads one whole)."""
    rows = await session.exec(
        select(Document)
        .where(Document.job_slug == job_slug)
        .options(defer(Document.content))  # type: ignore[arg-type]
        .order_by(col(Document.created_at))
    )
    return list(rows.all())


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
