"""Delivery through the real client libraries (aiosmtplib, sendgrid, twilio) to fake providers.

Each backend: a successful send carries exactly the message (recipients, subject, body and the
idempotency key) and a second delivery of a sent row sends nothing; a permanent refusal (SMTP 550,
SendGrid 400, Twilio 21211) marks the message failed with the provider's reason; a transient one
(4xx-later SMTP answers, 429, 5xx, a provider slower than `provider_timeout`) raises
`TransientFailure` for Temporal to retry, with the row back to queued. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import fcntl
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from temporalio.testing import ActivityEnvironment

from activities.delivery.base import Email, PermanentFailure, Sms, TransientFailure
from activities.delivery.sendgrid import SendGridBackend
from activities.delivery.smtp import SmtpBackend
from activities.delivery.twilio import TwilioBackend
from activities.messages import HEARTBEAT_AFTER, MessageActivities
from core import documents
from core.config import Settings
from core.db import SQLITE_WRITER_LOCK_SUFFIX, Database
from models.lifecycle import Actor, ClientSnapshot, JobState, Role, Stage
from models.messages import QueueMessages
from models.notifications import Notification
from models.tables import OutboxMessage, User
from tests.fakes.providers import (  # noqa: F401  (pytest fixtures)
    FakeSendGrid,
    FakeSmtp,
    FakeTwilio,
    sendgrid_server_fixture,
    smtp_server_fixture,
    twilio_server_fixture,
)
from workflows.deliveries import DELIVERY_RETRY

SENDER = "Jobline <no-reply@jobline.example>"
FROM_NUMBER = "+15005550006"
TIMEOUT = 0.5  # provider_timeout in these tests; a "slow" provider takes SLOW seconds
SLOW = 1.5
SUBJECT = "An update on No cooling — unit 4"
BODY = "Hello Zoë,\n\nThe part arrives Tuesday; we will call to book the visit.\n\nJobline"
SMS_BODY = "Jobline: the part arrives Tuesday; we will call to book the visit."


def settings(
    smtp: FakeSmtp | None = None,
    sendgrid: FakeSendGrid | None = None,
    twilio: FakeTwilio | None = None,
    timeout: float = TIMEOUT,
) -> Settings:
    values: dict[str, Any] = {"environment": "test", "email_from": SENDER}
    if smtp is not None:
        values |= {"email_backend": "smtp", "smtp_host": smtp.host, "smtp_port": smtp.port}
    if sendgrid is not None:
        values |= {
            "email_backend": "sendgrid",
            "sendgrid_api_key": sendgrid.api_key,
            "sendgrid_base_url": sendgrid.base_url,
        }
    if twilio is not None:
        values |= {
            "sms_backend": "twilio",
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": twilio.auth_token,
            "twilio_from_number": FROM_NUMBER,
            "twilio_base_url": twilio.base_url,
        }
    return Settings(_env_file=None, provider_timeout=timeout, **values)  # type: ignore[call-arg]


def new_key(channel: str) -> str:
    return f"job-t{uuid.uuid4().hex[:12]}:4:customer_update:{channel}"


async def queued(
    db: Database,
    channel: str = "email",
    *,
    to: str = "customer@example.com",
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    subject: str = SUBJECT,
    body: str = BODY,
    attachments: list[dict[str, str]] | None = None,
) -> OutboxMessage:
    key = new_key(channel)
    row = OutboxMessage(
        idempotency_key=key,
        job_slug=key.split(":")[0].removeprefix("job-"),
        channel=channel,
        purpose="customer_update",
        to=to,
        cc=cc or [],
        bcc=bcc or [],
        subject=subject if channel == "email" else "",
        body=body if channel == "email" else SMS_BODY,
        attachments=attachments or [],
        created_by="olga",
    )
    async with db.session() as session:
        session.add(row)
        await session.flush()
        await session.refresh(row)
    assert row.id is not None
    return row


def ident(row: OutboxMessage) -> int:
    assert row.id is not None
    return row.id


async def deliver(activities: MessageActivities, row: OutboxMessage) -> str:
    return await activities.deliver_message(ident(row))


async def reload(db: Database, row: OutboxMessage) -> OutboxMessage:
    async with db.session() as session:
        fresh = await session.get(OutboxMessage, row.id, populate_existing=True)
    assert fresh is not None
    return fresh


async def assert_sent_once(
    db: Database, activities: MessageActivities, row: OutboxMessage, backend: str
) -> OutboxMessage:
    sent = await reload(db, row)
    assert sent.status == "sent", sent.error
    assert sent.backend == backend and sent.error is None and sent.sent_at is not None
    assert sent.provider_id
    # Delivering a sent message again (a retry, a replay) answers from the row.
    assert await deliver(activities, row) == "sent"
    assert await reload(db, row) == sent
    return sent


async def assert_requeued(
    db: Database, activities: MessageActivities, row: OutboxMessage, *reason: str
) -> OutboxMessage:
    with pytest.raises(TransientFailure) as failed:
        await deliver(activities, row)
    again = await reload(db, row)
    assert again.status == "queued" and again.sent_at is None and again.provider_id is None
    assert again.error == str(failed.value)
    for part in reason:
        assert part in again.error, again.error
    return again


async def assert_unknown(
    db: Database, activities: MessageActivities, row: OutboxMessage, *reason: str
) -> OutboxMessage:
    """A request that reached the provider without an answer: never resent."""
    assert await deliver(activities, row) == "unknown"
    again = await reload(db, row)
    assert again.status == "unknown" and again.error is not None
    for part in reason:
        assert part in again.error, again.error
    assert await deliver(activities, row) == "unknown"  # asking again sends nothing
    return again


# --- outbox ------------------------------------------------------------------------------------


async def test_outbox_captures_and_sends_nothing(database: Database) -> None:
    activities = MessageActivities(database, settings())
    row = await queued(database)
    assert await deliver(activities, row) == "captured"
    captured = await reload(database, row)
    assert captured.status == "captured" and captured.backend == "outbox"
    assert await deliver(activities, row) == "captured"


# --- SMTP ----------------------------------------------------------------------------------------


async def test_smtp_sends_the_exact_message_once(database: Database, smtp_server: FakeSmtp) -> None:
    activities = MessageActivities(database, settings(smtp=smtp_server))
    row = await queued(
        database,
        to="zoe@example.com, facilities@example.com",
        cc=["site@example.com"],
        bcc=["olga@jobline.test"],
    )
    assert await deliver(activities, row) == "sent"

    [received] = smtp_server.messages
    assert received.mail_from == "no-reply@jobline.example"
    assert received.rcpt_tos == [
        "zoe@example.com",
        "facilities@example.com",
        "site@example.com",
        "olga@jobline.test",
    ]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == "zoe@example.com, facilities@example.com"
    assert message["Cc"] == "site@example.com"
    assert "Bcc" not in message  # Bcc travels in the envelope only
    assert message["Subject"] == SUBJECT
    assert message.get_content().rstrip("\n") == BODY
    # The Message-ID comes from the idempotency key: every attempt at this message has the same.
    message_id = message["Message-ID"]
    assert row.idempotency_key.replace(":", ".") in message_id
    email = Email(row.idempotency_key, SENDER, ["x@example.com"], "s", "b")
    backend = SmtpBackend(settings(smtp=smtp_server))
    assert backend.message(email)["Message-ID"] == backend.message(email)["Message-ID"]
    assert backend.message(email)["Message-ID"] == message_id

    sent = await assert_sent_once(database, activities, row, "smtp")
    assert sent.provider_id == message_id and sent.attempts == 1
    assert len(smtp_server.messages) == 1


async def test_smtp_rejected_recipient_fails_the_message(
    database: Database, smtp_server: FakeSmtp
) -> None:
    smtp_server.refuse["nobody@example.com"] = (
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    )
    activities = MessageActivities(database, settings(smtp=smtp_server))
    row = await queued(database, to="nobody@example.com")
    assert await deliver(activities, row) == "failed"
    failed = await reload(database, row)
    assert failed.status == "failed" and failed.backend == "smtp" and failed.sent_at is None
    assert failed.error is not None
    assert "550" in failed.error and "Recipient address rejected: User unknown" in failed.error
    assert smtp_server.messages == []
    # Failed for good: asking again sends nothing.
    assert await deliver(activities, row) == "failed"
    assert smtp_server.messages == [] and (await reload(database, row)).attempts == 1


@pytest.mark.parametrize(
    "fault",
    ["rcpt 421", "rcpt 450", "data 451", "timeout"],
)
async def test_smtp_transient_failures_are_retried(
    database: Database, smtp_server: FakeSmtp, fault: str
) -> None:
    activities = MessageActivities(database, settings(smtp=smtp_server))
    row = await queued(database)
    match fault:
        case "rcpt 421":
            smtp_server.rcpt_replies.append("421 4.7.0 Too many connections, try again later")
            reason = ["421", "try again later"]
        case "rcpt 450":
            smtp_server.rcpt_replies.append("450 4.2.1 Mailbox busy, greylisted")
            reason = ["450", "greylisted"]
        case "data 451":
            smtp_server.data_replies.append("451 4.3.0 Local error in processing")
            reason = ["451", "Local error in processing"]
        case _:
            smtp_server.rcpt_delay = SLOW
            reason = ["Timeout"]
    await assert_requeued(database, activities, row, *reason)
    assert smtp_server.messages == []

    # The retry (Temporal's, with backoff) sends it, once.
    smtp_server.reset()
    assert await deliver(activities, row) == "sent"
    sent = await assert_sent_once(database, activities, row, "smtp")
    assert sent.attempts == 2
    assert len(smtp_server.messages) == 1


# --- SendGrid ------------------------------------------------------------------------------------


async def test_sendgrid_sends_the_exact_mail_once(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(
        database,
        to="zoe@example.com, facilities@example.com",
        cc=["site@example.com"],
        bcc=["olga@jobline.test"],
    )
    assert await deliver(activities, row) == "sent"

    [request] = sendgrid_server.requests
    assert request.headers["authorization"] == f"Bearer {sendgrid_server.api_key}"
    assert request.headers["content-type"] == "application/json"
    mail = request.json()
    assert mail["from"] == {"email": "no-reply@jobline.example", "name": "Jobline"}
    assert mail["personalizations"] == [
        {
            "to": [{"email": "zoe@example.com"}, {"email": "facilities@example.com"}],
            "cc": [{"email": "site@example.com"}],
            "bcc": [{"email": "olga@jobline.test"}],
        }
    ]
    assert mail["subject"] == SUBJECT
    assert mail["content"] == [{"type": "text/plain", "value": BODY}]
    assert mail["custom_args"] == {"idempotency_key": row.idempotency_key}

    sent = await assert_sent_once(database, activities, row, "sendgrid")
    assert request.reply is not None
    assert sent.provider_id == request.reply.headers["X-Message-Id"]
    assert len(sendgrid_server.requests) == 1
    assert len(sendgrid_server.mails_for(row.idempotency_key)) == 1


async def _stored_pdf(db: Database, content: bytes) -> dict[str, str]:
    async with db.session() as session:
        document_id = await documents.save(
            session,
            content,
            kind="work_receipt",
            filename="work-receipt-1042.pdf",
            content_type="application/pdf",
        )
    # The outbox names the file as the email shows it, which may differ from the stored name.
    return {"document_id": document_id, "filename": "receipt.pdf"}


PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


async def test_smtp_attaches_the_stored_documents(
    database: Database, smtp_server: FakeSmtp
) -> None:
    # Not a test of timeouts: the attachments take a moment longer to send than a bare message,
    # and a busy suite's worker shares this process, so the fake gets more than TIMEOUT to greet.
    activities = MessageActivities(database, settings(smtp=smtp_server, timeout=5))
    attached = await _stored_pdf(database, PDF)
    row = await queued(database, attachments=[attached])
    assert await deliver(activities, row) == "sent"

    [received] = smtp_server.messages
    message = received.message
    assert message.is_multipart()
    assert message.get_body(("plain",)).get_content().rstrip("\n") == BODY
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_filename() == "receipt.pdf"
    assert part.get_content() == PDF


async def test_sendgrid_attaches_the_stored_documents(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    attached = await _stored_pdf(database, PDF)
    row = await queued(database, attachments=[attached])
    assert await deliver(activities, row) == "sent"

    [request] = sendgrid_server.requests
    [attachment] = request.json()["attachments"]
    assert attachment["filename"] == "receipt.pdf"
    assert attachment["type"] == "application/pdf"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == PDF


async def test_a_missing_attachment_fails_the_message_and_sends_nothing(
    database: Database, smtp_server: FakeSmtp
) -> None:
    activities = MessageActivities(database, settings(smtp=smtp_server))
    row = await queued(database, attachments=[{"document_id": "0" * 32, "filename": "x.pdf"}])
    assert await deliver(activities, row) == "failed"
    failed = await reload(database, row)
    assert failed.status == "failed" and "x.pdf" in (failed.error or "")
    assert smtp_server.messages == []


async def test_sendgrid_bad_request_fails_the_message(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    sendgrid_server.fail_next(
        400, "Does not contain a valid address.", field="personalizations.0.to.0.email"
    )
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database, to="zoe@example")
    assert await deliver(activities, row) == "failed"
    failed = await reload(database, row)
    assert failed.status == "failed" and failed.backend == "sendgrid"
    assert failed.error is not None
    assert failed.error.startswith("SendGrid 400")
    assert "Does not contain a valid address." in failed.error
    assert await deliver(activities, row) == "failed"
    assert len(sendgrid_server.requests) == 1 and sendgrid_server.accepted == []


@pytest.mark.parametrize("fault", [429, 500, 503, "timeout"])
async def test_sendgrid_transient_failures_are_retried(
    database: Database, sendgrid_server: FakeSendGrid, fault: int | str
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    if fault == "timeout":
        sendgrid_server.delay = SLOW
        await assert_unknown(database, activities, row, "SendGrid", "no answer in time")
        # The fake took the mail before it stalled: a read timeout cannot tell, so no resend.
        assert len(sendgrid_server.requests) == 1
        return
    assert isinstance(fault, int)
    sendgrid_server.fail_next(fault, "Slow down" if fault == 429 else "Internal error")
    await assert_requeued(database, activities, row, f"SendGrid {fault}")
    assert sendgrid_server.accepted == []

    assert await deliver(activities, row) == "sent"
    sent = await assert_sent_once(database, activities, row, "sendgrid")
    assert sent.attempts == 2
    assert len(sendgrid_server.mails_for(row.idempotency_key)) == 1


# --- Twilio --------------------------------------------------------------------------------------


async def test_twilio_sends_the_exact_sms_once(
    database: Database, twilio_server: FakeTwilio
) -> None:
    activities = MessageActivities(database, settings(twilio=twilio_server))
    row = await queued(database, "sms", to="+15551230101")
    assert await deliver(activities, row) == "sent"

    [request] = twilio_server.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.form() == {"To": "+15551230101", "From": FROM_NUMBER, "Body": SMS_BODY}

    sent = await assert_sent_once(database, activities, row, "twilio")
    assert request.reply is not None
    assert sent.provider_id == request.reply.body["sid"]
    assert len(twilio_server.requests) == 1


async def test_twilio_invalid_number_fails_the_message(
    database: Database, twilio_server: FakeTwilio
) -> None:
    twilio_server.invalid_numbers.add("+1555")
    activities = MessageActivities(database, settings(twilio=twilio_server))
    row = await queued(database, "sms", to="+1555")
    assert await deliver(activities, row) == "failed"
    failed = await reload(database, row)
    assert failed.status == "failed" and failed.backend == "twilio"
    assert failed.error is not None
    assert "Twilio 400 (code 21211)" in failed.error
    assert "The 'To' number +1555 is not a valid phone number." in failed.error
    assert await deliver(activities, row) == "failed"
    assert len(twilio_server.requests) == 1 and twilio_server.accepted == []


@pytest.mark.parametrize("fault", [429, 500, 503, "timeout"])
async def test_twilio_transient_failures_are_retried(
    database: Database, twilio_server: FakeTwilio, fault: int | str
) -> None:
    activities = MessageActivities(database, settings(twilio=twilio_server))
    row = await queued(database, "sms", to="+15551230102")
    if fault == "timeout":
        twilio_server.delay = SLOW
        await assert_unknown(database, activities, row, "Twilio", "no answer in time")
        assert len(twilio_server.requests) == 1
        return
    assert isinstance(fault, int)
    code = 20429 if fault == 429 else 20500
    twilio_server.fail_next(fault, code, "Too Many Requests" if fault == 429 else "Internal error")
    await assert_requeued(database, activities, row, f"Twilio {fault} (code {code})")
    assert twilio_server.accepted == []

    assert await deliver(activities, row) == "sent"
    sent = await assert_sent_once(database, activities, row, "twilio")
    assert sent.attempts == 2
    assert len(twilio_server.messages) == 1


# --- the state machine ---------------------------------------------------------------------


async def test_an_interrupted_send_is_left_unknown_not_resent(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio
) -> None:
    """A row still `sending` means a worker died mid-call: the retry must not call again."""
    activities = MessageActivities(
        database, settings(sendgrid=sendgrid_server, twilio=twilio_server)
    )
    for channel in ("email", "sms"):
        row = await queued(database, channel, to="+15551230103" if channel == "sms" else "z@x.io")
        async with database.session() as session:
            stuck = await session.get(OutboxMessage, row.id)
            assert stuck is not None
            stuck.status = "sending"
            stuck.attempts = 1
            session.add(stuck)
        assert await deliver(activities, row) == "unknown"
        unknown = await reload(database, row)
        assert unknown.status == "unknown" and unknown.attempts == 1
        assert unknown.error is not None and "check with the provider" in unknown.error
        assert await deliver(activities, row) == "unknown"
    assert sendgrid_server.requests == [] and twilio_server.requests == []


async def test_the_last_attempt_gives_up_as_failed(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    sendgrid_server.fail_next(503, "Service Unavailable")
    env = ActivityEnvironment()
    # The last attempt the workflow's own retry policy allows, as Temporal hands it over.
    last = DELIVERY_RETRY.maximum_attempts
    env.info = dataclasses.replace(env.info, attempt=last, retry_policy=DELIVERY_RETRY)
    assert await env.run(activities.deliver_message, ident(row)) == "failed"
    failed = await reload(database, row)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("gave up: SendGrid 503")


async def test_heartbeats_while_the_provider_is_slow(
    database: Database, twilio_server: FakeTwilio
) -> None:
    """A call longer than HEARTBEAT_AFTER heartbeats while it runs (a dead worker is noticed
    within the heartbeat timeout); a shorter one leaves the first heartbeat to the answer."""
    activities = MessageActivities(database, settings(twilio=twilio_server, timeout=10))
    row = await queued(database, "sms", to="+15551230104")
    twilio_server.delay = HEARTBEAT_AFTER + 1
    beats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(activities.deliver_message, ident(row)) == "sent"
    assert beats[0] == (), "no heartbeat during a slow provider call"
    assert beats[-1][0]["status"] == "sent"
    assert len(twilio_server.messages) == 1


# --- queueing: the rows and their keys --------------------------------------------------------


def customer_update(slug: str) -> QueueMessages:
    """An office's update to the customer at the job's seventh event, by email and SMS."""
    state = JobState(
        slug=slug,
        client=ClientSnapshot(id=1, name="Zoë Example", email="zoe@example.com", phone="+15550142"),
        stage=Stage.lead,
        seq=7,
        created_at=datetime(2030, 1, 2, 9, tzinfo=UTC),
        stage_entered_at=datetime(2030, 1, 2, 9, tzinfo=UTC),
        title="No cooling, unit 4",
    )
    return QueueMessages(
        state=state,
        notification=Notification(
            purpose="customer_update", sms="yes", message="The part arrives Tuesday."
        ),
    )


async def test_queued_messages_carry_their_idempotency_key(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio
) -> None:
    slug = f"k{uuid.uuid4().hex[:10]}"
    request = customer_update(slug)
    activities = MessageActivities(
        database, settings(sendgrid=sendgrid_server, twilio=twilio_server)
    )
    ids = await activities.queue_messages(request)
    # Queueing again (a retried activity, a replayed workflow) finds the same rows.
    assert await activities.queue_messages(request) == ids and len(ids) == 2
    email_id, sms_id = ids

    assert await activities.deliver_message(email_id) == "sent"
    assert await activities.deliver_message(sms_id) == "sent"
    assert await activities.deliver_message(email_id) == "sent"
    assert await activities.deliver_message(sms_id) == "sent"

    [mail] = sendgrid_server.mails
    assert mail["custom_args"] == {"idempotency_key": f"job-{slug}:7:customer_update:email"}
    assert mail["personalizations"] == [{"to": [{"email": "zoe@example.com"}]}]
    assert mail["subject"] == "An update on No cooling, unit 4"
    assert "The part arrives Tuesday." in mail["content"][0]["value"]
    [sms] = twilio_server.messages
    assert sms == {
        "To": "+15550142",
        "From": FROM_NUMBER,
        "Body": "Jobline: The part arrives Tuesday.",
    }
    async with database.session() as session:
        sms_row = await session.get(OutboxMessage, sms_id)
    assert sms_row is not None
    assert sms_row.idempotency_key == f"job-{slug}:7:customer_update:sms"
    assert sms_row.job_slug == slug and sms_row.status == "sent"


async def test_a_queueing_holds_the_write_turn_only_for_its_inserts(database: Database) -> None:
    """Its reads and rendering come before its write turn: on SQLite the turn is the one write
    lock every writer of every process waits for (issue 12), and a queueing with its reads
    inside held it the longest of any worker write."""
    if database.dialect != "sqlite":
        pytest.skip("the write turn is SQLite's: PostgreSQL's writers do not queue")
    path = database.engine.url.database
    assert path is not None
    probe = os.open(path + SQLITE_WRITER_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o644)
    statements: list[tuple[bool, str]] = []  # (run while a writer held the turn, SQL)

    def seen(connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if connection.engine.url.database != path:
            return
        try:  # another open file of the turn's lock: refused while the turn is held
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            statements.append((True, sql))
        else:
            fcntl.flock(probe, fcntl.LOCK_UN)
            statements.append((False, sql))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        ids = await MessageActivities(database, settings()).queue_messages(
            customer_update(f"t{uuid.uuid4().hex[:10]}")
        )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
        os.close(probe)
    assert len(ids) == 2
    held = [sql for in_turn, sql in statements if in_turn]
    assert held and all("outbox_messages" in sql for sql in held), held
    assert any("FROM settings" in sql for in_turn, sql in statements if not in_turn)


async def test_a_queueing_reads_only_what_its_message_uses(database: Database) -> None:
    """The settings in one read; the portal link only once the job is completed (its closeout
    makes the link), the sender only when they asked for a copy (issue 12: every event with a
    message waits for this queueing)."""
    statements: list[str] = []
    activities = MessageActivities(database, settings())

    def seen(connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if connection.engine.url == database.engine.url:
            statements.append(sql)

    async def queued_reading(request: QueueMessages) -> tuple[list[OutboxMessage], list[str]]:
        statements.clear()
        event.listen(Engine, "before_cursor_execute", seen)
        try:
            ids = await activities.queue_messages(request)
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
        async with database.session() as session:
            rows = [await session.get(OutboxMessage, i) for i in ids]
        return [row for row in rows if row is not None], list(statements)

    def reads_of(table: str, sql: list[str]) -> int:
        return sum(1 for s in sql if s.lstrip().upper().startswith("SELECT") and table in s)

    request = customer_update(f"t{uuid.uuid4().hex[:10]}")
    rows, sql = await queued_reading(request)
    assert [r.channel for r in rows] == ["email", "sms"] and rows[0].bcc == []
    assert reads_of("FROM settings", sql) == 1, sql
    assert reads_of("portal_links", sql) == 0 and reads_of("FROM users", sql) == 0, sql

    # The same update with a copy to the office person who sent it: their address is read.
    username = f"o{uuid.uuid4().hex[:10]}"
    async with database.session() as session:
        session.add(User(username=username, email=f"{username}@office.example", role="office"))
    copied = request.model_copy(
        update={
            "state": request.state.model_copy(update={"seq": 8}),
            "notification": request.notification.model_copy(update={"bcc_actor": True}),
            "actor": Actor(username=username, role=Role.office),
        }
    )
    rows, sql = await queued_reading(copied)
    assert rows[0].bcc == [f"{username}@office.example"]
    assert reads_of("FROM users", sql) == 1 and reads_of("portal_links", sql) == 0, sql


# --- the hand-over: the one moment a dead worker can leave a message in doubt --------------------


def _email(row: OutboxMessage) -> Email:
    return Email(row.idempotency_key, SENDER, [row.to], row.subject, row.body)


async def test_smtp_hands_over_only_at_data(database: Database, smtp_server: FakeSmtp) -> None:
    """Connection and recipients come first; the hand-over is recorded just before DATA."""
    # Not a test of timeouts: under a busy suite the fake (in this process) can take more than
    # TIMEOUT to answer a command, which failed the test once with SMTPReadTimeoutError.
    backend = SmtpBackend(settings(smtp=smtp_server, timeout=5))
    seen: list[tuple[list[str], int]] = []

    async def handing_over() -> None:
        seen.append((list(smtp_server.rcpts), len(smtp_server.messages)))

    row = await queued(database, to="zoe@example.com")
    assert await backend.send_email(_email(row), handing_over) is not None
    assert seen == [(["zoe@example.com"], 0)]
    assert len(smtp_server.messages) == 1

    # Refused at RCPT (for now, or for good): never handed over, so never in doubt.
    seen.clear()
    smtp_server.rcpt_replies.append("421 4.7.0 Too many connections, try again later")
    with pytest.raises(TransientFailure):
        await backend.send_email(_email(row), handing_over)
    smtp_server.refuse["zoe@example.com"] = "550 5.1.1 User unknown"
    with pytest.raises(PermanentFailure):
        await backend.send_email(_email(row), handing_over)
    assert seen == [] and len(smtp_server.messages) == 1


async def test_http_providers_hand_over_just_before_the_request(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio
) -> None:
    config = settings(sendgrid=sendgrid_server, twilio=twilio_server)
    seen: list[int] = []

    async def handing_over() -> None:
        seen.append(len(sendgrid_server.requests) + len(twilio_server.requests))

    row = await queued(database)
    await SendGridBackend(config).send_email(_email(row), handing_over)
    sms = Sms(new_key("sms"), "+15551230107", SMS_BODY)
    await TwilioBackend(config).send_sms(sms, handing_over)
    assert seen == [0, 1]
    assert len(sendgrid_server.accepted) == 1 and len(twilio_server.accepted) == 1
    # The mail carries its key where a person (or the event webhook) can find it.
    [mail] = sendgrid_server.mails
    assert mail["headers"] == {"X-Jobline-Key": row.idempotency_key}
    assert mail["custom_args"] == {"idempotency_key": row.idempotency_key}


async def test_the_provider_call_starts_at_once_when_the_shared_threads_are_busy(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    """The message is marked `sending` only when a thread of the backend's own is free, so the
    call cannot wait behind other work (on the loop's shared executor it waited, marked)."""
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    await reload(database, row)  # the pool holds a connection before the executor is blocked
    release = threading.Event()
    blockers = [asyncio.ensure_future(asyncio.to_thread(release.wait, 10)) for _ in range(64)]
    try:
        assert await asyncio.wait_for(deliver(activities, row), timeout=3) == "sent"
    finally:
        release.set()
        await asyncio.gather(*blockers)
    assert len(sendgrid_server.mails_for(row.idempotency_key)) == 1


async def test_the_answer_goes_out_with_a_heartbeat(
    database: Database, twilio_server: FakeTwilio
) -> None:
    activities = MessageActivities(database, settings(twilio=twilio_server))
    row = await queued(database, "sms", to="+15551230108")
    beats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(activities.deliver_message, ident(row)) == "sent"
    sent = await reload(database, row)
    assert beats == [
        ({"message_id": ident(row), "status": "sent", "provider_id": sent.provider_id},)
    ]  # the first heartbeat: Temporal sends it at once


async def _left_sending(db: Database, row: OutboxMessage) -> None:
    """As an attempt that died after marking the message leaves it."""
    async with db.session() as session:
        stuck = await session.get(OutboxMessage, row.id)
        assert stuck is not None
        stuck.status = "sending"
        stuck.attempts = 1
        session.add(stuck)


async def _retry_after(
    activities: MessageActivities, row: OutboxMessage, answer: dict[str, Any] | None
) -> str:
    """The next attempt, with the last heartbeat details of the one that died."""
    env = ActivityEnvironment()
    details = [{"message_id": ident(row), **answer}] if answer else []
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=details)
    return await env.run(activities.deliver_message, ident(row))


