"""Delivery rate limits and back-off (issue 12, item 3), through the real SendGrid and Twilio
clients to fake providers on 127.0.0.1, on SQLite and PostgreSQL.

- With `*_rate_per_second` = R, messages delivered concurrently reach the provider no faster than
  R a second (turns 1/R apart; any 1 s window holds R + 1, and one more if the commit of `sending`
  between a turn and its request is slow), every one once,
  and none waits for its turn while marked `sending`.
- A 429 with `Retry-After: 3` leaves the message `queued`, and Temporal (a real dev server,
  DELIVER_MESSAGE with the workflow's own options) tries again no sooner than 3 s later and
  sooner than its own 5 s back-off; then it is sent, once. The other deliveries of the worker
  wait too. Without a Retry-After, an exponential back-off.
- A turn further off than the activity can wait ends the attempt without touching the row.
- SMTP's 421 and 452 (busy, too many) back off like a 429.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.delivery.rate import (
    BACKOFF_FIRST,
    ProviderBusy,
    RateLimited,
    RateLimiter,
    backoff,
    retry_after,
)
from activities.delivery.smtp import SmtpBackend
from activities.messages import MessageActivities
from core.config import Settings
from core.db import Database
from models.messages import DELIVER_MESSAGE
from models.tables import OutboxMessage
from tests.activities.test_delivery import ident, queued, reload
from tests.activities.test_delivery import settings as provider_settings
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FakeHttpProvider,
    FakeSendGrid,
    FakeSmtp,
    FakeTwilio,
    sendgrid_server_fixture,
    smtp_server_fixture,
    twilio_server_fixture,
)
from workflows.deliveries import DELIVERY_OPTIONS

RATE = 5.0
MESSAGES = 16
# How much later than another one a busy machine may commit a message's `sending` (seconds).
COMMIT_LATE = 0.3
CHANNELS = ["email", "sms"]


def settings(fake: FakeHttpProvider, rate: float | None = None, timeout: float = 5) -> Settings:
    base = (
        provider_settings(sendgrid=fake, timeout=timeout)  # type: ignore[arg-type]
        if isinstance(fake, FakeSendGrid)
        else provider_settings(twilio=fake, timeout=timeout)  # type: ignore[arg-type]
    )
    return base.model_copy(update={"email_rate_per_second": rate, "sms_rate_per_second": rate})


def provider(channel: str, sendgrid: FakeSendGrid, twilio: FakeTwilio) -> FakeHttpProvider:
    return sendgrid if channel == "email" else twilio


async def new_row(db: Database, channel: str, n: int = 0) -> OutboxMessage:
    return await queued(db, channel, to=f"+1555{n:07d}" if channel == "sms" else f"c{n}@x.io")


def key_of(request: Any, channel: str) -> str:
    if channel == "email":
        return str(request.json()["custom_args"]["idempotency_key"])
    return str(request.form()["To"])


def most_in_one_second(times: list[float]) -> int:
    """The most requests any window of 1 s holds (closed at both ends)."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


# --- the limiter on its own ----------------------------------------------------------------------


async def test_turns_are_spaced_and_a_pause_holds_them_all() -> None:
    limiter = RateLimiter(20.0)
    started = time.monotonic()
    turns: list[float] = []

    async def take() -> None:
        await limiter.acquire()
        turns.append(time.monotonic())

    await asyncio.gather(*(take() for _ in range(10)))
    # The nth turn no sooner than n intervals on (a busy loop may wake a caller late, not early).
    for n, at in enumerate(sorted(turns)):
        assert at >= started + n * 0.05 - 0.005, (n, at - started)

    # A pause (another delivery's 429) holds even the turns already reserved.
    waiting = [asyncio.create_task(take()) for _ in range(3)]
    await asyncio.sleep(0)
    limiter.pause(0.5)
    paused_at = time.monotonic()
    turns.clear()
    await asyncio.gather(*waiting)
    assert min(turns) >= paused_at + 0.5 - 0.01

    # No turn within the wait allowed: RateLimited, saying how long, and nothing reserved.
    limiter.pause(3)
    with pytest.raises(RateLimited) as limited:
        await limiter.acquire(within=0.5)
    assert 2.5 < limited.value.delay <= 3 and limited.value.next_retry_delay is not None
    assert limiter.next_turn_in() <= 3


async def test_no_limit_never_waits_but_a_pause_still_holds() -> None:
    limiter = RateLimiter(None)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire(within=0) for _ in range(100)))
    assert time.monotonic() - started < 0.5
    limiter.pause(0.3)
    await limiter.acquire()
    assert time.monotonic() - started >= 0.3


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert retry_after("2", now) == 2.0
    assert retry_after(" 0.5 ", now) == 0.5
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after(None, now) is None and retry_after("", now) is None
    assert retry_after("soon", now) is None
    assert BACKOFF_FIRST <= backoff(1) <= BACKOFF_FIRST * 1.1
    assert BACKOFF_FIRST * 8 <= backoff(4) <= BACKOFF_FIRST * 8 * 1.1
    assert backoff(40) <= 330


