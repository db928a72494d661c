"""`Idempotency-Key`: how a client retries a POST that changes state, safely.

A client that sends the same key again (after a timeout, a 503, a dropped connection) gets the
first request's result; the change is made once. Keys belong to the user who sent them.

- An event (and the Send dialog, which is one) becomes the workflow Update whose id the key
  names, so the workflow applies it once; a job that has since finished is answered from the
  timeline row that Update wrote.
- A new job's slug, and so its workflow id, is derived from the key: a retried create finds the
  job the first one started.
- Other writes (a new client) keep their answer in `idempotent_requests`, in the same
  transaction as the write.

The same key with a different request is refused (422), never answered with the other's result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser
from api.errors import Invalid
from models.tables import IdempotentRequest

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: what a UUID, a ULID or a client's own counter looks like.
_KEY_PATTERN = r"^[!-~]{1,200}$"
_SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class KeyReused(Invalid):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Idempotency:
    """The key of one request (None when the client sent none) and a digest of what it asked."""

    key: str | None
    username: str
    digest: str

    @property
    def _hash(self) -> str:
        assert self.key is not None
        return hashlib.sha256(f"{self.username}\n{self.key}".encode()).hexdigest()

    @property
    def update_id(self) -> str | None:
        """The workflow Update id this request's event is sent as."""
        return f"idem-{self._hash[:40]}" if self.key else None

    def job_slug(self) -> str | None:
        """The slug of the job a keyed `job_created` starts (8 characters, as random ones)."""
        if not self.key:
            return None
        number = int(self._hash, 16)
        letters = []
        for _ in range(8):
            number, index = divmod(number, len(_SLUG_ALPHABET))
            letters.append(_SLUG_ALPHABET[index])
        return "".join(letters)

    def check_same(self, digest: str | None) -> None:
        """The earlier request under this key must be this one."""
        if self.key and digest is not None and digest != self.digest:
            raise KeyReused(
                f"{HEADER} {self.key!r} was used for a different request; "
                "use a new key for a new request"
            )


async def _idempotency(
    request: Request,
    user: CurrentUser,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            pattern=_KEY_PATTERN,
            description="Send the same key to retry this request safely: it is applied once "
            "and the retry gets the first answer. 1-200 printable ASCII characters.",
        ),
    ] = None,
) -> Idempotency:
    body = await request.body()
    try:
        canonical: Any = json.loads(body) if body else None
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    digest = hashlib.sha256(
        json.dumps(
            [request.method, request.url.path, canonical], sort_keys=True, default=str
        ).encode()
    ).hexdigest()
    return Idempotency(key=key, username=user.username, digest=digest)


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def earlier_answer(
    session: AsyncSession, idem: Idempotency
) -> tuple[int, dict[str, Any]] | None:
    """The stored answer to an earlier request with this key (for writes outside workflows)."""
    if not idem.key:
        return None
    stored = (
        await session.exec(select(IdempotentRequest).where(IdempotentRequest.key == idem._hash))
    ).first()
    if stored is None:
        return None
    idem.check_same(stored.digest)
    return stored.status_code, stored.body


def remember(session: AsyncSession, idem: Idempotency, status_code: int, body: Any) -> None:
    """Keep the answer in the write's own transaction: both are committed, or neither."""
    if idem.key:
        session.add(
            IdempotentRequest(
                key=idem._hash,
                digest=idem.digest,
                status_code=status_code,
                body=body,
                created_at=datetime.now(UTC),
            )
        )


async def replayed(session: AsyncSession, idem: Idempotency) -> JSONResponse | None:
    """The first answer again, when this key was answered before (writes outside workflows)."""
    earlier = await earlier_answer(session, idem)
    return None if earlier is None else JSONResponse(earlier[1], status_code=earlier[0])


async def commit_with_answer(
    session: AsyncSession, idem: Idempotency, status_code: int, answer: BaseModel
) -> JSONResponse | None:
    """Commit the write with its answer kept under the key. None when this request won; the
    first answer when the same request, sent twice at once, committed first."""
    remember(session, idem, status_code, answer.model_dump(mode="json"))
    try:
        await session.commit()
    except IntegrityError as error:
        if not is_duplicate_key(error):
            raise
        await session.rollback()
        first = await replayed(session, idem)
        assert first is not None
        return first
    return None


def is_duplicate_key(error: IntegrityError) -> bool:
    """A concurrent request with the same key committed first."""
    return "idempotent_requests" in str(error.orig) or "ix_idempotent_requests_key" in str(
        error.orig
    )
