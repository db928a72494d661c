"""Smoke test of bench/events.py: the whole benchmark runs end to end on a tiny workload.

Only that it runs, cleans up and reports sane figures; timings depend on the machine and are
never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.events import Stack
from core.config import Settings
from tests.bench.run import run_bench

# A smoke test: it asserts no timing, so it runs in `make test`'s first pass beside the others
# (the timeout leaves room for a loaded machine) and leaves the serial pass to what is timed.

# Two jobs in flight at once and one unmeasured warm-up each phase: every path of the bench runs.
JOBS = 3
WARMUP = 1
EVENTS_PER_JOB = 13


def test_bench_runs_and_reports_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    stdout = run_bench(
        "events.py",
        "--jobs",
        str(JOBS),
        "--concurrency",
        "2",
        "--warmup",
        str(WARMUP),
        "--json",
        str(out),
        timeout_s=300,
    )
    assert "ratio API p50 / raw p50" in stdout

    figures = json.loads(out.read_text())
    for phase in ("api", "raw"):
        events = figures[phase]["events"]
        assert events["n"] == JOBS * EVENTS_PER_JOB
        assert all(events[k] > 0 for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"))
        assert figures[phase]["create"]["n"] == JOBS
        assert figures[phase]["wall_s"] > 0
    assert figures["api"]["lifecycles_per_s"] > 0
    assert figures["raw"]["workflows_per_s"] > 0
    assert figures["ratio_p50"] > 0
    assert figures["config"]["worker_sandbox"] is True and "worker sandbox on" in stdout
    assert set(figures["peak_rss_mib"]) == {"worker", "api", "temporal"}
    assert all(mib > 0 for mib in figures["peak_rss_mib"].values())

    # Per event type, and the PDFs counted apart: all three of every job stored, after the
    # answers (they follow them).
    by_type = figures["by_type"]
    assert sum(t["api"]["n"] for t in by_type.values()) == JOBS * EVENTS_PER_JOB
    assert {"quote_sent", "invoice_sent", "job_completed"} <= set(by_type)
    assert all(t["raw"]["n"] > 0 and t["ratio_p90"] > 0 for t in by_type.values())
    assert figures["api"]["documents"] == 3 * JOBS
    assert figures["api"]["with_documents_s"] >= figures["api"]["wall_s"]
    assert "each type's p90 within" in stdout


def test_an_unsandboxed_stack_runs_its_worker_without_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--unsandboxed` reaches the stack's worker as JOBLINE_WORKER_SANDBOX=false, which its
    settings read (tests/workflows/test_unsandboxed_worker.py: what the worker does with it)."""
    env = Stack(tmp_path, worker_sandbox=False)._env()
    assert env["JOBLINE_WORKER_SANDBOX"] == "false"
    assert "JOBLINE_WORKER_SANDBOX" not in Stack(tmp_path)._env()
    monkeypatch.setenv("JOBLINE_WORKER_SANDBOX", env["JOBLINE_WORKER_SANDBOX"])
    assert Settings(_env_file=None).worker_sandbox is False  # type: ignore[call-arg]