def test_rates_are_positive_or_unset() -> None:
    assert Settings(_env_file=None).email_rate_per_second is None  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(_env_file=None, sms_rate_per_second=0)  # type: ignore[call-arg]


# --- R a second, each once, never waiting while `sending` ---------------------------------------


# Its spacing is timed against the clock: with other tests on the 2 cores a delayed commit let
# one request too many into a second (CI, three xdist workers), so it runs in the serial pass.
@pytest.mark.serial
@pytest.mark.parametrize("channel", CHANNELS)
async def test_concurrent_deliveries_keep_to_the_rate(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio, channel: str
) -> None:
    fake = provider(channel, sendgrid_server, twilio_server)
    activities = MessageActivities(database, settings(fake, RATE))
    rows = [await new_row(database, channel, n) for n in range(MESSAGES)]
    ids = [ident(row) for row in rows]

    most_sending = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal most_sending
        while not done.is_set():
            async with database.session() as session:
                statuses = [
                    (await session.get(OutboxMessage, i, populate_existing=True)).status  # type: ignore[union-attr]
                    for i in ids
                ]
            most_sending = max(most_sending, statuses.count("sending"))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    results = await asyncio.gather(*(activities.deliver_message(i) for i in ids))
    took = time.monotonic() - started
    done.set()
    await watcher

    assert results == ["sent"] * MESSAGES
    times = [r.at for r in fake.accepted]
    assert len(times) == MESSAGES and len(fake.requests) == MESSAGES
    # Turns are spaced 1/R apart (a burst of one: R + 1 in a closed 1 s window); between a turn
    # and its request is the commit of `sending`, whose time varies on a busy machine and may
    # shift one more request into a window, never a burst. The first and the last request are
    # 15 turns apart, less what the first turn's commit was late by more than the last one's (CI
    # saw the first commit 0.2 s late: 2.79 s from first to last, 5.4 a second).
    spaced = sorted(b - times[0] for b in times)
    assert most_in_one_second(times) <= RATE + 2, spaced
    assert max(times) - min(times) >= (MESSAGES - 1) / RATE - COMMIT_LATE, spaced
    assert took >= (MESSAGES - 1) / RATE - 0.05
    # Each exactly once.
    keys = [key_of(r, channel) for r in fake.accepted]
    assert len(set(keys)) == MESSAGES
    for row in rows:
        sent = await reload(database, row)
        assert sent.status == "sent" and sent.attempts == 1
    # The turn is waited for with the row still `queued`: the deliveries started together,
    # most of them waited seconds, and at no moment were more than a couple marked `sending`.
    assert most_sending <= 3, most_sending


# --- 429: Retry-After, through Temporal ---------------------------------------------------------


