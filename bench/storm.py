"""The reminder storm: N customer reminders due in the same minute, through a rate-limited provider.

    .venv/bin/python bench/storm.py [--messages 10000] [--provider-rate 100] [--worker-rate R]
        [--shards 100] [--database-url URL] [--json OUT]

Issue 12, item 3 (the storm). On a Temporal dev server and a fresh migrated database (SQLite by
default, --database-url for PostgreSQL):

1. A fake SendGrid on 127.0.0.1 that takes at most --provider-rate mails in any second and answers
   "429 Too Many Requests" (`Retry-After: 1`) above that.
2. One worker in this process with the real MessageActivities (`queue_messages`,
   `deliver_message`, the real SendGrid client) and JOBLINE_EMAIL_RATE_PER_SECOND = --worker-rate
   (default: 90% of the provider's rate, as the README advises; 0: no limit, to see the 429s do
   the work alone).
3. The storm: --messages appointment reminders, each a QueueMessages request as a job workflow
   makes when its reminder fires, split over --shards workflows (a workflow per job would be the
   real thing; a hundred jobs' worth of reminders per workflow keeps the dev server's load on the
   activities being measured). Each shard queues its reminders and delivers them through
   workflows/deliveries.py, with the job workflow's own activity options and retry policy.
4. Printed: the time until every reminder is an outbox row (queued), the time until every one is
   delivered, the rate achieved against the provider's, the 429s, the outbox rows by status and
   the duplicates (mails the provider accepted more than once for one idempotency key: must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, only bench/ is on the path
    sys.path.insert(0, str(ROOT))

from temporalio import workflow  # noqa: E402

with workflow.unsafe.imports_passed_through():
    from models.messages import QueueMessages  # noqa: E402
    from workflows.deliveries import Deliveries  # noqa: E402

FINISHED = frozenset({"sent", "failed", "captured", "unknown"})


@workflow.defn(name="StormShard", sandboxed=False)
class StormShard:
    """Reminders that came due together: each queued, then delivered in the background, as the
    job workflow does when a reminder fires."""

    @workflow.run
    async def run(self, reminders: list[QueueMessages]) -> int:
        deliveries = Deliveries()
        queued = await asyncio.gather(*(deliveries.send(r, bounded=True) for r in reminders))
        await workflow.wait_condition(lambda: deliveries.idle)
        return sum(len(ids) for ids in queued)


def reminders(count: int, prefix: str) -> list[QueueMessages]:
    from models.lifecycle import ClientSnapshot, JobState, Schedule, Stage
    from models.notifications import for_reminder

    monday = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    out = []
    for n in range(count):
        client = ClientSnapshot(
            id=n + 1, name=f"Storm Client {n}", email=f"customer{n}@example.com", phone=None
        )
        state = JobState(
            slug=f"{prefix}-{n:05d}",
            client=client,
            stage=Stage.scheduled,
            seq=7,
            title="Annual boiler service",
            schedule=Schedule(
                technician="tom", window_start=monday, window_end=monday + timedelta(hours=2)
            ),
        )
        [note] = for_reminder("appointment_reminder", state)
        out.append(QueueMessages(state=state, notification=note))
    return out


async def poll(db: Any, prefix: str, count: int, started: float, within: float) -> dict[str, Any]:
    """When every row is there (queued), and when every one is finished."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from models.tables import OutboxMessage

    mine = col(OutboxMessage.job_slug).like(f"{prefix}-%")
    queued_s: float | None = None
    deadline = started + within
    while True:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.status, func.count())
                    .where(mine)
                    .group_by(OutboxMessage.status)
                )
            ).all()
        by_status = {status: n for status, n in rows}
        total = sum(by_status.values())
        now = time.monotonic()
        if queued_s is None and total >= count:
            queued_s = now - started
        done = sum(n for status, n in by_status.items() if status in FINISHED)
        if (queued_s is not None and done >= total) or now > deadline:
            async with db.session() as session:
                odd = await session.exec(
                    select(OutboxMessage.status, OutboxMessage.error)
                    .where(mine, OutboxMessage.status != "sent")
                    .limit(5)
                )
                not_sent = [f"{status}: {error}" for status, error in odd.all()]
            return {
                "not_sent": not_sent,
                "queued_s": round(queued_s, 1) if queued_s is not None else None,
                "finished_s": round(now - started, 1) if done >= total else None,
                "rows": total,
                "by_status": by_status,
            }
        await asyncio.sleep(0.5)


