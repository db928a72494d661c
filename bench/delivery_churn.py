"""Deliveries while the worker is SIGKILLed every few seconds: how many messages end `unknown`?

    .venv/bin/python bench/delivery_churn.py [--jobs 12] [--updates 6] [--kill-every 3 8]
        [--provider-delay 0.3] [--tree PATH] [--database-url URL] [--json OUT]

The operator's experiment of issue 8 (item 8), on fake SendGrid and Twilio servers:

1. A Temporal dev server, a fresh migrated database and the fake providers (each holds its
   answer --provider-delay seconds, as a real provider's round trip does).
2. A worker in a process of its own (`tests.fakes.worker_process`, run from --tree, so the same
   bench measures another checkout of Jobline: `git archive` one into a directory).
3. --jobs jobs, each sending --updates customer updates (email and SMS) a second or so apart,
   straight to their workflows (as the API does: Updates with ids, retried with the same id
   while no worker answers).
4. Meanwhile the worker is SIGKILLed every --kill-every seconds and a new one started at once.
5. Churn over, one worker stays until every message is finished, then each outbox row is set
   against what the providers received: delivered once, twice (a duplicate), or never.

Prints the figures; --json writes them. The share that ends `unknown` is what it is about.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, only bench/ is on the path
    sys.path.insert(0, str(ROOT))

TERMINAL = frozenset({"sent", "failed", "captured", "unknown"})


# --- the worker, killed and restarted ----------------------------------------------------------


class Workers:
    """One worker process at a time, started from `tree`, killed with SIGKILL on demand."""

    def __init__(self, tree: Path, settings: dict[str, str], log: IO[bytes]) -> None:
        self.tree = tree
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")},
            **{f"JOBLINE_{name.upper()}": value for name, value in settings.items()},
            "PYTHONPATH": str(tree),
        }
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.worker_process",
            cwd=self.tree,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the worker did not start: {line!r}")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
            self.kills += 1

    async def churn(self, low: float, high: float, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(random.uniform(low, high))
            await self.kill()
            await self.start()


# --- the jobs ----------------------------------------------------------------------------------


async def _with_retries(call: Any, what: str, within: float = 300) -> Any:
    """An Update retried (same id) while no worker answers, as a client retries a 503."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await asyncio.wait_for(call(), timeout=20)
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: no answer in {within:g} s: {error!r}") from error
            await asyncio.sleep(0.5)


async def drive_job(client: Any, task_queue: str, customer: Any, updates: int) -> str:
    """Creates a job and sends its customer updates; returns its slug."""
    from pydantic import TypeAdapter
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

    from core.temporal import workflow_id
    from models import events as ev
    from models.lifecycle import Actor, Role
    from models.messages import EventOutcome, EventRequest, JobInput

    adapter: TypeAdapter[Any] = TypeAdapter(ev.Event)
    olga = Actor(username="olga", role=Role.office)

    def request(type_: str, **fields: Any) -> EventRequest:
        return EventRequest(event=adapter.validate_python({"type": type_, **fields}), actor=olga)

    slug = f"churn-{uuid.uuid4().hex[:10]}"
    wid = workflow_id(slug)

    async def create() -> Any:
        start = WithStartWorkflowOperation(
            "JobWorkflow",
            JobInput(slug=slug, client=customer),
            id=wid,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        created = request(
            "job_created", client_id=customer.id, title="No cooling", source="incoming_call"
        )
        return await client.execute_update_with_start_workflow(
            "apply_event",
            created,
            start_workflow_operation=start,
            id=f"{slug}-created",
            result_type=EventOutcome,
        )

    await _with_retries(create, f"{slug} created")
    handle = client.get_workflow_handle(wid)
    for n in range(updates):
        await asyncio.sleep(random.uniform(0.5, 2.0))
        text = f"Update {n} on your job ({uuid.uuid4().hex[:8]})."
        event = request("customer_update_sent", message=text, sms=True)
        await _with_retries(
            lambda event=event, n=n: handle.execute_update(
                "apply_event", event, id=f"{slug}-update-{n}", result_type=EventOutcome
            ),
            f"{slug} update {n}",
        )
    return slug


# --- the bench ---------------------------------------------------------------------------------


async def new_customers(db: Any, count: int) -> list[Any]:
    from models.lifecycle import ClientSnapshot
    from models.tables import Client as ClientRow

    customers = []
    async with db.session() as session:
        for n in range(count):
            row = ClientRow(
                name=f"Churn Client {n}", email=f"customer{n}@example.com", phone=f"+1555010{n:04d}"
            )
            session.add(row)
            await session.flush()
            await session.refresh(row)
            customers.append(
                ClientSnapshot(id=row.id, name=row.name, email=row.email, phone=row.phone)
            )
    return customers


async def wait_for_finished(db: Any, slugs: list[str], within: float, expected: int) -> list[Any]:
    """The jobs' messages (every row, not only those an Update's answer named), once all
    `expected` are there and finished, or `within` has passed. Every answered update's messages
    come, but a workflow whose worker was killed queues them when it runs again: rows that are
    all finished may not yet be all the rows."""
    from sqlmodel import col, select

    from models.tables import OutboxMessage

    query = select(OutboxMessage).where(col(OutboxMessage.job_slug).in_(slugs))
    deadline = time.monotonic() + within
    while True:
        async with db.session() as session:
            rows = list((await session.exec(query)).all())
        finished = len(rows) >= expected and all(row.status in TERMINAL for row in rows)
        if finished or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(1)


def outcome_of(rows: list[Any], sendgrid: Any, twilio: Any) -> dict[str, Any]:
    """Each row against the providers' records: how many copies each one received."""
    sms_copies = collections.Counter(m["Body"] for m in twilio.messages)
    table: dict[str, dict[str, int]] = collections.defaultdict(collections.Counter)  # type: ignore[arg-type]
    for row in rows:
        if row.channel == "email":
            copies = len(sendgrid.mails_for(row.idempotency_key))
        else:
            copies = sms_copies[row.body]
        delivered = "0" if copies == 0 else "1" if copies == 1 else "2+"
        table[row.status][delivered] += 1
    total = len(rows)
    unknown = sum(table["unknown"].values())
    return {
        "messages": total,
        "by_status": {status: dict(copies) for status, copies in sorted(table.items())},
        "unknown": unknown,
        "unknown_share": round(unknown / total, 4) if total else 0.0,
        "duplicates": sum(c.get("2+", 0) for c in table.values()),
        # Not delivered, and the row says so only as `unknown` (or not at all).
        "undelivered_unknown": table["unknown"].get("0", 0),
        "unfinished": sum(c for s, t in table.items() if s not in TERMINAL for c in t.values()),
    }


@contextlib.asynccontextmanager
async def temporal_server() -> AsyncIterator[Any]:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from core.binaries import venv_binary
    from core.dev_server import dynamic_config_flags
    from workflows import search_attributes as sa

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_extra_args=dynamic_config_flags(),
    )
    async with env:
        yield env


