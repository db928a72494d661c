"""Clients: reference data owned by the API (not by a workflow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal_column, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import visibility
from api.clients.schemas import ClientContact, ClientCreate, ClientPublic, ClientShown, ClientUpdate
from api.errors import NotFound
from models.lifecycle import ClientSnapshot
from models.tables import Client, User, utcnow


def public(client: Client) -> ClientPublic:
    assert client.id is not None
    return ClientPublic(
        id=client.id,
        client_number=client.client_number,
        name=client.name,
        email=client.email,
        phone=client.phone,
        tier=client.tier,  # type: ignore[arg-type]
        billing_email=client.billing_email,
        address=client.address,
        notes=client.notes,
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


def shown_to(user: User, client: Client) -> ClientShown:
    """The client as this user may read it: without the internal notes for a technician."""
    full = public(client)
    if visibility.sees_client_notes(user):
        return full
    return ClientContact.model_validate(full.model_dump(exclude={"notes"}))


def snapshot(client: Client) -> ClientSnapshot:
    assert client.id is not None
    return ClientSnapshot(
        id=client.id,
        name=client.name,
        tier=client.tier,  # type: ignore[arg-type]
        email=client.email,
        phone=client.phone,
        billing_email=client.billing_email,
    )


# Ids are 32-bit integers in PostgreSQL: a larger one names no client (and must not reach the
# database, which would refuse the query itself).
MAX_ID = 2**31 - 1


async def find(session: AsyncSession, client_id: int) -> Client | None:
    if not 0 < client_id <= MAX_ID:
        return None
    return await session.get(Client, client_id)


async def get(session: AsyncSession, client_id: int) -> Client:
    client = await find(session, client_id)
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    return client


async def read(session: AsyncSession, user: User, client_id: int) -> Client:
    """A client this user may see (a technician: the client of a job assigned to them), else
    not found."""
    query = visibility.clients(select(Client).where(Client.id == client_id), user)
    client = (await session.exec(query)).first() if 0 < client_id <= MAX_ID else None
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    return client


async def create(session: AsyncSession, data: ClientCreate) -> Client:
    client = Client(**data.model_dump())
    session.add(client)
    await session.flush()
    await session.refresh(client)
    return client


async def update(session: AsyncSession, client_id: int, data: ClientUpdate) -> Client:
    client = await get(session, client_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None and field in {"name", "tier", "address", "notes"}:
            continue  # these cannot be cleared, only changed
        setattr(client, field, value)
    client.updated_at = utcnow()
    session.add(client)
    await session.flush()
    await session.refresh(client)
    return client


async def search(
    session: AsyncSession, user: User, q: str | None, tier: str | None, page: int, page_size: int
) -> tuple[list[Client], int]:
    query = visibility.clients(select(Client), user)
    if q:
        # autoescape: a % or _ typed into the search box means itself, not "anything". The
        # expressions are migration 0015's trigram indexes' own ('' written out, not bound, so
        # even a generic plan matches them).
        text = q.lower()
        empty = literal_column("''")
        query = query.where(
            or_(
                func.lower(Client.name).contains(text, autoescape=True),
                func.lower(func.coalesce(Client.email, empty)).contains(text, autoescape=True),
                func.coalesce(Client.phone, empty).contains(text, autoescape=True),
            )
        )
    if tier:
        query = query.where(Client.tier == tier)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.exec(
        query.order_by(col(Client.name), col(Client.id))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows.all()), total


# --- likely duplicates (the office's "this client may already exist" warning) -----------------

# The characters a phone number may hold besides digits (models.events.Phone): removed in SQL so
# "(555) 010-2000" and "555.010.2000" compare equal, on SQLite and PostgreSQL alike.
_PHONE_PUNCTUATION = "+()-. #*x"
# Numbers with at least this many digits also match on their last ten (a country code added or
# left off: "+1 555 010 2000" is "555-010-2000").
_NATIONAL_DIGITS = 10
MAX_DUPLICATES = 5


def phone_digits(phone: str | None) -> str:
    return "".join(c for c in phone or "" if c.isdigit())


def _digits_in_sql(column: Any) -> Any:
    expression: Any = func.coalesce(column, "")
    for character in _PHONE_PUNCTUATION:
        expression = func.replace(expression, character, "")
    return expression


@dataclass(frozen=True)
class LikelyDuplicate:
    """An existing client that looks like the one being created, and why (in the order name,
    email, phone)."""

    client: Client
    reasons: tuple[str, ...]


def _same_phone(a: str, b: str) -> bool:
    if a == b:
        return True
    return (
        len(a) >= _NATIONAL_DIGITS
        and len(b) >= _NATIONAL_DIGITS
        and (a[-_NATIONAL_DIGITS:] == b[-_NATIONAL_DIGITS:])
    )


async def likely_duplicates(
    session: AsyncSession, name: str | None, email: str | None, phone: str | None
) -> list[LikelyDuplicate]:
    """Clients with the same name (ignoring case and surrounding spaces), the same email
    (ignoring case) or the same phone number (digits only), at most MAX_DUPLICATES, oldest
    first. For writers, who see every client."""
    name = (name or "").strip().lower()
    email = (email or "").strip().lower()
    digits = phone_digits(phone)
    conditions: list[Any] = []
    if name:
        conditions.append(func.lower(func.trim(Client.name)) == name)
    if email:
        conditions.append(func.lower(func.trim(func.coalesce(Client.email, ""))) == email)
    if len(digits) >= 3:
        # Candidates in SQL (same last digits), the exact rule below.
        tail = digits[-min(len(digits), _NATIONAL_DIGITS) :]
        conditions.append(_digits_in_sql(Client.phone).endswith(tail, autoescape=True))
    if not conditions:
        return []
    rows = await session.exec(select(Client).where(or_(*conditions)).order_by(col(Client.id)))
    found: list[LikelyDuplicate] = []
    for client in rows:
        reasons = []
        if name and client.name.strip().lower() == name:
            reasons.append("name")
        if email and (client.email or "").strip().lower() == email:
            reasons.append("email")
        if len(digits) >= 3 and _same_phone(phone_digits(client.phone), digits):
            reasons.append("phone")
        if reasons:
            found.append(LikelyDuplicate(client, tuple(reasons)))
        if len(found) == MAX_DUPLICATES:
            break
    return found