@workflow.defn(name="DeliverOneForRateTest", sandboxed=False)
class DeliverOne:
    @workflow.run
    async def run(self, message_id: int) -> str:
        # The options the job workflow delivers with: its retry policy starts at 5 s.
        return str(await workflow.execute_activity(DELIVER_MESSAGE, message_id, **DELIVERY_OPTIONS))


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_429_waits_for_retry_after_with_the_row_queued(
    database: Database,
    sendgrid_server: FakeSendGrid,
    twilio_server: FakeTwilio,
    temporal_client: Client,
    channel: str,
) -> None:
    fake = provider(channel, sendgrid_server, twilio_server)
    fake.throttle_next("3")
    activities = MessageActivities(database, settings(fake))
    row = await new_row(database, channel)
    queue = f"rate-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[DeliverOne],
        activities=[activities.deliver_message],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await temporal_client.start_workflow(
            DeliverOne.run, ident(row), id=queue, task_queue=queue
        )
        [refused] = await fake.wait_for_requests(1, within=20)
        assert refused.status == 429
        seen: list[tuple[float, str]] = []
        while len(fake.requests) < 2:
            seen.append((time.monotonic(), (await reload(database, row)).status))
            await asyncio.sleep(0.05)
            assert time.monotonic() - refused.at < 20, "no retry"
        assert await handle.result() == "sent"

    again = fake.requests[1]
    gap = again.at - refused.at
    # No sooner than asked (not the 2 s back-off without a Retry-After), and not Temporal's own
    # 5 s back-off: next_retry_delay was honoured.
    assert 3.0 <= gap < 4.7, gap
    # Between the 429's answer being recorded and the retry, the row was `queued`, never in doubt.
    # The retry's attempt starts no sooner than Retry-After from the 429 and marks the row
    # `sending` before its request goes: on a loaded machine well before the fake sees it, so the
    # window ends at Retry-After, not at the second request.
    settled = [status for at, status in seen if refused.at + 0.5 < at < refused.at + 2.95]
    assert settled and set(settled) == {"queued"}, seen
    sent = await reload(database, row)
    assert sent.status == "sent" and sent.attempts == 2 and sent.error is None
    assert len(fake.accepted) == 1 and key_of(fake.accepted[0], channel) == key_of(again, channel)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_429_holds_the_workers_other_deliveries(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio, channel: str
) -> None:
    fake = provider(channel, sendgrid_server, twilio_server)
    fake.throttle_next(format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True))
    activities = MessageActivities(database, settings(fake))
    first, second = await new_row(database, channel, 1), await new_row(database, channel, 2)
    with pytest.raises(ProviderBusy) as busy:
        await activities.deliver_message(ident(first))
    # An HTTP date four seconds off (whole seconds: at least three of them left).
    assert busy.value.next_retry_delay is not None
    assert timedelta(seconds=2.9) <= busy.value.next_retry_delay <= timedelta(seconds=4.3)
    refused = await reload(database, first)
    assert refused.status == "queued" and "429" in (refused.error or "")
    assert await activities.deliver_message(ident(second)) == "sent"
    assert fake.requests[1].at - fake.requests[0].at >= busy.value.delay - 0.05
    assert await activities.deliver_message(ident(first)) == "sent"
    assert len(fake.accepted) == 2


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_429_without_retry_after_backs_off_exponentially(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio, channel: str
) -> None:
    fake = provider(channel, sendgrid_server, twilio_server)
    fake.throttle_next(None, times=2)
    activities = MessageActivities(database, settings(fake))
    row = await new_row(database, channel)
    delays = []
    for attempt in (1, 2):
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info,
            attempt=attempt,
            started_time=datetime.now(UTC),
            start_to_close_timeout=timedelta(minutes=1),
        )
        with pytest.raises(ProviderBusy) as busy:
            await env.run(activities.deliver_message, ident(row))
        delays.append(busy.value.delay)
        assert (await reload(database, row)).status == "queued"
    assert BACKOFF_FIRST <= delays[0] <= BACKOFF_FIRST * 1.1
    assert 2 * BACKOFF_FIRST <= delays[1] <= 2 * BACKOFF_FIRST * 1.1
    assert fake.accepted == []


# --- a turn too far off --------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_turn_too_far_off_ends_the_attempt_and_leaves_the_row(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio, channel: str
) -> None:
    fake = provider(channel, sendgrid_server, twilio_server)
    # One a second; the attempt's start-to-close timeout leaves no time to wait for a turn.
    activities = MessageActivities(database, settings(fake, rate=1.0))
    first, second = await new_row(database, channel, 1), await new_row(database, channel, 2)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, started_time=datetime.now(UTC), start_to_close_timeout=timedelta(seconds=10)
    )
    assert await env.run(activities.deliver_message, ident(first)) == "sent"
    with pytest.raises(RateLimited) as limited:
        await env.run(activities.deliver_message, ident(second))
    assert limited.value.next_retry_delay is not None
    assert timedelta(0) < limited.value.next_retry_delay <= timedelta(seconds=1)
    untouched = await reload(database, second)
    assert untouched.status == "queued" and untouched.attempts == 0 and untouched.error is None
    assert len(fake.requests) == 1
    await asyncio.sleep(limited.value.delay)
    assert await env.run(activities.deliver_message, ident(second)) == "sent"
    assert (await reload(database, second)).attempts == 1


# --- SMTP: 421/451/452 are "too many" too ---------------------------------------------------------


@pytest.mark.parametrize(
    "reply", ["421 4.7.0 Too many connections", "452 4.5.3 Too many recipients"]
)
async def test_smtp_busy_answers_back_off_like_a_429(
    database: Database, smtp_server: FakeSmtp, reply: str
) -> None:
    smtp_server.rcpt_replies.append(reply)
    activities = MessageActivities(database, provider_settings(smtp=smtp_server, timeout=5))
    first, second = await new_row(database, "email", 1), await new_row(database, "email", 2)
    with pytest.raises(ProviderBusy) as busy:
        await activities.deliver_message(ident(first))
    assert BACKOFF_FIRST <= busy.value.delay <= BACKOFF_FIRST * 1.1
    refused = await reload(database, first)
    assert refused.status == "queued" and reply.split()[0] in (refused.error or "")
    # The worker's other deliveries wait the back-off too.
    email = activities.email
    assert isinstance(email, SmtpBackend)
    paused = email.limiter.paused_for
    started = time.monotonic()
    assert paused > 1
    assert await activities.deliver_message(ident(second)) == "sent"
    assert time.monotonic() - started >= paused - 0.01
    assert len(smtp_server.messages) == 1
