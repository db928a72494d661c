"""The closeout activities against a real database (SQLite and PostgreSQL) and a real HTTP
receiver on 127.0.0.1:

- `sync_portal` stores one snapshot version per completion (a retry finds its own), makes the
  job's link once, and replaces a link only once it has expired;
- `post_portal_webhook` signs the body, and sorts answers: 2xx sent; 5xx, 429 and no answer
  retried (raised for Temporal, the row back to pending) until the last attempt, which records a
  failure; any other 4xx failed at once; no webhook configured any more: skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.closeout import CloseoutActivities, resolve_target
from core import portal, settings_store
from core.config import Settings
from core.db import Database
from core.settings_store import CLOSEOUT
from models import events as ev
from models.closeout import CloseoutSettings, JobCloseout
from models.lifecycle import ClientSnapshot, Completion, JobState, Stage
from models.portal import PortalSync
from models.tables import PortalLink, PortalSnapshot
from tests.fakes.providers import HOST, FakeHttpProvider, Reply, free_port
from workflows.closeout import WEBHOOK_RETRY

SECRET = "webhook-secret-for-activity-tests"
# The receiver listens on 127.0.0.1.
SETTINGS = Settings(  # type: ignore[call-arg]
    _env_file=None, environment="test", provider_timeout=2, webhook_allow_private=True
)


def completed_state(seq: int = 12) -> JobState:
    at = datetime(2030, 1, 14, 15, 30, tzinfo=UTC)
    return JobState(
        slug=f"co{uuid.uuid4().hex[:8]}",
        client=ClientSnapshot(id=1, name="Example Property Management", email="pm@example.com"),
        stage=Stage.completed,
        seq=seq,
        title="Annual service",
        created_at=at,
        stage_entered_at=at,
        completion=Completion(
            work_performed="Serviced the rooftop unit",
            parts_used=[ev.PartUsed(sku="FLT-20", quantity=Decimal("2"))],
            fields={"serial_number": "SN-1"},
            completed_by="tess",
            completed_at=at,
        ),
    )


def portal_links(slug: str) -> SelectOfScalar[PortalLink]:
    return select(PortalLink).where(PortalLink.job_slug == slug)


def sync_request(state: JobState, webhook: bool = False) -> PortalSync:
    closeout = JobCloseout(
        receipt_fields=[{"key": "serial_number", "label": "Unit serial number"}],  # type: ignore[list-item]
        portal_link_days=30,
        webhook=webhook,
    )
    return PortalSync(state=state, closeout=closeout, receipt_document_id=None)


@pytest.fixture
async def receiver() -> AsyncIterator[FakeHttpProvider]:
    fake = FakeHttpProvider()
    try:
        yield fake
    finally:
        fake.close()


async def _webhook_to(database: Database, url: str | None) -> None:
    settings = CloseoutSettings(webhook_url=url, webhook_secret=SECRET if url else None)
    async with database.session() as session:
        await settings_store.save(session, CLOSEOUT, settings, "test")


@pytest.fixture
async def webhook(database: Database, receiver: FakeHttpProvider) -> AsyncIterator[str]:
    url = f"{receiver.base_url}/hooks/jobline"
    await _webhook_to(database, url)
    try:
        yield url
    finally:
        await _webhook_to(database, None)


async def _snapshot(database: Database, snapshot_id: int) -> PortalSnapshot:
    async with database.session() as session:
        row = await session.get(PortalSnapshot, snapshot_id, populate_existing=True)
    assert row is not None
    return row


def _on_attempt(attempt: int) -> ActivityEnvironment:
    """The webhook activity on this attempt, under the workflow's own retry policy."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, retry_policy=WEBHOOK_RETRY)
    return env


async def test_sync_is_idempotent_and_versions_each_completion(database: Database) -> None:
    activities = CloseoutActivities(database, SETTINGS)
    state = completed_state()
    first = await activities.sync_portal(sync_request(state))
    again = await activities.sync_portal(sync_request(state))
    assert again == first and first.version == 1

    later = await activities.sync_portal(sync_request(state.model_copy(update={"seq": 20})))
    assert later.version == 2 and later.snapshot_id != first.snapshot_id

    row = await _snapshot(database, first.snapshot_id)
    assert row.data["fields"] == [
        {
            "key": "serial_number",
            "label": "Unit serial number",
            "value": "SN-1",
            "display": "SN-1",
        }
    ]
    assert row.data["parts_used"] == [{"sku": "FLT-20", "description": "", "quantity": "2"}]
    assert row.webhook_status is None  # no webhook configured: nothing pending

    async with database.session() as session:
        link = await portal.link_for_job(session, SETTINGS.secret_key, state.slug)
        assert link is not None
        opened = await portal.open_link(session, SETTINGS.secret_key, link.token)
        assert opened == link and opened.job_slug == state.slug
        stored = (await session.exec(portal_links(state.slug))).one()
    # Neither the token nor anything that opens the portal without the secret key is stored.
    assert link.token not in (stored.nonce, stored.token_hash)
    assert stored.token_hash == hashlib.sha256(link.token.encode()).hexdigest()