async def test_a_retry_records_the_answer_the_dead_attempt_heartbeated(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    await _left_sending(database, row)
    answer = {"status": "sent", "provider_id": "sg-4711"}
    assert await _retry_after(activities, row, answer) == "sent"
    sent = await reload(database, row)
    assert sent.status == "sent" and sent.provider_id == "sg-4711" and sent.attempts == 1
    assert sendgrid_server.requests == []


async def test_a_retry_sends_again_what_the_provider_refused_for_now(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    """A dead attempt whose provider answered 503 had not handed anything over for good."""
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    await _left_sending(database, row)
    answer = {"status": "queued", "error": "SendGrid 503: Service Unavailable"}
    assert await _retry_after(activities, row, answer) == "sent"
    assert (await reload(database, row)).attempts == 2
    assert len(sendgrid_server.mails_for(row.idempotency_key)) == 1


async def test_an_answer_of_another_message_is_not_taken(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server))
    row = await queued(database)
    await _left_sending(database, row)
    env = ActivityEnvironment()
    other = {"message_id": ident(row) + 1, "status": "sent", "provider_id": "x"}
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[other])
    assert await env.run(activities.deliver_message, ident(row)) == "unknown"
    assert sendgrid_server.requests == []


@pytest.mark.parametrize("channel", ["email", "sms"])
async def test_a_connection_dropped_after_the_request_is_in_doubt(
    database: Database, sendgrid_server: FakeSendGrid, twilio_server: FakeTwilio, channel: str
) -> None:
    """The provider took the request and the connection broke before its answer: never sent
    again (that could be a second copy), but marked unknown for a person."""
    activities = MessageActivities(
        database, settings(sendgrid=sendgrid_server, twilio=twilio_server)
    )
    row = await queued(database, channel, to="+15551230109" if channel == "sms" else "z@x.io")
    server = sendgrid_server if channel == "email" else twilio_server
    server.drop_next()
    again = await assert_unknown(database, activities, row, "dropped before the answer")
    assert again.attempts == 1
    assert len(server.requests) == 1


