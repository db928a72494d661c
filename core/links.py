"""What the customer's links (the closeout portal's, core/portal.py, and the quote page's,
core/quote_links.py) share: how a token is made, stored and checked.

A token is `HMAC-SHA256(secret key, purpose + ":" + nonce)`, base64url: 256 bits no one can
compute without the server's secret key, for a nonce of 128 random bits drawn when the link is
made. `purpose` keeps one kind of link's tokens from opening another's. Only the nonce and the
token's SHA-256 are stored, so a copy of the database opens nothing, while the server can still
show the office the link it sent. Changing `JOBLINE_SECRET_KEY` retires every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import insert
from models.tables import PortalLink, QuoteLink, utcnow

# 32 bytes of HMAC in unpadded base64url.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # use with fullmatch

LinkRow = TypeVar("LinkRow", PortalLink, QuoteLink)


def token_for(secret_key: str, nonce: str, purpose: str = "portal") -> str:
    """The token of a link made for `purpose` ("portal", "quote")."""
    digest = hmac.new(secret_key.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _find(session: AsyncSession, table: type[LinkRow], keys: dict[str, Any]) -> Any:
    matches = (col(getattr(table, name)) == value for name, value in keys.items())
    return (await session.exec(select(table).where(*matches))).first()


async def ensure_row(
    session: AsyncSession,
    table: type[LinkRow],
    keys: dict[str, Any],
    secret_key: str,
    purpose: str,
    lifetime: timedelta,
) -> LinkRow:
    """The link row for `keys` (its unique columns), made on first use: a retried or concurrent
    call finds the first one's. An expired row gets a new nonce and a new lifetime."""
    now = utcnow()
    row: LinkRow | None = await _find(session, table, keys)
    if row is not None and row.expires_at > now:
        return row
    nonce = secrets.token_hex(16)
    values = {
        **keys,
        "nonce": nonce,
        "token_hash": token_hash(token_for(secret_key, nonce, purpose)),
        "created_at": now,
        "expires_at": now + lifetime,
    }
    statement = insert(session.get_bind().dialect.name, table).values(**values)
    index = list(keys)
    if row is None:
        await session.execute(statement.on_conflict_do_nothing(index_elements=index))
    else:
        renewed = {k: v for k, v in values.items() if k not in keys}
        await session.execute(statement.on_conflict_do_update(index_elements=index, set_=renewed))
    row = await _find(session, table, keys)
    assert row is not None
    await session.refresh(row)
    return row


async def open_row(
    session: AsyncSession, table: type[LinkRow], secret_key: str, purpose: str, token: str
) -> LinkRow | None:
    """The unexpired row a token belongs to; None for anything else (malformed, unknown,
    expired, another kind of link's, or made with another secret key), which callers answer
    all alike."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None  # before any query
    row: LinkRow | None = await _find(session, table, {"token_hash": token_hash(token)})
    if row is None or row.expires_at <= utcnow():
        return None
    # The stored hash alone is not enough: the token must be the one this server's secret key
    # derives, so a new JOBLINE_SECRET_KEY retires every link.
    derived = token_for(secret_key, row.nonce, purpose)
    return row if hmac.compare_digest(derived, token) else None
