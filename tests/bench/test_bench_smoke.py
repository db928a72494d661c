"""Smoke test of bench/events.py: the whole benchmark runs end to end on a tiny workload.

Only that it runs, cleans up and reports sane figures; timings depend on the machine and are
never asserted here.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = 5
EVENTS_PER_JOB = 13


def test_bench_runs_and_reports_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "events.py"),
        "--jobs",
        str(JOBS),
        "--concurrency",
        "2",
        "--json",
        str(out),
    ]
    bench = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = bench.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the benchmark then stops the stack it started.
        bench.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = bench.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            bench.kill()
            stdout, stderr = bench.communicate()
        pytest.fail(f"the benchmark took over 180 s\n{stdout[-3000:]}\n{stderr[-3000:]}")
    assert bench.returncode == 0, f"{stdout[-3000:]}\n{stderr[-3000:]}"
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
    assert set(figures["peak_rss_mib"]) == {"worker", "api", "temporal"}
    assert all(mib > 0 for mib in figures["peak_rss_mib"].values())
