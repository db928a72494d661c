"""Running a benchmark script as a person would, for the smoke tests: a subprocess, stopped with
SIGTERM (so it stops the stack it started) if it takes too long."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout_s: float) -> str:
    """The benchmark's stdout; fails the test on a non-zero exit or a timeout."""
    command = [sys.executable, str(ROOT / "bench" / script), *args]
    bench = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = bench.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        bench.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = bench.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            bench.kill()
            stdout, stderr = bench.communicate()
        pytest.fail(f"{script} took over {timeout_s:g} s\n{stdout[-3000:]}\n{stderr[-3000:]}")
    assert bench.returncode == 0, f"{stdout[-3000:]}\n{stderr[-3000:]}"
    return stdout