async def test_an_expired_link_opens_nothing_and_a_new_one_replaces_it(database: Database) -> None:
    state = completed_state()
    async with database.session() as session:
        old = await portal.ensure_link(session, SETTINGS.secret_key, state.slug, timedelta(days=1))
        row = (await session.exec(portal_links(state.slug))).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    async with database.session() as session:
        assert await portal.open_link(session, SETTINGS.secret_key, old.token) is None
        assert await portal.link_for_job(session, SETTINGS.secret_key, state.slug) is None
        new = await portal.ensure_link(session, SETTINGS.secret_key, state.slug, timedelta(days=1))
    assert new.token != old.token
    async with database.session() as session:
        assert await portal.open_link(session, SETTINGS.secret_key, new.token) == new
        assert await portal.open_link(session, SETTINGS.secret_key, old.token) is None
        # Tokens belong to the secret key: another key's token for the same nonce opens nothing,
        # and a new key retires the links made with the old one.
        other = portal.token_for("another-secret-key", row.nonce)
        assert await portal.open_link(session, SETTINGS.secret_key, other) is None
        assert await portal.open_link(session, "a-new-secret-key", new.token) is None


async def test_malformed_tokens_are_refused_before_any_lookup(database: Database) -> None:
    async with database.session() as session:
        for token in (
            "",
            "short",
            "A" * 42,
            "A" * 44,
            "A" * 43 + "\n",
            "../" + "A" * 40,
            "Ä" * 43,
            "A" * 42 + "=",
        ):
            assert await portal.open_link(session, SETTINGS.secret_key, token) is None


async def test_webhook_is_signed_and_sent_once(
    database: Database, receiver: FakeHttpProvider, webhook: str
) -> None:
    activities = CloseoutActivities(database, SETTINGS)
    synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
    assert (await _snapshot(database, synced.snapshot_id)).webhook_status == "pending"

    assert await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id) == "sent"
    [request] = receiver.requests
    assert request.path == "/hooks/jobline" and request.method == "POST"
    timestamp = request.headers["x-jobline-timestamp"]
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["x-jobline-signature"] == "sha256=" + mac.hexdigest()
    assert request.json()["snapshot"]["work_performed"] == "Serviced the rooftop unit"

    row = await _snapshot(database, synced.snapshot_id)
    assert (row.webhook_status, row.webhook_attempts, row.webhook_error) == ("sent", 1, None)
    # A retry of a sent webhook sends nothing.
    assert await _on_attempt(2).run(activities.post_portal_webhook, synced.snapshot_id) == "sent"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_busy_or_broken_receivers_are_retried(
    database: Database, receiver: FakeHttpProvider, webhook: str, status: int
) -> None:
    activities = CloseoutActivities(database, SETTINGS)
    synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
    receiver.answer_next(Reply(status, "later"))
    with pytest.raises(ApplicationError) as raised:
        await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id)
    assert not raised.value.non_retryable and f"HTTP {status}" in raised.value.message
    row = await _snapshot(database, synced.snapshot_id)
    assert (row.webhook_status, row.webhook_attempts) == ("pending", 1)

    assert await _on_attempt(2).run(activities.post_portal_webhook, synced.snapshot_id) == "sent"
    assert [r.status for r in receiver.requests] == [status, 200]


async def test_a_refusal_fails_at_once(
    database: Database, receiver: FakeHttpProvider, webhook: str
) -> None:
    activities = CloseoutActivities(database, SETTINGS)
    synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
    receiver.answer_next(Reply(400, "bad signature"))
    assert await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id) == "failed"
    row = await _snapshot(database, synced.snapshot_id)
    assert row.webhook_status == "failed" and "HTTP 400" in (row.webhook_error or "")
    assert len(receiver.requests) == 1


async def test_an_unreachable_receiver_is_retried_then_given_up(database: Database) -> None:
    # Nothing listens on this port: connection refused.
    await _webhook_to(database, f"http://{HOST}:{free_port()}/hook")
    try:
        activities = CloseoutActivities(database, SETTINGS)
        synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
        with pytest.raises(ApplicationError, match="ConnectError"):
            await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id)
        last = _on_attempt(WEBHOOK_RETRY.maximum_attempts)
        assert await last.run(activities.post_portal_webhook, synced.snapshot_id) == "failed"
        row = await _snapshot(database, synced.snapshot_id)
        assert row.webhook_status == "failed"
        assert (row.webhook_error or "").startswith("gave up: ConnectError")
        assert row.webhook_attempts == WEBHOOK_RETRY.maximum_attempts
    finally:
        await _webhook_to(database, None)


