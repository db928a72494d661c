"""The job list's text search (`GET /api/v1/jobs?q=`) with 100,000 jobs on PostgreSQL: as migrated,
without migration 0015's trigram indexes, and with each job's state kept in its row (before
migration 0018).

    .venv/bin/python bench/search.py [--jobs 100000] [--requests 200]

Seeds two fresh databases as tests/core/test_query_plans.py does (bench/reports.py's rows, varied
titles and client names, a real job's state; VACUUM ANALYZE): one migrated to the head, one to
0017, before the state went out of line. Then times --requests GETs of each search as the office
over uvicorn against both, one after the other in turn so that whatever else the machine does
falls on both alike; then again on the head's database after dropping the two trigram indexes on
jobs (as before migration 0015). Prints p50 / p99 per search, and each database's size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import over_uvicorn  # noqa: E402
from bench.reports import bench_database  # noqa: E402

SEARCHES = {
    "title words": "furnace in the loft",
    "client name": "patel & sons 0015",
    "one word": "radiator",
    "most jobs": "in the",
    "no match": "no such words",
    "slug": "b00004d2",
}
TRIGRAM_ON_JOBS = ("ix_jobs_title_trgm", "ix_jobs_client_name_trgm")
LAYOUTS = {"head": "head", "state in the row (0017)": "0017"}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
    }


async def timings(servers: dict[str, tuple[str, str]], requests: int) -> dict[str, Any]:
    """Each search's GETs against every server (label: base URL, token) in turn:
    {label: {search: figures}}."""
    import httpx

    found: dict[str, dict[str, Any]] = {label: {} for label in servers}
    async with httpx.AsyncClient(timeout=60) as client:

        async def get(label: str, q: str) -> httpx.Response:
            base, token = servers[label]
            return await client.get(
                f"{base}/api/v1/jobs",
                params={"q": q},
                headers={"Authorization": f"Bearer {token}"},
            )

        for search, q in SEARCHES.items():
            samples: dict[str, list[float]] = {label: [] for label in servers}
            totals = {}
            for label in servers:
                warm = await get(label, q)
                assert warm.status_code == 200, warm.text[:300]
                totals[label] = warm.json()["total"]
            order = list(servers)
            for i in range(requests):
                for label in order if i % 2 == 0 else reversed(order):
                    started = time.perf_counter()
                    answer = await get(label, q)
                    samples[label].append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200
            for label in servers:
                found[label][search] = {**percentiles(samples[label]), "total": totals[label]}
    return found


@contextlib.asynccontextmanager
async def seeded_app(revision: str, jobs: int) -> AsyncIterator[Any]:
    """A database at `revision` with `jobs` jobs and the office's olga, served over uvicorn:
    (base URL, database, olga's token)."""
    from temporalio.client import Client as TemporalClient
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app
    from api.users.service import add_token, create_user
    from core.config import Settings
    from tests.core.test_query_plans import seed

    async with bench_database(revision) as db:
        started = time.perf_counter()
        await seed(db.url, jobs)
        print(
            f"{revision}: seeded {jobs:,} jobs in {time.perf_counter() - started:.0f} s", flush=True
        )
        async with db.session() as session:
            olga = await create_user(session, "olga", "office", "olga@bench.test")
            token = await add_token(session, olga)
        temporal = await TemporalClient.connect(
            "127.0.0.1:9", lazy=True, data_converter=pydantic_data_converter
        )
        app = create_app(Settings(environment="test"), db=db, temporal=temporal)
        async with app.router.lifespan_context(app), over_uvicorn(app) as base:
            yield base, db, token


async def sizes(db: Any) -> str:
    async with db.engine.connect() as connection:
        heap, toast = (
            await connection.exec_driver_sql(
                "SELECT pg_relation_size('jobs'), pg_relation_size("
                "(SELECT reltoastrelid FROM pg_class WHERE relname = 'jobs'))"
            )
        ).one()
    return f"jobs table {heap / 2**20:.0f} MiB, its TOAST {toast / 2**20:.0f} MiB"


async def measure(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        apps = {
            label: await stack.enter_async_context(seeded_app(revision, args.jobs))
            for label, revision in LAYOUTS.items()
        }
        for label, (_, db, _) in apps.items():
            print(f"{label}: {await sizes(db)}", flush=True)
        servers = {label: (base, token) for label, (base, _, token) in apps.items()}
        results = await timings(servers, args.requests)
        base, db, token = apps["head"]
        async with db.engine.begin() as connection:
            for name in TRIGRAM_ON_JOBS:
                await connection.exec_driver_sql(f"DROP INDEX {name}")
            await connection.exec_driver_sql("ANALYZE jobs")
        results.update(await timings({"head without trigram (0014)": (base, token)}, args.requests))
    print(f"GET /api/v1/jobs?q= with {args.jobs:,} jobs, {args.requests} GETs each: p50 / p99 ms")
    labels = list(results)
    print(f"{'search':<12} {'total':>6}  " + "  ".join(f"{label:>26}" for label in labels))
    for search in SEARCHES:
        total = results["head"][search]["total"]
        cells = [
            f"{results[label][search]['p50_ms']:>12} / {results[label][search]['p99_ms']:>11}"
            for label in labels
        ]
        print(f"{search:<12} {total:>6}  " + "  ".join(f"{cell:>26}" for cell in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(measure(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
