"""Promises that only show over a real server: the API as `jobline api` runs it (uvicorn in a
process of its own), against the test stack's database, Temporal server and worker.

`httpx.ASGITransport` waits for the whole ASGI call, dependency exits included, so it cannot see
an answer sent before its write is committed, nor a request the server itself gives up on.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from models.messages import EventRequest, JobInput
from models.tables import Job, JobEvent, OutboxMessage
from tests.conftest import Stack
from tests.fakes.api_process import start_api, stop
from worker import build_worker


@contextmanager
def api_process(stack: Stack, **env: str) -> Iterator[str]:
    """`jobline api`, as production runs it, configured by JOBLINE_* variables; yields its URL."""
    config = stack.temporal.service_client.config
    environment = {
        "JOBLINE_DATABASE_URL": stack.db.url,
        "JOBLINE_TEMPORAL_ADDRESS": config.target_host,
        "JOBLINE_TASK_QUEUE": stack.task_queue,
        "JOBLINE_ENVIRONMENT": "test",
        "JOBLINE_LOG_LEVEL": "WARNING",
        **env,
    }
    with tempfile.TemporaryDirectory() as logs:
        server = start_api(
            environment, Path(logs) / "api.log", command=[sys.executable, "-m", "cli.main", "api"]
        )
        try:
            yield server.url
        finally:
            stop(server)


@asynccontextmanager
async def client(stack: Stack, base: str, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, headers=stack.auth(username), timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[str]:
    with api_process(stack) as base:
        yield base


async def _new_job(http: httpx.AsyncClient) -> dict:
    made = await http.post(
        "/api/v1/clients",
        json={"name": f"C {uuid.uuid4().hex[:6]}", "email": "customer@example.com"},
    )
    assert made.status_code == 201, made.text
    job = await http.post(
        "/api/v1/jobs",
        json={"client_id": made.json()["id"], "title": "No heat", "source": "incoming_call"},
    )
    assert job.status_code == 201, job.text
    return job.json()


def _notes(view: dict) -> set[str]:
    return {e["payload"].get("text") for e in view["timeline"] if e["type"] == "note_added"}


async def test_concurrent_events_each_see_their_own_write(stack: Stack, api: str) -> None:
    """Each 200 shows its own event, and a GET right after every answer shows all of them."""
    async with client(stack, api, "olga") as http:
        job = await _new_job(http)
        slug = job["slug"]
        texts = [f"note {i}" for i in range(20)]

        async def note(text: str) -> httpx.Response:
            return await http.post(
                f"/api/v1/jobs/{slug}/events", json={"type": "note_added", "text": text}
            )

        answers = await asyncio.gather(*(note(text) for text in texts))
        assert [a.status_code for a in answers] == [200] * len(texts)
        read = await http.get(f"/api/v1/jobs/{slug}")
        for text, answer in zip(texts, answers, strict=True):
            assert text in _notes(answer.json()), repr(
                (
                    text,
                    [(e["seq"], e["payload"].get("text")) for e in answer.json()["timeline"]],
                    [(e["seq"], e["payload"].get("text")) for e in read.json()["timeline"]],
                )
            )
        assert _notes(read.json()) == set(texts)
        seqs = [e["seq"] for e in read.json()["timeline"]]
        assert seqs == list(range(1, len(texts) + 2))


async def test_a_retried_event_with_its_key_is_applied_once(stack: Stack, api: str) -> None:
    async with client(stack, api, "olga") as http:
        slug = (await _new_job(http))["slug"]
        key = {"Idempotency-Key": f"note-{uuid.uuid4()}"}
        body = {"type": "note_added", "text": "called the customer"}
        first, second = await asyncio.gather(
            http.post(f"/api/v1/jobs/{slug}/events", json=body, headers=key),
            http.post(f"/api/v1/jobs/{slug}/events", json=body, headers=key),
        )
        third = await http.post(f"/api/v1/jobs/{slug}/events", json=body, headers=key)
        assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
        assert [e["type"] for e in third.json()["timeline"]].count("note_added") == 1

        other = await http.post(
            f"/api/v1/jobs/{slug}/events",
            json={"type": "note_added", "text": "something else"},
            headers=key,
        )
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        read = await http.get(f"/api/v1/jobs/{slug}")
        assert _notes(read.json()) == {"called the customer"}

    # Keys belong to their user: the same key from someone else is their own request.
    async with client(stack, api, "mia") as http:
        again = await http.post(f"/api/v1/jobs/{slug}/events", json=body, headers=key)
        assert again.status_code == 200
        assert [e["type"] for e in again.json()["timeline"]].count("note_added") == 2


async def test_a_retried_create_makes_one_job(stack: Stack, api: str) -> None:
    async with client(stack, api, "olga") as http:
        made = await http.post("/api/v1/clients", json={"name": f"C {uuid.uuid4().hex[:6]}"})
        body = {
            "client_id": made.json()["id"],
            "title": "Leaking valve",
            "source": "incoming_email",
        }
        key = {"Idempotency-Key": str(uuid.uuid4())}
        answers = await asyncio.gather(
            *(http.post("/api/v1/jobs", json=body, headers=key) for _ in range(3))
        )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["slug"] for a in answers}) == 1
        async with stack.db.session() as session:
            jobs = (await session.exec(select(Job).where(Job.client_id == body["client_id"]))).all()
        assert len(jobs) == 1

        changed = await http.post("/api/v1/jobs", json={**body, "title": "Other"}, headers=key)
        assert changed.status_code == 422


async def test_a_retried_client_create_makes_one_client(stack: Stack, api: str) -> None:
    async with client(stack, api, "olga") as http:
        name = f"Keyed {uuid.uuid4().hex[:6]}"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        answers = await asyncio.gather(
            *(http.post("/api/v1/clients", json={"name": name}, headers=key) for _ in range(3))
        )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        listed = await http.get("/api/v1/clients", params={"q": name})
        assert listed.json()["total"] == 1
        other = await http.post("/api/v1/clients", json={"name": name + "x"}, headers=key)
        assert other.status_code == 422


async def test_a_repeated_send_with_its_key_sends_once(stack: Stack, api: str) -> None:
    async with client(stack, api, "olga") as http:
        slug = (await _new_job(http))["slug"]
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body = {"message": "We are on our way tomorrow morning."}
        first = await http.post(f"/api/v1/jobs/{slug}/send", json=body, headers=key)
        second = await http.post(f"/api/v1/jobs/{slug}/send", json=body, headers=key)
        assert first.status_code == second.status_code == 202, first.text
        assert [m["id"] for m in first.json()["messages"]] == [
            m["id"] for m in second.json()["messages"]
        ]
        async with stack.db.session() as session:
            sent = (
                await session.exec(
                    select(OutboxMessage).where(
                        OutboxMessage.job_slug == slug, OutboxMessage.purpose == "customer_update"
                    )
                )
            ).all()
        assert len(sent) == 1


async def test_a_bad_key_is_refused(stack: Stack, api: str) -> None:
    async with client(stack, api, "olga") as http:
        made = await http.post(
            "/api/v1/clients", json={"name": "Spacey"}, headers={"Idempotency-Key": "has space"}
        )
        assert made.status_code == 422
        assert "Idempotency-Key" in made.text or "idempotency-key" in made.text


async def test_a_job_nobody_answers_times_out_on_the_server(stack: Stack) -> None:
    """No worker polls the job's queue: the API gives up after its own timeout with a 503 that
    says so and that the keyed retry is safe; once a worker is back, the retry finishes the job
    it started, once."""
    queue = f"nobody-{uuid.uuid4().hex[:6]}"
    with api_process(stack, JOBLINE_TASK_QUEUE=queue, JOBLINE_API_EVENT_TIMEOUT_S="2") as base:
        async with client(stack, base, "olga") as http:
            made = await http.post("/api/v1/clients", json={"name": "Waiting client"})
            body = {
                "client_id": made.json()["id"],
                "title": "Noisy fan",
                "source": "incoming_email",
            }
            key = {"Idempotency-Key": str(uuid.uuid4())}
            started = time.monotonic()
            waited = await http.post("/api/v1/jobs", json=body, headers=key)
            assert time.monotonic() - started < 10
            assert waited.status_code == 503, waited.text
            message = waited.json()["error"]["message"]
            assert "did not answer within 2 s" in message
            assert "same Idempotency-Key" in message and "safe" in message
            assert waited.headers.get("retry-after")

            async with build_worker(stack.temporal, stack.db, queue):
                retried = await http.post("/api/v1/jobs", json=body, headers=key)
            assert retried.status_code == 201, retried.text
            async with stack.db.session() as session:
                rows = (
                    await session.exec(
                        select(JobEvent).where(
                            JobEvent.job_slug == retried.json()["slug"],
                            col(JobEvent.type) == "job_created",
                        )
                    )
                ).all()
            assert len(rows) == 1


@workflow.defn(name="JobWorkflow")
class FailingJobWorkflow:
    """Stands in for a job workflow with a bug: every task that runs its Update fails."""

    @workflow.run
    async def run(self, input: JobInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def apply_event(self, request: EventRequest) -> None:
        raise RuntimeError("a bug in the workflow code")


async def test_a_failing_workflow_task_is_named_in_the_503(stack: Stack) -> None:
    queue = f"failing-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        stack.temporal,
        task_queue=queue,
        workflows=[FailingJobWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    with api_process(stack, JOBLINE_TASK_QUEUE=queue, JOBLINE_API_EVENT_TIMEOUT_S="5") as base:
        async with worker, client(stack, base, "olga") as http:
            made = await http.post("/api/v1/clients", json={"name": "Failing client"})
            body = {"client_id": made.json()["id"], "title": "Hum", "source": "incoming_call"}
            failed = await http.post("/api/v1/jobs", json=body)
            assert failed.status_code == 503, failed.text
            message = failed.json()["error"]["message"]
            assert "its workflow task is failing (attempt" in message, message
            assert "not reachable" not in message
