"""Outbox figures for Prometheus: messages by status, counted when /metrics is scraped, and the
resends and confirmations people made. `jobline_outbox_messages{status="unknown"}` above zero
means a customer may not have a message and a person has to look."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter, Gauge
from sqlalchemy import func
from sqlmodel import select

from core.db import Database
from models.outbox import STATUSES
from models.tables import OutboxMessage

log = logging.getLogger("jobline.outbox")

MESSAGES = Gauge(
    "jobline_outbox_messages",
    "Outbox messages by status (unknown: the provider may or may not have it; check, then "
    "resend or mark sent)",
    ["status"],
)
ACTIONS = Counter(
    "jobline_outbox_actions_total",
    "Messages a person resent or marked sent",
    ["action"],
)
REFRESH_WITHIN_S = 2.0


async def refresh(db: Database) -> None:
    """Counts the messages by status; a database that does not answer in time leaves the last
    counts (a scrape must not hang or fail on it)."""

    async def count() -> dict[str, int]:
        async with db.session() as session:
            rows = await session.exec(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return {status: int(n) for status, n in rows.all()}

    try:
        counts = await asyncio.wait_for(count(), timeout=REFRESH_WITHIN_S)
    except Exception as failed:
        log.warning("outbox metrics not refreshed: %s: %s", type(failed).__name__, failed)
        return
    for status in STATUSES:
        MESSAGES.labels(status).set(counts.get(status, 0))
