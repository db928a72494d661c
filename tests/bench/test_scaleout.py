"""bench/scaleout.py in small (issue 12, item 5), as a person runs it: one worker and one API, then
two of each on a fresh task queue, against one PostgreSQL database and one Temporal dev server.

Both configurations must give the same results (every job closed, the same timeline and outbox
per job) and the figures must be printed and written; the throughput itself depends on the
machine and is never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.run import run_bench

# A smoke test: it asserts no timing, so it runs in `make test`'s first pass beside the others
# (the timeout leaves room for a loaded machine) and leaves the serial pass to what is timed.

JOBS = 4
EVENTS_PER_JOB = 13


def test_two_workers_and_two_apis_give_the_same_results(tmp_path: Path) -> None:
    out = tmp_path / "scaleout.json"
    stdout = run_bench(
        "scaleout.py",
        "--jobs",
        str(JOBS),
        "--concurrency",
        "2",
        "--warmup",
        "1",
        "--json",
        str(out),
        timeout_s=300,
    )
    assert "same results: PASS" in stdout, stdout
    assert "throughput B/A:" in stdout, stdout

    figures = json.loads(out.read_text())
    same = figures["same_results"]
    assert same["pass"], same
    # The warm-ups (one per API) are checked with the measured jobs.
    assert same["jobs_checked"] == {"A": JOBS + 1, "B": JOBS + 2}
    assert same["reference"]["stage"] == "closed"
    assert same["reference"]["timeline_events"] == EVENTS_PER_JOB + 1  # with job_created
    assert same["reference"]["outbox_messages"] > 0

    configurations = figures["configurations"]
    assert {label: (c["workers"], c["apis"]) for label, c in configurations.items()} == {
        "A": (1, 1),
        "B": (2, 2),
    }
    for c in configurations.values():
        assert c["events"]["n"] == JOBS * EVENTS_PER_JOB
        assert c["lifecycles_per_s"] > 0 and c["events_per_s"] > 0
        assert all(c["events"][k] > 0 for k in ("p50_ms", "p90_ms", "p99_ms"))
        assert c["cpu_s_by_kind"]["worker"] > 0 and c["cpu_s_by_kind"]["api"] > 0
        assert 0 < c["machine_busy_fraction"] <= 1.05
    assert set(configurations["B"]["peak_rss_mib"]) >= {"worker 1", "worker 2", "api 1", "api 2"}
    assert figures["ratio"] > 0