async def test_a_webhook_removed_since_is_skipped(database: Database) -> None:
    activities = CloseoutActivities(database, SETTINGS)
    synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
    assert await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id) == "skipped"
    assert (await _snapshot(database, synced.snapshot_id)).webhook_status == "skipped"


async def test_job_closeout_settings_carry_no_secret(database: Database, webhook: str) -> None:
    loaded = await CloseoutActivities(database, SETTINGS).load_job_closeout()
    assert loaded.webhook is True
    assert SECRET not in loaded.model_dump_json() and webhook not in loaded.model_dump_json()


# --- where a webhook may go (issue 8 item 11) ----------------------------------------------------

PUBLIC_ONLY = Settings(_env_file=None, environment="test", provider_timeout=2)  # type: ignore[call-arg]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1", "2130706433"])
async def test_a_host_that_resolves_to_loopback_is_never_called(
    database: Database, receiver: FakeHttpProvider, host: str
) -> None:
    """Saved as it is (as if DNS answered differently when it was saved): at delivery the name
    resolves to 127.0.0.1, where the receiver listens, and nothing is sent, now or on a retry."""
    port = receiver.base_url.rsplit(":", 1)[1]
    await _webhook_to(database, f"http://{host}:{port}/hooks/jobline")
    try:
        activities = CloseoutActivities(database, PUBLIC_ONLY)
        synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
        sent = await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id)
        assert sent == "failed"
        row = await _snapshot(database, synced.snapshot_id)
        assert row.webhook_status == "failed" and row.webhook_attempts == 1
        error = row.webhook_error or ""
        assert f"{host} resolves to 127.0.0.1" in error and "loopback" in error, error
        assert "JOBLINE_WEBHOOK_ALLOW_PRIVATE" in error
        assert await _on_attempt(2).run(activities.post_portal_webhook, synced.snapshot_id) == (
            "failed"
        )
        assert receiver.requests == []

        # The operator's switch lets the same receiver have it (so the refusal above is the
        # address check, not a receiver that could not be reached).
        allowed = CloseoutActivities(database, SETTINGS)
        again = await allowed.sync_portal(sync_request(completed_state(), webhook=True))
        assert await _on_attempt(1).run(allowed.post_portal_webhook, again.snapshot_id) == "sent"
        assert len(receiver.requests) == 1
    finally:
        await _webhook_to(database, None)


async def test_a_host_that_does_not_resolve_is_tried_again(database: Database) -> None:
    await _webhook_to(database, "http://no-such-host.invalid/hook")  # .invalid never resolves
    try:
        activities = CloseoutActivities(database, PUBLIC_ONLY)
        synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
        with pytest.raises(ApplicationError, match="does not resolve") as raised:
            await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id)
        assert not raised.value.non_retryable
        assert (await _snapshot(database, synced.snapshot_id)).webhook_status == "pending"
    finally:
        await _webhook_to(database, None)


@pytest.mark.parametrize(
    ("url", "sent_to", "host_header"),
    [
        ("https://93.184.215.14/hook", "https://93.184.215.14/hook", "93.184.215.14"),
        (
            "https://[2606:4700:4700::1111]:8443/x?a=1",
            "https://[2606:4700:4700::1111]:8443/x?a=1",
            "[2606:4700:4700::1111]:8443",
        ),
    ],
)
async def test_a_public_address_is_sent_to_as_checked(
    url: str, sent_to: str, host_header: str
) -> None:
    """The request goes to the address that was checked, still naming the host it was for."""
    target = await resolve_target(url, allow_private=False)
    assert str(target.url) == sent_to
    assert target.headers == {"Host": host_header}
    assert target.extensions == {"sni_hostname": host_header.rsplit(":", 1)[0].strip("[]")}


async def test_an_old_snapshot_row_sends_no_internal_notes(
    database: Database, receiver: FakeHttpProvider, webhook: str
) -> None:
    """Snapshots stored before notes were kept out of them still hold the technician's notes:
    the webhook sends what the customer may see, whatever the row holds."""
    activities = CloseoutActivities(database, SETTINGS)
    synced = await activities.sync_portal(sync_request(completed_state(), webhook=True))
    async with database.session() as session:
        row = await session.get(PortalSnapshot, synced.snapshot_id)
        assert row is not None
        row.data = {**row.data, "notes": "Internal: customer is a slow payer"}
        session.add(row)
        await session.commit()
    assert await _on_attempt(1).run(activities.post_portal_webhook, synced.snapshot_id) == "sent"
    [request] = receiver.requests
    assert "slow payer" not in request.body.decode()
    assert request.json()["snapshot"]["work_performed"] == "Serviced the rooftop unit"
