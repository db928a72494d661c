"""Smoke test of bench/closeout.py: the whole benchmark runs end to end on a tiny workload.

Only that it runs, cleans up and reports sane figures; timings depend on the machine and are
never asserted here (nor whether the goals are met).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.run import run_bench

# A smoke test: it asserts no timing, so it runs in `make test`'s first pass beside the others
# (the timeout leaves room for a loaded machine) and leaves the serial pass to what is timed.

JOBS = 3
RECEIPTS = 4
TIMEOUT_S = 300


def test_closeout_bench_runs_and_reports_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "closeout.json"
    stdout = run_bench(
        "closeout.py",
        "--quick",
        "--jobs",
        str(JOBS),
        "--concurrency",
        "2",
        "--receipts",
        str(RECEIPTS),
        "--json",
        str(out),
        timeout_s=TIMEOUT_S,
    )
    for expected in (
        "closeout: job_completed 2xx -> closeout email with receipt in outbox: p50",
        "(goal p99 < 2000 ms: ",
        "job_completed 2xx latency: p50",
        "receipts/s: Jobline pool",
        "(goal >= 0.8x: ",
        "receipt check: job ",
        "peak RSS MiB",
    ):
        assert expected in stdout, f"{expected!r} missing from\n{stdout[-3000:]}"

    figures = json.loads(out.read_text())
    closeout = figures["closeout"]
    for name in ("to_email", "post_2xx"):
        stats = closeout[name]
        assert stats["n"] == JOBS, (name, stats)
        assert all(stats[k] > 0 for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"))
        assert stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert closeout["without_receipt"] == []
    assert closeout["wall_s"] > 0 and closeout["closeouts_per_s"] > 0
    assert closeout["polls_per_job_mean"] >= 1
    assert closeout["receipt_check"]["bytes"] > 0
    steps = closeout["breakdown"]
    assert steps and all(s["n"] == JOBS for s in steps.values())

    receipts = figures["receipts"]
    assert receipts["count"] == RECEIPTS and receipts["html_chars"] > 0
    for renderer in ("bare", "pool"):
        assert receipts[renderer]["per_s"] > 0
        assert receipts[renderer]["pdf_bytes"] > 0
    assert receipts["pool"]["sequential_per_s"] > 0
    assert receipts["ratio"] > 0

    goals = figures["goals"]
    assert set(goals) == {"closeout_p99_ms", "receipts_ratio"}
    assert all(isinstance(goal["met"], bool) for goal in goals.values())
    assert set(figures["peak_rss_mib"]) == {"worker", "api", "temporal"}
    assert all(mib > 0 for mib in figures["peak_rss_mib"].values())