async def test_a_cancelled_delivery_finishes_its_hand_over(
    database: Database, sendgrid_server: FakeSendGrid
) -> None:
    """Cancelled mid-call (a worker draining, a job handing its deliveries over), the attempt
    waits for the provider's answer and records it, instead of leaving the message in doubt."""
    activities = MessageActivities(database, settings(sendgrid=sendgrid_server, timeout=10))
    row = await queued(database)
    sendgrid_server.delay = 1.0
    env = ActivityEnvironment()
    running = asyncio.ensure_future(env.run(activities.deliver_message, ident(row)))
    await sendgrid_server.wait_for_requests(1, within=5)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    sent = await reload(database, row)
    assert sent.status == "sent" and sent.provider_id
    assert len(sendgrid_server.requests) == 1


async def test_a_delivery_cancelled_before_the_hand_over_leaves_the_message_queued(
    database: Database, smtp_server: FakeSmtp
) -> None:
    activities = MessageActivities(database, settings(smtp=smtp_server, timeout=10))
    row = await queued(database)
    smtp_server.rcpt_delay = 1.0
    env = ActivityEnvironment()
    running = asyncio.ensure_future(env.run(activities.deliver_message, ident(row)))
    await asyncio.sleep(0.5)  # connected, waiting for the answer to RCPT
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(1.0)  # what the server does with the session it had
    assert (await reload(database, row)).status == "queued"
    assert smtp_server.messages == []
