"""bench/reminder_hour.py in small, as a person runs it: 20 open jobs on the time-skipping server,
a `jobline worker` process of its own, an hour of appointment reminders skipped in 5-minute steps.

Every scheduled job's reminder comes due in the hour, and each is queued once (its email and its
SMS), at its due time in the server's clock and not before; the worker's RSS is reported at
every step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_bench

# A benchmark with a server and a worker of its own: run alone (`make test`'s serial pass).
pytestmark = pytest.mark.serial

JOBS = 20
# A timer's workflow task starts a moment after it fired (tests/workflows/time_skipping.py).
SLACK_S = 5.0


def test_every_reminder_of_the_hour_is_queued_once(tmp_path: Path) -> None:
    out = tmp_path / "reminder_hour.json"
    stdout = run_bench(
        "reminder_hour.py",
        "--jobs",
        str(JOBS),
        "--cache-sizes",
        "100",
        "--json",
        str(out),
        timeout_s=300,
    )
    (run,) = json.loads(out.read_text())["runs"]
    assert run["cache"] == 100, stdout
    created, hour = run["created"], run["hour"]
    assert created["jobs"] == JOBS == sum(created["stopped_after"].values()), stdout
    scheduled = created["stopped_after"]["job_scheduled"]
    assert scheduled >= 3, stdout
    # Nothing before the hour; in it, every scheduled job's reminder, once, on both channels.
    assert run["before_hour"]["queued"] == run["before_hour"]["rows"] == 0, stdout
    assert hour["scheduled"] == hour["due"] == hour["queued"] == scheduled, stdout
    assert hour["rows"] == 2 * scheduled, stdout
    assert hour["duplicates"] == 0 and hour["early"] == 0, stdout
    assert 0 <= hour["late_max_s"] < SLACK_S, stdout

    steps = run["steps"]
    assert [s["minute"] for s in steps] == list(range(5, 65, 5)), stdout
    dues = [s["due"] for s in steps]
    assert dues == sorted(dues) and dues[0] < dues[-1], stdout
    for step in steps:
        assert step["settled"] and step["queued"] == step["due"], stdout
        assert step["early"] == 0 and step["duplicates"] == 0, stdout
        assert 50 < step["alone_mib"] <= step["with_pdf_mib"], stdout
    created_rss = run["rss_created"]
    assert 50 < created_rss["alone_mib"] <= created_rss["with_pdf_mib"], stdout
    # The worker ran the whole hour, and every workflow task it took succeeded.
    assert "failed" not in run and run["worker_exit"] is None, stdout
    assert set(run["worker_log"].values()) == {0}, stdout
    assert "JOBLINE_WORKER_WORKFLOW_CACHE=100" in stdout, stdout
