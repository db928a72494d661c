"""The job list's text search (`GET /api/v1/jobs?q=`) with 100,000 jobs on PostgreSQL, with and
without migration 0015's trigram indexes.

    .venv/bin/python bench/search.py [--jobs 100000] [--requests 200]

Seeds a fresh migrated database as tests/core/test_query_plans.py does (bench/reports.py's rows,
varied titles and client names, a real job's state), VACUUM ANALYZE, then times --requests GETs
of each search as the office over uvicorn: with the trigram indexes, then again after dropping
the two on jobs (as before migration 0015). Prints p50 / p99 / max per search.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import over_uvicorn  # noqa: E402
from bench.reports import bench_database  # noqa: E402

SEARCHES = {
    "title words": "furnace in the loft",
    "client name": "patel & sons 0015",
    "one word": "radiator",
    "no match": "no such words",
    "slug": "b00004d2",
}
TRIGRAM_ON_JOBS = ("ix_jobs_title_trgm", "ix_jobs_client_name_trgm")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
    }


async def timings(base: str, token: str, requests: int) -> dict[str, dict[str, Any]]:
    import httpx

    found: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for label, q in SEARCHES.items():
            warm = await client.get("/api/v1/jobs", params={"q": q}, headers=headers)
            assert warm.status_code == 200, warm.text[:300]
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get("/api/v1/jobs", params={"q": q}, headers=headers)
                samples.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
            found[label] = {**percentiles(samples), "total": warm.json()["total"]}
    return found


async def measure(args: argparse.Namespace) -> None:
    from temporalio.client import Client as TemporalClient
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app
    from api.users.service import add_token, create_user
    from core.config import Settings
    from tests.core.test_query_plans import seed

    async with bench_database() as db:
        started = time.perf_counter()
        await seed(db.url, args.jobs)
        print(f"seeded {args.jobs:,} jobs in {time.perf_counter() - started:.0f} s", flush=True)
        async with db.session() as session:
            olga = await create_user(session, "olga", "office", "olga@bench.test")
            token = await add_token(session, olga)
        temporal = await TemporalClient.connect(
            "127.0.0.1:9", lazy=True, data_converter=pydantic_data_converter
        )
        app = create_app(Settings(environment="test"), db=db, temporal=temporal)
        results = {}
        async with app.router.lifespan_context(app), over_uvicorn(app) as base:
            results["with trigram indexes"] = await timings(base, token, args.requests)
            async with db.engine.begin() as connection:
                for name in TRIGRAM_ON_JOBS:
                    await connection.exec_driver_sql(f"DROP INDEX {name}")
                await connection.exec_driver_sql("ANALYZE jobs")
            results["without (before 0015)"] = await timings(base, token, args.requests)
    print(f"GET /api/v1/jobs?q= with {args.jobs:,} jobs, {args.requests} GETs each (ms)")
    print(
        f"{'search':<14} {'total':>6}  {'with: p50':>9} {'p99':>7}  {'without: p50':>12} {'p99':>7}"
    )
    for label in SEARCHES:
        after, before = (
            results["with trigram indexes"][label],
            results["without (before 0015)"][label],
        )
        print(
            f"{label:<14} {after['total']:>6}  {after['p50_ms']:>9} {after['p99_ms']:>7}  "
            f"{before['p50_ms']:>12} {before['p99_ms']:>7}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(measure(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
