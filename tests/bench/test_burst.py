"""A season's backlog on the embedded default (issue 13): 1,000 jobs created by 8 clients at once
on `jobline dev` with SQLite, through bench/burst.py as a person would run it.

Every create is a 201; an event on the new jobs still answers; no process logs a traceback (or a
locked database, or an exhausted pool); and the worker is back under 5% of a core within 60 s of
the last create, with every job's deferred settle write inside that window. The burst's speed and
the idle cost are printed by the benchmark, not asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_bench
from workflows.job import SETTLE_QUIET, SETTLE_SPREAD

# A benchmark on its own stack of processes: run alone (`make test`'s serial pass).
pytestmark = pytest.mark.serial

JOBS = 1000
CLIENTS = 8
PROBES = 10
IDLE_WITHIN_S = 60
# Every job's deferred settle is due within this long of its last event (the probes come before
# the watch starts): the watch ends once past it and quiet, not at the end of the window.
SETTLED_BY_S = (SETTLE_QUIET + SETTLE_SPREAD).total_seconds() + 5


def test_a_burst_of_a_thousand_jobs_all_land_and_the_stack_goes_quiet(tmp_path: Path) -> None:
    out = tmp_path / "burst.json"
    stdout = run_bench(
        "burst.py",
        "--jobs",
        str(JOBS),
        "--concurrency",
        str(CLIENTS),
        "--probe",
        str(PROBES),
        "--idle-below",
        "5",
        "--quiet-s",
        "10",
        "--observe-s",
        str(IDLE_WITHIN_S + 15),
        "--settled-by",
        str(SETTLED_BY_S),
        "--idle-s",
        "5",
        "--json",
        str(out),
        timeout_s=900,
    )
    figures = json.loads(out.read_text())
    burst = figures["burst"]
    assert burst["statuses"] == {"201": JOBS}, (burst["statuses"], burst["first_failures"])
    assert figures["events"]["statuses"] == {"200": PROBES}, figures["events"]
    for process, counts in figures["logs"].items():
        assert not any(counts.values()), (process, counts, stdout)
    recovery = figures["recovery"]
    assert recovery["recovered"], recovery["trace"]
    assert recovery["idle_after_s"] <= IDLE_WITHIN_S, recovery["trace"]