async def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    from temporalio.worker import Worker

    from activities.messages import MessageActivities
    from bench.delivery_churn import temporal_server
    from core.config import Settings
    from core.db import Database
    from core.migrate import upgrade
    from tests.fakes.providers import FakeSendGrid

    url = args.database_url or f"sqlite+aiosqlite:///{work_dir / 'jobline.db'}"
    db = Database(url)
    await upgrade(db)
    sendgrid = FakeSendGrid()
    sendgrid.per_second = args.provider_rate
    prefix = f"storm{uuid.uuid4().hex[:6]}"
    task_queue = f"storm-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=url,
        email_backend="sendgrid",
        sendgrid_api_key=sendgrid.api_key,
        sendgrid_base_url=sendgrid.base_url,
        email_rate_per_second=args.worker_rate or None,
        provider_timeout=10,
    )
    messages = MessageActivities(db, settings)
    batch = reminders(args.messages, prefix)
    size = -(-len(batch) // args.shards)
    try:
        async with temporal_server() as env:
            client = env.client
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[StormShard],
                activities=[messages.queue_messages, messages.deliver_message],
                # As worker.py: as many activities at once as the pool has connections, twice.
                max_concurrent_activities=2 * db.connections,
                max_concurrent_local_activities=db.connections,
            ):
                started = time.monotonic()
                handles = [
                    await client.start_workflow(
                        StormShard.run,
                        batch[i : i + size],
                        id=f"{task_queue}-{i // size}",
                        task_queue=task_queue,
                    )
                    for i in range(0, len(batch), size)
                ]
                figures = await poll(db, prefix, args.messages, started, args.within_s)
                if figures["finished_s"] is not None:
                    await asyncio.gather(*(h.result() for h in handles))
    finally:
        sendgrid.close()
        await db.dispose()

    accepted = sendgrid.accepted
    keys = collections.Counter(
        r.json().get("custom_args", {}).get("idempotency_key") for r in accepted
    )
    times = sorted(r.at for r in accepted)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return figures | {
        "messages": args.messages,
        "shards": len(handles),
        "database": db.dialect,
        "provider_rate": args.provider_rate,
        "worker_rate": args.worker_rate or None,
        "accepted": len(accepted),
        "requests": len(sendgrid.requests),
        "too_many": sum(1 for r in sendgrid.requests if r.status == 429),
        "achieved_per_s": round((len(times) - 1) / span, 1) if span else None,
        "duplicates": sum(1 for n in keys.values() if n > 1),
        "keys_accepted": len(keys),
    }


def report(f: dict[str, Any]) -> str:
    rate = f["worker_rate"] if f["worker_rate"] else "no limit"
    return "\n".join(
        [
            f"{f['messages']} reminders in {f['shards']} workflows ({f['database']}); provider "
            f"takes {f['provider_rate']:g}/s, the worker's limit: {rate}",
            f"all queued in {f['queued_s']} s; all delivered in {f['finished_s']} s",
            f"accepted {f['accepted']} at {f['achieved_per_s']}/s "
            f"(provider's limit {f['provider_rate']:g}/s); "
            f"{f['too_many']} answered 429 of {f['requests']} requests",
            f"outbox rows by status: {f['by_status']}",
            f"duplicates: {f['duplicates']}",
            *(f"  not sent: {line}" for line in f["not_sent"]),
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--provider-rate", type=float, default=100.0, help="mails/s it takes")
    parser.add_argument(
        "--worker-rate",
        type=float,
        default=None,
        help="JOBLINE_EMAIL_RATE_PER_SECOND (default: 90%% of the provider's rate; 0: no limit)",
    )
    parser.add_argument("--shards", type=int, default=100, help="workflows the storm is split in")
    parser.add_argument("--within-s", type=float, default=1800, help="give up after this long")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.worker_rate is None:
        args.worker_rate = round(args.provider_rate * 0.9, 3)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobline-storm-") as work:
        figures = asyncio.run(measure(args, Path(work)))
    print(report(figures), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["duplicates"] == 0 and figures["finished_s"] is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
