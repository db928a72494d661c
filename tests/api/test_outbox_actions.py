"""Messages in doubt are never silent (issue 8, item 8): the job and the outbox show them, /metrics
counts them, and the office resends one or marks it sent.

The messages here go through the real SendGrid client to the local fake: a worker of this module's
own, configured for SendGrid, runs the jobs and the resends of an API configured for its task
queue. A message in doubt is made the way production makes one: SendGrid takes the request and
the connection drops before its answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import select

from api.app import create_app
from core.config import Settings
from core.db import Database
from models.tables import OutboxMessage
from tests.api.settings import api_error
from tests.conftest import Stack
from tests.fakes.providers import FakeSendGrid, wait_until
from worker import build_worker

OUTBOX = "/api/v1/outbox"


@dataclass
class Office:
    """An API and a worker that send email through SendGrid (the fake), on their own queue."""

    http: httpx.AsyncClient
    sendgrid: FakeSendGrid
    stack: Stack

    @property
    def db(self) -> Database:
        return self.stack.db

    async def post(
        self, username: str, path: str, json: object = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            path, json=json, headers={**self.stack.auth(username), **(headers or {})}
        )

    async def get(self, username: str, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.stack.auth(username))

    async def message(self, message_id: int) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await session.get(OutboxMessage, message_id, populate_existing=True)
        assert row is not None
        return row.model_dump()

    async def wait_for(self, message_id: int, *statuses: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def reached() -> bool:
            found.update(await self.message(message_id))
            return found["status"] in statuses

        await wait_until(reached, 30, f"message {message_id} {'/'.join(statuses)}")
        return found

    async def customer_update(self, outcome: str = "unknown") -> tuple[str, int]:
        """A job and its customer update email, left `unknown` (the connection dropped after
        SendGrid took it), `failed` (SendGrid refused it) or `sent`."""
        client = await self.stack.new_client(email=f"zoe-{uuid.uuid4().hex[:6]}@example.com")
        created = await self.post(
            "olga",
            "/api/v1/jobs",
            {"client_id": client["id"], "title": "No cooling", "source": "incoming_call"},
        )
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]
        if outcome == "unknown":
            self.sendgrid.drop_next()
        elif outcome == "failed":
            self.sendgrid.fail_next(400, "Does not contain a valid address.", "personalizations")
        sent = await self.post(
            "olga", f"/api/v1/jobs/{slug}/send", {"message": "The part arrives Tuesday."}
        )
        assert sent.status_code == 202, sent.text
        [message] = sent.json()["messages"]
        await self.wait_for(message["id"], outcome)
        return slug, message["id"]

    def mails_for(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        return self.sendgrid.mails_for(message["idempotency_key"])


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[FakeSendGrid]:
    server = FakeSendGrid()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
async def office(stack: Stack, sendgrid: FakeSendGrid) -> AsyncIterator[Office]:
    task_queue = f"outbox-actions-{uuid.uuid4().hex[:8]}"
    worker_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        task_queue=task_queue,
        provider_timeout=5,
        email_backend="sendgrid",
        sendgrid_api_key=sendgrid.api_key,
        sendgrid_base_url=sendgrid.base_url,
    )
    app = create_app(
        Settings(_env_file=None, environment="test", task_queue=task_queue),  # type: ignore[call-arg]
        db=stack.db,
        temporal=stack.temporal,
    )
    async with (
        build_worker(stack.temporal, stack.db, task_queue, worker_settings),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobline.test"
        ) as http,
    ):
        yield Office(http=http, sendgrid=sendgrid, stack=stack)


def _gauge(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    )


async def _count(db: Database, status: str) -> int:
    async with db.session() as session:
        query = select(func.count()).where(OutboxMessage.status == status)
        return int((await session.exec(query)).one())


async def test_a_message_in_doubt_shows_on_the_job_in_the_outbox_and_in_metrics(
    office: Office,
) -> None:
    slug, message_id = await office.customer_update("unknown")
    message = await office.message(message_id)
    assert message["error"] and "dropped before the answer" in message["error"]
    assert len(office.mails_for(message)) == 1  # SendGrid has it; nobody sent it twice

    job = (await office.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["messages_in_doubt"] == 1
    [shown] = [m for m in job["communications"] if m["id"] == message_id]
    assert shown["status"] == "unknown" and "dropped" in shown["error"]

    listed = (await office.get("olga", OUTBOX, status="unknown", job_slug=slug)).json()
    assert [m["id"] for m in listed["items"]] == [message_id] and listed["total"] == 1
    assert (await office.get("olga", OUTBOX, status="sent", job_slug=slug)).json()["total"] == 0
    api_error(await office.get("olga", OUTBOX, status="lost"), 422, "status")

    scraped = (await office.http.get("/metrics")).text
    in_doubt = _gauge(scraped, "jobline_outbox_messages", status="unknown")
    assert in_doubt == await _count(office.db, "unknown") and in_doubt >= 1
    assert "# TYPE jobline_outbox_messages gauge" in scraped


async def test_resend_goes_to_the_provider_once_when_asked_twice(office: Office) -> None:
    slug, message_id = await office.customer_update("unknown")
    scraped = (await office.http.get("/metrics")).text
    resends_before = _gauge(scraped, "jobline_outbox_actions_total", action="resend")
    key = {"Idempotency-Key": f"resend-{uuid.uuid4()}"}

    first = await office.post("olga", f"{OUTBOX}/{message_id}/resend", headers=key)
    assert first.status_code == 202, first.text
    original, copy = first.json()["original"], first.json()["resend"]
    assert original["id"] == message_id and original["status"] == "resent"
    assert f"resent as message {copy['id']} by olga" in original["error"]
    assert "was unknown" in original["error"]  # what it was, kept
    assert copy["status"] == "queued" and copy["created_by"] == "olga"
    assert (copy["to"], copy["subject"], copy["body"], copy["job_slug"]) == (
        original["to"],
        original["subject"],
        original["body"],
        slug,
    )
    sent = await office.wait_for(copy["id"], "sent")

    # The same request again (a client's retry, the same key): nothing more is sent.
    again = await office.post("olga", f"{OUTBOX}/{message_id}/resend", headers=key)
    assert again.status_code == 202, again.text  # the first answer, as it was
    assert again.json()["resend"]["id"] == copy["id"]
    # A new request (no key, or another one) to resend it again is refused by its state.
    api_error(
        await office.post("olga", f"{OUTBOX}/{message_id}/resend"),
        409,
        "already resent",
        str(copy["id"]),
    )
    await asyncio.sleep(1)  # a second delivery, were there one, would have reached the fake
    assert len(office.mails_for(sent)) == 1
    [mail] = office.mails_for(sent)
    assert mail["personalizations"][0]["to"] == [{"email": original["to"]}]
    job = (await office.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert [m["status"] for m in job["communications"]] == ["resent", "sent"]
    assert job["messages_in_doubt"] == 0

    scraped = (await office.http.get("/metrics")).text
    assert _gauge(scraped, "jobline_outbox_actions_total", action="resend") == resends_before + 1


async def test_a_failed_message_can_be_resent(office: Office) -> None:
    _, message_id = await office.customer_update("failed")
    resent = await office.post("mia", f"{OUTBOX}/{message_id}/resend")
    assert resent.status_code == 202, resent.text
    assert "was failed: SendGrid 400" in resent.json()["original"]["error"]
    copy = await office.wait_for(resent.json()["resend"]["id"], "sent")
    assert copy["created_by"] == "mia" and len(office.mails_for(copy)) == 1


async def test_mark_sent_records_who_confirmed_it(office: Office) -> None:
    slug, message_id = await office.customer_update("unknown")
    scraped = (await office.http.get("/metrics")).text
    before = _gauge(scraped, "jobline_outbox_actions_total", action="mark_sent")

    marked = await office.post("ada", f"{OUTBOX}/{message_id}/mark-sent")
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "sent"
    assert marked.json()["error"].startswith("marked sent by ada at ")
    assert "was unknown" in marked.json()["error"]
    assert (await office.message(message_id))["status"] == "sent"
    assert (await office.get("olga", f"/api/v1/jobs/{slug}")).json()["messages_in_doubt"] == 0

    # Once sent, neither action applies: 409, and nothing changes.
    api_error(await office.post("ada", f"{OUTBOX}/{message_id}/mark-sent"), 409, "sent")
    api_error(await office.post("ada", f"{OUTBOX}/{message_id}/resend"), 409, "sent")
    assert (await office.message(message_id))["error"] == marked.json()["error"]
    scraped = (await office.http.get("/metrics")).text
    assert _gauge(scraped, "jobline_outbox_actions_total", action="mark_sent") == before + 1


async def test_only_the_office_may_act_and_only_on_unknown_or_failed(office: Office) -> None:
    _, in_doubt = await office.customer_update("unknown")
    _, delivered = await office.customer_update("sent")
    for action in ("resend", "mark-sent"):
        path = f"{OUTBOX}/{in_doubt}/{action}"
        for username in ("sam", "tess"):
            api_error(await office.post(username, path), 403, "office")
        api_error(await office.http.post(path), 401)
        api_error(await office.post("olga", f"{OUTBOX}/{2**31 - 1}/{action}"), 404)
        api_error(await office.post("olga", f"{OUTBOX}/0/{action}"), 422)
        api_error(await office.post("olga", f"{OUTBOX}/{delivered}/{action}"), 409, "sent")
    assert (await office.message(in_doubt))["status"] == "unknown"
    sent = await office.message(delivered)
    assert sent["status"] == "sent" and sent["error"] is None
    assert len(office.mails_for(sent)) == 1
