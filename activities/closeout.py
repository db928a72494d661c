"""Closeout on `job_completed` (DESIGN.md §6): the portal snapshot and the portal webhook.

`sync_portal` stores the next version of the job's completion snapshot for the closeout portal and
makes sure the job has a portal link. `post_portal_webhook` POSTs a stored snapshot to the
configured URL, signed, and is retried by Temporal while the receiver is unreachable or failing.
Both are idempotent: a retried sync finds the version it wrote, and a webhook is sent at least
once with a delivery id the receiver can dedupe on.

The signature: `X-Jobline-Signature: sha256=<hex>` where hex is HMAC-SHA256 with the webhook
secret over `<X-Jobline-Timestamp>.<body>`, so a receiver can refuse old or replayed requests.

The receiver must be on the public internet (models/webhook_target.py) unless the operator allows
private networks: every address its host resolves to is checked just before the request, and the
request goes to the checked address, so a second DNS answer cannot steer it elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import attempts
from core import portal, settings_store
from core.config import Settings
from core.db import Database
from core.settings_store import CLOSEOUT
from models.closeout import CloseoutSettings, JobCloseout
from models.portal import (
    LOAD_JOB_CLOSEOUT,
    POST_PORTAL_WEBHOOK,
    SYNC_PORTAL,
    CompletionSnapshot,
    PortalSync,
    PortalSynced,
    snapshot_of,
)
from models.tables import PortalSnapshot
from models.webhook_target import address_refusal, explain

log = logging.getLogger("jobline.closeout")
# Answers worth trying again: the receiver is busy, timed out, or broke for a while.
RETRY_STATUSES = frozenset({408, 425, 429})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class TargetRefused(Exception):
    """The webhook's host resolves to an address it must not be sent to."""


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the URL (its host replaced by the checked address) and what
    keeps the request addressed to the named host (its Host header, its TLS server name)."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """The checked address to send the webhook to; TargetRefused names the address that is not
    public, and a host that does not resolve is an OSError (tried again later)."""
    named = httpx.URL(url)
    if allow_private:
        return Target(named)
    port = named.port or (443 if named.scheme == "https" else 80)
    found = await asyncio.get_running_loop().getaddrinfo(named.host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        if reason := address_refusal(address):
            raise TargetRefused(f"{named.host} resolves to {address}: {explain(reason)}")
    return Target(
        named.copy_with(host=str(addresses[0])),
        headers={"Host": named.netloc.decode("ascii")},
        extensions={"sni_hostname": named.host},
    )


class CloseoutActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    @activity.defn(name=LOAD_JOB_CLOSEOUT)
    async def load_job_closeout(self) -> JobCloseout:
        stored = await self.db.run(
            lambda session: settings_store.load(session, CLOSEOUT, CloseoutSettings), write=False
        )
        return JobCloseout.of(stored)

    @activity.defn(name=SYNC_PORTAL)
    async def sync_portal(self, request: PortalSync) -> PortalSynced:
        state = request.state
        snapshot = snapshot_of(state, request.closeout, request.receipt_document_id)

        async def sync(session: AsyncSession) -> PortalSnapshot:
            await portal.ensure_link(
                session,
                self.settings.secret_key,
                state.slug,
                timedelta(days=request.closeout.portal_link_days),
            )
            return await portal.save_snapshot(
                session,
                snapshot,
                source_key=f"job-{state.slug}:{state.seq}",
                webhook=request.closeout.webhook,
            )

        row = await self.db.run(sync)
        assert row.id is not None
        return PortalSynced(snapshot_id=row.id, version=row.version)

    async def _record(self, snapshot_id: int, **changes: object) -> None:
        await self.db.update(PortalSnapshot, snapshot_id, **changes)

    @activity.defn(name=POST_PORTAL_WEBHOOK)
    async def post_portal_webhook(self, snapshot_id: int) -> str:
        """POST one snapshot to the external portal; `sent`, `failed` (refused for good, or
        given up on) or `skipped` (no webhook configured any more)."""

        async def read(session: AsyncSession) -> tuple[PortalSnapshot | None, CloseoutSettings]:
            row = await session.get(PortalSnapshot, snapshot_id)
            return row, await settings_store.load(session, CLOSEOUT, CloseoutSettings)

        row, settings = await self.db.run(read, write=False)
        if row is None:
            raise ApplicationError(f"no portal snapshot {snapshot_id}", non_retryable=True)
        if row.webhook_status in ("sent", "failed"):
            return row.webhook_status
        if not settings.webhook_url or not settings.webhook_secret:
            await self._record(snapshot_id, webhook_status="skipped")
            return "skipped"
        body = json.dumps(
            {
                "type": "job.completed",
                "delivery_id": f"{row.source_key}:v{row.version}",
                "version": row.version,
                # Through the model: only what the customer may see, even from an older row.
                "snapshot": CompletionSnapshot.model_validate(row.data).model_dump(mode="json"),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Jobline-Webhook/1",
            "X-Jobline-Delivery": f"{row.source_key}:v{row.version}",
            "X-Jobline-Timestamp": timestamp,
            "X-Jobline-Signature": signature(settings.webhook_secret, timestamp, body),
        }
        attempt = attempts.attempt()
        try:
            async with asyncio.timeout(self.settings.provider_timeout):  # a TimeoutError: OSError
                target = await resolve_target(
                    settings.webhook_url, allow_private=self.settings.webhook_allow_private
                )
        except TargetRefused as refused:  # asking again will not make the address public
            log.warning("portal webhook for snapshot %s not sent: %s", snapshot_id, refused)
            await self._record(
                snapshot_id,
                webhook_status="failed",
                webhook_attempts=attempt,
                webhook_error=f"not sent: {refused}"[:1000],
            )
            return "failed"
        except OSError as unresolved:
            return await self._retry_or_give_up(
                snapshot_id, attempt, f"the webhook's host does not resolve: {unresolved}"
            )
        try:
            async with httpx.AsyncClient(timeout=self.settings.provider_timeout) as client:
                answer = await client.post(
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                )
        except httpx.HTTPError as failed:
            return await self._retry_or_give_up(
                snapshot_id, attempt, f"{type(failed).__name__}: {failed}"
            )
        if answer.is_success:
            await self._record(
                snapshot_id,
                webhook_status="sent",
                webhook_attempts=attempt,
                webhook_error=None,
                webhook_sent_at=datetime.now(UTC),
            )
            return "sent"
        problem = f"HTTP {answer.status_code} from the portal webhook: {answer.text[:200]}"
        if answer.status_code >= 500 or answer.status_code in RETRY_STATUSES:
            return await self._retry_or_give_up(snapshot_id, attempt, problem)
        # Any other answer (a 4xx, a redirect) will not change by asking again.
        log.warning("portal webhook refused snapshot %s: %s", snapshot_id, problem)
        await self._record(
            snapshot_id, webhook_status="failed", webhook_attempts=attempt, webhook_error=problem
        )
        return "failed"

    async def _retry_or_give_up(self, snapshot_id: int, attempt: int, problem: str) -> str:
        if attempts.is_last_attempt():  # the workflow's retry policy says how many there are
            await self._record(
                snapshot_id,
                webhook_status="failed",
                webhook_attempts=attempt,
                webhook_error=f"gave up: {problem}"[:1000],
            )
            return "failed"
        await self._record(
            snapshot_id,
            webhook_status="pending",
            webhook_attempts=attempt,
            webhook_error=problem[:1000],
        )
        raise ApplicationError(problem, type="portal_webhook_unavailable")