async def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    from core.db import Database
    from core.migrate import upgrade
    from tests.fakes.providers import FakeSendGrid, FakeTwilio, provider_settings

    url = args.database_url or f"sqlite+aiosqlite:///{work_dir / 'jobline.db'}"
    db = Database(url)
    await upgrade(db)
    sendgrid, twilio = FakeSendGrid(), FakeTwilio()
    sendgrid.delay = twilio.delay = args.provider_delay
    task_queue = f"churn-{uuid.uuid4().hex[:8]}"
    try:
        async with temporal_server() as env:
            settings = {
                "environment": "test",
                "database_url": url,
                "temporal_address": env.client.service_client.config.target_host,
                "task_queue": task_queue,
                "provider_timeout": "10",
                "log_level": "WARNING",
                **provider_settings(sendgrid, twilio),
            }
            customers = await new_customers(db, args.jobs)
            with (work_dir / "workers.log").open("ab") as log:
                workers = Workers(args.tree, settings, log)
                await workers.start()
                started = time.monotonic()
                driving = asyncio.gather(
                    *(
                        drive_job(env.client, task_queue, customer, args.updates)
                        for customer in customers
                    )
                )
                churn = asyncio.ensure_future(
                    workers.churn(*args.kill_every, until=started + args.churn_s)
                )
                slugs = list(await driving)
                sending_s = time.monotonic() - started
                await churn  # a whole churn period, even when the sends were quicker
                churn_s = time.monotonic() - started
                # Every update sends an email and an SMS.
                expected = len(slugs) * args.updates * 2
                rows = await wait_for_finished(db, slugs, within=args.settle_s, expected=expected)
                figures = outcome_of(rows, sendgrid, twilio)
                await workers.kill()
                workers.kills -= 1  # the last one ends the bench, it is no crash
            worker_log = (work_dir / "workers.log").read_text(errors="replace")
            figures |= {
                # Retries that found a message `sending`: how each was settled (logged by the
                # worker; a checkout from before these messages were logged shows zeros).
                "interrupted": {
                    "answer_recorded": worker_log.count("answer of an interrupted attempt"),
                    "left_unknown": worker_log.count("left unknown after an interrupted send"),
                },
                "kills": workers.kills,
                "sending_s": round(sending_s, 1),
                "churn_s": round(churn_s, 1),
                "settled_s": round(time.monotonic() - started, 1),
                "provider_requests": {
                    "sendgrid": len(sendgrid.requests),
                    "twilio": len(twilio.requests),
                },
                "tree": str(args.tree),
                "database": db.dialect,
                "provider_delay_s": args.provider_delay,
            }
            return figures
    finally:
        sendgrid.close()
        twilio.close()
        await db.dispose()


def report(f: dict[str, Any]) -> str:
    lines = [
        f"tree {f['tree']} ({f['database']}), provider answers after {f['provider_delay_s']} s",
        f"{f['kills']} SIGKILLs over {f['churn_s']} s; sends issued in {f['sending_s']} s; "
        f"all finished at {f['settled_s']} s",
        f"{f['messages']} messages; provider requests: {f['provider_requests']}",
        "status      delivered 0 / 1 / 2+ times",
    ]
    for status, copies in f["by_status"].items():
        counts = [copies.get(n, 0) for n in ("0", "1", "2+")]
        lines.append(f"  {status:<9} " + " ".join(f"{n:>5}" for n in counts))
    lines += [
        f"unknown: {f['unknown']} of {f['messages']} ({100 * f['unknown_share']:.1f}%), "
        f"{f['undelivered_unknown']} of them never reached the provider",
        f"duplicates: {f['duplicates']}; unfinished: {f['unfinished']}",
        f"retries that found a message sending: {f['interrupted']['answer_recorded']} settled "
        f"by the answer the dead attempt heartbeated, {f['interrupted']['left_unknown']} left "
        "unknown",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--updates", type=int, default=6, help="customer updates per job")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(3.0, 8.0), metavar="S")
    parser.add_argument("--churn-s", type=float, default=45, help="how long the kills go on")
    parser.add_argument("--settle-s", type=float, default=240, help="wait for the last messages")
    parser.add_argument("--provider-delay", type=float, default=0.3)
    parser.add_argument(
        "--tree", type=Path, default=ROOT, help="the Jobline checkout the worker runs"
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.tree = args.tree.resolve()
    with tempfile.TemporaryDirectory(prefix="jobline-churn-") as work:
        figures = asyncio.run(measure(args, Path(work)))
    print(report(figures), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
