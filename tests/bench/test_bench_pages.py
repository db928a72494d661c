"""Smoke test of bench/pages.py: seeding, signing in and timing every page on both databases,
end to end with tiny numbers. Timings depend on the machine and are never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.run import run_bench

# A smoke test: it asserts no timing, so it runs in `make test`'s first pass beside the others
# (the timeout leaves room for a loaded machine) and leaves the serial pass to what is timed.

JOBS = 60
REQUESTS = 3
PAGES = (
    "board /jobs",
    "list ?view=list&stage=quote_sent",
    "job page /jobs/{slug}",
    "baseline JSON /api/v1/jobs?page_size=50",
)


def test_bench_pages_seeds_times_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "pages.json"
    stdout = run_bench(
        "pages.py", "--jobs", str(JOBS), "--requests", str(REQUESTS), "--json", str(out),
        timeout_s=600,
    )  # fmt: skip
    assert "goal p95 < 100 ms" in stdout

    results = json.loads(out.read_text())
    assert [r["backend"] for r in results] == ["sqlite", "postgresql"]
    for figures in results:
        assert figures["jobs"] == JOBS and figures["seed_s"] >= 0
        for where in ("asgi", "uvicorn"):
            for page in PAGES:
                timing = figures[f"{where} {page}"]
                if "note" in timing:  # the job page, while it is not built
                    assert page.startswith("job page"), (where, page, timing)
                    continue
                assert timing["n"] == REQUESTS, (where, page)
                assert 0 < timing["p50_ms"] <= timing["p95_ms"] <= timing["max_ms"]
        assert figures["baseline SQL count(*) jobs"]["n"] == REQUESTS
